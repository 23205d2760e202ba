//! Each fault kind, forced on a short day: the checkers hold, and the fault actually fired
//! (a seed that triggers it is found among the first few).

use sim::{FaultKind, FaultPlan, SimConfig};

fn fires(kind: FaultKind) {
    for seed in 1..=4 {
        let cfg = SimConfig {
            faults: FaultPlan::of([kind]),
            ..SimConfig::ci(seed)
        };
        let s = match sim::run(cfg) {
            Ok(s) => s,
            Err(f) => panic!(
                "{kind}: SIM_SEED={} SIM_STEP={}: {}\n{}",
                f.seed,
                f.step,
                f.violation,
                f.last.join("\n")
            ),
        };
        assert!(s.delivered > 0, "{kind}: seed {seed} delivered nothing");
        if s.fired.get(kind) > 0 {
            return;
        }
    }
    panic!("{kind} never fired in seeds 1..=4");
}

macro_rules! fault_tests {
    ($($name:ident => $kind:expr,)*) => {
        $(
            #[test]
            fn $name() {
                fires($kind);
            }
        )*
    };
}

fault_tests! {
    store_conflict => FaultKind::StoreConflict,
    unknown_result => FaultKind::UnknownResult,
    too_old => FaultKind::TooOld,
    payment_outage => FaultKind::PaymentOutage,
    payment_decline => FaultKind::PaymentDecline,
    payment_timeout_not_applied => FaultKind::PaymentTimeoutNotApplied,
    payment_timeout_applied => FaultKind::PaymentTimeoutApplied,
    push_failure => FaultKind::PushFailure,
    net_loss => FaultKind::NetLoss,
    net_delay => FaultKind::NetDelay,
    net_dup => FaultKind::NetDup,
    net_reorder => FaultKind::NetReorder,
    driver_partition => FaultKind::DriverPartition,
    all_partition => FaultKind::AllPartition,
    cell_crash => FaultKind::CellCrash,
}

#[test]
fn every_kind_has_a_test() {
    // The list above is checked against the enum by count, so a new kind needs a test.
    assert_eq!(FaultKind::ALL.len(), 15);
}
