//! What a loaded catalog holds on the heap, part by part, measured with the dhat heap
//! profiler: `cargo run --release -p catalog --example heap_breakdown -- [restaurants]
//! [radius_km]` (default 12,000 restaurants over 12 km). It also writes `dhat-heap.json` (every
//! allocation site, for dhat's viewer) to the current directory.
//!
//! The city is generated and written to a fresh store before profiling starts. Each figure is
//! the growth of live heap bytes (as requested, without the allocator's own overhead) while
//! one part is built, so the parts add up to about the total; "not held" rows are built only
//! for comparison and dropped (the menus the catalog no longer keeps in memory).

use catalog::demo::{self, DemoSpec};
use catalog::{Catalog, MenuBody};
use std::sync::Arc;
use store::{PageLimits, Pages, RedbOptions, RedbStore};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

fn live() -> i64 {
    dhat::HeapStats::get().curr_bytes as i64
}

struct Table {
    n: usize,
}

impl Table {
    fn row(&self, what: &str, bytes: i64) {
        println!(
            "| {what} | {:.1} MB | {:.2} KB |",
            bytes as f64 / 1e6,
            bytes as f64 / self.n as f64 / 1e3
        );
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(12_000);
    let radius_km: f64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(12.0);
    let spec = DemoSpec {
        restaurants: n,
        radius_km,
        ..DemoSpec::berlin(42)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = || RedbOptions {
        // The cell's default `store.cache_bytes`.
        cache_size: 64 << 20,
        ..RedbOptions::default()
    };
    {
        let kv = Arc::new(RedbStore::open(dir.path(), opts()).expect("store"));
        let catalog = Catalog::load(kv).await.expect("load");
        for start in (0..n).step_by(2_000) {
            let slice = demo::generate_range(&spec, start..start + 2_000).expect("spec");
            catalog.import(slice).await.expect("import");
        }
    }

    let _profiler = dhat::Profiler::new_heap();
    let t = Table { n };
    println!("{n} restaurants within {radius_km} km; live heap by part:\n");
    println!("| part | total | per restaurant |\n|---|---|---|");

    let base = live();
    let kv = Arc::new(RedbStore::open(dir.path(), opts()).expect("store"));
    t.row("store opened", live() - base);

    let before_load = live();
    let started = std::time::Instant::now();
    let catalog = Catalog::load(kv.clone()).await.expect("load");
    let load_time = started.elapsed();
    let loaded = live() - before_load;

    // The parts, each built alone, one restaurant at a time and dropped at once (the sum of
    // the growths), so nothing but the catalog stays live: the profile's peak (t-gmax in
    // dhat-heap.json) is then the catalog with a full menu cache, by allocation site.
    let (mut records_b, mut menus_b, mut bodies_b) = (0, 0, 0);
    let mut ids = Vec::with_capacity(n);
    for start in (0..n).step_by(1_000) {
        for (r, m) in demo::generate_range(&spec, start..start + 1_000).expect("spec") {
            ids.push(r.id);
            let b = live();
            let copy = r.clone();
            records_b += live() - b;
            drop(copy);
            let b = live();
            let copy = m.clone();
            menus_b += live() - b;
            drop(copy);
            let b = live();
            let body = serde_json::to_vec(&MenuBody::new(&r, &m)).expect("json");
            bodies_b += live() - b;
            drop(body);
        }
    }
    t.row("restaurant records (`Listing`)", records_b);
    t.row(
        "search index (H3 buckets, rows, id map), store pages read",
        loaded - records_b,
    );
    t.row("**catalog after load**", loaded);
    // What the catalog no longer holds: every menu parsed, and its pre-serialized body.
    t.row("parsed menus, all (not held)", menus_b);
    t.row("menu bodies, all (not held)", bodies_b);

    // The menu cache filled to capacity (a fifth of the menus by default).
    let capacity = catalog.menu_cache_stats().capacity.min(n);
    let b = live();
    for id in ids.iter().take(capacity) {
        catalog.menu_json(*id).await.expect("read").expect("known");
    }
    let filled = live() - b;
    let stats = catalog.menu_cache_stats();
    t.row(
        &format!("menu cache, full ({} menus, bodies)", stats.entries),
        stats.bytes as i64,
    );
    t.row(
        "menu cache index, redb read cache grown by the reads",
        filled - stats.bytes as i64,
    );
    t.row("**catalog with a full menu cache**", loaded + filled);

    // For scale: redb's page cache after a full scan of the file (bounded by its size).
    let b = live();
    let mut pages = Pages::prefix(&[], PageLimits::DEFAULT);
    while pages.next(&*kv).await.expect("scan").is_some() {}
    t.row(
        "redb page cache after a full scan (bounded by cache_bytes)",
        live() - b,
    );
    println!("\nload took {load_time:?} (under the profiler, which slows allocation)");
    drop(catalog);
}
