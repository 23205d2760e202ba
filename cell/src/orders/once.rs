//! Order writes that happen once even when their commit is retried. On FoundationDB (and the
//! model) a commit can be applied yet reported `commit_unknown_result`; the store layer then
//! reruns the transaction, which would see its own first effect (the status already moved,
//! the driver already busy) and answer a spurious 409 or `DriverBusy`. Every order write that
//! a rerun would not repeat identically carries a [`WriteOp`]: a transaction id made once per
//! logical operation, before the first attempt, recorded with the outcome in the same
//! transaction (`store::transact_once`), so a retry returns the first outcome.
//!
//! Ids live under `("txid", created_ms, id)` in the cell's subspace and are purged after
//! [`TXN_ID_TTL`] by a background loop (`server::spawn_background`).

use domain::UnixMs;
use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;
use store::keys::Subspace;
use store::{Kv, StoreError, TxnId};

/// How long a transaction id is kept: far beyond any retry of its operation (the layer gives
/// up after 100 attempts, each transaction lives at most 5 s).
pub const TXN_ID_TTL: Duration = Duration::from_secs(3600);

/// The key family of the cell's transaction ids.
pub fn txn_ids() -> Subspace {
    Subspace::new(&("txid",))
}

/// One logical order write: its transaction id, shared by every retry of it, and its time.
#[derive(Debug, Clone)]
pub struct WriteOp {
    pub txn: TxnId,
    pub now: UnixMs,
}

impl WriteOp {
    /// A fresh operation at `now`, with 16 random bytes as its id. Make it once per operation,
    /// outside anything that retries it.
    pub fn new(now: UnixMs) -> Self {
        let mut id = [0u8; 16];
        SystemRandom::new()
            .fill(&mut id)
            .expect("the system random source is available");
        Self::with_id(id, now)
    }

    /// An operation with a chosen id (tests, or an id derived from a client's request).
    pub fn with_id(id: [u8; 16], now: UnixMs) -> Self {
        let created_ms = u64::try_from(now.0).unwrap_or(0);
        Self {
            txn: TxnId::new(&txn_ids(), id, created_ms),
            now,
        }
    }
}

/// Drops the transaction ids older than [`TXN_ID_TTL`] at `now`: one range clear.
pub async fn purge_txn_ids(kv: &dyn Kv, now: UnixMs) -> Result<(), StoreError> {
    let ttl = TXN_ID_TTL.as_millis() as u64;
    let cutoff = u64::try_from(now.0).unwrap_or(0).saturating_sub(ttl);
    store::purge_txn_ids(kv, &txn_ids(), cutoff).await
}
