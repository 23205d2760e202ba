//! Transactions whose effect happens once even when a commit is retried after
//! `commit_unknown_result`: FoundationDB's documented pattern. The caller names the operation
//! with a [`TxnId`] made once (before the first attempt); inside the same transaction the store
//! first reads the id's key: if it is there, an earlier attempt committed, and its recorded
//! outcome is returned without running the closure again; otherwise the closure runs and the id's
//! key is written with the outcome in the same transaction, so the effect and its record commit
//! together or not at all. Generic over [`Kv`]: it works on every backend.
//!
//! Ids live in a subspace of the caller's own (one per key family that needs them) as
//! `(created_ms, id)`, so [`purge_txn_ids`] drops the old ones with one range clear.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::keys::{Bytes, Subspace};
use crate::{BoxFut, Kv, StoreError, Txn, TxnError};

/// The id of one logical write, stable across its retries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TxnId {
    key: Vec<u8>,
}

impl TxnId {
    /// Id `id` (16 random bytes, or any 16 bytes unique to the operation) in `space`, a
    /// subspace holding nothing but ids; `created_ms` (milliseconds since the Unix epoch, passed
    /// in by the caller) dates it for [`purge_txn_ids`].
    pub fn new(space: &Subspace, id: [u8; 16], created_ms: u64) -> Self {
        Self {
            key: space.pack(&(created_ms, Bytes::from(&id[..]))),
        }
    }

    /// The key the outcome is recorded under.
    pub fn key(&self) -> &[u8] {
        &self.key
    }
}

/// Runs `f` like [`transact`](crate::transact), at most once per `id`: a retry (or a second
/// call with the same id) after a commit that did happen returns the outcome recorded then,
/// decoded from JSON, without running `f`. An abort or error commits nothing, id included.
pub async fn transact_once<T, E, F>(
    kv: &dyn Kv,
    id: &TxnId,
    f: F,
) -> std::result::Result<T, TxnError<E>>
where
    T: Serialize + DeserializeOwned + Send + 'static,
    E: Send + 'static,
    F: for<'t> Fn(&'t dyn Txn) -> BoxFut<'t, std::result::Result<T, TxnError<E>>>
        + Send
        + Sync
        + 'static,
{
    let key = id.key.clone();
    let f = Arc::new(f);
    crate::transact(kv, move |txn| {
        let (key, f) = (key.clone(), f.clone());
        Box::pin(async move {
            if let Some(recorded) = txn.get(&key).await? {
                return serde_json::from_slice(&recorded).map_err(|e| {
                    TxnError::Store(StoreError::Corrupt {
                        key: format!("{key:?}"),
                        reason: format!("recorded transaction outcome: {e}"),
                    })
                });
            }
            let outcome = f(txn).await?;
            let encoded = serde_json::to_vec(&outcome).map_err(|e| {
                TxnError::Store(StoreError::Backend(format!(
                    "encoding a transaction outcome: {e}"
                )))
            })?;
            txn.set(&key, &encoded);
            Ok(outcome)
        })
    })
    .await
}

/// Removes the ids in `space` created before `older_than_ms`: one range clear. Purge only ids
/// whose operations can no longer be retried (well past the callers' retry horizon).
pub async fn purge_txn_ids(
    kv: &dyn Kv,
    space: &Subspace,
    older_than_ms: u64,
) -> Result<(), StoreError> {
    let begin = space.bytes().to_vec();
    // `(t, id)` sorts before `(older_than_ms,)` exactly when `t < older_than_ms`.
    let end = space.pack(&(older_than_ms,));
    crate::transact(kv, move |txn| {
        let (begin, end) = (begin.clone(), end.clone());
        Box::pin(async move {
            txn.clear_range(&begin, &end);
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .map_err(|e| match e {
        TxnError::Store(e) => e,
        TxnError::Abort(()) => StoreError::Backend("purge aborted".into()),
    })
}
