//! Runs the path decoder over many mutated and random inputs (issue 20: "the decoder survives
//! 10M fuzzed inputs without a panic"), with progress, and prints how many decoded.
//!
//!   cargo run --release -p pathcodec --bin pathfuzz -- [INPUTS (10000000)] [SEED]

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let inputs: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let seed: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let started = Instant::now();
    let (mut ok, mut refused) = (0, 0);
    let batch = 1_000_000;
    let mut done = 0;
    while done < inputs {
        let n = batch.min(inputs - done);
        let (o, r) = pathcodec::fuzzing::fuzz(seed.wrapping_add(done), n);
        ok += o;
        refused += r;
        done += n;
        eprintln!(
            "pathfuzz: {done}/{inputs} inputs, {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    println!(
        "pathfuzz: {inputs} inputs (seed {seed}): {ok} decoded, {refused} refused, 0 panics, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
