//! Measures search and menu lookups on a demo city, in process (no HTTP):
//! `cargo run --release -p catalog --example catalog_bench -- [restaurants] [radius_m]
//! [city_radius_km]` (defaults 5,000, 5,000 m, 12 km).

use catalog::demo::{self, DemoSpec};
use catalog::{Catalog, PricingConfig, SearchQuery};
use domain::UnixMs;
use rand::{Rng, SeedableRng};
use std::sync::Arc;
use std::time::Instant;

fn pct(sorted: &[u128], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let radius_m: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let city_km: f64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(12.0);
    let spec = DemoSpec {
        restaurants: n,
        radius_km: city_km,
        ..DemoSpec::berlin(42)
    };
    let t = Instant::now();
    let city = demo::generate(&spec).expect("demo spec");
    println!("generated {n} restaurants in {:?}", t.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = Arc::new(store::RedbStore::open(dir.path(), Default::default()).expect("store"));
    let catalog = Catalog::load(kv.clone()).await.expect("load");
    let t = Instant::now();
    catalog.import(city.clone()).await.expect("import");
    println!("imported in {:?}", t.elapsed());
    drop(catalog);
    let t = Instant::now();
    let catalog = Catalog::load(kv).await.expect("load");
    println!("loaded {} in {:?}", catalog.len(), t.elapsed());
    let body_bytes: usize = city
        .iter()
        .map(|(r, m)| serde_json::to_vec(&catalog::MenuBody::new(r, m)).map_or(0, |b| b.len()))
        .sum();
    println!(
        "menu bodies (all, not held): {:.1} MB",
        body_bytes as f64 / 1e6
    );

    let cfg = PricingConfig::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    // 20:00 Berlin on a Friday: most restaurants open.
    let now = UnixMs(1_784_311_200_000);
    let mut lat_us = Vec::new();
    let mut found = 0usize;
    let iters = 20_000;
    let t = Instant::now();
    for _ in 0..iters {
        let q = SearchQuery {
            lat: 52.52 + rng.random_range(-0.08..0.08),
            lng: 13.405 + rng.random_range(-0.12..0.12),
            radius_m,
            cuisine: None,
            page: 1,
            page_size: 20,
        };
        let s = Instant::now();
        let page = catalog.search(&q, now, &cfg).expect("query");
        lat_us.push(s.elapsed().as_nanos());
        found += page.total;
    }
    let total = t.elapsed();
    lat_us.sort_unstable();
    println!(
        "search r={radius_m} m: {iters} queries, {:.0}/s on one core, mean matches {:.0}, p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        iters as f64 / total.as_secs_f64(),
        found as f64 / iters as f64,
        pct(&lat_us, 0.5),
        pct(&lat_us, 0.99),
        pct(&lat_us, 1.0),
    );
    // Menus the cache can hold: the first pass misses (one store read each), the second hits.
    let hot = catalog.menu_cache_stats().capacity.min(city.len());
    let ids: Vec<_> = city.iter().take(hot).map(|(r, _)| r.id).collect();
    for pass in ["miss", "hit"] {
        let mut lat_ns = Vec::new();
        for id in &ids {
            let s = Instant::now();
            let b = catalog.menu_json(*id).await.expect("menu").expect("known");
            std::hint::black_box(b);
            lat_ns.push(s.elapsed().as_nanos());
        }
        lat_ns.sort_unstable();
        println!(
            "menu_json {pass}: {} reads, p50 {:.2} µs, p99 {:.2} µs",
            ids.len(),
            pct(&lat_ns, 0.5),
            pct(&lat_ns, 0.99)
        );
    }
    println!("{:?}", catalog.menu_cache_stats());
}
