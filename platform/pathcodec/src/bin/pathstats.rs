//! Bytes per fix of realistic tracks (5 s pings at city speeds, stops, U-turns, ±10 m noise),
//! and the encoder's time per fix, against the seed's 50 B per ping.
//!
//!   cargo run --release -p pathcodec --bin pathstats -- [TRACKS (200)] [FIXES (360)]

use pathcodec::{Fix, PathBuffer, encode, fuzzing::realistic_track};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let tracks: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(360);
    let mut all = Vec::new();
    let mut core = Vec::new();
    let mut fixes_total = 0usize;
    let mut pushing = std::time::Duration::ZERO;
    for seed in 0..tracks {
        let fixes = realistic_track(seed, n, (52.52, 13.405));
        all.push(encode(seed, 0, &fixes).len() as f64 / n as f64);
        // Time and position only: heading and speed held constant cost one byte each.
        let flat: Vec<Fix> = fixes
            .iter()
            .map(|f| Fix {
                heading_deg: 0.0,
                speed_mps: 0.0,
                ..*f
            })
            .collect();
        core.push((encode(seed, 0, &flat).len() - 2 * n) as f64 / n as f64);
        let mut buf = PathBuffer::new(seed, 0);
        let t = Instant::now();
        for f in &fixes {
            buf.push(f);
        }
        pushing += t.elapsed();
        std::hint::black_box(buf.seal());
        fixes_total += n;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "pathstats: {tracks} tracks of {n} fixes: median {:.2} B per fix all-in (header included), \
         {:.2} B for time, lat and lng; the seed's 50 B is {:.1}x more; push {:.0} ns per fix",
        median(&mut all),
        median(&mut core),
        50.0 / median(&mut all),
        pushing.as_nanos() as f64 / fixes_total as f64
    );
}
