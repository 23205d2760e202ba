//! Fault kinds, the plan of which are on for a run (forced with `--fault`, or drawn per seed
//! with `--swarm`), and counters of the faults that actually fired.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One kind of fault the simulator can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// A store commit fails with `not_committed` (not applied).
    StoreConflict,
    /// A store commit is applied but reported `commit_unknown_result`.
    UnknownResult,
    /// A store read or commit fails with `transaction_too_old`.
    TooOld,
    /// The payment provider answers `unavailable` for a while.
    PaymentOutage,
    /// The provider declines authorizations and captures.
    PaymentDecline,
    /// A provider call times out before the provider acted.
    PaymentTimeoutNotApplied,
    /// A provider call is performed but its answer is lost (a timeout to the caller).
    PaymentTimeoutApplied,
    /// The push provider fails sends.
    PushFailure,
    /// App → cell messages are lost.
    NetLoss,
    /// App → cell messages are delayed by seconds.
    NetDelay,
    /// App → cell messages arrive twice.
    NetDup,
    /// App → cell messages overtake each other.
    NetReorder,
    /// One driver is cut off for a while.
    DriverPartition,
    /// Every driver is cut off for a while.
    AllPartition,
    /// The cell is killed (all memory lost) and rebuilt from the store.
    CellCrash,
}

impl FaultKind {
    pub const ALL: [FaultKind; 15] = [
        FaultKind::StoreConflict,
        FaultKind::UnknownResult,
        FaultKind::TooOld,
        FaultKind::PaymentOutage,
        FaultKind::PaymentDecline,
        FaultKind::PaymentTimeoutNotApplied,
        FaultKind::PaymentTimeoutApplied,
        FaultKind::PushFailure,
        FaultKind::NetLoss,
        FaultKind::NetDelay,
        FaultKind::NetDup,
        FaultKind::NetReorder,
        FaultKind::DriverPartition,
        FaultKind::AllPartition,
        FaultKind::CellCrash,
    ];

    pub fn name(self) -> &'static str {
        match self {
            FaultKind::StoreConflict => "store-conflict",
            FaultKind::UnknownResult => "unknown-result",
            FaultKind::TooOld => "too-old",
            FaultKind::PaymentOutage => "payment-outage",
            FaultKind::PaymentDecline => "payment-decline",
            FaultKind::PaymentTimeoutNotApplied => "payment-timeout-not-applied",
            FaultKind::PaymentTimeoutApplied => "payment-timeout-applied",
            FaultKind::PushFailure => "push-failure",
            FaultKind::NetLoss => "net-loss",
            FaultKind::NetDelay => "net-delay",
            FaultKind::NetDup => "net-dup",
            FaultKind::NetReorder => "net-reorder",
            FaultKind::DriverPartition => "driver-partition",
            FaultKind::AllPartition => "all-partition",
            FaultKind::CellCrash => "cell-crash",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for FaultKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = FaultKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown fault {s:?}; one of: {}", names.join(", "))
            })
    }
}

/// Which faults are on in a run. Faults stop at `until_ms` (virtual), so the run can show
/// every order finishing afterwards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub kinds: BTreeSet<FaultKind>,
}

impl FaultPlan {
    pub fn none() -> Self {
        Self::default()
    }

    pub fn of(kinds: impl IntoIterator<Item = FaultKind>) -> Self {
        Self {
            kinds: kinds.into_iter().collect(),
        }
    }

    /// Swarm testing: each kind on with probability one half, drawn from the seed's stream.
    pub fn swarm(rng: &mut ChaCha8Rng) -> Self {
        Self::of(FaultKind::ALL.into_iter().filter(|_| rng.random_bool(0.5)))
    }

    pub fn has(&self, k: FaultKind) -> bool {
        self.kinds.contains(&k)
    }

    pub fn names(&self) -> String {
        if self.kinds.is_empty() {
            return "none".into();
        }
        let v: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
        v.join(",")
    }
}

/// How often each fault fired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultCounters(pub BTreeMap<FaultKind, u64>);

impl FaultCounters {
    pub fn hit(&mut self, k: FaultKind) {
        *self.0.entry(k).or_default() += 1;
    }

    pub fn add(&mut self, k: FaultKind, n: u64) {
        if n > 0 {
            *self.0.entry(k).or_default() += n;
        }
    }

    pub fn get(&self, k: FaultKind) -> u64 {
        self.0.get(&k).copied().unwrap_or(0)
    }
}

impl fmt::Display for FaultCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}={n}")).collect();
        f.write_str(&v.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_kind_parses_from_its_name() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>(), Ok(k));
        }
        assert!("meteor".parse::<FaultKind>().is_err());
    }

    #[test]
    fn the_swarm_mix_depends_on_the_seed() {
        let draw = |s| FaultPlan::swarm(&mut ChaCha8Rng::seed_from_u64(s));
        assert_eq!(draw(1), draw(1));
        assert!((0..8).any(|s| draw(s) != draw(s + 1)));
    }
}
