//! Location history micro-benchmarks (issue 20), release build:
//!
//! - ping → buffer append: `History::record` (what `Dispatch::checked_ping` adds per accepted
//!   ping of a carried order) over 1,000 active deliveries, against its anchor, the bare
//!   `pathcodec::PathBuffer::push` of the same fixes;
//! - flush: one segment interval of 1,000 active deliveries (12 pings each, 5 s apart) sealed,
//!   encrypted and group-committed to a redb store (the day key made by an earlier flush),
//!   against its anchor, one transaction writing the same number of plaintext blocks of the
//!   same size; the first flush of a day (which makes the day key) is shown apart.
//!
//! Three runs each, min / median / max printed. `cargo bench -p cell --bench history`.

use cell::dispatch::GpsFix;
use cell::envelope::{Kek, KeyRing, RedbKeyStore};
use cell::history::{History, HistoryConfig};
use domain::{DeliveryId, OrderId, UnixMs};
use std::sync::Arc;
use std::time::Instant;
use store::{Kv, TxnError};

const DELIVERIES: u64 = 1_000;
const PINGS: u64 = 2_000_000;
const T0: i64 = 1_784_109_600_000;

fn fix(d: u64, i: u64) -> GpsFix {
    GpsFix {
        lat: 52.5 + (d as f64) * 1e-3 + (i as f64) * 3e-4,
        lng: 13.4 - (i as f64) * 2e-4,
        heading: 90.0 + (i % 7) as f32,
        speed: 8.0 + (i % 3) as f32,
        ts_ms: (T0 + i as i64 * 5_000) as u64,
    }
}

fn history(dir: &std::path::Path) -> History {
    let kv: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(&dir.join("data"), store::RedbOptions::default()).unwrap());
    let ks = Arc::new(RedbKeyStore::open(&dir.join("keys.redb")).unwrap());
    let ring = Arc::new(KeyRing::new(1, Kek::from_bytes(&[3; 32]), ks));
    // One transaction for the whole segment interval, as the anchor: with the default 500 a
    // flush of 1,000 segments is two commits 100 ms apart (the pacing to 10 commits a second).
    let cfg = HistoryConfig {
        flush_batch_segments: DELIVERIES as usize,
        ..HistoryConfig::default()
    };
    History::new(cfg, 1, kv, ring)
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut append, mut push, mut ratio_a) = (Vec::new(), Vec::new(), Vec::new());
    let (mut flush, mut plain, mut ratio_f, mut bytes) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let mut first = Vec::new();
    for _ in 0..3 {
        // Anchor: the codec alone, one buffer per delivery.
        let mut bufs: Vec<pathcodec::PathBuffer> = (0..DELIVERIES)
            .map(|d| pathcodec::PathBuffer::new(d, 0))
            .collect();
        let fixes: Vec<pathcodec::Fix> = (0..PINGS / DELIVERIES)
            .map(|i| {
                let f = fix(0, i);
                pathcodec::Fix {
                    t_ms: f.ts_ms as i64,
                    lat: f.lat,
                    lng: f.lng,
                    heading_deg: f.heading,
                    speed_mps: f.speed,
                }
            })
            .collect();
        let start = Instant::now();
        for f in &fixes {
            for b in bufs.iter_mut() {
                b.push(std::hint::black_box(f));
            }
        }
        let p = start.elapsed().as_nanos() as f64 / PINGS as f64;
        std::hint::black_box(&bufs);

        let dir = tempfile::tempdir().unwrap();
        let h = history(dir.path());
        let gps: Vec<GpsFix> = (0..PINGS / DELIVERIES).map(|i| fix(0, i)).collect();
        let start = Instant::now();
        for g in &gps {
            for d in 0..DELIVERIES {
                h.record(
                    DeliveryId(d),
                    OrderId(d),
                    std::hint::black_box(g),
                    UnixMs(T0),
                );
            }
        }
        let a = start.elapsed().as_nanos() as f64 / PINGS as f64;
        push.push(p);
        append.push(a);
        ratio_a.push(a / p);
        drop(h);

        // Flush: 12 pings per delivery (one 60 s segment), then one flush. The first segment
        // of the day makes the day key (a key store commit): measured apart.
        let h = history(dir.path());
        let segment = |k: u64| {
            for i in 12 * k..12 * (k + 1) {
                for d in 0..DELIVERIES {
                    h.record(DeliveryId(d + 10_000), OrderId(d), &fix(d, i), UnixMs(T0));
                }
            }
        };
        segment(0);
        let start = Instant::now();
        rt.block_on(h.flush(false, UnixMs(T0))).unwrap();
        first.push(start.elapsed().as_secs_f64() * 1e3);
        segment(1);
        let start = Instant::now();
        let s = rt.block_on(h.flush(false, UnixMs(T0))).unwrap();
        let f = start.elapsed().as_secs_f64() * 1e3;
        assert_eq!(s.segments as u64, DELIVERIES);
        bytes = s.bytes;
        // Anchor: the same number of plaintext blocks of the same size in one transaction.
        let kv = h.kv().clone();
        let block = vec![7u8; s.bytes / DELIVERIES as usize];
        let start = Instant::now();
        rt.block_on(store::transact(&*kv, move |txn| {
            let block = block.clone();
            Box::pin(async move {
                for d in 0..DELIVERIES {
                    txn.set(&store::keys::pack(&("bench", d)), &block);
                }
                Ok::<_, TxnError<()>>(())
            })
        }))
        .unwrap();
        let pl = start.elapsed().as_secs_f64() * 1e3;
        flush.push(f);
        plain.push(pl);
        ratio_f.push(f / pl);
    }
    let show = |name: &str, unit: &str, v: Vec<f64>| {
        let (lo, med, hi) = stats(v);
        println!("{name:<52} {lo:>9.2} / {med:>9.2} / {hi:>9.2} {unit} (min / median / max)");
    };
    println!(
        "{PINGS} pings over {DELIVERIES} deliveries; flush of {DELIVERIES} segments of 12 pings ({bytes} bytes sealed)"
    );
    show("History::record (ping -> buffer append)", "ns", append);
    show("anchor: PathBuffer::push", "ns", push);
    show("ratio record / push", "x", ratio_a);
    show("first flush of a day (makes the day key)", "ms", first);
    show("flush: seal + encrypt + group commit, 1 txn", "ms", flush);
    show("anchor: 1 txn of the same plaintext blocks", "ms", plain);
    show("ratio flush / plaintext txn", "x", ratio_f);
}
