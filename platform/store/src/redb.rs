//! The embedded default backend: one redb file, one ordered table of raw bytes (the layout
//! FoundationDB would hold), a single writer thread with group commit.
//!
//! # Group commit
//! `transact` sends the closure to the writer thread and awaits the answer. The writer takes
//! every job that is queued (up to `max_batch`), runs them one after another in ONE redb write
//! transaction, then commits it once with `Durability::Immediate` (fsync) and only then answers
//! all of them. While it is fsyncing, new jobs queue up and form the next batch, so under load
//! many transactions share one fsync; with a single writer it degrades to one fsync per commit.
//! When the previous batch held more than one job, the writer lingers (at most `linger_max`,
//! while jobs keep arriving within `linger_gap`) so the callers it just answered land in one
//! batch instead of alternating between two half-full fsyncs.
//!
//! Background transactions (sent inside [`crate::priority::background`]) do not join the batch
//! being formed: they wait in the writer, and each commit takes at most
//! `background_per_batch` of them (oldest first), so work nobody waits on adds a bounded
//! amount to the commits requests wait for. They still commit within a few batches: every
//! batch takes some, and the writer does not sleep while any wait.
//!
//! Each job runs against an [`OverlayTxn`]: it reads the batch's write transaction (so it sees
//! every earlier job of the batch) through its own write buffer, and its buffer is applied to the
//! table only if the closure returns `Ok`. An aborted, failing or panicking job therefore writes
//! nothing, events included. Jobs run strictly one at a time on the current state, so the
//! schedule is serial: serializable with no conflicts to retry.
//!
//! # What a reader can see
//! Readers (`read_erased`, `read_events`, `log_head`) use redb read transactions: an MVCC
//! snapshot of the last *committed* write transaction. The only commits are the durable batch
//! commits, so a reader never sees data that a crash could take away. Every answer of a batch,
//! aborts included (an abort may be decided on an earlier job's writes), is sent after the fsync.
//! A failed commit fails every job of its batch.
//!
//! # Event log
//! Positions are assigned when a successful job's writes are applied, from the head key
//! `("evh", log)` of the batch's write transaction: strictly in commit order, gap-free (a job
//! that fails assigns nothing; a batch that fails to commit leaves the heads where they were).
//! `wait_for_events` subscribers are woken after the fsync.
//!
//! # Faults
//! A batch that fails (an I/O error in a write or in the commit's fsync, the disk is full)
//! answers every job of the batch with an error, so nothing of it is acknowledged. redb then
//! refuses every later operation (`PreviousIo`) until the database is reopened, so the writer
//! marks the store faulty (`transact` fails fast with [`StoreError::Unavailable`], [`Kv::fault`]
//! gives the reason) and recovers by itself (`redb/recover.rs`): it reopens the file so reads
//! are served again, then retries a small durable probe write with backoff until one commits.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Instant;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use tokio::sync::{oneshot, watch};

use crate::limits;
use crate::overlay::{Base, OverlayTxn};
use crate::{
    BoxFut, ErasedResult, ErasedTxnFn, Event, Kv, LogId, LogPos, Result, StoreError, TxnError, keys,
};
use apply::{Stamper, apply};

/// The single table holding every key.
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// Name of the redb file inside the data directory.
pub const FILE_NAME: &str = "store.redb";

/// Tuning of the embedded backend.
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// redb page cache, bytes.
    pub cache_size: usize,
    /// Most transactions sharing one commit.
    pub max_batch: usize,
    /// Under concurrency, how long the writer may wait for more transactions before starting a
    /// batch (zero: never wait).
    pub linger_max: std::time::Duration,
    /// ... as long as the next one arrives within this gap.
    pub linger_gap: std::time::Duration,
    /// Most background transactions ([`crate::priority`]) one commit carries; the rest wait
    /// for the next. Bounds what background work adds to a commit requests wait for.
    pub background_per_batch: usize,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            cache_size: 256 << 20,
            max_batch: 1024,
            linger_max: std::time::Duration::from_micros(500),
            linger_gap: std::time::Duration::from_micros(100),
            background_per_batch: 8,
        }
    }
}

struct Job {
    /// Sent from inside [`crate::priority::background`].
    background: bool,
    f: ErasedTxnFn,
    reply: oneshot::Sender<ErasedResult>,
}

/// Counters of the group commit, for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Durable commits (fsyncs) of the writer.
    pub batches: u64,
    /// Transactions those commits carried (aborted ones included).
    pub transactions: u64,
    /// Time the writer spent running closures and applying their writes, µs.
    pub run_micros: u64,
    /// Time the writer spent in redb's durable commit (fsync), µs.
    pub commit_micros: u64,
}

struct Shared {
    /// The open database; `None` while the writer reopens it after a fault. Readers clone the
    /// `Arc` for the length of one read.
    db: RwLock<Option<Arc<redb::Database>>>,
    /// Set after a failed commit until a probe write commits again; writes fail fast while set.
    faulty: AtomicBool,
    /// Why the store is faulty, for `/ready` and logs.
    fault: Mutex<Option<String>>,
    cache_size: usize,
    batches: AtomicU64,
    transactions: AtomicU64,
    run_micros: AtomicU64,
    commit_micros: AtomicU64,
    path: PathBuf,
    /// One watch per log someone waits on, holding the durable head.
    watches: Mutex<HashMap<u16, watch::Sender<u64>>>,
}

/// The embedded backend. Dropping it stops the writer (after the queued jobs) and closes the
/// file.
pub struct RedbStore {
    shared: Arc<Shared>,
    jobs: Option<mpsc::Sender<Job>>,
    writer: Option<JoinHandle<()>>,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Opens (creating if needed) the redb file; a held lock is [`StoreError::AlreadyOpen`].
fn open_db(path: &Path, cache_size: usize) -> Result<redb::Database> {
    redb::Database::builder()
        .set_cache_size(cache_size)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
                path: path.parent().unwrap_or(path).display().to_string(),
            },
            e => backend(format!("opening {}: {e}", path.display())),
        })
}

impl RedbStore {
    /// Opens (creating if needed) the store in `dir`. Fails with [`StoreError::AlreadyOpen`]
    /// when another process (or another `RedbStore`) holds it.
    pub fn open(dir: &Path, opts: RedbOptions) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| backend(format!("creating {}: {e}", dir.display())))?;
        let path = dir.join(FILE_NAME);
        let db = open_db(&path, opts.cache_size)?;
        let w = db.begin_write().map_err(backend)?;
        w.open_table(DATA).map_err(backend)?;
        w.commit().map_err(backend)?;
        metrics::gauge!("store_healthy").set(1.0);

        let shared = Arc::new(Shared {
            db: RwLock::new(Some(Arc::new(db))),
            faulty: AtomicBool::new(false),
            fault: Mutex::new(None),
            cache_size: opts.cache_size,
            batches: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
            run_micros: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            path,
            watches: Mutex::new(HashMap::new()),
        });
        let (tx, rx) = mpsc::channel();
        let runtime = tokio::runtime::Handle::try_current().ok();
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer::writer_loop(&writer_shared, &rx, runtime, &opts))
            .map_err(backend)?;
        Ok(Self {
            shared,
            jobs: Some(tx),
            writer: Some(writer),
        })
    }

    /// The redb file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// How many commits the writer made and how many transactions they carried.
    pub fn commit_stats(&self) -> CommitStats {
        CommitStats {
            batches: self.shared.batches.load(Ordering::Relaxed),
            transactions: self.shared.transactions.load(Ordering::Relaxed),
            run_micros: self.shared.run_micros.load(Ordering::Relaxed),
            commit_micros: self.shared.commit_micros.load(Ordering::Relaxed),
        }
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Shared {
    /// The open database, or `Unavailable` while the writer reopens it.
    fn db(&self) -> Result<Arc<redb::Database>> {
        let db = self.db.read().unwrap_or_else(PoisonError::into_inner);
        db.clone().ok_or_else(|| self.unavailable())
    }

    /// The error for a refused operation while faulty.
    fn unavailable(&self) -> StoreError {
        StoreError::Unavailable {
            reason: lock(&self.fault)
                .clone()
                .unwrap_or_else(|| "the store is recovering".into()),
        }
    }

    /// A read error while faulty is the fault (redb fails reads with `PreviousIo` too).
    fn read_error(&self, e: impl std::fmt::Display) -> StoreError {
        if self.faulty.load(Ordering::Acquire) {
            self.unavailable()
        } else {
            backend(e)
        }
    }

    fn read_head(&self, log: LogId) -> Result<u64> {
        let rtx = self.db()?.begin_read().map_err(|e| self.read_error(e))?;
        let table = rtx.open_table(DATA).map_err(backend)?;
        head_in(&table, log)
    }
}

fn head_in(table: &impl ReadableTable<&'static [u8], &'static [u8]>, log: LogId) -> Result<u64> {
    let key = keys::event_head_key(log.0);
    match table.get(key.as_slice()).map_err(backend)? {
        None => Ok(0),
        Some(v) => keys::decode_head(v.value()).map_err(|reason| StoreError::Corrupt {
            key: format!("{key:?}"),
            reason,
        }),
    }
}

/// A redb table (read-only or in the write transaction) as an overlay base.
impl<T> Base for Mutex<T>
where
    T: ReadableTable<&'static [u8], &'static [u8]> + Send,
{
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = lock(self);
        Ok(t.get(key).map_err(backend)?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let t = lock(self);
        let range = t.range::<&[u8]>(begin..end).map_err(backend)?;
        let mut visit = |item: std::result::Result<_, redb::StorageError>| -> Result<bool> {
            let (k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>) =
                item.map_err(backend)?;
            Ok(f(k.value(), v.value()))
        };
        if reverse {
            for item in range.rev() {
                if !visit(item)? {
                    break;
                }
            }
        } else {
            for item in range {
                if !visit(item)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

fn micros(d: std::time::Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// Runs and commits one batch; on a failed commit every job was answered with the error, which
/// is returned so the writer recovers before the next batch.
fn run_batch(shared: &Shared, batch: Vec<Job>) -> Result<()> {
    let started = Instant::now();
    let n = batch.len();
    let mut results: Vec<ErasedResult> = Vec::with_capacity(n);
    let mut heads = HashMap::new();
    let outcome = (|| -> Result<()> {
        let wtx = shared.db()?.begin_write().map_err(backend)?;
        {
            let txn = OverlayTxn::new(Mutex::new(wtx.open_table(DATA).map_err(backend)?));
            let mut stamper = Stamper { seq: None };
            for (i, job) in batch.iter().enumerate() {
                // The transaction's age runs from its start on the writer, as FoundationDB's
                // runs from the read version, not from when the caller queued it.
                let job_started = Instant::now();
                let run = catch_unwind(AssertUnwindSafe(|| {
                    futures::executor::block_on((job.f)(&txn))
                }));
                let writes = txn.take_writes();
                let result = run
                    .unwrap_or_else(|_| {
                        Err(TxnError::Store(StoreError::Backend(
                            "transaction closure panicked".into(),
                        )))
                    })
                    .and_then(|v| {
                        writes.size.check_sizes()?;
                        limits::check_age(job_started.elapsed())?;
                        Ok(v)
                    });
                if result.is_ok() {
                    let mut table = lock(&txn.base);
                    apply(&mut table, writes, i, &mut stamper, &mut heads)?;
                }
                results.push(result);
            }
        }
        let committing = Instant::now();
        shared
            .run_micros
            .fetch_add(micros(committing - started), Ordering::Relaxed);
        wtx.commit().map_err(backend)?;
        shared
            .commit_micros
            .fetch_add(micros(committing.elapsed()), Ordering::Relaxed);
        Ok(())
    })();
    metrics::histogram!("store_commit_batch_size").record(n as f64);
    metrics::histogram!("store_commit_seconds").record(started.elapsed().as_secs_f64());

    match outcome {
        Ok(()) => {
            shared.batches.fetch_add(1, Ordering::Relaxed);
            shared.transactions.fetch_add(n as u64, Ordering::Relaxed);
            let watches = lock(&shared.watches);
            for (log, head) in &heads {
                if let Some(w) = watches.get(log) {
                    w.send_modify(|h| *h = (*h).max(*head));
                }
            }
            drop(watches);
            for (job, result) in batch.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
            Ok(())
        }
        Err(e) => {
            // Not one job of the batch is acknowledged: its writes may not be durable.
            tracing::error!(error = %e, jobs = n, "store commit failed; refusing writes until the store recovers");
            metrics::counter!("store_commit_failures_total").increment(1);
            let reason = format!("commit failed: {e}");
            recover::set_fault(shared, reason.clone());
            for job in batch {
                let _ = job.reply.send(Err(TxnError::Store(StoreError::Unavailable {
                    reason: reason.clone(),
                })));
            }
            Err(e)
        }
    }
}

impl Kv for RedbStore {
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        Box::pin(async move {
            let (reply, answer) = oneshot::channel();
            let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
            if self.shared.faulty.load(Ordering::Acquire) {
                return Err(TxnError::Store(self.shared.unavailable()));
            }
            let background = crate::priority::is_background();
            jobs.send(Job {
                background,
                f,
                reply,
            })
            .map_err(|_| StoreError::Closed)?;
            answer.await.map_err(|_| StoreError::Closed)?
        })
    }

    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        Box::pin(async move {
            let shared = &self.shared;
            let rtx = shared
                .db()?
                .begin_read()
                .map_err(|e| shared.read_error(e))?;
            let table = rtx.open_table(DATA).map_err(|e| shared.read_error(e))?;
            let started = Instant::now();
            let txn = OverlayTxn::new(Mutex::new(table));
            let v = f(&txn).await.map_err(|e| match e {
                TxnError::Store(StoreError::Backend(b)) => TxnError::Store(shared.read_error(b)),
                e => e,
            })?;
            // Its writes are discarded (never committed), so only its age counts.
            limits::check_age(started.elapsed())?;
            Ok(v)
        })
    }

    fn read_events(
        &self,
        log: LogId,
        from: LogPos,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<Event>>> {
        Box::pin(async move {
            let shared = &self.shared;
            let rtx = shared
                .db()?
                .begin_read()
                .map_err(|e| shared.read_error(e))?;
            let table = rtx.open_table(DATA).map_err(|e| shared.read_error(e))?;
            // Embedded positions are u64 counters: a `from` past them reads nothing.
            let Ok(from) = u64::try_from(from.0.max(1)) else {
                return Ok(Vec::new());
            };
            let begin = keys::event_key(log.0, from);
            let end = keys::prefix_end(&keys::event_prefix(log.0));
            let limit = if limit == 0 { usize::MAX } else { limit };
            let mut out = Vec::new();
            for item in table
                .range::<&[u8]>(begin.as_slice()..end.as_slice())
                .map_err(backend)?
                .take(limit)
            {
                let (k, v) = item.map_err(|e| shared.read_error(e))?;
                let corrupt = |reason: String| StoreError::Corrupt {
                    key: format!("{:?}", k.value()),
                    reason,
                };
                let (_, _, pos): (String, u16, u64) =
                    keys::unpack(k.value()).map_err(|e| corrupt(format!("{e:?}")))?;
                let (_, payload) = keys::decode_event_value(v.value()).map_err(corrupt)?;
                out.push(Event {
                    pos: LogPos(u128::from(pos)),
                    payload,
                });
            }
            Ok(out)
        })
    }

    fn log_head(&self, log: LogId) -> BoxFut<'_, Result<LogPos>> {
        Box::pin(async move { self.shared.read_head(log).map(|h| LogPos(u128::from(h))) })
    }

    fn wait_for_events(&self, log: LogId, after: LogPos) -> BoxFut<'_, Result<LogPos>> {
        Box::pin(async move {
            let mut rx = {
                // The writer notifies under this lock after its commit, so reading the head
                // while holding it cannot miss a commit.
                let mut watches = lock(&self.shared.watches);
                match watches.get(&log.0) {
                    Some(w) => w.subscribe(),
                    None => {
                        let (tx, rx) = watch::channel(self.shared.read_head(log)?);
                        watches.insert(log.0, tx);
                        rx
                    }
                }
            };
            let head = rx
                .wait_for(|h| u128::from(*h) > after.0)
                .await
                .map_err(|_| StoreError::Closed)?;
            Ok(LogPos(u128::from(*head)))
        })
    }

    fn backend_name(&self) -> &'static str {
        "redb"
    }

    /// The data directory is locked while the store is open.
    fn exclusive_to_this_process(&self) -> bool {
        true
    }

    fn commit_stats(&self) -> Option<CommitStats> {
        Some(RedbStore::commit_stats(self))
    }

    fn fault(&self) -> Option<String> {
        if self.shared.faulty.load(Ordering::Acquire) {
            Some(lock(&self.shared.fault).clone().unwrap_or_default())
        } else {
            None
        }
    }
}

mod apply;
mod recover;
#[cfg(test)]
mod tests;
mod writer;
