//! A transaction's private write set layered over a base snapshot, giving read-your-writes
//! without touching the base until the transaction commits. The embedded backend uses it both
//! for read-only snapshots (writes discarded) and on the writer thread (writes applied only when
//! the closure succeeds, so an aborted or failing transaction writes nothing).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::limits::TxnSize;
use crate::{BoxFut, KeyValue, LogId, RangeRequest, Result, Txn};

/// Ordered key-value data a transaction reads through (a redb table, read-only or writable).
pub(crate) trait Base: Send + Sync {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Calls `f` with each pair in `[begin, end)` in the given order until it returns false.
    fn scan(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()>;
}

/// Buffered writes of one transaction.
#[derive(Default, Debug)]
pub(crate) struct WriteSet {
    /// Point writes; `None` is a clear. Newer than every range in `cleared`.
    pub points: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Cleared ranges `[begin, end)`, applied before `points`.
    pub cleared: Vec<(Vec<u8>, Vec<u8>)>,
    /// Appended events, in append order.
    pub events: Vec<(LogId, Vec<u8>)>,
    /// What the writes weigh against FoundationDB's limits.
    pub size: TxnSize,
}

impl WriteSet {
    fn in_cleared(&self, key: &[u8]) -> bool {
        self.cleared
            .iter()
            .any(|(b, e)| key >= b.as_slice() && key < e.as_slice())
    }
}

/// A [`Txn`] over `B` with a private [`WriteSet`].
pub(crate) struct OverlayTxn<B> {
    pub base: B,
    writes: Mutex<WriteSet>,
}

impl<B: Base> OverlayTxn<B> {
    pub fn new(base: B) -> Self {
        Self {
            base,
            writes: Mutex::new(WriteSet::default()),
        }
    }

    /// Takes the buffered writes, leaving the transaction empty for the next job.
    pub fn take_writes(&self) -> WriteSet {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, WriteSet> {
        // A panicking closure is caught by the writer; its half-built write set is discarded.
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(any(test, feature = "model"))]
    /// Whether the transaction itself wrote (set, cleared or range-cleared) `key`.
    pub(crate) fn writes_key(&self, key: &[u8]) -> bool {
        let ws = self.lock();
        ws.points.contains_key(key) || ws.in_cleared(key)
    }

    pub(crate) fn get_now(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let ws = self.lock();
        if let Some(v) = ws.points.get(key) {
            return Ok(v.clone());
        }
        if ws.in_cleared(key) {
            return Ok(None);
        }
        drop(ws);
        self.base.get(key)
    }

    pub(crate) fn range_now(&self, r: &RangeRequest) -> Result<Vec<KeyValue>> {
        if r.begin >= r.end {
            return Ok(Vec::new());
        }
        let limit = if r.limit == 0 { usize::MAX } else { r.limit };
        let ws = self.lock();
        // Our own live writes in the range, in the requested order.
        let mut mine: Vec<(&Vec<u8>, &Vec<u8>)> = ws
            .points
            .range(r.begin.clone()..r.end.clone())
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect();
        if r.reverse {
            mine.reverse();
        }
        let mut mine = mine.into_iter().peekable();
        let mut out = Vec::new();
        // `before(a, b)`: does key `a` come before key `b` in the requested order?
        let before = |a: &[u8], b: &[u8]| if r.reverse { a > b } else { a < b };
        self.base.scan(&r.begin, &r.end, r.reverse, &mut |k, v| {
            // Our own writes that sort before this base key go first.
            while let Some((mk, _)) = mine.peek() {
                if out.len() >= limit || !before(mk, k) {
                    break;
                }
                let (mk, mv) = mine.next().expect("peeked");
                out.push(KeyValue {
                    key: mk.clone(),
                    value: mv.clone(),
                });
            }
            if out.len() >= limit {
                return false;
            }
            // A base key we overwrote, cleared, or range-cleared is masked.
            if !ws.points.contains_key(k) && !ws.in_cleared(k) {
                out.push(KeyValue {
                    key: k.to_vec(),
                    value: v.to_vec(),
                });
            }
            out.len() < limit
        })?;
        for (mk, mv) in mine {
            if out.len() >= limit {
                break;
            }
            out.push(KeyValue {
                key: mk.clone(),
                value: mv.clone(),
            });
        }
        Ok(out)
    }
}

impl<B: Base> Txn for OverlayTxn<B> {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFut<'a, Result<Option<Vec<u8>>>> {
        let r = self.get_now(key);
        Box::pin(std::future::ready(r))
    }

    fn get_range(&self, range: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>> {
        let r = self.range_now(&range);
        Box::pin(std::future::ready(r))
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        let mut ws = self.lock();
        ws.size.set(key, value);
        ws.points.insert(key.to_vec(), Some(value.to_vec()));
    }

    fn clear(&self, key: &[u8]) {
        let mut ws = self.lock();
        ws.size.clear(key);
        ws.points.insert(key.to_vec(), None);
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        if begin >= end {
            return;
        }
        let mut ws = self.lock();
        ws.size.clear_range(begin, end);
        // Earlier point writes in the range are superseded by the clear.
        let doomed: Vec<Vec<u8>> = ws
            .points
            .range(begin.to_vec()..end.to_vec())
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            ws.points.remove(&k);
        }
        ws.cleared.push((begin.to_vec(), end.to_vec()));
    }

    fn append_event(&self, log: LogId, payload: &[u8]) {
        let mut ws = self.lock();
        ws.size.event(payload);
        ws.events.push((log, payload.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plain map as the base.
    struct MapBase(BTreeMap<Vec<u8>, Vec<u8>>);

    impl Base for MapBase {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
            Ok(self.0.get(key).cloned())
        }
        fn scan(
            &self,
            begin: &[u8],
            end: &[u8],
            reverse: bool,
            f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<()> {
            let it = self.0.range(begin.to_vec()..end.to_vec());
            let items: Vec<_> = if reverse {
                it.rev().collect()
            } else {
                it.collect()
            };
            for (k, v) in items {
                if !f(k, v) {
                    break;
                }
            }
            Ok(())
        }
    }

    fn keys(kvs: &[KeyValue]) -> Vec<u8> {
        kvs.iter().map(|kv| kv.key[0]).collect()
    }

    #[test]
    fn merges_own_writes_with_the_base_in_both_orders() {
        let base = MapBase((1u8..=9).step_by(2).map(|k| (vec![k], vec![k])).collect());
        let t = OverlayTxn::new(base);
        t.set(&[2], b"x");
        t.clear(&[3]);
        t.set(&[10], b"y");
        t.clear_range(&[6], &[8]); // removes base 7
        t.set(&[6], b"z"); // re-set after the clear: visible
        let all = t.range_now(&RangeRequest::prefix(&[])).unwrap();
        assert_eq!(keys(&all), vec![1, 2, 5, 6, 9, 10]);
        let rev = t.range_now(&RangeRequest::prefix(&[]).reverse()).unwrap();
        assert_eq!(keys(&rev), vec![10, 9, 6, 5, 2, 1]);
        let lim = t
            .range_now(&RangeRequest::prefix(&[]).reverse().limit(3))
            .unwrap();
        assert_eq!(keys(&lim), vec![10, 9, 6]);
        assert_eq!(t.get_now(&[7]).unwrap(), None);
        assert_eq!(t.get_now(&[6]).unwrap(), Some(b"z".to_vec()));
        assert_eq!(t.get_now(&[3]).unwrap(), None);
        assert_eq!(t.get_now(&[5]).unwrap(), Some(vec![5]));
    }
}
