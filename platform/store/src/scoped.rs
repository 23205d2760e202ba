//! [`SubspaceKv`]: a [`Kv`] whose every key lives under one [`Subspace`], as a FoundationDB
//! tenant does. A cell opens the store once and hands everything it builds (orders, cursors,
//! catalog, id lease) the store scoped to `Subspace::cell(id)`, so no key family can be left
//! without the cell id and two cells sharing a cluster never read each other's keys. The
//! prefix is added above the backend, so both backends hold the same key layout.
//!
//! Callers see keys without the prefix: writes get it prepended, reads strip it, ranges map
//! one to one (prepending a fixed prefix preserves byte order), so a scoped store behaves
//! exactly like a store of its own. Event logs are named by [`LogId`] (one per cell) and pass
//! through unchanged.

use std::sync::Arc;

use crate::keys::Subspace;
use crate::{BoxFut, ErasedResult, ErasedTxnFn, KeyValue, Kv, LogId, RangeRequest, Result, Txn};

/// A store restricted to one subspace of `inner` (see the module doc).
pub struct SubspaceKv {
    inner: Arc<dyn Kv>,
    space: Arc<Subspace>,
}

impl SubspaceKv {
    /// `inner` seen through `space`: the returned store reads and writes only keys under it.
    pub fn scoped(inner: Arc<dyn Kv>, space: Subspace) -> Arc<dyn Kv> {
        Arc::new(Self {
            inner,
            space: Arc::new(space),
        })
    }

    fn wrap(&self, f: ErasedTxnFn) -> ErasedTxnFn {
        let space = self.space.clone();
        Arc::new(move |txn| {
            let (f, space) = (f.clone(), space.clone());
            Box::pin(async move {
                let scoped = ScopedTxn { inner: txn, space };
                f(&scoped).await
            })
        })
    }
}

/// A transaction of the inner store with keys mapped into the subspace.
struct ScopedTxn<'t> {
    inner: &'t dyn Txn,
    space: Arc<Subspace>,
}

impl ScopedTxn<'_> {
    fn key(&self, key: &[u8]) -> Vec<u8> {
        [self.space.bytes(), key].concat()
    }
}

impl Txn for ScopedTxn<'_> {
    fn get<'a>(&'a self, key: &'a [u8]) -> BoxFut<'a, Result<Option<Vec<u8>>>> {
        let key = self.key(key);
        Box::pin(async move { self.inner.get(&key).await })
    }

    fn get_range(&self, range: RangeRequest) -> BoxFut<'_, Result<Vec<KeyValue>>> {
        let inner = RangeRequest {
            begin: self.key(&range.begin),
            end: self.key(&range.end),
            ..range
        };
        Box::pin(async move {
            let n = self.space.bytes().len();
            let mut rows = self.inner.get_range(inner).await?;
            for row in &mut rows {
                // Every key of the inner range starts with the prefix, by construction.
                row.key.drain(..n);
            }
            Ok(rows)
        })
    }

    fn set(&self, key: &[u8], value: &[u8]) {
        self.inner.set(&self.key(key), value);
    }

    fn clear(&self, key: &[u8]) {
        self.inner.clear(&self.key(key));
    }

    fn clear_range(&self, begin: &[u8], end: &[u8]) {
        self.inner.clear_range(&self.key(begin), &self.key(end));
    }

    fn append_event(&self, log: LogId, payload: &[u8]) {
        self.inner.append_event(log, payload);
    }
}

impl Kv for SubspaceKv {
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        self.inner.transact_erased(self.wrap(f))
    }

    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        self.inner.read_erased(self.wrap(f))
    }

    forward_kv_reads!(inner);

    fn fault(&self) -> Option<String> {
        self.inner.fault()
    }
}

#[cfg(test)]
#[path = "scoped_tests.rs"]
mod tests;
