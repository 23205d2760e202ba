//! FoundationDB's documented limits, enforced by every backend so that a transaction that would
//! fail on a cluster fails the same way in tests on redb and on the model.
//!
//! A transaction updates a [`TxnSize`] on each write; `Txn::set` and friends return nothing, so a
//! violation is latched there and reported when the transaction ends (before anything is
//! committed) as [`StoreError::LimitExceeded`], which is never retried.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::StoreError;

/// Largest key, bytes.
pub const MAX_KEY_BYTES: u64 = 10_000;
/// Largest value, bytes.
pub const MAX_VALUE_BYTES: u64 = 100_000;
/// Most bytes one transaction may write: keys and values of its sets, cleared keys and cleared
/// range bounds (roughly what FoundationDB counts as the transaction's size).
pub const MAX_TXN_BYTES: u64 = 10_000_000;
/// Longest a transaction may live, from its start (its read version) to its commit.
pub const MAX_TXN_AGE: Duration = Duration::from_secs(5);

/// Bytes an appended event costs besides its payload: its key (`("ev", log, stamp)`) and, on
/// FoundationDB, the log's signal key written with it.
pub const EVENT_OVERHEAD_BYTES: u64 = 48;

/// Where a backend reads the time a transaction's age is measured with: real time in
/// production, a controlled one in tests of the model.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// The real clock.
pub fn real_clock() -> Clock {
    Arc::new(Instant::now)
}

/// The running size of one transaction's writes and the first limit it broke.
#[derive(Debug, Default, Clone)]
pub struct TxnSize {
    bytes: u64,
    violation: Option<(&'static str, u64, u64)>,
}

fn len(b: &[u8]) -> u64 {
    b.len() as u64
}

impl TxnSize {
    fn key(&mut self, key: &[u8]) {
        self.check("key size", len(key), MAX_KEY_BYTES);
    }

    fn add(&mut self, bytes: u64) {
        self.bytes += bytes;
        self.check("transaction size", self.bytes, MAX_TXN_BYTES);
    }

    fn check(&mut self, what: &'static str, size: u64, max: u64) {
        if size > max && self.violation.is_none() {
            self.violation = Some((what, size, max));
        }
    }

    /// A `set(key, value)`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.key(key);
        self.check("value size", len(value), MAX_VALUE_BYTES);
        self.add(len(key) + len(value));
    }

    /// A `clear(key)`.
    pub fn clear(&mut self, key: &[u8]) {
        self.key(key);
        self.add(len(key));
    }

    /// A `clear_range(begin, end)`: its two bounds.
    pub fn clear_range(&mut self, begin: &[u8], end: &[u8]) {
        self.key(begin);
        self.key(end);
        self.add(len(begin) + len(end));
    }

    /// An appended event of `payload` bytes (stored as one value).
    pub fn event(&mut self, payload: &[u8]) {
        self.check("value size", len(payload), MAX_VALUE_BYTES);
        self.add(len(payload) + EVENT_OVERHEAD_BYTES);
    }

    /// Bytes written so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The first size limit broken, if any.
    pub fn check_sizes(&self) -> Result<(), StoreError> {
        match self.violation {
            None => Ok(()),
            Some((what, size, max)) => Err(StoreError::LimitExceeded { what, size, max }),
        }
    }
}

/// [`MAX_TXN_AGE`] for a transaction that has lived `age`.
pub fn check_age(age: Duration) -> Result<(), StoreError> {
    if age > MAX_TXN_AGE {
        Err(StoreError::LimitExceeded {
            what: "transaction age (ms)",
            size: age.as_millis().min(u128::from(u64::MAX)) as u64,
            max: MAX_TXN_AGE.as_millis() as u64,
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn what(s: &TxnSize) -> Option<&'static str> {
        match s.check_sizes() {
            Err(StoreError::LimitExceeded { what, .. }) => Some(what),
            _ => None,
        }
    }

    #[test]
    fn each_limit_is_the_first_violation_reported() {
        let mut s = TxnSize::default();
        s.set(&[0; 10_000], &[0; 100_000]);
        assert_eq!(what(&s), None, "exactly at the limits is allowed");
        s.set(&[0; 10_001], b"");
        assert_eq!(what(&s), Some("key size"));
        s.set(b"k", &[0; 100_001]);
        assert_eq!(what(&s), Some("key size"), "the first violation sticks");

        let mut s = TxnSize::default();
        s.event(&[0; 100_001]);
        assert_eq!(what(&s), Some("value size"));

        let mut s = TxnSize::default();
        for _ in 0..100 {
            s.set(b"k", &[0; 99_990]);
        }
        assert_eq!(s.bytes(), 9_999_100);
        assert_eq!(what(&s), None);
        s.clear_range(&[0; 450], &[1; 451]);
        assert_eq!(what(&s), Some("transaction size"));
        assert!(check_age(MAX_TXN_AGE).is_ok());
        assert!(check_age(MAX_TXN_AGE + Duration::from_millis(1)).is_err());
    }
}
