//! [`MeteredKv`] (tests): a real store wrapped to record what each committed transaction
//! wrote and how many rows each read-only transaction read, so tests can assert that paged work keeps every transaction far inside
//! FoundationDB's limits on any backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::{BoxFut, ErasedResult, ErasedTxnFn, KeyValue, Kv, LogId, RangeRequest, Result, Txn};

/// What the committed write transactions of a [`MeteredKv`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Write transactions that committed.
    pub txns: u64,
    /// The most bytes (keys, values, cleared bounds, event payloads) one transaction wrote.
    pub max_txn_bytes: u64,
    /// The longest key written.
    pub max_key_bytes: u64,
    /// The longest value written.
    pub max_value_bytes: u64,
    /// Read-only transactions run.
    pub reads: u64,
    /// The most pairs one read-only transaction got from range reads.
    pub max_read_rows: u64,
}

/// A store that records [`WriteStats`] (see the module doc).
pub struct MeteredKv {
    inner: Arc<dyn Kv>,
    stats: Arc<Mutex<WriteStats>>,
}

impl MeteredKv {
    pub fn new(inner: Arc<dyn Kv>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            stats: Arc::default(),
        })
    }

    /// What was written so far.
    pub fn stats(&self) -> WriteStats {
        *self.stats.lock().expect("stats lock")
    }
}

#[derive(Default)]
struct Tally {
    bytes: AtomicU64,
    key: AtomicU64,
    value: AtomicU64,
}

struct MeteredTxn<'t> {
    inner: &'t dyn Txn,
    tally: &'t Tally,
}

/// Counts the rows a read-only transaction's range reads return.
struct CountingTxn<'t> {
    inner: &'t dyn Txn,
    rows: &'t AtomicU64,
}

impl Txn for CountingTxn<'_> {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFut<'a, Result<Option<Vec<u8>>>> {
        self.inner.get(key)
    }

    fn get_range(&self, range: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>> {
        Box::pin(async move {
            let rows = self.inner.get_range(range).await?;
            self.rows.fetch_add(rows.len() as u64, Ordering::Relaxed);
            Ok(rows)
        })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.inner.set(key, value);
    }

    fn clear(&self, key: &[u8]) {
        self.inner.clear(key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(begin, end);
    }

    fn append_event(&self, log: LogId, payload: &[u8]) {
        self.inner.append_event(log, payload);
    }
}

impl MeteredTxn<'_> {
    fn wrote(&self, key: usize, value: usize) {
        self.tally
            .bytes
            .fetch_add((key + value) as u64, Ordering::Relaxed);
        self.tally.key.fetch_max(key as u64, Ordering::Relaxed);
        self.tally.value.fetch_max(value as u64, Ordering::Relaxed);
    }
}

impl Txn for MeteredTxn<'_> {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFut<'a, Result<Option<Vec<u8>>>> {
        self.inner.get(key)
    }

    fn get_range(&self, range: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>> {
        self.inner.get_range(range)
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.wrote(key.len(), value.len());
        self.inner.set(key, value);
    }

    fn clear(&self, key: &[u8]) {
        self.wrote(key.len(), 0);
        self.inner.clear(key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.wrote(begin.len() + end.len(), 0);
        self.inner.clear_range(begin, end);
    }

    fn append_event(&self, log: LogId, payload: &[u8]) {
        self.wrote(0, payload.len());
        self.inner.append_event(log, payload);
    }
}

impl Kv for MeteredKv {
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        let stats = self.stats.clone();
        // The tally of the last attempt is the one that committed.
        let last = Arc::new(Mutex::new(None::<Arc<Tally>>));
        let seen = last.clone();
        let wrapped: ErasedTxnFn = Arc::new(move |txn| {
            let (f, seen) = (f.clone(), seen.clone());
            Box::pin(async move {
                let tally = Arc::new(Tally::default());
                *seen.lock().expect("tally lock") = Some(tally.clone());
                f(&MeteredTxn {
                    inner: txn,
                    tally: &tally,
                })
                .await
            })
        });
        Box::pin(async move {
            let r = self.inner.transact_erased(wrapped).await;
            if r.is_ok()
                && let Some(t) = last.lock().expect("tally lock").take()
            {
                let mut s = stats.lock().expect("stats lock");
                s.txns += 1;
                s.max_txn_bytes = s.max_txn_bytes.max(t.bytes.load(Ordering::Relaxed));
                s.max_key_bytes = s.max_key_bytes.max(t.key.load(Ordering::Relaxed));
                s.max_value_bytes = s.max_value_bytes.max(t.value.load(Ordering::Relaxed));
            }
            r
        })
    }

    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        let stats = self.stats.clone();
        let wrapped: ErasedTxnFn = Arc::new(move |txn| {
            let (f, stats) = (f.clone(), stats.clone());
            Box::pin(async move {
                let rows = AtomicU64::new(0);
                let r = f(&CountingTxn {
                    inner: txn,
                    rows: &rows,
                })
                .await;
                let mut s = stats.lock().expect("stats lock");
                s.reads += 1;
                s.max_read_rows = s.max_read_rows.max(rows.load(Ordering::Relaxed));
                r
            })
        });
        self.inner.read_erased(wrapped)
    }

    forward_kv_reads!(inner);

    fn fault(&self) -> Option<String> {
        self.inner.fault()
    }
}
