//! `geobench`: geostore side by side with a real Redis (GEOADD / GEOSEARCH) and with the obvious
//! in-process designs, on one workload: a fleet spread uniformly over a 30 × 30 km city, pings
//! that move each driver a few metres, 60 % of drivers available.
//!
//! `cargo run --release -p geostore --bin geobench [-- --quick] [--drivers 100000,1000000]
//! [--mixed-secs 5] [--resolutions] [--no-redis] [--no-baselines]`

mod baselines;
mod grid_exact;
mod in_process;
mod redis;
mod report;
mod vs_redis;

use baselines::{Baseline, GridLock, Proj, RTreeLock};
use geostore::{Config, DriverId, DriverState, Filter, GeoStore};
use grid_exact::GridExact;
use in_process::{baseline_side, geo_side};
use report::{Table, resolutions};
use std::sync::Barrier;
use std::time::{Duration, Instant};
use vs_redis::redis_side;

pub const LAT0: f64 = 52.37;
pub const LNG0: f64 = 4.89;
pub const CITY_M: f64 = 30_000.0;
const RADIUS_M: f64 = 5_000.0;
const K: usize = 20;
/// Timestamps are irrelevant to throughput; a long staleness keeps every driver in answers.
pub const NOW: u64 = 1_800_000_000_000;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn span() -> (f64, f64) {
    let dlat = CITY_M / 111_195.0;
    (dlat, dlat / LAT0.to_radians().cos())
}

#[derive(Clone, Copy)]
pub struct Ping {
    pub id: u32,
    pub lat: f64,
    pub lng: f64,
    pub ts: u64,
}

pub struct Work {
    pub fleet: Vec<(f64, f64)>,
    pub avail: Vec<bool>,
    /// One stream for the 1-writer run, then two (drivers split by parity) for 2 writers.
    pub one: Vec<Ping>,
    pub two: [Vec<Ping>; 2],
    pub queries: Vec<(f64, f64)>,
}

/// Random walk: each ping moves a random driver of the stream's share by up to ~15 m.
fn stream(
    pos: &mut [(f64, f64)],
    rng: &mut Rng,
    n: usize,
    part: Option<u32>,
    ts: &mut u64,
) -> Vec<Ping> {
    let (slat, slng) = span();
    let step = 15.0 / 111_195.0;
    (0..n)
        .map(|_| {
            // With a part, only ids of that parity: each writer owns its drivers, as a driver's
            // pings arrive over one connection.
            let id = match part {
                None => (rng.next() % pos.len() as u64) as u32,
                Some(p) => (rng.next() % (pos.len() as u64 / 2)) as u32 * 2 + p,
            };
            let (la, lo) = &mut pos[id as usize];
            *la = (*la + (rng.f() - 0.5) * 2.0 * step).clamp(LAT0 - slat / 2.0, LAT0 + slat / 2.0);
            *lo = (*lo + (rng.f() - 0.5) * 2.0 * step * 1.64)
                .clamp(LNG0 - slng / 2.0, LNG0 + slng / 2.0);
            *ts += 1;
            Ping {
                id,
                lat: *la,
                lng: *lo,
                ts: *ts,
            }
        })
        .collect()
}

pub fn workload(n: usize, pings: usize, nq: usize) -> Work {
    let mut rng = Rng(42 + n as u64);
    let (slat, slng) = span();
    let fleet: Vec<(f64, f64)> = (0..n)
        .map(|_| (LAT0 + (rng.f() - 0.5) * slat, LNG0 + (rng.f() - 0.5) * slng))
        .collect();
    let avail = (0..n).map(|_| rng.f() < 0.6).collect();
    let mut pos = fleet.clone();
    let mut ts = NOW;
    let one = stream(&mut pos, &mut rng, pings, None, &mut ts);
    let two = [
        stream(&mut pos, &mut rng, pings / 2, Some(0), &mut ts),
        stream(&mut pos, &mut rng, pings / 2, Some(1), &mut ts),
    ];
    // Queries anywhere in the city (so some 5 km discs are clipped by its edge, as in reality).
    let queries = (0..nq)
        .map(|_| (LAT0 + (rng.f() - 0.5) * slat, LNG0 + (rng.f() - 0.5) * slng))
        .collect();
    Work {
        fleet,
        avail,
        one,
        two,
        queries,
    }
}

pub fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0
}

/// Runs `f` over each stream in its own thread: all threads start on a barrier, elapsed is until the last ends.
pub fn timed<T: Sync>(streams: &[&[T]], f: impl Fn(usize, &[T]) + Sync) -> f64 {
    let b = Barrier::new(streams.len() + 1);
    let total: usize = streams.iter().map(|s| s.len()).sum();
    let mut t = Instant::now();
    std::thread::scope(|sc| {
        for (i, s) in streams.iter().enumerate() {
            let (b, f) = (&b, &f);
            sc.spawn(move || {
                b.wait();
                f(i, s);
            });
        }
        b.wait();
        t = Instant::now();
    });
    total as f64 / t.elapsed().as_secs_f64()
}

pub struct Opts {
    quick: bool,
    pub drivers: Vec<usize>,
    mixed_secs: u64,
    redis: bool,
    baselines: bool,
    resolutions: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        quick: false,
        drivers: vec![100_000, 1_000_000],
        mixed_secs: 5,
        redis: true,
        baselines: true,
        resolutions: false,
    };
    let mut a = std::env::args().skip(1);
    while let Some(x) = a.next() {
        match x.as_str() {
            "--quick" => {
                o.quick = true;
                o.mixed_secs = 2;
            }
            "--drivers" => {
                o.drivers = a
                    .next()
                    .expect("--drivers N[,N]")
                    .split(',')
                    .map(|s| s.parse().expect("number"))
                    .collect()
            }
            "--mixed-secs" => {
                o.mixed_secs = a
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--mixed-secs S")
            }
            "--no-redis" => o.redis = false,
            "--no-baselines" => o.baselines = false,
            "--resolutions" => o.resolutions = true,
            _ => panic!("unknown argument {x}; see the doc comment of geobench"),
        }
    }
    o
}

pub fn load(res: h3o::Resolution, w: &Work) -> GeoStore {
    let st = GeoStore::new(Config {
        resolution: res,
        staleness: Duration::from_secs(86_400),
        expected_drivers: w.fleet.len(),
    });
    for (i, &(la, lo)) in w.fleet.iter().enumerate() {
        st.upsert(DriverId(i as u64), la, lo, 0.0, 8.0, NOW)
            .unwrap();
        if !w.avail[i] {
            st.set_state(
                DriverId(i as u64),
                if i % 2 == 0 {
                    DriverState::Offered
                } else {
                    DriverState::OnDelivery
                },
            )
            .unwrap();
        }
    }
    st
}

pub fn geo_upserts(st: &GeoStore, streams: &[&[Ping]]) -> f64 {
    timed(streams, |_, s| {
        for p in s {
            st.upsert(DriverId(u64::from(p.id)), p.lat, p.lng, 90.0, 8.0, p.ts)
                .unwrap();
        }
    })
}

/// Thread CPU time in ns: separates our cost from time the scheduler gave to other processes
/// (this machine is shared), at the price of two system calls per measurement.
fn cpu_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-pointer; CLOCK_THREAD_CPUTIME_ID is always supported on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Per-query wall-clock and on-CPU latencies (ns) of nearest(k=20, r=5 km, available).
pub fn geo_latencies(st: &GeoStore, qs: &[(f64, f64)]) -> (Vec<u64>, Vec<u64>, usize) {
    let mut found = 0;
    let mut cpu = Vec::with_capacity(qs.len());
    let lat = qs
        .iter()
        .map(|&(la, lo)| {
            let c = cpu_ns();
            let t = Instant::now();
            found += st
                .nearest(la, lo, RADIUS_M, K, Filter::available(NOW))
                .unwrap()
                .len();
            let e = t.elapsed().as_nanos() as u64;
            cpu.push(cpu_ns() - c);
            e
        })
        .collect();
    (lat, cpu, found)
}

fn main() {
    let o = opts();
    let pings = if o.quick { 400_000 } else { 2_000_000 };
    let nq = if o.quick { 20_000 } else { 100_000 };
    println!(
        "geobench: city 30×30 km, pings move ≤ 15 m, 60 % available, nearest k={K} r={RADIUS_M} m"
    );
    println!(
        "machine: {} cores available; other load on the box is not controlled",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if o.resolutions {
        resolutions(&o, pings, nq);
        return;
    }
    let server = if o.redis {
        let s = redis::Server::start().expect("start redis-server");
        println!(
            "redis-server {} started on 127.0.0.1:{} (pid {}), --save \"\" --appendonly no",
            s.version,
            s.port,
            s.pid()
        );
        Some(s)
    } else {
        None
    };
    let mut table = Table(Vec::new());
    for &n in &o.drivers {
        println!("\n== {n} drivers: generating workload");
        let w = workload(n, pings, nq);
        let label = if n >= 1_000_000 {
            format!("{}M", n / 1_000_000)
        } else {
            format!("{}K", n / 1000)
        };
        let t = Instant::now();
        let st = load(h3o::Resolution::Nine, &w);
        let mem = st.memory_bytes() as f64 / n as f64;
        println!(
            "  geostore loaded in {:.2} s; memory {mem:.1} B/driver ({:.1} MiB)",
            t.elapsed().as_secs_f64(),
            st.memory_bytes() as f64 / 1048576.0
        );
        let g = geo_side(&st, &w, o.mixed_secs);
        let f = &g.f;
        table.rows(&label, "B", &[("memory per driver", mem, "target", 128.0)]);
        table.rows(
            &label,
            "us",
            &[
                ("nearest p99 wall clock", f.p99, "target", 20.0),
                ("nearest p99 on-CPU", g.cpu_p99, "target", 20.0),
            ],
        );
        table.rows(
            &label,
            "/s",
            &[
                ("upsert, 1 writer", f.up[0], "target", 5e6),
                ("upsert batch 64, 1 writer", f.batch[0], "target", 5e6),
            ],
        );
        if let Some(s) = &server {
            let r = redis_side(s.port, &w, o.quick);
            let (pipe, one) = ("Redis GEOADD pipelined 64", "Redis GEOADD unpipelined");
            let gs = "Redis GEOSEARCH";
            #[rustfmt::skip]
            table.rows(&label, "/s", &[
                ("upsert batch 64, 1 writer", f.batch[0], pipe, r.add_pipe[0]),
                ("upsert batch 64, 2 writers", f.batch[1], pipe, r.add_pipe[1]),
                ("upsert, 1 writer", f.up[0], pipe, r.add_pipe[0]),
                ("upsert, 2 writers", f.up[1], pipe, r.add_pipe[1]),
                ("upsert, 1 writer", f.up[0], one, r.add_one[0]),
                ("upsert, 2 writers", f.up[1], one, r.add_one[1]),
                ("nearest q/s, 1 thread", g.q1, "GEOSEARCH unpipelined", r.q_one),
                ("nearest q/s, 2 threads", g.q2, "GEOSEARCH pipelined 64, 2 conns", r.q_pipe),
            ]);
            #[rustfmt::skip]
            table.rows(&label, "us", &[
                ("nearest p50", f.p50, gs, r.p50),
                ("nearest p99", f.p99, gs, r.p99),
                ("mixed 100K upserts/s: query p99", f.mixed_p99, gs, r.mixed_p99),
            ]);
        }
        if o.baselines {
            let p = Proj::new(LAT0, LNG0);
            let t = Instant::now();
            let bs: Vec<Box<dyn Baseline>> = vec![
                Box::new(RTreeLock::new(p, &w.fleet, w.avail.clone())),
                Box::new(GridLock::new(p, CITY_M, 250.0, &w.fleet, w.avail.clone())),
                Box::new(GridExact::new(p, CITY_M, 250.0, &w.fleet, &w.avail)),
            ];
            println!("  baselines built in {:.1} s", t.elapsed().as_secs_f64());
            for b in &bs {
                let x = baseline_side(b.as_ref(), &w, nq, o.mixed_secs);
                let n = b.name();
                #[rustfmt::skip]
                table.rows(&label, "/s", &[
                    ("upsert, 1 writer", f.up[0], n, x.up[0]),
                    ("upsert, 2 writers", f.up[1], n, x.up[1]),
                    ("upsert batch 64, 1 writer", f.batch[0], n, x.batch[0]),
                    ("upsert batch 64, 2 writers", f.batch[1], n, x.batch[1]),
                    ("upserts/s while 1 thread queries", f.contended, n, x.contended),
                ]);
                #[rustfmt::skip]
                table.rows(&label, "us", &[
                    ("nearest p50", f.p50, n, x.p50),
                    ("nearest p99", f.p99, n, x.p99),
                    ("mixed 100K upserts/s: query p99", f.mixed_p99, n, x.mixed_p99),
                ]);
            }
        }
    }
    table.print();
    drop(server);
}
