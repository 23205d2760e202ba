//! `geobench`: geostore side by side with a real Redis (GEOADD / GEOSEARCH) and with the obvious
//! in-process designs, on one workload: a fleet spread uniformly over a 30 × 30 km city, pings
//! that move each driver a few metres, 60 % of drivers available.
//!
//! `cargo run --release -p geostore --bin geobench [-- --quick] [--drivers 100000,1000000]
//! [--mixed-secs 5] [--resolutions] [--no-redis] [--no-baselines]`

mod baselines;
mod redis;

use baselines::{Baseline, GridLock, Proj, RTreeLock};
use geostore::{Config, DriverId, DriverState, Filter, GeoStore};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const LAT0: f64 = 52.37;
const LNG0: f64 = 4.89;
const CITY_M: f64 = 30_000.0;
const RADIUS_M: f64 = 5_000.0;
const K: usize = 20;
/// Timestamps are irrelevant to throughput; a long staleness keeps every driver in answers.
const NOW: u64 = 1_800_000_000_000;

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
struct Ping {
    id: u32,
    lat: f64,
    lng: f64,
    ts: u64,
}

struct Work {
    fleet: Vec<(f64, f64)>,
    avail: Vec<bool>,
    /// One stream for the 1-writer run, then two (drivers split by parity) for 2 writers.
    one: Vec<Ping>,
    two: [Vec<Ping>; 2],
    queries: Vec<(f64, f64)>,
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

fn workload(n: usize, pings: usize, nq: usize) -> Work {
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

fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)] as f64 / 1000.0
}

/// Runs `f` over each stream in its own thread: all threads start on a barrier, elapsed is until the last ends.
fn timed<T: Sync>(streams: &[&[T]], f: impl Fn(usize, &[T]) + Sync) -> f64 {
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

struct Row {
    what: String,
    geo: String,
    other: String,
    other_val: String,
    ratio: String,
}

struct Table(Vec<Row>);
impl Table {
    fn add(
        &mut self,
        what: &str,
        geo: f64,
        other: &str,
        val: f64,
        unit: &str,
        higher_better: bool,
    ) {
        let ratio = if higher_better { geo / val } else { val / geo };
        let row = Row {
            what: what.to_string(),
            geo: fmt(geo, unit),
            other: other.to_string(),
            other_val: fmt(val, unit),
            ratio: format!("{ratio:.1}×"),
        };
        println!(
            "  {:<44} geostore {:>12}  {:<26} {:>12}  → {}",
            row.what, row.geo, row.other, row.other_val, row.ratio
        );
        self.0.push(row);
    }
    fn print(&self) {
        println!("\n| workload | geostore | compared with | its figure | geostore advantage |");
        println!("|---|---:|---|---:|---:|");
        for r in &self.0 {
            println!(
                "| {} | {} | {} | {} | {} |",
                r.what, r.geo, r.other, r.other_val, r.ratio
            );
        }
    }
}

fn fmt(v: f64, unit: &str) -> String {
    match unit {
        "/s" if v >= 1e6 => format!("{:.2}M/s", v / 1e6),
        "/s" => format!("{:.0}K/s", v / 1e3),
        "us" => format!("{v:.1} µs"),
        _ => format!("{v:.1} {unit}"),
    }
}

struct Opts {
    quick: bool,
    drivers: Vec<usize>,
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

fn load(res: h3o::Resolution, w: &Work) -> GeoStore {
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

fn geo_upserts(st: &GeoStore, streams: &[&[Ping]]) -> f64 {
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
fn geo_latencies(st: &GeoStore, qs: &[(f64, f64)]) -> (Vec<u64>, Vec<u64>, usize) {
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
        let g1 = geo_upserts(&st, &[&w.one]);
        let g2 = geo_upserts(&st, &[&w.two[0], &w.two[1]]);
        println!(
            "  geostore upserts: 1 writer {:.2}M/s, 2 writers {:.2}M/s",
            g1 / 1e6,
            g2 / 1e6
        );
        let (mut lat, mut cpu, found) = geo_latencies(&st, &w.queries);
        let gq1 = w.queries.len() as f64 / (lat.iter().sum::<u64>() as f64 / 1e9);
        let (gp50, gp99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        let (cp50, cp99) = (pct(&mut cpu, 0.5), pct(&mut cpu, 0.99));
        println!(
            "  geostore nearest on-CPU time: p50 {cp50:.1} µs p99 {cp99:.1} µs (includes ~1 µs of clock syscalls)"
        );
        let half = w.queries.len() / 2;
        let gq2 = timed(&[&w.queries[..half], &w.queries[half..]], |_, qs| {
            for &(la, lo) in qs {
                std::hint::black_box(
                    st.nearest(la, lo, RADIUS_M, K, Filter::available(NOW))
                        .unwrap(),
                );
            }
        });
        println!(
            "  geostore nearest: p50 {gp50:.1} µs p99 {gp99:.1} µs, {:.0}K q/s (1 thread), {:.0}K q/s (2 threads), avg {:.1} hits",
            gq1 / 1e3,
            gq2 / 1e3,
            found as f64 / w.queries.len() as f64
        );
        let stats = st.stats();
        println!(
            "  stats: {} moves, {} fast-path, {} retries",
            stats.bucket_moves_total, stats.fast_path_total, stats.query_retries_total
        );
        table.add(
            &format!("memory per driver, {label}"),
            mem,
            "target",
            128.0,
            "B",
            false,
        );
        table.add(
            &format!("nearest p99 wall clock, {label}"),
            gp99,
            "target",
            20.0,
            "us",
            false,
        );
        table.add(
            &format!("nearest p99 on-CPU, {label}"),
            cp99,
            "target",
            20.0,
            "us",
            false,
        );
        table.add(
            &format!("upsert, 1 writer, {label}"),
            g1,
            "target",
            5e6,
            "/s",
            true,
        );
        if let Some(s) = &server {
            let r = redis_side(s.port, &w, o.quick);
            table.add(
                &format!("upsert, 1 writer, {label}"),
                g1,
                "Redis GEOADD pipelined 64",
                r.add_pipe[0],
                "/s",
                true,
            );
            table.add(
                &format!("upsert, 2 writers, {label}"),
                g2,
                "Redis GEOADD pipelined 64",
                r.add_pipe[1],
                "/s",
                true,
            );
            table.add(
                &format!("upsert, 1 writer, {label}"),
                g1,
                "Redis GEOADD unpipelined",
                r.add_one[0],
                "/s",
                true,
            );
            table.add(
                &format!("upsert, 2 writers, {label}"),
                g2,
                "Redis GEOADD unpipelined",
                r.add_one[1],
                "/s",
                true,
            );
            table.add(
                &format!("nearest p50, {label}"),
                gp50,
                "Redis GEOSEARCH",
                r.p50,
                "us",
                false,
            );
            table.add(
                &format!("nearest p99, {label}"),
                gp99,
                "Redis GEOSEARCH",
                r.p99,
                "us",
                false,
            );
            table.add(
                &format!("nearest q/s, 1 thread, {label}"),
                gq1,
                "GEOSEARCH unpipelined",
                r.q_one,
                "/s",
                true,
            );
            table.add(
                &format!("nearest q/s, 2 threads, {label}"),
                gq2,
                "GEOSEARCH pipelined 64, 2 conns",
                r.q_pipe,
                "/s",
                true,
            );
            let (mp50, mp99, rate) = mixed_geo(&st, &w, o.mixed_secs);
            println!(
                "  geostore mixed: {rate:.0} upserts/s achieved, query p50 {mp50:.1} µs p99 {mp99:.1} µs"
            );
            table.add(
                &format!("mixed 100K upserts/s: query p99, {label}"),
                mp99,
                "Redis GEOSEARCH",
                r.mixed_p99,
                "us",
                false,
            );
        }
        if o.baselines {
            let p = Proj::new(LAT0, LNG0);
            let t = Instant::now();
            let bs: Vec<Box<dyn Baseline>> = vec![
                Box::new(RTreeLock::new(p, &w.fleet, w.avail.clone())),
                Box::new(GridLock::new(p, CITY_M, 250.0, &w.fleet, w.avail.clone())),
            ];
            println!("  baselines built in {:.1} s", t.elapsed().as_secs_f64());
            for b in &bs {
                let u1 = timed(&[&w.one], |_, s| {
                    s.iter().for_each(|p| b.upsert(p.id, p.lat, p.lng))
                });
                let u2 = timed(&[&w.two[0], &w.two[1]], |_, s| {
                    s.iter().for_each(|p| b.upsert(p.id, p.lat, p.lng))
                });
                let mut lat: Vec<u64> = w.queries[..nq / 4]
                    .iter()
                    .map(|&(la, lo)| {
                        let t = Instant::now();
                        std::hint::black_box(b.nearest(la, lo, RADIUS_M, K));
                        t.elapsed().as_nanos() as u64
                    })
                    .collect();
                let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
                println!(
                    "  {}: upserts {:.2}M/s (1), {:.2}M/s (2); nearest p50 {p50:.1} µs p99 {p99:.1} µs",
                    b.name(),
                    u1 / 1e6,
                    u2 / 1e6
                );
                table.add(
                    &format!("upsert, 1 writer, {label}"),
                    g1,
                    b.name(),
                    u1,
                    "/s",
                    true,
                );
                table.add(
                    &format!("upsert, 2 writers, {label}"),
                    g2,
                    b.name(),
                    u2,
                    "/s",
                    true,
                );
                table.add(
                    &format!("nearest p99, {label}"),
                    gp99,
                    b.name(),
                    p99,
                    "us",
                    false,
                );
            }
        }
    }
    table.print();
    drop(server);
}

/// geostore under a paced 100K upserts/s writer while one thread queries; (p50, p99, rate).
fn mixed_geo(st: &GeoStore, w: &Work, secs: u64) -> (f64, f64, f64) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut lat = Vec::new();
    let mut done = 0usize;
    let t0 = Instant::now();
    std::thread::scope(|sc| {
        let writer = sc.spawn(|| {
            let mut i = 0usize;
            let mut ts = NOW + 10_000_000;
            while t0.elapsed() < Duration::from_secs(secs) {
                // 100 pings per millisecond, paced against the wall clock.
                let due = (t0.elapsed().as_micros() as usize / 1000 + 1) * 100;
                while i < due {
                    let p = w.one[i % w.one.len()];
                    ts += 1;
                    st.upsert(DriverId(u64::from(p.id)), p.lat, p.lng, 0.0, 8.0, ts)
                        .unwrap();
                    i += 1;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            i
        });
        let mut q = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (la, lo) = w.queries[q % w.queries.len()];
            let t = Instant::now();
            std::hint::black_box(
                st.nearest(la, lo, RADIUS_M, K, Filter::available(NOW))
                    .unwrap(),
            );
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

struct RedisFig {
    add_pipe: [f64; 2],
    add_one: [f64; 2],
    p50: f64,
    p99: f64,
    q_one: f64,
    q_pipe: f64,
    mixed_p99: f64,
}

fn geoadd(out: &mut Vec<u8>, w: &Work, p: &Ping) {
    let key: &[u8] = if w.avail[p.id as usize] {
        b"drv:avail"
    } else {
        b"drv:busy"
    };
    redis::encode(
        out,
        &[
            b"GEOADD",
            key,
            p.lng.to_string().as_bytes(),
            p.lat.to_string().as_bytes(),
            format!("d{}", p.id).as_bytes(),
        ],
    );
}

fn geosearch(out: &mut Vec<u8>, la: f64, lo: f64) {
    let (lo, la) = (lo.to_string(), la.to_string());
    redis::encode(
        out,
        &[
            b"GEOSEARCH",
            b"drv:avail",
            b"FROMLONLAT",
            lo.as_bytes(),
            la.as_bytes(),
            b"BYRADIUS",
            b"5",
            b"km",
            b"ASC",
            b"COUNT",
            b"20",
        ],
    );
}

/// Pre-encodes commands so the timed loops measure Redis, not our formatting.
fn encoded<T>(items: &[T], f: impl Fn(&mut Vec<u8>, &T)) -> (Vec<u8>, Vec<usize>) {
    let mut buf = Vec::new();
    let mut ends = Vec::with_capacity(items.len());
    for it in items {
        f(&mut buf, it);
        ends.push(buf.len());
    }
    (buf, ends)
}

/// Sends `ends.len()` pre-encoded commands `depth` at a time, reading replies per batch.
fn pipeline(port: u16, buf: &[u8], ends: &[usize], depth: usize) -> usize {
    let mut c = redis::Client::connect(port).unwrap();
    let (mut start, mut items) = (0, 0);
    for chunk in ends.chunks(depth) {
        let end = *chunk.last().unwrap();
        c.raw(&buf[start..end]).unwrap();
        items += c.read_n(chunk.len()).unwrap();
        start = end;
    }
    items
}

fn redis_side(port: u16, w: &Work, quick: bool) -> RedisFig {
    let mut c = redis::Client::connect(port).unwrap();
    c.cmd(&[b"FLUSHALL"]).unwrap();
    let t = Instant::now();
    for chunk in w.fleet.chunks(1000).enumerate() {
        let (ci, pts) = chunk;
        for key in [&b"drv:avail"[..], b"drv:busy"] {
            let mut args: Vec<Vec<u8>> = vec![b"GEOADD".to_vec(), key.to_vec()];
            for (j, &(la, lo)) in pts.iter().enumerate() {
                let id = ci * 1000 + j;
                if w.avail[id] == (key == b"drv:avail") {
                    args.extend([
                        lo.to_string().into_bytes(),
                        la.to_string().into_bytes(),
                        format!("d{id}").into_bytes(),
                    ]);
                }
            }
            if args.len() > 2 {
                c.cmd(&args.iter().map(|a| a.as_slice()).collect::<Vec<_>>())
                    .unwrap();
            }
        }
    }
    println!("  redis loaded in {:.2} s", t.elapsed().as_secs_f64());
    let small = if quick { 20_000 } else { 100_000 };
    let one = encoded(&w.one, |b, p| geoadd(b, w, p));
    let two = [
        encoded(&w.two[0], |b, p| geoadd(b, w, p)),
        encoded(&w.two[1], |b, p| geoadd(b, w, p)),
    ];
    let mut fig = RedisFig {
        add_pipe: [0.0; 2],
        add_one: [0.0; 2],
        p50: 0.0,
        p99: 0.0,
        q_one: 0.0,
        q_pipe: 0.0,
        mixed_p99: 0.0,
    };
    let cut = |e: &(Vec<u8>, Vec<usize>), n: usize| {
        (
            e.0[..e.1[n.min(e.1.len()) - 1]].to_vec(),
            e.1[..n.min(e.1.len())].to_vec(),
        )
    };
    let o1 = cut(&one, small);
    fig.add_one[0] = timed(&[&o1.1[..]], |_, ends| {
        pipeline(port, &o1.0, ends, 1);
    });
    let o2 = [cut(&two[0], small / 2), cut(&two[1], small / 2)];
    fig.add_one[1] = timed(&[&o2[0].1[..], &o2[1].1[..]], |i, ends| {
        pipeline(port, &o2[i].0, ends, 1);
    });
    fig.add_pipe[0] = timed(&[&one.1[..]], |_, ends| {
        pipeline(port, &one.0, ends, 64);
    });
    fig.add_pipe[1] = timed(&[&two[0].1[..], &two[1].1[..]], |i, ends| {
        pipeline(port, &two[i].0, ends, 64);
    });
    println!(
        "  redis GEOADD: pipelined {:.0}K/s (1 conn) {:.0}K/s (2 conns); unpipelined {:.0}K/s (1) {:.0}K/s (2)",
        fig.add_pipe[0] / 1e3,
        fig.add_pipe[1] / 1e3,
        fig.add_one[0] / 1e3,
        fig.add_one[1] / 1e3
    );
    let nq = (w.queries.len() / 4).min(small);
    let q = encoded(&w.queries[..nq], |b, &(la, lo)| geosearch(b, la, lo));
    let mut lat = Vec::with_capacity(nq);
    let mut hits = 0;
    let t = Instant::now();
    let mut start = 0;
    for &end in &q.1 {
        let t1 = Instant::now();
        c.raw(&q.0[start..end]).unwrap();
        hits += c.read_n(1).unwrap();
        lat.push(t1.elapsed().as_nanos() as u64);
        start = end;
    }
    fig.q_one = nq as f64 / t.elapsed().as_secs_f64();
    (fig.p50, fig.p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    let h = q.1.len() / 2;
    let (qa, qb) = (
        encoded(&w.queries[..h], |b, &(la, lo)| geosearch(b, la, lo)),
        encoded(&w.queries[h..nq], |b, &(la, lo)| geosearch(b, la, lo)),
    );
    fig.q_pipe = timed(&[&qa.1[..], &qb.1[..]], |i, ends| {
        pipeline(port, if i == 0 { &qa.0 } else { &qb.0 }, ends, 64);
    });
    println!(
        "  redis GEOSEARCH: p50 {:.1} µs p99 {:.1} µs, {:.0}K q/s unpipelined, {:.0}K q/s pipelined (2 conns), avg {:.1} hits",
        fig.p50,
        fig.p99,
        fig.q_one / 1e3,
        fig.q_pipe / 1e3,
        hits as f64 / nq as f64
    );
    fig.mixed_p99 = mixed_redis(port, w, &one, if quick { 2 } else { 5 });
    fig
}

/// Redis under a paced 100K GEOADD/s writer (batches of 100 per ms) while one client queries.
fn mixed_redis(port: u16, w: &Work, adds: &(Vec<u8>, Vec<usize>), secs: u64) -> f64 {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut rate = 0.0;
    std::thread::scope(|sc| {
        let wr = sc.spawn(|| {
            let mut c = redis::Client::connect(port).unwrap();
            let (mut i, mut start) = (0usize, 0usize);
            while t0.elapsed() < Duration::from_secs(secs) && i + 100 < adds.1.len() {
                let due = (t0.elapsed().as_micros() as usize / 1000 + 1) * 100;
                while i < due && i + 100 < adds.1.len() {
                    let end = adds.1[i + 99];
                    c.raw(&adds.0[start..end]).unwrap();
                    c.read_n(100).unwrap();
                    start = end;
                    i += 100;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            i as f64 / t0.elapsed().as_secs_f64()
        });
        let mut c = redis::Client::connect(port).unwrap();
        let mut q = 0;
        let mut b = Vec::new();
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let (la, lo) = w.queries[q % w.queries.len()];
            b.clear();
            geosearch(&mut b, la, lo);
            let t = Instant::now();
            c.raw(&b).unwrap();
            c.read_n(1).unwrap();
            lat.push(t.elapsed().as_nanos() as u64);
            q += 1;
        }
        rate = wr.join().unwrap();
    });
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    println!(
        "  redis mixed: {rate:.0} GEOADD/s achieved, GEOSEARCH p50 {p50:.1} µs p99 {p99:.1} µs"
    );
    p99
}

/// The resolution study behind `Config::resolution`'s default.
fn resolutions(o: &Opts, pings: usize, nq: usize) {
    println!(
        "\n| resolution | drivers | memory B/driver | upserts/s (1 writer) | nearest p50 µs | nearest p99 µs | p99 on-CPU µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &n in &o.drivers {
        let w = workload(n, pings, nq / 2);
        for res in [
            h3o::Resolution::Eight,
            h3o::Resolution::Nine,
            h3o::Resolution::Ten,
            h3o::Resolution::Eleven,
        ] {
            let st = load(res, &w);
            let mem = st.memory_bytes() as f64 / n as f64;
            let up = geo_upserts(&st, &[&w.one]);
            let (mut lat, mut cpu, _) = geo_latencies(&st, &w.queries);
            println!(
                "| {} | {n} | {mem:.1} | {:.2}M | {:.1} | {:.1} | {:.1} |",
                u8::from(res),
                up / 1e6,
                pct(&mut lat, 0.5),
                pct(&mut lat, 0.99),
                pct(&mut cpu, 0.99)
            );
        }
    }
}
