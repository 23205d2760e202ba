//! The FoundationDB backend (feature `fdb`), on the `foundationdb` crate's own API:
//! `Database::run` with its retry loop, `get_ranges_keyvalues` range reads, versionstamped values
//! and `watch`.
//!
//! # Transactions
//! `transact` runs the closure inside `Database::run`: a conflict, or any retryable FDB error met
//! while reading, reruns the closure on a fresh transaction (at most `retry_limit` attempts, then
//! [`StoreError::TooManyRetries`]). An abort or a store error returns without committing, so
//! nothing is written. A commit whose outcome is unknown (`commit_unknown_result`) is retried by
//! `run`, as FoundationDB prescribes: closures must be idempotent across such retries (the order
//! repository's idempotency keys make order creation so).
//!
//! # Event log
//! Positions must be gap-free per log, so they come from a head counter, `("evh", log)`, read and
//! rewritten in the appending transaction (a non-snapshot read, so two concurrent appenders
//! conflict and FDB retries one of them: positions follow commit order). A versionstamp alone
//! cannot be the position: it is unique and increasing but has gaps (commit versions advance about
//! a million a second) and is unknown until commit. Each event's value still carries the commit
//! versionstamp (`SetVersionstampedValue`, user version = index in the transaction) so an event can
//! be placed against any other versioned FoundationDB data, and stamp order equals position order.
//! The cost: appends to one log serialize on its head key; one log per cell keeps that to the
//! cell's own write rate.
//!
//! # Reads
//! `read_erased` runs the closure on a transaction that is never committed (writes discarded;
//! FoundationDB's read-your-writes applies inside it). FDB transactions live at most 5 s.

use std::sync::{Arc, Mutex, PoisonError};

use foundationdb::options::{MutationType, StreamingMode, TransactionOption};
use foundationdb::{Database, FdbBindingError, FdbError, RangeOption, Transaction};
use futures::StreamExt;

use crate::keys::{self, Bytes, Versionstamp};
use crate::{
    AnyBox, BoxFut, ErasedResult, ErasedTxnFn, Event, KeyValue, Kv, LogId, LogPos, RangeRequest,
    Result, StoreError, Txn, TxnError,
};

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

/// The FoundationDB backend.
pub struct FdbStore {
    db: Database,
    opts: FdbOptions,
}

impl FdbStore {
    /// Connects with `cluster_file` (the client default, `/etc/foundationdb/fdb.cluster`, when
    /// `None`). The network must be running ([`boot_network`]).
    pub fn open(cluster_file: Option<&std::path::Path>, opts: FdbOptions) -> Result<Self> {
        let path = cluster_file.map(|p| p.to_string_lossy().into_owned());
        let db = Database::new(path.as_deref()).map_err(fdb_error)?;
        Ok(Self { db, opts })
    }

    fn binding_error(&self, e: FdbBindingError) -> StoreError {
        match e.get_fdb_error() {
            // not_committed after the retry limit: still conflicting.
            Some(f) if f.code() == 1020 => StoreError::TooManyRetries {
                attempts: self.opts.retry_limit,
            },
            Some(f) => fdb_error(f),
            None => StoreError::Backend(e.to_string()),
        }
    }
}

fn fdb_error(e: FdbError) -> StoreError {
    StoreError::Backend(format!("foundationdb error {}: {}", e.code(), e.message()))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn corrupt(key: &[u8], reason: String) -> StoreError {
    StoreError::Corrupt {
        key: format!("{key:?}"),
        reason,
    }
}

/// A [`Txn`] over one FoundationDB transaction attempt.
struct FdbTxn<'a> {
    trx: &'a Transaction,
    events: Mutex<Vec<(LogId, Vec<u8>)>>,
    /// The FDB error a read failed with, so the retry loop can judge it.
    failed: Mutex<Option<FdbError>>,
}

impl<'a> FdbTxn<'a> {
    fn new(trx: &'a Transaction) -> Self {
        Self {
            trx,
            events: Mutex::new(Vec::new()),
            failed: Mutex::new(None),
        }
    }

    fn fail(&self, e: FdbError) -> StoreError {
        *lock(&self.failed) = Some(e);
        fdb_error(e)
    }

    fn take_failure(&self) -> Option<FdbError> {
        lock(&self.failed).take()
    }

    /// Assigns positions to the appended events and writes them (see the module docs).
    async fn write_events(&self) -> std::result::Result<(), FdbBindingError> {
        let events = std::mem::take(&mut *lock(&self.events));
        let mut logs: Vec<LogId> = events.iter().map(|(l, _)| *l).collect();
        logs.sort();
        logs.dedup();
        for log in logs {
            let head_key = keys::event_head_key(log.0);
            let mut head = match self.trx.get(&head_key, false).await? {
                None => 0,
                Some(v) => keys::decode_head(&v)
                    .map_err(|r| FdbBindingError::CustomError(Box::new(corrupt(&head_key, r))))?,
            };
            for (i, (_, payload)) in events.iter().enumerate().filter(|(_, (l, _))| *l == log) {
                head += 1;
                let stamp = Versionstamp::incomplete(i as u16);
                let value = keys::pack_with_versionstamp(&(stamp, Bytes::from(payload.as_slice())));
                self.trx.atomic_op(
                    &keys::event_key(log.0, head),
                    &value,
                    MutationType::SetVersionstampedValue,
                );
            }
            self.trx.set(&head_key, &keys::encode_head(head));
        }
        Ok(())
    }
}

impl Txn for FdbTxn<'_> {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFut<'a, Result<Option<Vec<u8>>>> {
        let fut = self.trx.get(key, false);
        Box::pin(async move {
            match fut.await {
                Ok(v) => Ok(v.map(|s| s.to_vec())),
                Err(e) => Err(self.fail(e)),
            }
        })
    }

    fn get_range(&self, r: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>> {
        Box::pin(async move {
            if r.begin >= r.end {
                return Ok(Vec::new());
            }
            let opt = RangeOption {
                limit: (r.limit > 0).then_some(r.limit),
                reverse: r.reverse,
                mode: StreamingMode::WantAll,
                ..RangeOption::from((r.begin.clone(), r.end.clone()))
            };
            let mut stream = self.trx.get_ranges_keyvalues(opt, false);
            let mut out = Vec::new();
            while let Some(kv) = stream.next().await {
                let kv = kv.map_err(|e| self.fail(e))?;
                out.push(KeyValue {
                    key: kv.key().to_vec(),
                    value: kv.value().to_vec(),
                });
            }
            Ok(out)
        })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.trx.set(key, value);
    }

    fn clear(&self, key: &[u8]) {
        self.trx.clear(key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        if begin < end {
            self.trx.clear_range(begin, end);
        }
    }

    fn append_event(&self, log: LogId, payload: &[u8]) {
        lock(&self.events).push((log, payload.to_vec()));
    }
}

/// The closure ended the transaction without an FDB error (abort or store error): carried out
/// of `Database::run` through a side slot, since `run` only passes `FdbBindingError`s.
#[derive(Debug, thiserror::Error)]
#[error("transaction closure returned an error")]
struct ClosureEnded;

impl Kv for FdbStore {
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        Box::pin(async move {
            let ended: Arc<Mutex<Option<TxnError<AnyBox>>>> = Arc::default();
            let limit = self.opts.retry_limit.min(i32::MAX as u32) as i32;
            let run = self
                .db
                .run(|trx, _maybe_committed| {
                    let (f, ended) = (f.clone(), ended.clone());
                    async move {
                        trx.set_option(TransactionOption::RetryLimit(limit))?;
                        let txn = FdbTxn::new(&trx);
                        let result = f(&txn).await;
                        if let Some(e) = txn.take_failure() {
                            // A read failed: let `run` retry it if FDB says it may.
                            return Err(FdbBindingError::from(e));
                        }
                        match result {
                            Ok(v) => {
                                txn.write_events().await?;
                                Ok(v)
                            }
                            Err(e) => {
                                *lock(&ended) = Some(e);
                                Err(FdbBindingError::CustomError(Box::new(ClosureEnded)))
                            }
                        }
                    }
                })
                .await;
            match run {
                Ok(v) => Ok(v),
                Err(e) => match lock(&ended).take() {
                    Some(ended) => Err(ended),
                    None => Err(TxnError::Store(self.binding_error(e))),
                },
            }
        })
    }

    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        Box::pin(async move {
            let mut trx = self.db.create_trx().map_err(fdb_error)?;
            for _ in 0..self.opts.retry_limit.max(1) {
                let (result, failure) = {
                    let txn = FdbTxn::new(&trx);
                    let result = f(&txn).await;
                    (result, txn.take_failure())
                };
                match failure {
                    // Never committed: whatever the closure wrote is dropped with `trx`.
                    None => return result,
                    Some(e) => trx = trx.on_error(e).await.map_err(fdb_error)?,
                }
            }
            Err(TxnError::Store(StoreError::TooManyRetries {
                attempts: self.opts.retry_limit,
            }))
        })
    }

    fn read_events(
        &self,
        log: LogId,
        from: LogPos,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<Event>>> {
        Box::pin(async move {
            let Ok(from) = u64::try_from(from.0.max(1)) else {
                return Ok(Vec::new());
            };
            let begin = keys::event_key(log.0, from);
            let end = keys::prefix_end(&keys::event_prefix(log.0));
            let rows = self
                .db
                .run(|trx, _| {
                    let (begin, end) = (begin.clone(), end.clone());
                    async move {
                        let txn = FdbTxn::new(&trx);
                        let range = RangeRequest {
                            begin,
                            end,
                            limit,
                            reverse: false,
                        };
                        let rows = txn.get_range(range).await;
                        match txn.take_failure() {
                            Some(e) => Err(FdbBindingError::from(e)),
                            None => rows.map_err(|e| FdbBindingError::CustomError(Box::new(e))),
                        }
                    }
                })
                .await
                .map_err(|e| self.binding_error(e))?;
            rows.into_iter()
                .map(|kv| {
                    let (_, _, pos): (String, u16, u64) =
                        keys::unpack(&kv.key).map_err(|e| corrupt(&kv.key, format!("{e:?}")))?;
                    let (_, payload) =
                        keys::decode_event_value(&kv.value).map_err(|r| corrupt(&kv.key, r))?;
                    Ok(Event {
                        pos: LogPos(u128::from(pos)),
                        payload,
                    })
                })
                .collect()
        })
    }

    fn log_head(&self, log: LogId) -> BoxFut<'_, Result<LogPos>> {
        Box::pin(async move {
            let key = keys::event_head_key(log.0);
            let v = self
                .db
                .run(|trx, _| {
                    let key = key.clone();
                    async move { Ok(trx.get(&key, false).await?.map(|v| v.to_vec())) }
                })
                .await
                .map_err(|e| self.binding_error(e))?;
            match v {
                None => Ok(LogPos(0)),
                Some(v) => keys::decode_head(&v)
                    .map(|h| LogPos(u128::from(h)))
                    .map_err(|r| corrupt(&key, r)),
            }
        })
    }

    fn wait_for_events(&self, log: LogId, after: LogPos) -> BoxFut<'_, Result<LogPos>> {
        Box::pin(async move {
            let key = keys::event_head_key(log.0);
            loop {
                // Read the head and, if nothing is new, arm a watch in the same transaction: the
                // watch fires on any change after that read version, so no commit is missed.
                let (head, watch) = self
                    .db
                    .run(|trx, _| {
                        let key = key.clone();
                        async move {
                            let head = match trx.get(&key, false).await? {
                                None => 0,
                                Some(v) => keys::decode_head(&v).map_err(|r| {
                                    FdbBindingError::CustomError(Box::new(corrupt(&key, r)))
                                })?,
                            };
                            let watch = (u128::from(head) <= after.0).then(|| trx.watch(&key));
                            Ok((head, watch))
                        }
                    })
                    .await
                    .map_err(|e| self.binding_error(e))?;
                match watch {
                    None => return Ok(LogPos(u128::from(head))),
                    Some(w) => w.await.map_err(fdb_error)?,
                }
            }
        })
    }

    fn backend_name(&self) -> &'static str {
        "fdb"
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use super::*;

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
