//! A deterministic city simulator: one process, one thread, one seed. It runs the cell's own
//! logic (order service, dispatch and matcher, tracking, notifications, payment saga) on
//! virtual time against the FoundationDB-semantics model store, with simulated providers,
//! network, drivers, customers and restaurants, and checks invariants after every step.
//!
//! # Layout
//! - `config`: [`SimConfig`], one run's parameters.
//! - `clock`: the virtual clock and the (time, sequence) event queue.
//! - `world`: [`World`], the event loop, the cell's schedule and the faults' schedule.
//! - `node`: the cell's components wired as the server wires them, minus sockets; a crash
//!   drops one and builds another on the same store.
//! - `apps`: requests from the apps over the simulated network, and their answers.
//! - `actors`: customers, restaurants, drivers.
//! - `demand`: the day's demand curve.
//! - `net`, `providers`, `faults`: the simulated network, payment and push providers, and
//!   the fault kinds with their counters.
//! - `check`: the invariant checkers.
//! - `trace`: the trace hash and the last events.
//! - `day`: [`day::run_day`], a what-if day's [`report::DayRecord`].
//! - `report`: the records and the what-if comparison.

pub mod actors;
pub mod apps;
pub mod check;
pub mod clock;
pub mod config;
pub mod day;
pub mod demand;
pub mod faults;
pub mod history;
pub mod inject;
pub mod net;
pub mod node;
pub mod providers;
pub mod report;
pub mod trace;
pub mod world;

pub use config::SimConfig;
pub use faults::{FaultKind, FaultPlan};
pub use world::{Failure, Summary, World};

/// Runs one seed to its end.
pub fn run(cfg: SimConfig) -> Result<Summary, Box<Failure>> {
    let seed = cfg.seed;
    let mut w = match World::new(cfg) {
        Ok(w) => w,
        Err(e) => {
            return Err(Box::new(Failure {
                seed,
                step: 0,
                violation: check::Violation {
                    invariant: "the city starts",
                    detail: e,
                },
                last: Vec::new(),
            }));
        }
    };
    w.run()
}
