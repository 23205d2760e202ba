//! The cell map in the store: the current map and one audit entry per version, written in
//! the same transaction, so the audit log can never disagree with the map. Production keeps
//! it in FoundationDB (every router instance then reads the same map); the default is the
//! embedded store.
//!
//! # Keys
//! Under the shared subspace `("g", "map")` ([`SPACE`]), so cells on the same cluster never
//! touch it: `("current",)` → the map (JSON), `("audit", version)` → its [`AuditEntry`].

use cellmap::{AuditEntry, CellMap, Change, MapError};
use std::sync::Arc;
use store::keys::{Subspace, pack};
use store::{Kv, RangeRequest, StoreError, SubspaceKv, TxnError};

/// Name of the map's shared subspace.
pub const SPACE: &str = "map";

fn current_key() -> Vec<u8> {
    pack(&("current",))
}

fn audit_key(version: u64) -> Vec<u8> {
    pack(&("audit", version))
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error(transparent)]
    Map(#[from] MapError),
    /// The caller's view is stale: another change landed first.
    #[error("the map is at version {actual}, not {expected}")]
    Conflict { expected: u64, actual: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored cell map does not decode: {0}")]
    Corrupt(String),
}

impl From<TxnError<CommitError>> for CommitError {
    fn from(e: TxnError<CommitError>) -> Self {
        match e {
            TxnError::Store(s) => CommitError::Store(s),
            TxnError::Abort(c) => c,
        }
    }
}

#[derive(Clone)]
pub struct MapStore {
    kv: Arc<dyn Kv>,
}

fn decode(bytes: Option<Vec<u8>>) -> Result<CellMap, CommitError> {
    match bytes {
        None => Ok(CellMap::default()),
        Some(b) => serde_json::from_slice(&b).map_err(|e| CommitError::Corrupt(e.to_string())),
    }
}

impl MapStore {
    /// The map kept in `kv`, under its shared subspace (see the module doc).
    pub fn new(kv: Arc<dyn Kv>) -> Self {
        Self {
            kv: SubspaceKv::scoped(kv, Subspace::shared(SPACE)),
        }
    }

    /// The current map (version 0 when nothing was ever written).
    pub async fn load(&self) -> Result<CellMap, CommitError> {
        Ok(store::read(&*self.kv, |txn| {
            Box::pin(async move { decode(txn.get(&current_key()).await?).map_err(TxnError::Abort) })
        })
        .await?)
    }

    /// Applies `change` to the stored map and records who did it, atomically. With
    /// `expected`, refuses unless the stored version is exactly that (compare-and-set for
    /// multi-step operations that read the map first).
    pub async fn commit(
        &self,
        expected: Option<u64>,
        change: Change,
        who: String,
        now_ms: i64,
    ) -> Result<CellMap, CommitError> {
        let change = Arc::new(change);
        let who = Arc::new(who);
        Ok(store::transact(&*self.kv, move |txn| {
            let (change, who) = (change.clone(), who.clone());
            Box::pin(async move {
                let cur = decode(txn.get(&current_key()).await?).map_err(TxnError::Abort)?;
                if let Some(e) = expected
                    && e != cur.version
                {
                    return Err(TxnError::Abort(CommitError::Conflict {
                        expected: e,
                        actual: cur.version,
                    }));
                }
                let next = cur.apply(&change).map_err(|e| TxnError::Abort(e.into()))?;
                let entry = AuditEntry {
                    version: next.version,
                    at_ms: now_ms,
                    who: who.to_string(),
                    change: (*change).clone(),
                };
                txn.set(&current_key(), &to_json(&next));
                txn.set(&audit_key(next.version), &to_json(&entry));
                Ok(next)
            })
        })
        .await?)
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn audit(&self, limit: usize) -> Result<Vec<AuditEntry>, CommitError> {
        Ok(store::read(&*self.kv, move |txn| {
            Box::pin(async move {
                let rows = txn
                    .get_range(
                        RangeRequest::prefix(&pack(&("audit",)))
                            .limit(limit)
                            .reverse(),
                    )
                    .await?;
                rows.iter()
                    .map(|kv| {
                        serde_json::from_slice(&kv.value)
                            .map_err(|e| TxnError::Abort(CommitError::Corrupt(e.to_string())))
                    })
                    .collect()
            })
        })
        .await?)
    }
}

/// Our own map and audit types always encode.
fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("map types serialize")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellmap::{CellInfo, RegionKey};
    use domain::{CellId, RegionId};

    fn info(n: u32) -> CellInfo {
        crate::testing::cell_info(n, &format!("c{n}"))
    }

    #[tokio::test]
    async fn commits_are_durable_audited_and_compare_and_set() {
        let dir = tempfile::tempdir().unwrap();
        let region = RegionKey(RegionId::from_latlng(52.5, 13.4).unwrap());
        {
            let kv = store::RedbStore::open(dir.path(), Default::default()).unwrap();
            let s = MapStore::new(Arc::new(kv));
            assert_eq!(s.load().await.unwrap().version, 0);
            let add = |n| Change::AddCell {
                cell: info(n),
                regions: if n == 1 { vec![region] } else { vec![] },
            };
            s.commit(Some(0), add(1), "sre-a".into(), 10).await.unwrap();
            // A stale compare-and-set changes nothing.
            assert!(matches!(
                s.commit(Some(0), add(2), "sre-b".into(), 11).await,
                Err(CommitError::Conflict {
                    expected: 0,
                    actual: 1
                })
            ));
            // A refused change is not audited either.
            assert!(matches!(
                s.commit(None, add(1), "sre-b".into(), 12).await,
                Err(CommitError::Map(MapError::CellExists(_)))
            ));
            s.commit(None, add(2), "sre-b".into(), 13).await.unwrap();
        }
        // Reopened: the map and its history survived.
        let kv = store::RedbStore::open(dir.path(), Default::default()).unwrap();
        let s = MapStore::new(Arc::new(kv));
        let m = s.load().await.unwrap();
        assert_eq!(m.version, 2);
        assert_eq!(m.owner(region.0).unwrap().id, CellId::new(1).unwrap());
        let audit = s.audit(10).await.unwrap();
        assert_eq!(
            audit
                .iter()
                .map(|a| (a.version, a.who.as_str()))
                .collect::<Vec<_>>(),
            vec![(2, "sre-b"), (1, "sre-a")]
        );
    }
}
