//! The network between the apps and the cell: each app → cell message is delivered after a
//! seeded delay, or lost, or twice; delays spread wide enough reorder messages. A driver (or
//! every driver) can be partitioned away for a while.

use crate::faults::{FaultCounters, FaultKind, FaultPlan};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Who sent a message: partitions cut drivers off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum From {
    Customer,
    Restaurant,
    Driver(u64),
}

/// The network's state and its own random stream.
#[derive(Debug)]
pub struct Net {
    rng: ChaCha8Rng,
    pub loss: f64,
    pub dup: f64,
    /// Extra delay up to this many ms on some messages (net-delay).
    pub slow_ms: u64,
    /// Jitter up to this many ms on every message (net-reorder widens it).
    pub jitter_ms: u64,
    /// Driver → partitioned until (virtual ms).
    cut: BTreeMap<u64, i64>,
    all_cut_until: i64,
    pub fired: FaultCounters,
}

impl Net {
    pub fn new(rng: ChaCha8Rng) -> Self {
        Self {
            rng,
            loss: 0.0,
            dup: 0.0,
            slow_ms: 0,
            jitter_ms: 40,
            cut: BTreeMap::new(),
            all_cut_until: i64::MIN,
            fired: FaultCounters::default(),
        }
    }

    /// Switches the network faults of `plan` on (or all off).
    pub fn configure(&mut self, plan: &FaultPlan, on: bool) {
        let f = |k| on && plan.has(k);
        self.loss = if f(FaultKind::NetLoss) { 0.03 } else { 0.0 };
        self.dup = if f(FaultKind::NetDup) { 0.03 } else { 0.0 };
        self.slow_ms = if f(FaultKind::NetDelay) { 8_000 } else { 0 };
        self.jitter_ms = if f(FaultKind::NetReorder) { 3_000 } else { 40 };
    }

    pub fn partition(&mut self, driver: u64, until: i64) {
        self.cut.insert(driver, until);
    }

    pub fn partition_all(&mut self, until: i64) {
        self.all_cut_until = until;
    }

    /// Whether `driver` is cut off at `now`.
    pub fn is_cut(&self, driver: u64, now: i64) -> bool {
        now < self.all_cut_until || self.cut.get(&driver).is_some_and(|t| now < *t)
    }

    /// When copies of a message sent at `now` arrive: none (lost or cut off), one, or two.
    pub fn send(&mut self, now: i64, from: From) -> Vec<i64> {
        if let From::Driver(d) = from
            && self.is_cut(d, now)
        {
            return Vec::new();
        }
        if self.loss > 0.0 && self.rng.random_bool(self.loss) {
            self.fired.hit(FaultKind::NetLoss);
            return Vec::new();
        }
        let copies = if self.dup > 0.0 && self.rng.random_bool(self.dup) {
            self.fired.hit(FaultKind::NetDup);
            2
        } else {
            1
        };
        (0..copies).map(|_| now + self.delay()).collect()
    }

    fn delay(&mut self) -> i64 {
        let mut d = 20 + self.rng.random_range(0..=self.jitter_ms) as i64;
        if self.jitter_ms > 40 && d > 1_000 {
            self.fired.hit(FaultKind::NetReorder);
        }
        if self.slow_ms > 0 && self.rng.random_bool(0.1) {
            self.fired.hit(FaultKind::NetDelay);
            d += self.rng.random_range(1_000..=self.slow_ms) as i64;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn a_partitioned_driver_reaches_nobody_until_it_ends() {
        let mut n = Net::new(ChaCha8Rng::seed_from_u64(3));
        n.partition(7, 1_000);
        assert!(n.send(500, From::Driver(7)).is_empty());
        assert_eq!(n.send(500, From::Driver(8)).len(), 1);
        assert_eq!(n.send(1_000, From::Driver(7)).len(), 1);
        n.partition_all(2_000);
        assert!(n.send(1_500, From::Driver(8)).is_empty());
        assert_eq!(n.send(1_500, From::Customer).len(), 1);
    }

    #[test]
    fn loss_and_duplication_fire_when_on() {
        let mut n = Net::new(ChaCha8Rng::seed_from_u64(3));
        n.configure(
            &FaultPlan::of([FaultKind::NetLoss, FaultKind::NetDup]),
            true,
        );
        let counts: Vec<usize> = (0..2_000)
            .map(|_| n.send(0, From::Customer).len())
            .collect();
        assert!(counts.contains(&0) && counts.contains(&2));
        assert!(n.fired.get(FaultKind::NetLoss) > 0 && n.fired.get(FaultKind::NetDup) > 0);
    }
}
