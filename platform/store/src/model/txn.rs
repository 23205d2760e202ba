//! [`ModelTxn`]: one transaction of the model, the raw API's [`RawTxn`]. Its reads go through a
//! private write buffer ([`OverlayTxn`], read-your-writes) over a snapshot of the model at its
//! read version; it records the read-conflict ranges its non-snapshot reads cover and hands
//! everything to the model's commit.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::Inner;
use super::state::{Commit, Range, Watch, point};
use crate::fdbsem::{RawError, RawResult, RawTxn, codes};
use crate::overlay::{Base, OverlayTxn};
use crate::{BoxFut, KeyValue, RangeRequest, Result, Txn};

/// The model at one read version, as the overlay's base.
pub(crate) struct Snapshot {
    db: Arc<Inner>,
    version: u64,
}

impl Base for Snapshot {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.lock().get_at(key, self.version))
    }

    fn scan(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        self.db.lock().scan_at(begin, end, reverse, self.version, f);
        Ok(())
    }
}

/// What the transaction records besides its buffered writes.
#[derive(Default)]
struct Extra {
    reads: Vec<Range>,
    stamped_keys: Vec<(Vec<u8>, Vec<u8>)>,
    stamped_values: Vec<(Vec<u8>, Vec<u8>)>,
    watches: Vec<Watch>,
}

/// A transaction on the model.
pub struct ModelTxn {
    db: Arc<Inner>,
    read_version: u64,
    started: Instant,
    /// How many attempts came before this one (for the backoff).
    attempt: u32,
    overlay: OverlayTxn<Snapshot>,
    extra: Mutex<Extra>,
}

fn internal(e: impl std::fmt::Display) -> RawError {
    RawError {
        code: 4100,
        message: format!("internal error: {e}"),
        retryable: false,
    }
}

impl ModelTxn {
    pub(super) fn begin(db: Arc<Inner>, attempt: u32) -> Self {
        let read_version = db.lock().begin();
        let started = (db.clock)();
        Self {
            overlay: OverlayTxn::new(Snapshot {
                db: db.clone(),
                version: read_version,
            }),
            db,
            read_version,
            started,
            attempt,
            extra: Mutex::new(Extra::default()),
        }
    }

    fn extra(&self) -> std::sync::MutexGuard<'_, Extra> {
        self.extra.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn age(&self) -> Duration {
        (self.db.clock)().saturating_duration_since(self.started)
    }

    fn check_read(&self) -> RawResult<()> {
        let age = self.age();
        self.db.lock().check_read(age)
    }
}

impl Drop for ModelTxn {
    fn drop(&mut self) {
        self.db.lock().end(self.read_version);
    }
}

impl RawTxn for ModelTxn {
    fn get(&self, key: &[u8], snapshot: bool) -> BoxFut<'_, RawResult<Option<Vec<u8>>>> {
        let key = key.to_vec();
        Box::pin(async move {
            self.check_read()?;
            let v = self.overlay.get_now(&key).map_err(internal)?;
            // A read answered from the transaction's own writes depends on no one else's.
            if !snapshot && !self.overlay.writes_key(&key) {
                self.extra().reads.push(point(&key));
            }
            Ok(v)
        })
    }

    fn get_range(&self, r: RangeRequest, snapshot: bool) -> BoxFut<'_, RawResult<Vec<KeyValue>>> {
        Box::pin(async move {
            self.check_read()?;
            let rows = self.overlay.range_now(&r).map_err(internal)?;
            if !snapshot && r.begin < r.end {
                // When the limit cut the read, only the part actually read conflicts.
                let cut = r.limit > 0 && rows.len() >= r.limit;
                let range = match rows.last() {
                    Some(last) if cut && r.reverse => (last.key.clone(), r.end.clone()),
                    Some(last) if cut => (r.begin.clone(), point(&last.key).1),
                    _ => (r.begin.clone(), r.end.clone()),
                };
                self.extra().reads.push(range);
            }
            Ok(rows)
        })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        Txn::set(&self.overlay, key, value);
    }

    fn clear(&self, key: &[u8]) {
        Txn::clear(&self.overlay, key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        Txn::clear_range(&self.overlay, begin, end);
    }

    fn set_versionstamped_key(&self, key: &[u8], value: &[u8]) {
        self.extra()
            .stamped_keys
            .push((key.to_vec(), value.to_vec()));
    }

    fn set_versionstamped_value(&self, key: &[u8], value: &[u8]) {
        self.extra()
            .stamped_values
            .push((key.to_vec(), value.to_vec()));
    }

    fn watch(&self, key: &[u8]) -> BoxFut<'static, RawResult<()>> {
        let seen = self.overlay.get_now(key).ok().flatten();
        let (tx, rx) = oneshot::channel();
        self.extra().watches.push(Watch {
            key: key.to_vec(),
            seen,
            tx,
        });
        Box::pin(async move {
            // Dropped unfired: its transaction was never committed, or the model is gone.
            rx.await
                .unwrap_or_else(|_| Err(RawError::from_code(codes::OPERATION_CANCELLED)))
        })
    }

    fn commit(self) -> BoxFut<'static, std::result::Result<(), (Self, RawError)>> {
        Box::pin(async move {
            let delay = self.db.lock().latency();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let extra = std::mem::take(&mut *self.extra());
            let commit = Commit {
                read_version: self.read_version,
                age: self.age(),
                reads: extra.reads,
                writes: self.overlay.take_writes(),
                stamped_keys: extra.stamped_keys,
                stamped_values: extra.stamped_values,
                watches: extra.watches,
            };
            let result = self.db.lock().commit(commit);
            result.map_err(|e| (self, e))
        })
    }

    fn on_error(self, error: RawError) -> BoxFut<'static, RawResult<Self>> {
        Box::pin(async move {
            if !error.retryable {
                return Err(error);
            }
            let delay = self.db.lock().backoff(self.attempt);
            tokio::time::sleep(delay).await;
            Ok(ModelTxn::begin(self.db.clone(), self.attempt + 1))
        })
    }
}
