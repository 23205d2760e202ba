//! [`SemStore`]: the [`Kv`] implementation over any [`RawDb`] (see the module docs of
//! `fdbsem`): the retry loop, the limits, and the versionstamped event log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::txn::SemTxn;
use super::{ErrorKind, RawDb, RawError, RawResult, RawTxn, codes};
use crate::keys::{self, Versionstamp};
use crate::limits::{self, Clock};
use crate::{
    BoxFut, ErasedResult, ErasedTxnFn, Event, KeyValue, Kv, LogId, LogPos, RangeRequest, Result,
    StoreError,
};

/// Tuning of the layer.
#[derive(Debug, Clone)]
pub struct SemOptions {
    /// Attempts of one transaction before [`StoreError::TooManyRetries`].
    pub retry_limit: u32,
}

impl Default for SemOptions {
    fn default() -> Self {
        Self { retry_limit: 100 }
    }
}

/// What the retry loop saw, since the store was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SemStats {
    /// Successful commits of `transact`.
    pub commits: u64,
    /// Attempts that ended in `not_committed` (a conflict).
    pub conflicts: u64,
    /// Attempts that ended in `commit_unknown_result`.
    pub unknown_results: u64,
    /// Attempts that ended in `transaction_too_old`.
    pub too_old: u64,
    /// Attempts that ended in another retryable error.
    pub other_retries: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    conflicts: AtomicU64,
    unknown_results: AtomicU64,
    too_old: AtomicU64,
    other_retries: AtomicU64,
}

/// The store over a raw FoundationDB-style database: `FdbStore` on a cluster, `ModelStore` on
/// the in-memory model.
pub struct SemStore<D> {
    db: D,
    opts: SemOptions,
    clock: Clock,
    counters: Counters,
}

fn backend(e: RawError) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(key: &[u8], reason: String) -> StoreError {
    StoreError::Corrupt {
        key: format!("{key:?}"),
        reason,
    }
}

/// A size limit the cluster itself reported; it does not say by how much, so `size` is only a
/// lower bound.
fn cluster_limit(e: &RawError) -> StoreError {
    let (what, max) = match e.code {
        codes::KEY_TOO_LARGE => ("key size", limits::MAX_KEY_BYTES),
        codes::VALUE_TOO_LARGE => ("value size", limits::MAX_VALUE_BYTES),
        _ => ("transaction size", limits::MAX_TXN_BYTES),
    };
    StoreError::LimitExceeded {
        what,
        size: max + 1,
        max,
    }
}

enum Step<T> {
    Commit(T),
    Retry(RawError),
}

impl<D: RawDb> SemStore<D> {
    pub fn new(db: D, opts: SemOptions) -> Self {
        Self {
            db,
            opts,
            clock: limits::real_clock(),
            counters: Counters::default(),
        }
    }

    /// Measures transaction ages with `clock` (the model's test clock).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The raw database.
    pub fn db(&self) -> &D {
        &self.db
    }

    /// Counters of the retry loop.
    pub fn stats(&self) -> SemStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SemStats {
            commits: get(&c.commits),
            conflicts: get(&c.conflicts),
            unknown_results: get(&c.unknown_results),
            too_old: get(&c.too_old),
            other_retries: get(&c.other_retries),
        }
    }

    fn age(&self, started: std::time::Instant) -> Duration {
        (self.clock)().saturating_duration_since(started)
    }

    /// After a failed attempt: counts it, maps what must not be retried to its error, and
    /// otherwise hands the transaction to `on_error` for the next attempt.
    async fn retry(
        &self,
        raw: D::Txn,
        e: RawError,
        attempts: &mut u32,
        age: Duration,
    ) -> Result<D::Txn> {
        let c = &self.counters;
        match e.kind() {
            ErrorKind::Conflict => c.conflicts.fetch_add(1, Ordering::Relaxed),
            ErrorKind::UnknownResult => c.unknown_results.fetch_add(1, Ordering::Relaxed),
            ErrorKind::TooOld => {
                // Too old because it ran past 5 s: retrying would only run past it again.
                limits::check_age(age)?;
                c.too_old.fetch_add(1, Ordering::Relaxed)
            }
            ErrorKind::OtherRetryable => c.other_retries.fetch_add(1, Ordering::Relaxed),
            ErrorKind::Limit => return Err(cluster_limit(&e)),
            ErrorKind::Fatal => return Err(backend(e)),
        };
        *attempts += 1;
        if *attempts >= self.opts.retry_limit.max(1) {
            return Err(StoreError::TooManyRetries {
                attempts: *attempts,
            });
        }
        raw.on_error(e).await.map_err(backend)
    }

    /// Runs a raw read until it succeeds or fails for good.
    async fn read_raw<T>(
        &self,
        op: impl for<'t> Fn(&'t D::Txn) -> BoxFut<'t, RawResult<T>>,
    ) -> Result<T> {
        let mut raw = self.db.create_txn().map_err(backend)?;
        let mut attempts = 0;
        loop {
            let started = (self.clock)();
            match op(&raw).await {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let age = self.age(started);
                    raw = self.retry(raw, e, &mut attempts, age).await?;
                }
            }
        }
    }

    async fn head(raw: &D::Txn, log: LogId) -> RawResult<LogPos> {
        let rows = raw
            .get_range(
                RangeRequest::prefix(&keys::event_prefix(log.0))
                    .reverse()
                    .limit(1),
                true,
            )
            .await?;
        Ok(match rows.first() {
            None => LogPos(0),
            // A key that does not decode reads as the head it cannot be; `read_events` reports it.
            Some(kv) => event_pos(&kv.key).unwrap_or(LogPos(0)),
        })
    }
}

fn event_pos(key: &[u8]) -> Result<LogPos> {
    let (_, _, stamp): (String, u16, Versionstamp) =
        keys::unpack(key).map_err(|e| corrupt(key, format!("{e:?}")))?;
    Ok(keys::stamp_to_pos(&stamp))
}

impl<D: RawDb> Kv for SemStore<D> {
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        Box::pin(async move {
            let mut raw = self.db.create_txn().map_err(backend)?;
            let mut attempts = 0;
            loop {
                let started = (self.clock)();
                let step = {
                    let txn = SemTxn::new(&raw);
                    let result = f(&txn).await;
                    match txn.take_failure() {
                        // A read failed: the error decides, whatever the closure made of it.
                        Some(e) => Step::Retry(e),
                        None => {
                            let v = result?;
                            txn.finish()?;
                            limits::check_age(self.age(started))?;
                            Step::Commit(v)
                        }
                    }
                };
                let e = match step {
                    Step::Retry(e) => e,
                    Step::Commit(v) => match raw.commit().await {
                        Ok(()) => {
                            self.counters.commits.fetch_add(1, Ordering::Relaxed);
                            return Ok(v);
                        }
                        Err((t, e)) => {
                            raw = t;
                            e
                        }
                    },
                };
                let age = self.age(started);
                raw = self.retry(raw, e, &mut attempts, age).await?;
            }
        })
    }

    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        Box::pin(async move {
            let mut raw = self.db.create_txn().map_err(backend)?;
            let mut attempts = 0;
            loop {
                let started = (self.clock)();
                let e = {
                    let txn = SemTxn::new(&raw);
                    let result = f(&txn).await;
                    match txn.take_failure() {
                        Some(e) => e,
                        None => {
                            // Never committed: whatever the closure wrote is dropped with `raw`.
                            let v = result?;
                            limits::check_age(self.age(started))?;
                            return Ok(v);
                        }
                    }
                };
                let age = self.age(started);
                raw = self.retry(raw, e, &mut attempts, age).await?;
            }
        })
    }

    fn read_events(
        &self,
        log: LogId,
        from: LogPos,
        limit: usize,
    ) -> BoxFut<'_, Result<Vec<Event>>> {
        Box::pin(async move {
            let range = RangeRequest {
                begin: keys::stamped_event_key(log.0, from),
                end: keys::prefix_end(&keys::event_prefix(log.0)),
                limit,
                reverse: false,
            };
            let rows: Vec<KeyValue> = self
                .read_raw(|raw| raw.get_range(range.clone(), true))
                .await?;
            rows.into_iter()
                .map(|kv| {
                    Ok(Event {
                        pos: event_pos(&kv.key)?,
                        payload: kv.value,
                    })
                })
                .collect()
        })
    }

    fn log_head(&self, log: LogId) -> BoxFut<'_, Result<LogPos>> {
        Box::pin(async move { self.read_raw(|raw| Box::pin(Self::head(raw, log))).await })
    }

    fn wait_for_events(&self, log: LogId, after: LogPos) -> BoxFut<'_, Result<LogPos>> {
        Box::pin(async move {
            let signal = keys::event_signal_key(log.0);
            let mut raw = self.db.create_txn().map_err(backend)?;
            let mut attempts = 0;
            loop {
                let started = (self.clock)();
                // Read the head and, if nothing is new, watch the signal key in the same
                // transaction: the watch fires on any change after that read version, so an
                // append committed in between is not missed.
                let e = match Self::head(&raw, log).await {
                    Ok(head) if head > after => return Ok(head),
                    Ok(_) => {
                        let watch = raw.watch(&signal);
                        match raw.commit().await {
                            Ok(()) => match watch.await {
                                Ok(()) => {
                                    raw = self.db.create_txn().map_err(backend)?;
                                    continue;
                                }
                                Err(e) if e.retryable => {
                                    raw = self.db.create_txn().map_err(backend)?;
                                    continue;
                                }
                                Err(e) => return Err(backend(e)),
                            },
                            Err((t, e)) => {
                                raw = t;
                                e
                            }
                        }
                    }
                    Err(e) => e,
                };
                let age = self.age(started);
                raw = self.retry(raw, e, &mut attempts, age).await?;
            }
        })
    }

    fn backend_name(&self) -> &'static str {
        self.db.name()
    }
}
