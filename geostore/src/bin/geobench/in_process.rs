//! geostore and the in-process baselines measured on one workload: single and batched upserts,
//! query latency and throughput, the mixed run, writers while a thread queries.

use super::*;

/// Pings in geostore's batch form, with timestamps moved past every earlier run's so that
/// replaying a stream updates rather than being ignored as older.
fn as_batch(s: &[Ping], shift: u64) -> Vec<geostore::Ping> {
    s.iter()
        .map(|p| geostore::Ping {
            driver: DriverId(u64::from(p.id)),
            lat: p.lat,
            lng: p.lng,
            heading_deg: 90.0,
            speed_mps: 8.0,
            ts_ms: p.ts + shift,
        })
        .collect()
}

/// Batch size for the batched runs: the depth Redis is pipelined at.
const BATCH: usize = 64;

/// What geostore and the in-process baselines are both measured on.
pub(crate) struct Fig {
    pub(crate) up: [f64; 2],
    pub(crate) batch: [f64; 2],
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) mixed_p99: f64,
    pub(crate) contended: f64,
}

pub(crate) struct GeoFig {
    pub(crate) f: Fig,
    pub(crate) cpu_p99: f64,
    pub(crate) q1: f64,
    pub(crate) q2: f64,
}

/// geostore on one workload: single and batched upserts (1 and 2 writers), query latency and
/// throughput, the mixed run, and writer throughput while a thread queries.
pub(crate) fn geo_side(st: &GeoStore, w: &Work, mixed_secs: u64) -> GeoFig {
    let up = [
        geo_upserts(st, &[&w.one]),
        geo_upserts(st, &[&w.two[0], &w.two[1]]),
    ];
    // Single-call runs used timestamps up to NOW + 2·pings; the mixed runs start at NOW + 1e7.
    let shift = 2 * w.one.len() as u64;
    let b1 = as_batch(&w.one, shift);
    let b2 = [as_batch(&w.two[0], shift), as_batch(&w.two[1], shift)];
    let batch = [geo_batches(st, &[&b1]), geo_batches(st, &[&b2[0], &b2[1]])];
    let ignored = st.stats().ignored_older_total;
    assert_eq!(ignored, 0, "a timed run replayed older pings");
    println!(
        "  geostore upserts: 1 writer {:.2}M/s, 2 writers {:.2}M/s; batches of {BATCH}: {:.2}M/s, {:.2}M/s",
        up[0] / 1e6,
        up[1] / 1e6,
        batch[0] / 1e6,
        batch[1] / 1e6
    );
    let (mut lat, mut cpu, found) = geo_latencies(st, &w.queries);
    let q1 = w.queries.len() as f64 / (lat.iter().sum::<u64>() as f64 / 1e9);
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    let (cp50, cpu_p99) = (pct(&mut cpu, 0.5), pct(&mut cpu, 0.99));
    println!(
        "  geostore nearest on-CPU time: p50 {cp50:.1} µs p99 {cpu_p99:.1} µs (includes ~1 µs of clock syscalls)"
    );
    let half = w.queries.len() / 2;
    let q2 = timed(&[&w.queries[..half], &w.queries[half..]], |_, qs| {
        for &(la, lo) in qs {
            std::hint::black_box(geo_query(st, la, lo));
        }
    });
    println!(
        "  geostore nearest: p50 {p50:.1} µs p99 {p99:.1} µs, {:.0}K q/s (1 thread), {:.0}K q/s (2 threads), avg {:.1} hits",
        q1 / 1e3,
        q2 / 1e3,
        found as f64 / w.queries.len() as f64
    );
    let up_fn = |p: &Ping, ts| {
        st.upsert(DriverId(u64::from(p.id)), p.lat, p.lng, 0.0, 8.0, ts)
            .unwrap();
    };
    let q_fn = |la, lo| {
        std::hint::black_box(geo_query(st, la, lo));
    };
    let (mp50, mixed_p99, rate) = mixed(w, mixed_secs, true, up_fn, q_fn);
    println!(
        "  geostore mixed: {rate:.0} upserts/s achieved, query p50 {mp50:.1} µs p99 {mixed_p99:.1} µs"
    );
    let (_, cp99, contended) = mixed(w, mixed_secs, false, up_fn, q_fn);
    println!(
        "  geostore unpaced writer with a querying thread: {:.2}M upserts/s, query p99 {cp99:.1} µs",
        contended / 1e6
    );
    let stats = st.stats();
    println!(
        "  stats: {} upserts, {} moves, {} fast-path, {} ignored as older, {} query retries",
        stats.upserts_total,
        stats.bucket_moves_total,
        stats.fast_path_total,
        stats.ignored_older_total,
        stats.query_retries_total
    );
    GeoFig {
        f: Fig {
            up,
            batch,
            p50,
            p99,
            mixed_p99,
            contended,
        },
        cpu_p99,
        q1,
        q2,
    }
}

fn geo_query(st: &GeoStore, la: f64, lo: f64) -> usize {
    st.nearest(la, lo, RADIUS_M, K, Filter::available(NOW))
        .unwrap()
        .len()
}

pub fn geo_batches(st: &GeoStore, streams: &[&[geostore::Ping]]) -> f64 {
    timed(streams, |_, s| {
        for c in s.chunks(BATCH) {
            for r in st.upsert_batch(c) {
                r.unwrap();
            }
        }
    })
}

/// The same runs for an in-process baseline.
pub(crate) fn baseline_side(b: &dyn Baseline, w: &Work, nq: usize, mixed_secs: u64) -> Fig {
    let single = |streams: &[&[Ping]]| timed(streams, |_, s| s.iter().for_each(|p| b.upsert(p, 0)));
    // As for geostore: the batched runs replay the streams with newer timestamps.
    let shift = 2 * w.one.len() as u64;
    let batched = |streams: &[&[Ping]]| {
        timed(streams, |_, s| {
            s.chunks(BATCH).for_each(|c| b.upsert_batch(c, shift))
        })
    };
    let two = [&w.two[0][..], &w.two[1][..]];
    let up = [single(&[&w.one]), single(&two)];
    let batch = [batched(&[&w.one]), batched(&two)];
    let mut lat: Vec<u64> = w.queries[..nq / 4]
        .iter()
        .map(|&(la, lo)| {
            let t = Instant::now();
            std::hint::black_box(b.nearest(la, lo, RADIUS_M, K));
            t.elapsed().as_nanos() as u64
        })
        .collect();
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    let up_fn = |p: &Ping, ts| b.upsert(&Ping { ts, ..*p }, 0);
    let q_fn = |la, lo| {
        std::hint::black_box(b.nearest(la, lo, RADIUS_M, K));
    };
    let (_, mixed_p99, _) = mixed(w, mixed_secs, true, up_fn, q_fn);
    let (_, cp99, contended) = mixed(w, mixed_secs, false, up_fn, q_fn);
    println!(
        "  {}: upserts {:.2}M/s (1), {:.2}M/s (2); batches {:.2}M/s (1), {:.2}M/s (2); nearest p50 {p50:.1} µs p99 {p99:.1} µs; mixed query p99 {mixed_p99:.1} µs; unpaced writer with a querying thread {:.2}M/s (query p99 {cp99:.1} µs)",
        b.name(),
        up[0] / 1e6,
        up[1] / 1e6,
        batch[0] / 1e6,
        batch[1] / 1e6,
        contended / 1e6
    );
    Fig {
        up,
        batch,
        p50,
        p99,
        mixed_p99,
        contended,
    }
}

static MIXED_TS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(NOW + 10_000_000);

/// A writer while one thread queries back to back: (query p50, p99, achieved upsert rate).
/// `paced`: 100K upserts/s (the mixed workload); otherwise as fast as it can (what writers get
/// while queries run). Generic so geostore and the locked baselines run the very same loop.
fn mixed(
    w: &Work,
    secs: u64,
    paced: bool,
    upsert: impl Fn(&Ping, u64) + Sync,
    query: impl Fn(f64, f64),
) -> (f64, f64, f64) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut lat = Vec::new();
    let mut done = 0usize;
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let mut i = 0usize;
            // Each run's timestamps lie above every earlier run's, so no ping is ignored.
            let mut ts = MIXED_TS.fetch_add(1_000_000_000, std::sync::atomic::Ordering::Relaxed);
            while t0.elapsed() < Duration::from_secs(secs) {
                // Paced: 100 pings per millisecond against the wall clock; else 1 024 at a time.
                let due = if paced {
                    (t0.elapsed().as_micros() as usize / 1000 + 1) * 100
                } else {
                    i + 1024
                };
                while i < due {
                    ts += 1;
                    upsert(&w.one[i % w.one.len()], ts);
                    i += 1;
                }
                if paced {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            i
        });
        let mut q = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (la, lo) = w.queries[q % w.queries.len()];
            let t = Instant::now();
            query(la, lo);
            lat.push(t.elapsed().as_nanos() as u64);
            q += 1;
        }
        done = writer.join().unwrap();
    });
    (
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        done as f64 / t0.elapsed().as_secs_f64(),
    )
}
