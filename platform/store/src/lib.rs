//! The order store: an ordered key-value model with serializable transactions and a per-cell,
//! append-only event log. This is the model FoundationDB gives; the embedded default backend
//! (redb) gives the same one on a single machine, so a fresh checkout runs with no server.
//!
//! # Layout
//! - `lib.rs`: the [`Kv`] and [`Txn`] traits (the one place the model is defined), errors,
//!   and [`transact`]/[`read`], the generic entry points callers use.
//! - `keys.rs`: tuple-encoded key helpers (`foundationdb-tuple` on both backends, so the data
//!   layout is identical) and the event-log key space.
//! - `redb.rs` (+ `redb/tests.rs`): [`RedbStore`], the embedded default backend: one redb file,
//!   a single writer thread with group commit (one fsync per batch of transactions);
//!   `redb/apply.rs`: a job's writes and events into the batch; `redb/recover.rs`: what the
//!   writer does after a failed commit (refuse writes, reopen, probe).
//! - `scoped.rs`: [`SubspaceKv`], a store restricted to one [`keys::Subspace`] (a cell's
//!   keys, the router's map), the prefix added above the backend so both hold one layout.
//! - `paging.rs`: [`Pages`], scans paged across transactions with continuations, so no
//!   transaction outgrows FoundationDB's size and 5 s limits.
//! - `metered.rs` (tests, feature `testing`): `MeteredKv`, what each committed transaction
//!   wrote, for tests that assert paged work stays inside the limits.
//! - `lease.rs` (+ `lease/tests.rs`): [`lease::Lease`], one process's lease on a key with a
//!   fence number, and [`lease::FencedKv`], a store handle whose every write transaction checks
//!   that fence (so a process that lost the lease cannot write).
//! - `open.rs`: [`open`] the backend a configuration names ([`Backend`]).
//! - `overlay.rs`: a transaction's private write buffer over a snapshot (read-your-writes;
//!   nothing reaches the table unless the closure succeeds).
//! - `limits.rs`: FoundationDB's limits (key 10 KB, value 100 KB, transaction 10 MB and 5 s) and
//!   the per-transaction accumulator every backend checks before committing
//!   ([`StoreError::LimitExceeded`]).
//! - `fdbsem/`: the raw FoundationDB transaction API the store uses (`RawDb`/`RawTxn`) and the ONE
//!   [`Kv`] implementation over it (`SemStore`: retry loop and error classification, limits, the
//!   versionstamped event log without a hot key). FoundationDB and the model both run it.
//! - `fdb.rs` (feature `fdb`): `FdbStore` = `SemStore` over the `foundationdb` crate's calls.
//! - `model/` (feature `model`, and this crate's tests): `ModelDb`, an in-memory
//!   FoundationDB-semantics model (MVCC, conflict ranges, versionstamps, watches, limits, seeded
//!   faults) FOR TESTS ONLY, and `ModelStore` = `SemStore` over it. Not a [`Backend`].
//! - `once.rs`: [`transact_once`] with a [`TxnId`], FoundationDB's pattern for retrying a commit
//!   whose result is unknown without repeating its effect; [`purge_txn_ids`].
//! - `conformance.rs` (tests, feature `testing`): the backend-independent conformance suite (redb,
//!   the model, the model with faults, FoundationDB when a cluster is given).
//! - `synthetic.rs`: an order-shaped transaction for `storebench` and the crash test.
//! - `bin/storebench.rs` (feature `model`): group commit vs one fsync per transaction, and the
//!   model's commits/s and conflicts per commit; `bin/store-crash-writer.rs`: the process the
//!   SIGKILL durability test (`tests/crash.rs`) kills.
//!
//! # Contract
//! - `transact` runs the closure in a serializable read-write transaction and retries it on
//!   conflict; it resolves only once the commit is durable (fsync'd / FDB-committed). On
//!   FoundationDB a commit whose result is unknown is retried too: an effect that must not repeat
//!   needs [`transact_once`].
//! - Every transaction respects FoundationDB's limits ([`limits`]) on every backend.
//! - The closure may be run more than once: it must have no effects outside the [`Txn`].
//! - After a failed commit (I/O error) `transact` fails fast with [`StoreError::Unavailable`]
//!   and [`Kv::fault`] says why, until the backend recovered; no failed commit is ever
//!   acknowledged.
//! - Events appended in a transaction get strictly increasing positions per log, assigned at
//!   commit in commit order (gap-free on the embedded backend; versionstamps, with gaps, on
//!   FoundationDB and the model): see [`LogPos`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The [`Kv`] methods a wrapping store passes straight to the store it wraps (at the field
/// path given, e.g. `forward_kv_reads!(inner)`): the event log and what the backend is. Only
/// transactions are what wrappers change.
macro_rules! forward_kv_reads {
    ($($field:ident).+) => {
        fn read_events(
            &self,
            log: $crate::LogId,
            from: $crate::LogPos,
            limit: usize,
        ) -> $crate::BoxFut<'_, $crate::Result<Vec<$crate::Event>>> {
            self.$($field).+.read_events(log, from, limit)
        }

        fn log_head(&self, log: $crate::LogId) -> $crate::BoxFut<'_, $crate::Result<$crate::LogPos>> {
            self.$($field).+.log_head(log)
        }

        fn wait_for_events(
            &self,
            log: $crate::LogId,
            after: $crate::LogPos,
        ) -> $crate::BoxFut<'_, $crate::Result<$crate::LogPos>> {
            self.$($field).+.wait_for_events(log, after)
        }

        fn backend_name(&self) -> &'static str {
            self.$($field).+.backend_name()
        }

        fn exclusive_to_this_process(&self) -> bool {
            self.$($field).+.exclusive_to_this_process()
        }

        fn commit_stats(&self) -> Option<$crate::CommitStats> {
            self.$($field).+.commit_stats()
        }
    };
}

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
#[cfg(feature = "fdb")]
pub mod fdb;
pub mod fdbsem;
pub mod keys;
pub mod lease;
pub mod limits;
#[cfg(any(test, feature = "testing"))]
pub mod metered;
#[cfg(any(test, feature = "model"))]
pub mod model;
mod once;
mod open;
mod overlay;
pub mod paging;
pub mod priority;
pub mod redb;
pub mod scoped;
pub mod synthetic;

#[cfg(feature = "fdb")]
pub use crate::fdb::{FdbOptions, FdbStore};
pub use crate::lease::{FencedKv, Lease};
pub use crate::once::{TxnId, purge_txn_ids, transact_once};
pub use crate::open::{Backend, open, open_with};
pub use crate::paging::{PageLimits, Pages};
pub use crate::redb::{CommitStats, RedbOptions, RedbStore};
pub use crate::scoped::SubspaceKv;

/// Errors at the store boundary.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the data directory.
    #[error("data directory {path} is already in use by another process")]
    AlreadyOpen { path: String },
    /// A transaction kept conflicting past the retry limit.
    #[error("transaction still conflicting after {attempts} attempts")]
    TooManyRetries { attempts: u32 },
    /// The backend failed (I/O, corruption, cluster unavailable).
    #[error("storage backend: {0}")]
    Backend(String),
    /// Stored bytes do not decode as the caller expected.
    #[error("corrupt record at {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The store is shutting down.
    #[error("store is closed")]
    Closed,
    /// A commit failed with an I/O error (disk full, failed fsync): the store refuses writes
    /// (and reads it cannot serve) until it has recovered. Nothing of the failed commit was
    /// acknowledged.
    #[error("store unavailable: {reason}")]
    Unavailable { reason: String },
    /// A transaction broke one of FoundationDB's limits (key, value or transaction size,
    /// transaction duration), enforced on every backend so a violation is found in tests, not
    /// first in production.
    #[error("store limit exceeded: {what} is {size}, the limit is {max}")]
    LimitExceeded {
        what: &'static str,
        size: u64,
        max: u64,
    },
    /// This process no longer holds the cell's lease: another instance took over, and every
    /// write from this one is refused.
    #[error("fenced: {reason}")]
    Fenced { reason: String },
}

/// What a transaction closure may fail with.
#[derive(Debug, thiserror::Error)]
pub enum TxnError<E> {
    /// The store failed; conflicts never reach the caller (they are retried).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The closure decided to abort: nothing it wrote is committed.
    #[error("transaction aborted")]
    Abort(E),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A boxed future borrowing the transaction.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One key-value pair from a range read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// A range read: keys in `[begin, end)`, at most `limit` (0 = no limit), ascending unless
/// `reverse`.
#[derive(Debug, Clone)]
pub struct RangeRequest {
    pub begin: Vec<u8>,
    pub end: Vec<u8>,
    pub limit: usize,
    pub reverse: bool,
}

impl RangeRequest {
    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8]) -> Self {
        Self {
            begin: prefix.to_vec(),
            end: keys::prefix_end(prefix),
            limit: 0,
            reverse: false,
        }
    }
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
    pub fn reverse(mut self) -> Self {
        self.reverse = true;
        self
    }
}

/// Names one event log (one per cell). Positions are per log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LogId(pub u16);

/// A position in an event log, strictly increasing in commit order. On the embedded backend
/// positions are gap-free from 1; on FoundationDB (and the model) a position is the event's
/// commit versionstamp read as a number (`commit version << 32 | batch order << 16 | index in
/// the transaction`), so it has gaps but needs no counter that every writer touches. Consumers
/// only ever ask for "the events after my cursor", which both kinds answer alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct LogPos(pub u128);

impl LogPos {
    /// The position a consumer reads from after handling `self` (its cursor).
    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    /// Big-endian bytes, the form cursors are stored in (16 bytes).
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// Decodes [`LogPos::to_bytes`]; also reads the 8-byte form written before positions
    /// were widened, so an existing data directory keeps its cursors.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        match b.len() {
            16 => Some(Self(u128::from_be_bytes(b.try_into().ok()?))),
            8 => Some(Self(u128::from(u64::from_be_bytes(b.try_into().ok()?)))),
            _ => None,
        }
    }
}

/// An event read back from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub pos: LogPos,
    pub payload: Vec<u8>,
}

/// Operations inside one transaction. Reads see the transaction's own writes.
pub trait Txn: Send + Sync {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFut<'a, Result<Option<Vec<u8>>>>;
    fn get_range(&self, range: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>>;
    fn set(&self, key: &[u8], value: &[u8]);
    fn clear(&self, key: &[u8]);
    /// Clears keys in `[begin, end)`.
    fn clear_range(&self, begin: &[u8], end: &[u8]);
    /// Appends an event to `log`; its position is assigned at commit.
    fn append_event(&self, log: LogId, payload: &[u8]);
}

/// The closure type `transact` runs; `'static` because it may run on a backend's own thread
/// and more than once.
pub type TxnFn<T, E> = Arc<
    dyn for<'t> Fn(&'t dyn Txn) -> BoxFut<'t, std::result::Result<T, TxnError<E>>> + Send + Sync,
>;

/// A type-erased value crossing the object-safe [`Kv`] boundary.
pub type AnyBox = Box<dyn std::any::Any + Send>;
/// The closure [`Kv::transact_erased`] runs.
pub type ErasedTxnFn = TxnFn<AnyBox, AnyBox>;
/// What [`Kv::transact_erased`] returns.
pub type ErasedResult = std::result::Result<AnyBox, TxnError<AnyBox>>;

/// A store backend. Object safe: the cell holds an `Arc<dyn Kv>`.
pub trait Kv: Send + Sync + 'static {
    /// Runs `f` in a serializable read-write transaction, retrying on conflict; resolves after
    /// the commit is durable. Type-erased: use [`transact`].
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult>;

    /// Runs `f` on a consistent snapshot; writes made through the `Txn` are discarded. Never
    /// blocks or is blocked by writers.
    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult>;

    /// Events of `log` with positions `>= from`, at most `limit`, in order.
    fn read_events(&self, log: LogId, from: LogPos, limit: usize)
    -> BoxFut<'_, Result<Vec<Event>>>;

    /// The highest committed position of `log` (0 when empty).
    fn log_head(&self, log: LogId) -> BoxFut<'_, Result<LogPos>>;

    /// Resolves with the new head once `log` has a durable event after `after` (immediately if
    /// it already has). Lets event consumers wake on commit instead of polling.
    fn wait_for_events(&self, log: LogId, after: LogPos) -> BoxFut<'_, Result<LogPos>>;

    /// A short name for logs and metrics ("redb", "fdb").
    fn backend_name(&self) -> &'static str;

    /// Whether no other process can use this store while this handle lives (the embedded
    /// backend locks its data directory). Then a lease held by an incarnation that is not
    /// alive in this process was left by a process that is gone, and is taken over at once
    /// instead of after its expiry (see [`lease`]).
    fn exclusive_to_this_process(&self) -> bool {
        false
    }

    /// Why the store refuses writes right now (after a failed commit, until it recovered), or
    /// `None` when it accepts them. Readiness probes report it.
    fn fault(&self) -> Option<String> {
        None
    }

    /// The group commit's running totals, for a backend that has one (the embedded store):
    /// how busy its single writer is, which every write of the process queues behind.
    fn commit_stats(&self) -> Option<CommitStats> {
        None
    }
}

fn erase<T, E, F>(f: F) -> TxnFn<AnyBox, AnyBox>
where
    T: Send + 'static,
    E: Send + 'static,
    F: for<'t> Fn(&'t dyn Txn) -> BoxFut<'t, std::result::Result<T, TxnError<E>>>
        + Send
        + Sync
        + 'static,
{
    Arc::new(move |txn| {
        let fut = f(txn);
        Box::pin(async move {
            match fut.await {
                Ok(t) => Ok(Box::new(t) as AnyBox),
                Err(TxnError::Store(e)) => Err(TxnError::Store(e)),
                Err(TxnError::Abort(e)) => Err(TxnError::Abort(Box::new(e) as AnyBox)),
            }
        })
    })
}

fn unerase<T: 'static, E: 'static>(r: ErasedResult) -> std::result::Result<T, TxnError<E>> {
    // The boxes were made by `erase` with these very types, so the downcasts cannot fail.
    match r {
        Ok(t) => Ok(*t.downcast::<T>().expect("transact result type")),
        Err(TxnError::Store(e)) => Err(TxnError::Store(e)),
        Err(TxnError::Abort(e)) => Err(TxnError::Abort(*e.downcast::<E>().expect("abort type"))),
    }
}

/// Runs `f` in a serializable read-write transaction (retried on conflict, durable on return).
///
/// ```ignore
/// let n = store::transact(&*kv, |txn| Box::pin(async move {
///     let v = txn.get(b"k").await?;
///     txn.set(b"k", b"v");
///     Ok::<_, store::TxnError<()>>(v.is_some())
/// })).await?;
/// ```
pub async fn transact<T, E, F>(kv: &dyn Kv, f: F) -> std::result::Result<T, TxnError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
    F: for<'t> Fn(&'t dyn Txn) -> BoxFut<'t, std::result::Result<T, TxnError<E>>>
        + Send
        + Sync
        + 'static,
{
    unerase(kv.transact_erased(erase(f)).await)
}

/// Runs `f` on a consistent read-only snapshot.
pub async fn read<T, E, F>(kv: &dyn Kv, f: F) -> std::result::Result<T, TxnError<E>>
where
    T: Send + 'static,
    E: Send + 'static,
    F: for<'t> Fn(&'t dyn Txn) -> BoxFut<'t, std::result::Result<T, TxnError<E>>>
        + Send
        + Sync
        + 'static,
{
    unerase(kv.read_erased(erase(f)).await)
}
