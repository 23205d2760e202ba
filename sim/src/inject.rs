//! The faults' schedule: switching the probabilistic faults on and off (store, payments,
//! push, network), and the timed ones: payment outages, partitions of one driver or of all,
//! and the crash (every in-memory component dropped, the cell rebuilt from the same store).

use crate::config::MINUTE_MS;
use crate::faults::FaultKind;
use crate::providers::PayFaults;
use crate::world::{Ev, World};
use rand::Rng;
use store::model::ModelFaults;

impl World {
    /// Turns the planned probabilistic faults on (or every fault off).
    pub(crate) fn configure_faults(&mut self, on: bool) {
        self.faults_on = on;
        let p = &self.cfg.faults;
        let f = |k| on && p.has(k);
        let pick = |k, x| if f(k) { x } else { 0.0 };
        self.db.set_faults(ModelFaults {
            seed: self.cfg.seed ^ 0x5eed,
            conflict: pick(FaultKind::StoreConflict, 0.02),
            unknown_result: pick(FaultKind::UnknownResult, 0.01),
            too_old: pick(FaultKind::TooOld, 0.005),
            latency: std::time::Duration::ZERO,
        });
        self.pay.set_faults(PayFaults {
            outage: false,
            decline: pick(FaultKind::PaymentDecline, 0.03),
            timeout_not_applied: pick(FaultKind::PaymentTimeoutNotApplied, 0.03),
            timeout_applied: pick(FaultKind::PaymentTimeoutApplied, 0.03),
        });
        self.push.set_failure(pick(FaultKind::PushFailure, 0.1));
        let plan = self.cfg.faults.clone();
        self.net.configure(&plan, on);
    }

    pub(crate) fn crash(&mut self) {
        if !self.faults_on || self.node.is_none() {
            return;
        }
        self.fired.hit(FaultKind::CellCrash);
        self.log(|| "crash".into());
        // kill -9: every in-memory component goes at once; only the store remains.
        self.node = None;
        self.drivers.drop_sessions();
        self.customers.drop_trackers();
        self.at(2_000, Ev::Restart);
        let d = self.rng.random_range(8 * MINUTE_MS..25 * MINUTE_MS);
        self.at(d, Ev::Crash);
    }

    pub(crate) fn restart(&mut self) -> bool {
        match self.start_node() {
            Ok(()) => {
                self.log(|| "restarted".into());
                self.wake.all();
                for d in self.drivers.on_shift() {
                    let delay = self.rng.random_range(500..5_000);
                    self.at(delay, Ev::Reconnect(d));
                }
                self.resubscribe_trackers();
                true
            }
            Err(e) => {
                self.log(|| format!("restart failed {e}"));
                self.at(1_000, Ev::Restart);
                false
            }
        }
    }

    pub(crate) fn outage(&mut self, on: bool) {
        if on && !self.faults_on {
            return;
        }
        self.log(|| format!("payment outage {on}"));
        let mut f = PayFaults::default();
        if self.faults_on {
            let p = &self.cfg.faults;
            let pick = |k, x| if p.has(k) { x } else { 0.0 };
            f = PayFaults {
                outage: on,
                decline: pick(FaultKind::PaymentDecline, 0.03),
                timeout_not_applied: pick(FaultKind::PaymentTimeoutNotApplied, 0.03),
                timeout_applied: pick(FaultKind::PaymentTimeoutApplied, 0.03),
            };
        }
        self.pay.set_faults(f);
        if on {
            let d = self.rng.random_range(MINUTE_MS..4 * MINUTE_MS);
            self.at(d, Ev::Outage(false));
        } else if self.faults_on {
            let d = self.rng.random_range(5 * MINUTE_MS..20 * MINUTE_MS);
            self.at(d, Ev::Outage(true));
        }
    }

    pub(crate) fn cut_one(&mut self) {
        if !self.faults_on {
            return;
        }
        let on = self.drivers.on_shift();
        if !on.is_empty() {
            let d = on[self.rng.random_range(0..on.len())];
            let len = self.rng.random_range(20_000..120_000);
            self.net.partition(self.drivers.id(d).0, self.now + len);
            self.fired.hit(FaultKind::DriverPartition);
            self.log(|| format!("partition driver {d} for {len}"));
            self.lose_session(d);
            self.at(len, Ev::Heal(Some(d)));
        }
        let next = self.rng.random_range(3 * MINUTE_MS..10 * MINUTE_MS);
        self.at(next, Ev::CutOne);
    }

    pub(crate) fn cut_all(&mut self) {
        if !self.faults_on {
            return;
        }
        let len = self.rng.random_range(10_000..60_000);
        self.net.partition_all(self.now + len);
        self.fired.hit(FaultKind::AllPartition);
        self.log(|| format!("partition all drivers for {len}"));
        for d in self.drivers.on_shift() {
            self.lose_session(d);
        }
        self.at(len, Ev::Heal(None));
        let next = self.rng.random_range(15 * MINUTE_MS..30 * MINUTE_MS);
        self.at(next, Ev::CutAll);
    }

    pub(crate) fn heal(&mut self, d: Option<usize>) {
        let ds = match d {
            Some(d) => vec![d],
            None => self.drivers.on_shift(),
        };
        for d in ds {
            let delay = self.rng.random_range(0..3_000);
            self.at(delay, Ev::Reconnect(d));
        }
    }
}
