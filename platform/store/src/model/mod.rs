//! A FoundationDB-semantics model database, in memory, FOR TESTS AND SIMULATION ONLY (feature
//! `model`; it is not a [`Backend`](crate::Backend) a configuration can select, and nothing is
//! durable). It implements the raw API of [`crate::fdbsem`], so the store layer that runs on
//! FoundationDB ([`SemStore`]) runs on it unchanged.
//!
//! What it models, as FoundationDB documents it:
//! - **MVCC.** A transaction reads at its read version (the last commit when it started): a
//!   snapshot of every commit at or before it, plus its own writes (read-your-writes).
//! - **Conflicts.** Non-snapshot reads add read-conflict ranges (a point; a range as far as it was
//!   actually read when a limit cut it); snapshot reads add none; a point read of a key the
//!   transaction wrote itself adds none. Writes add write-conflict ranges. A commit fails with
//!   `not_committed` (1020) if a transaction that committed after its read version wrote into one
//!   of its read-conflict ranges; otherwise it commits at the next version. A read-only commit
//!   succeeds without a new version.
//! - **Versionstamps.** `SetVersionstampedKey`/`Value` fill the 10-byte placeholder with the
//!   commit version (8 bytes, big-endian) and the batch order (2 bytes; always 0, the model
//!   commits one transaction per version).
//! - **Watches** fire once the key's committed value differs from the value the watching
//!   transaction saw.
//! - **Limits.** Keys ≤ 10,000 bytes (2102), values ≤ 100,000 (2103), a transaction's writes
//!   ≤ 10,000,000 (2101), and a transaction older than 5 s by its [`Clock`] fails with
//!   `transaction_too_old` (1007) on its next read or its commit.
//! - **Faults** ([`ModelFaults`], seeded): injected conflicts, `commit_unknown_result` (the commit
//!   IS applied but reported unknown, so a blind retry repeats it), `transaction_too_old` on reads
//!   and commits, and random commit latency.
//!
//! Several [`ModelStore`]s can share one [`ModelDb`] (two cells on one cluster, two processes of
//! one cell): clone the `ModelDb` and call [`ModelDb::store`] on each.

mod state;
mod txn;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::fdbsem::{RawDb, RawResult, SemOptions, SemStore};
use crate::limits::{self, Clock};
use state::State;
pub use txn::ModelTxn;

/// Seeded fault injection; probabilities are per commit (`too_old` also per read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelFaults {
    pub seed: u64,
    /// A write commit fails with `not_committed` without being applied.
    pub conflict: f64,
    /// A write commit is applied but reported as `commit_unknown_result`.
    pub unknown_result: f64,
    /// A read or a write commit fails with `transaction_too_old`.
    pub too_old: f64,
    /// Each commit waits a random time up to this first.
    pub latency: Duration,
}

impl ModelFaults {
    /// No faults.
    pub fn none() -> Self {
        Self {
            seed: 0,
            conflict: 0.0,
            unknown_result: 0.0,
            too_old: 0.0,
            latency: Duration::ZERO,
        }
    }
}

impl Default for ModelFaults {
    fn default() -> Self {
        Self::none()
    }
}

/// What the model did, since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Commits that wrote (each one a new version).
    pub commits: u64,
    /// Commits refused because of a real read-write conflict.
    pub conflicts: u64,
    /// Injected faults.
    pub injected_conflicts: u64,
    pub injected_unknown_results: u64,
    pub injected_too_old: u64,
}

pub(crate) struct Inner {
    state: Mutex<State>,
    clock: Clock,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The model database. Cloning gives another handle on the same data.
#[derive(Clone)]
pub struct ModelDb {
    inner: Arc<Inner>,
}

/// The store layer over the model: what `FdbStore` is over a cluster.
pub type ModelStore = SemStore<ModelDb>;

impl ModelDb {
    /// An empty model with `faults`, measuring transaction ages in real time.
    pub fn new(faults: ModelFaults) -> Self {
        Self::with_clock(faults, limits::real_clock())
    }

    /// An empty model whose transaction ages are measured with `clock`.
    pub fn with_clock(faults: ModelFaults, clock: Clock) -> Self {
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(State::new(faults)),
                clock,
            }),
        }
    }

    /// Changes the fault injection from now on (e.g. off, to check the outcome of a run).
    pub fn set_faults(&self, faults: ModelFaults) {
        self.inner.lock().set_faults(faults);
    }

    /// Counters of commits, conflicts and injected faults.
    pub fn stats(&self) -> ModelStats {
        self.inner.lock().stats
    }

    /// A store on this database (the layer FoundationDB runs), with the model's clock.
    pub fn store(&self) -> ModelStore {
        SemStore::new(self.clone(), SemOptions::default()).with_clock(self.inner.clock.clone())
    }

    /// [`ModelDb::store`] as the object the cell holds.
    pub fn kv(&self) -> Arc<dyn crate::Kv> {
        Arc::new(self.store())
    }
}

impl RawDb for ModelDb {
    type Txn = ModelTxn;

    fn create_txn(&self) -> RawResult<ModelTxn> {
        Ok(ModelTxn::begin(self.inner.clone(), 0))
    }

    fn name(&self) -> &'static str {
        "model"
    }
}

#[cfg(test)]
mod tests;
