//! The Redis half of each workload: the same pings as GEOADD into per-state keys, the same
//! queries as GEOSEARCH, pipelined and not, and the mixed run. Commands are pre-encoded so the
//! timed loops measure Redis, not our formatting.

use crate::{Ping, Work, pct, redis, timed};
use std::time::{Duration, Instant};

pub struct RedisFig {
    pub add_pipe: [f64; 2],
    pub add_one: [f64; 2],
    pub p50: f64,
    pub p99: f64,
    pub q_one: f64,
    pub q_pipe: f64,
    pub mixed_p99: f64,
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

pub fn redis_side(port: u16, w: &Work, quick: bool) -> RedisFig {
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
    // A 5 km GEOSEARCH costs Redis milliseconds (it collects every member in the disc before
    // sorting and cutting to COUNT), so fewer queries keep the run short; the figures settle fast.
    let nq = (if quick { 300 } else { 1_000 }).min(w.queries.len());
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
