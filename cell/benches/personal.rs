//! Personal data figures (issue 20), release build:
//!
//! - export of a customer with 1,000 orders (each with five status rows and a sealed address,
//!   phone and note) from a redb store, against its anchor: the same export of a customer
//!   whose 1,000 orders are legacy plaintext (the same reads, nothing to open);
//! - opening one order's sealed fields with the customer's key cached (p50, p99 of 100,000),
//!   against its anchor, parsing the order record's JSON (what every read does anyway);
//! - erasing that customer: destroying the key, then scrubbing the 1,000 orders;
//! - rotating the key-encryption key over 10,000 customer keys: the rewrap job in pages of
//!   1,000, against its anchor, reading every key of the store once (`versions_in_use`).
//!
//! Five runs each, min / median / max printed. `cargo bench -p cell --bench personal`.

use cell::envelope::{CacheLimits, Kek, Keks, KeyId, KeyRing, RedbKeyStore};
use cell::personal::{Contact, Vault};
use domain::{
    Actor, CustomerId, EventKind, HistoryEntry, Order, OrderId, OrderStatus, RestaurantId, UnixMs,
};
use std::sync::Arc;
use std::time::Instant;
use store::{Kv, TxnError};

const ORDERS: u64 = 1_000;
const RUNS: usize = 5;
const T0: i64 = 1_784_109_600_000;

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn contact(i: u64) -> Contact {
    Contact {
        formatted: format!("Musterstraße {i}, 10115 Berlin"),
        phone: Some("+4915112345678".into()),
        notes: Some("3rd floor, ring twice".into()),
    }
}

/// 1,000 orders of `customer` with five status rows each; sealed unless `legacy`.
async fn seed(kv: &dyn Kv, vault: &Vault, customer: CustomerId, legacy: bool) -> Vec<Order> {
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        let id = OrderId(customer.0 * 1_000_000 + i);
        let at = UnixMs(T0 + i as i64 * 60_000);
        let mut o = domain::testing::order(id, customer, RestaurantId(9), at);
        o.status = OrderStatus::Delivered;
        if legacy {
            o.delivery_address.formatted = contact(i).formatted.clone();
        } else {
            o.delivery_address.formatted.clear();
            o.delivery_address.sealed = Some(vault.seal(customer, id, &contact(i), at).unwrap());
        }
        orders.push(o);
    }
    for chunk in orders.chunks(100) {
        let chunk = chunk.to_vec();
        store::transact(kv, move |txn| {
            let chunk = chunk.clone();
            Box::pin(async move {
                for o in &chunk {
                    use cell::orders::keys;
                    txn.set(&keys::order(o.id), &serde_json::to_vec(o).unwrap());
                    txn.set(&keys::by_customer(o.customer_id, o.created_at.0, o.id), &[]);
                    for (seq, s) in [
                        OrderStatus::Pending,
                        OrderStatus::Confirmed,
                        OrderStatus::DriverAssigned,
                        OrderStatus::PickedUp,
                        OrderStatus::Delivered,
                    ]
                    .into_iter()
                    .enumerate()
                    {
                        let row = HistoryEntry {
                            status: s,
                            event: EventKind::OrderConfirmed,
                            at: o.created_at,
                            by: Actor::System,
                            driver_id: None,
                        };
                        txn.set(
                            &keys::history(o.id, seq as u32),
                            &serde_json::to_vec(&row).unwrap(),
                        );
                    }
                }
                Ok::<_, TxnError<()>>(())
            })
        })
        .await
        .unwrap();
    }
    orders
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn Kv> = Arc::new(
        store::RedbStore::open(&dir.path().join("data"), store::RedbOptions::default()).unwrap(),
    );
    let ks = Arc::new(RedbKeyStore::open(&dir.path().join("keys.redb")).unwrap());
    let vault = Vault::new(Arc::new(KeyRing::new(
        1,
        Kek::from_bytes(&[3; 32]),
        ks.clone(),
    )));
    let (sealed_c, legacy_c) = (CustomerId(1), CustomerId(2));
    let now = UnixMs(T0);
    let orders = rt.block_on(seed(&*kv, &vault, sealed_c, false));
    rt.block_on(seed(&*kv, &vault, legacy_c, true));

    let (mut export, mut anchor, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        let doc = rt
            .block_on(cell::personal::export::export(&*kv, &vault, sealed_c, now))
            .unwrap();
        let e = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(doc.orders.len(), ORDERS as usize);
        assert!(
            doc.orders[0]
                .delivery_address
                .as_ref()
                .unwrap()
                .phone
                .is_some()
        );
        let t = Instant::now();
        let doc = rt
            .block_on(cell::personal::export::export(&*kv, &vault, legacy_c, now))
            .unwrap();
        let a = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(doc.orders.len(), ORDERS as usize);
        export.push(e);
        anchor.push(a);
        ratio.push(e / a);
    }
    let p = |name: &str, v: Vec<f64>, unit: &str| {
        let (lo, mid, hi) = stats(v);
        println!("{name:<58} min {lo:>9.3} median {mid:>9.3} max {hi:>9.3} {unit}");
    };
    println!("export of a customer with {ORDERS} orders (5 status rows each), redb, {RUNS} runs:");
    p("  export, sealed address/phone/notes", export, "ms");
    p("  anchor: export, legacy plaintext orders", anchor, "ms");
    p("  ratio export / anchor", ratio, "x");

    // Opening one order's three sealed fields with the key cached.
    let o = &orders[0];
    let record = serde_json::to_vec(o).unwrap();
    let n = 100_000;
    let (mut p50s, mut p99s, mut a50s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let mut open = Vec::with_capacity(n);
        let mut parse = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let c = vault
                .open(o.customer_id, o.id, &o.delivery_address, now)
                .unwrap();
            open.push(t.elapsed().as_nanos() as f64);
            std::hint::black_box(&c);
            let t = Instant::now();
            let back: Order = serde_json::from_slice(&record).unwrap();
            parse.push(t.elapsed().as_nanos() as f64);
            std::hint::black_box(&back);
        }
        open.sort_by(f64::total_cmp);
        parse.sort_by(f64::total_cmp);
        p50s.push(open[n / 2] / 1e3);
        p99s.push(open[n * 99 / 100] / 1e3);
        a50s.push(parse[n / 2] / 1e3);
    }
    println!("open one order's 3 sealed fields, key cached, {n} per run:");
    p("  p50", p50s, "µs");
    p("  p99", p99s, "µs");
    p(
        "  anchor: p50 of parsing the order record's JSON",
        a50s,
        "µs",
    );

    // Erase (once: it is not repeatable on the same customer).
    let t = Instant::now();
    vault.destroy_key(sealed_c).unwrap();
    let key_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = Instant::now();
    let r = rt
        .block_on(cell::personal::erase::erase(&*kv, &vault, None, sealed_c))
        .unwrap();
    let all_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(r.orders_scrubbed, ORDERS as usize);
    println!(
        "erase of that customer: key destroyed in {key_ms:.3} ms; the whole erase (key, profile, \
         {ORDERS} orders scrubbed) {all_ms:.1} ms"
    );

    // Rotation: 10,000 customer keys made under version 0 (one key-store commit each, as in
    // service), then rewrapped under version 1, once per run on a fresh target version.
    const KEYS: u64 = 10_000;
    let t = Instant::now();
    for c in 0..KEYS {
        vault
            .keys()
            .key_at(KeyId::Customer(1_000 + c), true, now)
            .unwrap();
    }
    let made_s = t.elapsed().as_secs_f64();
    let (mut rewrap, mut scan, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..RUNS as u32 {
        let mut earlier: Vec<(u32, Kek)> = vec![(0, Kek::from_bytes(&[3; 32]))];
        earlier.extend((1..=run).map(|v| (v, Kek::from_bytes(&[4 + v as u8; 32]))));
        let current = (run + 1, Kek::from_bytes(&[5 + run as u8; 32]));
        let ring = KeyRing::with_keks(
            1,
            Keks::rotated(current, earlier),
            ks.clone(),
            CacheLimits::default(),
        );
        let t = Instant::now();
        let mut n = 0;
        loop {
            let p = ring.rewrap_batch(1_000).unwrap();
            n += p.rewrapped;
            if p.done {
                break;
            }
        }
        let r = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let in_use = ring.versions_in_use().unwrap();
        let a = t.elapsed().as_secs_f64();
        assert_eq!(in_use.len(), 1, "every key on the new version: {in_use:?}");
        assert!(n as u64 >= KEYS);
        rewrap.push(n as f64 / r);
        scan.push(n as f64 / a);
        ratio.push(r / a);
    }
    println!(
        "rotation over {KEYS} customer keys (+ the bench's other keys), pages of 1000; making \
         them took {made_s:.1} s (one commit each):"
    );
    p("  rewrap", rewrap, "keys/s");
    p("  anchor: reading every key once", scan, "keys/s");
    p("  ratio rewrap time / read time", ratio, "x");
}
