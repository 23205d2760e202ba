//! Live heap of a loaded catalog, broken down by structure, with a counting allocator:
//! `cargo run --release -p catalog --example heap_breakdown -- [restaurants]` (default 12,000).
//!
//! Each figure is the growth of live heap bytes (requested sizes, without the allocator's own
//! overhead) while one structure is built on its own, so the parts add up to about the total.

use catalog::demo::{self, DemoSpec};
use catalog::{Catalog, MenuBody};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};

/// Counts live bytes: allocated minus freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn mb(b: isize) -> String {
    format!("{:>8.1} MB", b as f64 / 1e6)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(12_000);
    let spec = DemoSpec {
        restaurants: n,
        ..DemoSpec::berlin(42)
    };
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let kv = Arc::new(store::RedbStore::open(dir.path(), Default::default()).expect("store"));
        let catalog = Catalog::load(kv).await.expect("load");
        catalog
            .import(demo::generate(&spec).expect("spec"))
            .await
            .expect("import");
    }
    // The store's page cache after reading everything once (what a full load leaves behind).
    let base = live();
    {
        let kv = store::RedbStore::open(dir.path(), Default::default()).expect("store");
        let mut pages = store::Pages::prefix(&[], store::PageLimits::DEFAULT);
        while pages.next(&kv).await.expect("scan").is_some() {}
        println!("store cache, full scan {}", mb(live() - base));
    }
    let base = live();
    let kv = Arc::new(store::RedbStore::open(dir.path(), Default::default()).expect("store"));
    let opened = live();
    let t = std::time::Instant::now();
    let catalog = Catalog::load(kv.clone()).await.expect("load");
    let elapsed = t.elapsed();
    let loaded = live();
    println!("{n} restaurants, load {elapsed:?}");
    println!("store opened           {}", mb(opened - base));
    println!("catalog load (total)   {}", mb(loaded - opened));

    // The same structures built alone, to attribute the total.
    let city = demo::generate(&spec).expect("spec");
    let (rests, menus): (Vec<_>, Vec<_>) = city.into_iter().unzip();
    let before = live();
    drop(menus);
    let menus_b = before - live();
    let before = live();
    let rests_keep = rests.clone();
    let rests_b = live() - before;
    let menus = demo::generate(&spec).expect("spec");
    let before = live();
    let bodies: Vec<Vec<u8>> = menus
        .iter()
        .map(|(r, m)| serde_json::to_vec(&MenuBody::new(r, m)).expect("json"))
        .collect();
    let bodies_b = live() - before;
    println!("  restaurant records   {}", mb(rests_b));
    println!("  parsed menus         {}", mb(menus_b));
    println!("  menu bodies (JSON)   {}", mb(bodies_b));
    println!(
        "  rest (index, store cache, buffers) {}",
        mb(loaded - opened - rests_b - menus_b - bodies_b)
    );
    println!(
        "per restaurant (load total): {:.1} KB",
        (loaded - opened) as f64 / n as f64 / 1e3
    );
    drop((bodies, menus, rests, rests_keep, catalog));
}
