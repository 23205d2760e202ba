//! The CI sweep: a few hundred seeds of a small city (30 simulated minutes each), with the
//! fault mix drawn per seed (swarm), on two threads. A failure names the seed and the step
//! and the command that replays it. `SIM_SEEDS` sets the count (default 200).

use rand::SeedableRng;
use sim::{FaultPlan, SimConfig};

fn config(seed: u64) -> SimConfig {
    let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(99);
    SimConfig {
        faults: FaultPlan::swarm(&mut r),
        ..SimConfig::ci(seed)
    }
}

#[test]
fn a_few_hundred_swarm_seeds_hold_every_invariant() {
    let count: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let threads = 2;
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut bad = Vec::new();
                    let mut seed = 1 + t;
                    while seed <= count {
                        if let Err(f) = sim::run(config(seed)) {
                            bad.push(format!(
                                "SIM_SEED={} SIM_STEP={}: {} (./dev sim run --swarm --orders-per-day 1500 --drivers 40 --restaurants 40 --seed {})",
                                f.seed, f.step, f.violation, f.seed
                            ));
                        }
                        seed += threads;
                    }
                    bad
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a sweep thread panicked"))
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
