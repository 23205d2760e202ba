//! The layer FoundationDB and the model share: [`RawDb`]/[`RawTxn`] mirror exactly the subset of
//! FoundationDB's transaction API the store uses, and [`SemStore`] is the ONE implementation of
//! [`Kv`](crate::Kv) over it. Keys, the event log, limits, paging and the retry loop live here
//! once; `fdb.rs` only forwards the raw calls to the `foundationdb` crate and `model/` implements
//! them in memory, so what the model tests is what runs on a cluster.
//!
//! # Transactions
//! `transact` runs the closure on a fresh raw transaction; if a read failed with a FoundationDB
//! error, or the commit did, the error is classified ([`RawError::kind`]): conflicts
//! (`not_committed`, 1020), `commit_unknown_result` (1021), `transaction_too_old` (1007) and the
//! other errors FoundationDB calls retryable rerun the closure after [`RawTxn::on_error`] (which
//! backs off and resets the transaction, as FoundationDB's `on_error` does), at most
//! `retry_limit` attempts, then [`StoreError::TooManyRetries`](crate::StoreError). As in
//! FoundationDB's own `run`, an unknown result is retried blindly: a closure whose effect is not
//! idempotent must use [`transact_once`](crate::transact_once). An abort or a store error returns
//! without committing. FoundationDB's limits are checked before the commit (typed
//! `LimitExceeded`, never retried); the cluster's own limit errors (2101-2103) and a
//! `transaction_too_old` past the 5 s age map to the same error.
//!
//! # Event log, without a hot key
//! An appended event is a versionstamped key `("ev", log, <versionstamp>)` written with
//! `SetVersionstampedKey` (user version = its index in the transaction); its position is the
//! stamp read as a number ([`LogPos`](crate::LogPos)). Commit versions only grow, so a reader at
//! read version V sees every event committed at or before V and no later commit can get a
//! smaller stamp: reading "after my cursor" in key order is reading in commit order and misses
//! nothing. `log_head` is the last key of the log's range. Each appending transaction also
//! BLIND-writes the log's signal key `("evs", log)` (`SetVersionstampedValue`, so its value
//! changes on every append): a blind write adds only a write-conflict range, and appenders read
//! neither the signal key nor the log, so two appenders never conflict. `wait_for_events` reads
//! the head and, if nothing is new, watches the signal key from the same read version.

mod layer;
mod txn;

pub use layer::{SemOptions, SemStats, SemStore};

use crate::{BoxFut, KeyValue, RangeRequest};

/// FoundationDB error codes the layer distinguishes.
pub mod codes {
    /// `transaction_too_old`: the read version is older than the cluster keeps (5 s).
    pub const TRANSACTION_TOO_OLD: i32 = 1007;
    /// `not_committed`: a conflict.
    pub const NOT_COMMITTED: i32 = 1020;
    /// `commit_unknown_result`: the commit may or may not have been applied.
    pub const COMMIT_UNKNOWN_RESULT: i32 = 1021;
    /// `operation_cancelled` (a watch whose transaction was dropped).
    pub const OPERATION_CANCELLED: i32 = 1101;
    /// `transaction_too_large`.
    pub const TRANSACTION_TOO_LARGE: i32 = 2101;
    /// `key_too_large`.
    pub const KEY_TOO_LARGE: i32 = 2102;
    /// `value_too_large`.
    pub const VALUE_TOO_LARGE: i32 = 2103;
}

/// How the retry loop treats an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `not_committed` (1020): rerun.
    Conflict,
    /// `commit_unknown_result` (1021): rerun (the first attempt may have been applied).
    UnknownResult,
    /// `transaction_too_old` (1007): rerun on a new read version.
    TooOld,
    /// Any other error FoundationDB says is retryable.
    OtherRetryable,
    /// One of FoundationDB's size limits (2101-2103).
    Limit,
    /// Not retryable.
    Fatal,
}

/// An error from the raw API: FoundationDB's code and whether its `on_error` would retry it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("foundationdb error {code}: {message}")]
pub struct RawError {
    pub code: i32,
    pub message: String,
    pub retryable: bool,
}

impl RawError {
    /// An error as the model raises it: retryable as FoundationDB's `on_error` decides.
    pub fn from_code(code: i32) -> Self {
        let (message, retryable) = match code {
            codes::TRANSACTION_TOO_OLD => (
                "Transaction is too old to perform reads or be committed",
                true,
            ),
            codes::NOT_COMMITTED => (
                "Transaction not committed due to conflict with another transaction",
                true,
            ),
            codes::COMMIT_UNKNOWN_RESULT => ("Transaction may or may not have committed", true),
            codes::OPERATION_CANCELLED => ("Asynchronous operation cancelled", false),
            codes::TRANSACTION_TOO_LARGE => ("Transaction exceeds byte limit", false),
            codes::KEY_TOO_LARGE => ("Key length exceeds limit", false),
            codes::VALUE_TOO_LARGE => ("Value length exceeds limit", false),
            _ => ("Unknown error", false),
        };
        Self {
            code,
            message: message.into(),
            retryable,
        }
    }

    /// The classification of FoundationDB's `on_error`.
    pub fn kind(&self) -> ErrorKind {
        match self.code {
            codes::NOT_COMMITTED => ErrorKind::Conflict,
            codes::COMMIT_UNKNOWN_RESULT => ErrorKind::UnknownResult,
            codes::TRANSACTION_TOO_OLD => ErrorKind::TooOld,
            codes::TRANSACTION_TOO_LARGE | codes::KEY_TOO_LARGE | codes::VALUE_TOO_LARGE => {
                ErrorKind::Limit
            }
            _ if self.retryable => ErrorKind::OtherRetryable,
            _ => ErrorKind::Fatal,
        }
    }
}

pub type RawResult<T> = std::result::Result<T, RawError>;

/// A database handle of the raw API: FoundationDB's `Database`, or the model.
pub trait RawDb: Send + Sync + 'static {
    type Txn: RawTxn;
    /// A new transaction (FoundationDB: `create_transaction`).
    fn create_txn(&self) -> RawResult<Self::Txn>;
    /// A short name for logs and metrics.
    fn name(&self) -> &'static str;
}

/// One transaction of the raw API, exactly the calls the layer makes. Writes are buffered until
/// `commit`; reads see the transaction's own writes (read-your-writes).
pub trait RawTxn: Send + Sync + Sized + 'static {
    /// A point read; `snapshot` reads add no read-conflict range.
    fn get(&self, key: &[u8], snapshot: bool) -> BoxFut<'_, RawResult<Option<Vec<u8>>>>;
    /// A range read with limit and direction; a non-snapshot read adds the range it actually
    /// read (up to the last key returned when the limit cut it) as a read-conflict range.
    fn get_range(
        &self,
        range: RangeRequest,
        snapshot: bool,
    ) -> BoxFut<'_, RawResult<Vec<KeyValue>>>;
    fn set(&self, key: &[u8], value: &[u8]);
    fn clear(&self, key: &[u8]);
    fn clear_range(&self, begin: &[u8], end: &[u8]);
    /// `SetVersionstampedKey`: `key` holds a 10-byte placeholder and ends with its 4-byte
    /// little-endian offset (what `pack_with_versionstamp` produces); the placeholder becomes the
    /// commit versionstamp (commit version, 8 bytes, then batch order, 2 bytes).
    fn set_versionstamped_key(&self, key: &[u8], value: &[u8]);
    /// `SetVersionstampedValue`: the same, in the value.
    fn set_versionstamped_value(&self, key: &[u8], value: &[u8]);
    /// Resolves once `key`'s value differs from the one this transaction sees; armed when the
    /// transaction commits.
    fn watch(&self, key: &[u8]) -> BoxFut<'static, RawResult<()>>;
    /// Commits; on failure hands the transaction back for [`RawTxn::on_error`].
    fn commit(self) -> BoxFut<'static, Result<(), (Self, RawError)>>;
    /// FoundationDB's `on_error`: for a retryable error, backs off and returns the transaction
    /// reset for the next attempt; otherwise returns the error.
    fn on_error(self, error: RawError) -> BoxFut<'static, RawResult<Self>>;
}
