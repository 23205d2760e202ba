//! The simulator is deterministic: one seed gives one trace, bit for bit, and another seed
//! gives another. Also with every fault on (the crash included).

use sim::{FaultKind, FaultPlan, SimConfig};

fn hash(cfg: SimConfig) -> u64 {
    match sim::run(cfg) {
        Ok(s) => s.hash,
        Err(f) => panic!("SIM_SEED={} SIM_STEP={}: {}", f.seed, f.step, f.violation),
    }
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_twice() {
    assert_eq!(hash(SimConfig::ci(11)), hash(SimConfig::ci(11)));
}

#[test]
fn the_same_seed_with_every_fault_gives_the_same_trace_hash_twice() {
    let cfg = || SimConfig {
        faults: FaultPlan::of(FaultKind::ALL),
        ..SimConfig::ci(12)
    };
    assert_eq!(hash(cfg()), hash(cfg()));
}

#[test]
fn two_seeds_give_two_trace_hashes() {
    assert_ne!(hash(SimConfig::ci(13)), hash(SimConfig::ci(14)));
}

#[test]
fn stopping_at_a_step_replays_the_same_prefix() {
    let part = || {
        let mut w = sim::World::new(SimConfig {
            until_step: Some(5_000),
            ..SimConfig::ci(15)
        })
        .expect("city");
        w.run().expect("no violation before step 5000");
        (
            w.step,
            w.trace.hash(),
            w.trace.last().cloned().collect::<Vec<_>>(),
        )
    };
    let (a, b) = (part(), part());
    assert_eq!(a, b);
    assert_eq!(a.0, 5_000);
    assert_ne!(
        a.1,
        hash(SimConfig::ci(15)),
        "the prefix is not the whole run"
    );
}
