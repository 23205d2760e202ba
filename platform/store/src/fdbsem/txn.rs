//! [`SemTxn`]: the store's [`Txn`] over one raw transaction attempt. Reads are non-snapshot (the
//! closure's reads are what make it serializable); a failed read is kept for the retry loop to
//! classify; writes are counted against FoundationDB's limits; appended events are written at the
//! end as versionstamped keys plus the blind write of each log's signal key.

use std::sync::{Mutex, PoisonError};

use super::{RawError, RawTxn};
use crate::keys::{self, Versionstamp};
use crate::limits::TxnSize;
use crate::{BoxFut, KeyValue, LogId, RangeRequest, Result, StoreError, Txn};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a transaction attempt buffered besides the raw transaction's own writes.
#[derive(Default)]
struct State {
    events: Vec<(LogId, Vec<u8>)>,
    size: TxnSize,
    /// The first raw error a read failed with.
    failed: Option<RawError>,
}

pub(super) struct SemTxn<'a, T> {
    raw: &'a T,
    state: Mutex<State>,
}

impl<'a, T: RawTxn> SemTxn<'a, T> {
    pub(super) fn new(raw: &'a T) -> Self {
        Self {
            raw,
            state: Mutex::new(State::default()),
        }
    }

    fn fail(&self, e: RawError) -> StoreError {
        let err = StoreError::Backend(e.to_string());
        lock(&self.state).failed.get_or_insert(e);
        err
    }

    /// The raw error a read failed with, which decides over the closure's result.
    pub(super) fn take_failure(&self) -> Option<RawError> {
        lock(&self.state).failed.take()
    }

    /// Checks the limits and writes the appended events; called only before a commit.
    pub(super) fn finish(&self) -> Result<()> {
        let mut st = lock(&self.state);
        st.size.check_sizes()?;
        let events = std::mem::take(&mut st.events);
        // The user version that orders a transaction's events is 2 bytes.
        if events.len() > usize::from(u16::MAX) + 1 {
            return Err(StoreError::LimitExceeded {
                what: "events in one transaction",
                size: events.len() as u64,
                max: u64::from(u16::MAX) + 1,
            });
        }
        let mut logs: Vec<LogId> = Vec::new();
        for (i, (log, payload)) in events.iter().enumerate() {
            let key = keys::pack_with_versionstamp(&(
                keys::EVENTS,
                log.0,
                Versionstamp::incomplete(i as u16),
            ));
            self.raw.set_versionstamped_key(&key, payload);
            if !logs.contains(log) {
                logs.push(*log);
            }
        }
        for log in logs {
            // A blind write: no read of the key, so no read-conflict range (see the module docs).
            let stamp = keys::pack_with_versionstamp(&(Versionstamp::incomplete(0),));
            self.raw
                .set_versionstamped_value(&keys::event_signal_key(log.0), &stamp);
        }
        Ok(())
    }
}

impl<T: RawTxn> Txn for SemTxn<'_, T> {
    fn get<'b>(&'b self, key: &'b [u8]) -> BoxFut<'b, Result<Option<Vec<u8>>>> {
        Box::pin(async move { self.raw.get(key, false).await.map_err(|e| self.fail(e)) })
    }

    fn get_range(&self, range: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>> {
        Box::pin(async move {
            if range.begin >= range.end {
                return Ok(Vec::new());
            }
            self.raw
                .get_range(range, false)
                .await
                .map_err(|e| self.fail(e))
        })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        lock(&self.state).size.set(key, value);
        self.raw.set(key, value);
    }

    fn clear(&self, key: &[u8]) {
        lock(&self.state).size.clear(key);
        self.raw.clear(key);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        if begin < end {
            lock(&self.state).size.clear_range(begin, end);
            self.raw.clear_range(begin, end);
        }
    }

    fn append_event(&self, log: LogId, payload: &[u8]) {
        let mut st = lock(&self.state);
        st.size.event(payload);
        st.events.push((log, payload.to_vec()));
    }
}
