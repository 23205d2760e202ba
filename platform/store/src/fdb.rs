//! The FoundationDB backend (feature `fdb`): the raw API of [`crate::fdbsem`] forwarded to the
//! `foundationdb` crate, under the shared layer [`SemStore`]. Everything above the raw calls
//! (the retry loop and its error classification, FoundationDB's limits, the versionstamped event
//! log and its signal key, `read_events`/`log_head`/`wait_for_events`) is the layer's, the very
//! code the model (`store::model`) tests; see `fdbsem` for how the event log works without a
//! hot key (no head counter: positions are commit versionstamps).
//!
//! Only this file touches the `foundationdb` crate: `Database::create_trx`, `Transaction::get`
//! and `get_ranges_keyvalues` (with FoundationDB's snapshot flag), `set`/`clear`/`clear_range`,
//! `atomic_op` with `SetVersionstampedKey`/`SetVersionstampedValue`, `watch`, `commit`, and
//! `on_error` (FoundationDB's own backoff and retry decision, on the failed commit's transaction).
//! It is type-checked here (`cargo check -p store --features fdb`), never run: no cluster can be
//! installed on these machines.

use foundationdb::options::{MutationType, StreamingMode};
use foundationdb::{Database, FdbError, RangeOption, Transaction, TransactionCommitError};
use futures::StreamExt;

use crate::fdbsem::{RawDb, RawError, RawResult, RawTxn, SemOptions, SemStore};
use crate::{BoxFut, KeyValue, RangeRequest, Result, StoreError};

/// The FoundationDB client network (one per process). Dropping it stops the network.
pub struct FdbNetwork(#[allow(dead_code)] foundationdb::api::NetworkAutoStop);

/// Starts the FoundationDB client network thread. Call it once per process, before
/// [`FdbStore::open`].
///
/// # Safety
/// The returned guard must be dropped before the process exits (not needed when it aborts), as
/// `foundationdb::boot` requires.
pub unsafe fn boot_network() -> FdbNetwork {
    // SAFETY: forwarded to our caller (see above).
    FdbNetwork(unsafe { foundationdb::boot() })
}

/// Tuning of the FoundationDB backend.
#[derive(Debug, Clone)]
pub struct FdbOptions {
    /// Attempts of one transaction before [`StoreError::TooManyRetries`].
    pub retry_limit: u32,
}

impl Default for FdbOptions {
    fn default() -> Self {
        Self { retry_limit: 100 }
    }
}

/// The FoundationDB backend: the shared layer over a cluster.
pub type FdbStore = SemStore<FdbDb>;

/// A cluster connection, the raw database of [`FdbStore`].
pub struct FdbDb {
    db: Database,
}

impl SemStore<FdbDb> {
    /// Connects with `cluster_file` (the client default, `/etc/foundationdb/fdb.cluster`, when
    /// `None`). The network must be running ([`boot_network`]).
    pub fn open(cluster_file: Option<&std::path::Path>, opts: FdbOptions) -> Result<Self> {
        let path = cluster_file.map(|p| p.to_string_lossy().into_owned());
        let db =
            Database::new(path.as_deref()).map_err(|e| StoreError::Backend(raw(e).to_string()))?;
        Ok(SemStore::new(
            FdbDb { db },
            SemOptions {
                retry_limit: opts.retry_limit,
            },
        ))
    }
}

fn raw(e: FdbError) -> RawError {
    RawError {
        code: e.code(),
        message: e.message().to_string(),
        retryable: e.is_retryable(),
    }
}

impl RawDb for FdbDb {
    type Txn = FdbTxn;

    fn create_txn(&self) -> RawResult<FdbTxn> {
        Ok(FdbTxn::Open(self.db.create_trx().map_err(raw)?))
    }

    fn name(&self) -> &'static str {
        "fdb"
    }
}

/// One FoundationDB transaction; after a failed commit it holds the commit error, whose
/// `on_error` gives the transaction back for the next attempt.
pub enum FdbTxn {
    Open(Transaction),
    Failed(TransactionCommitError),
}

/// The layer only calls `on_error` on a transaction whose commit failed; anything else is a bug.
fn used_after_failure() -> RawError {
    RawError {
        code: 2000,
        message: "client_invalid_operation: transaction used after a failed commit".into(),
        retryable: false,
    }
}

impl FdbTxn {
    fn trx(&self) -> RawResult<&Transaction> {
        match self {
            FdbTxn::Open(t) => Ok(t),
            FdbTxn::Failed(_) => Err(used_after_failure()),
        }
    }

    fn with(&self, f: impl FnOnce(&Transaction)) {
        if let FdbTxn::Open(t) = self {
            f(t);
        }
    }
}

impl RawTxn for FdbTxn {
    fn get(&self, key: &[u8], snapshot: bool) -> BoxFut<'_, RawResult<Option<Vec<u8>>>> {
        let fut = self.trx().map(|t| t.get(key, snapshot));
        Box::pin(async move { Ok(fut?.await.map_err(raw)?.map(|v| v.to_vec())) })
    }

    fn get_range(&self, r: RangeRequest, snapshot: bool) -> BoxFut<'_, RawResult<Vec<KeyValue>>> {
        Box::pin(async move {
            let trx = self.trx()?;
            if r.begin >= r.end {
                return Ok(Vec::new());
            }
            let opt = RangeOption {
                limit: (r.limit > 0).then_some(r.limit),
                reverse: r.reverse,
                mode: StreamingMode::WantAll,
                ..RangeOption::from((r.begin.clone(), r.end.clone()))
            };
            let mut stream = trx.get_ranges_keyvalues(opt, snapshot);
            let mut out = Vec::new();
            while let Some(kv) = stream.next().await {
                let kv = kv.map_err(raw)?;
                out.push(KeyValue {
                    key: kv.key().to_vec(),
                    value: kv.value().to_vec(),
                });
            }
            Ok(out)
        })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.with(|t| t.set(key, value));
    }

    fn clear(&self, key: &[u8]) {
        self.with(|t| t.clear(key));
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.with(|t| t.clear_range(begin, end));
    }

    fn set_versionstamped_key(&self, key: &[u8], value: &[u8]) {
        self.with(|t| t.atomic_op(key, value, MutationType::SetVersionstampedKey));
    }

    fn set_versionstamped_value(&self, key: &[u8], value: &[u8]) {
        self.with(|t| t.atomic_op(key, value, MutationType::SetVersionstampedValue));
    }

    fn watch(&self, key: &[u8]) -> BoxFut<'static, RawResult<()>> {
        let w = self.trx().map(|t| t.watch(key));
        Box::pin(async move { w?.await.map_err(raw) })
    }

    fn commit(self) -> BoxFut<'static, std::result::Result<(), (Self, RawError)>> {
        Box::pin(async move {
            let trx = match self {
                FdbTxn::Open(t) => t,
                failed @ FdbTxn::Failed(_) => {
                    return Err((failed, used_after_failure()));
                }
            };
            match trx.commit().await {
                Ok(_) => Ok(()),
                Err(e) => {
                    let err = raw(*e);
                    Err((FdbTxn::Failed(e), err))
                }
            }
        })
    }

    fn on_error(self, error: RawError) -> BoxFut<'static, RawResult<Self>> {
        Box::pin(async move {
            let trx = match self {
                FdbTxn::Failed(e) => e.on_error().await,
                FdbTxn::Open(t) => t.on_error(FdbError::from_code(error.code)).await,
            };
            trx.map(FdbTxn::Open).map_err(raw)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use super::*;
    use crate::Kv;

    /// The network stays up for the test process; it is never stopped (the process exits).
    static NETWORK: OnceLock<FdbNetwork> = OnceLock::new();

    async fn open_cluster() -> Option<(Arc<dyn Kv>, ())> {
        let Some(path) = std::env::var_os("FDB_CLUSTER_FILE") else {
            eprintln!("skipping FoundationDB conformance: FDB_CLUSTER_FILE is not set");
            return None;
        };
        // SAFETY: booted once per process; the test harness exits the process when done.
        NETWORK.get_or_init(|| unsafe { boot_network() });
        let store = FdbStore::open(Some(std::path::Path::new(&path)), FdbOptions::default())
            .expect("open FoundationDB");
        Some((Arc::new(store), ()))
    }

    crate::conformance_tests!(open_cluster());
}
