//! [`MenuCache`]: the menu bodies of recently read restaurants, bounded by a number of entries.
//!
//! Menus are most of a catalog's bytes and most restaurants' menus are rarely read, so only
//! the hot ones stay in memory; a miss reads the menu from the store (one read transaction)
//! and fills the cache.
//!
//! # Eviction
//! Two generations approximate LRU in O(1) without per-entry links: entries go into `young`;
//! when `young` reaches half the capacity, it becomes `old` and the previous `old` is dropped.
//! A hit in `old` moves the entry back to `young`. So an entry read at least once per half a
//! capacity's worth of insertions stays, and the cache never holds more than `capacity`.
//!
//! # Freshness
//! A write invalidates the restaurant's entry after its commit. A miss that read the store
//! *before* that commit must not put the old body back: every invalidation bumps `epoch`,
//! a miss notes the epoch before its store read, and inserts only if nothing was invalidated
//! since. (It still returns what it read: that read began before the write finished.)

use bytes::Bytes;
use domain::RestaurantId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Hit and miss counters, and the time misses spent reading the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MenuCacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Total time of the misses' store reads (and body assembly), microseconds.
    pub miss_read_us: u64,
    /// Entries held now.
    pub entries: usize,
    /// Body bytes held now.
    pub bytes: usize,
    pub capacity: usize,
}

impl MenuCacheStats {
    /// Hits over all reads (0 before the first read).
    pub fn hit_rate(&self) -> f64 {
        let all = self.hits + self.misses;
        if all == 0 {
            0.0
        } else {
            self.hits as f64 / all as f64
        }
    }
}

#[derive(Default)]
struct Gens {
    young: HashMap<RestaurantId, Bytes>,
    old: HashMap<RestaurantId, Bytes>,
    bytes: usize,
}

impl Gens {
    fn remove(&mut self, id: RestaurantId) {
        for g in [&mut self.young, &mut self.old] {
            if let Some(b) = g.remove(&id) {
                self.bytes -= b.len();
            }
        }
    }
}

pub(crate) struct MenuCache {
    /// Changes as the catalog grows or shrinks (see `Catalog`); a smaller one takes effect
    /// at the next rotation.
    capacity: AtomicUsize,
    gens: Mutex<Gens>,
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    miss_read_us: AtomicU64,
}

impl MenuCache {
    /// A cache of at most `capacity` menus (0 disables it: every read goes to the store).
    pub fn new(capacity: usize) -> MenuCache {
        MenuCache {
            capacity: AtomicUsize::new(capacity),
            gens: Mutex::new(Gens::default()),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            miss_read_us: AtomicU64::new(0),
        }
    }

    /// The cached body, counting a hit; `None` counts nothing (the caller reads the store and
    /// calls [`MenuCache::fill`]).
    pub fn get(&self, id: RestaurantId) -> Option<Bytes> {
        let mut g = self.gens.lock();
        let body = match g.young.get(&id) {
            Some(b) => b.clone(),
            None => {
                let b = g.old.remove(&id)?;
                g.young.insert(id, b.clone());
                self.rotate(&mut g);
                b
            }
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("catalog_menu_cache_hits_total").increment(1);
        Some(body)
    }

    /// The epoch to pass to [`MenuCache::fill`], taken before the store read.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Records a miss that took `read_us`, and caches `body` unless something was invalidated
    /// since `epoch` (see the module doc).
    pub fn fill(&self, id: RestaurantId, body: Bytes, epoch: u64, read_us: u64) {
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.miss_read_us.fetch_add(read_us, Ordering::Relaxed);
        metrics::counter!("catalog_menu_cache_misses_total").increment(1);
        metrics::histogram!("catalog_menu_read_seconds").record(read_us as f64 / 1e6);
        if self.capacity() == 0 {
            return;
        }
        let mut g = self.gens.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        g.remove(id);
        g.bytes += body.len();
        g.young.insert(id, body);
        self.rotate(&mut g);
        Self::publish(&g);
    }

    fn publish(g: &Gens) {
        metrics::gauge!("catalog_menu_cache_entries").set((g.young.len() + g.old.len()) as f64);
        metrics::gauge!("catalog_menu_cache_bytes").set(g.bytes as f64);
    }

    /// Drops `id`'s entry; called after a write to it committed.
    pub fn invalidate(&self, id: RestaurantId) {
        let mut g = self.gens.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        g.remove(id);
        Self::publish(&g);
    }

    /// The most menus it holds.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    fn rotate(&self, g: &mut Gens) {
        if g.young.len() >= self.capacity().div_ceil(2) {
            let young = std::mem::take(&mut g.young);
            let dropped = std::mem::replace(&mut g.old, young);
            g.bytes -= dropped.values().map(Bytes::len).sum::<usize>();
            // A smaller capacity: what is left may still be too much.
            if g.old.len() > self.capacity() {
                let old = std::mem::take(&mut g.old);
                g.bytes -= old.values().map(Bytes::len).sum::<usize>();
            }
            Self::publish(g);
        }
    }

    /// Counters and size now.
    pub fn stats(&self) -> MenuCacheStats {
        let g = self.gens.lock();
        MenuCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            miss_read_us: self.miss_read_us.load(Ordering::Relaxed),
            entries: g.young.len() + g.old.len(),
            bytes: g.bytes,
            capacity: self.capacity(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> RestaurantId {
        crate::testing::rid(n)
    }

    #[test]
    fn never_holds_more_than_capacity_and_keeps_what_is_read() {
        let c = MenuCache::new(10);
        for n in 0..100 {
            c.fill(id(n), Bytes::from(vec![0u8; 3]), c.epoch(), 1);
            // Restaurant 0 is read between every insertion: it must survive.
            assert!(c.get(id(0)).is_some(), "evicted the hot entry at {n}");
            let s = c.stats();
            assert!(s.entries <= 10, "{s:?}");
            assert_eq!(s.bytes, s.entries * 3);
        }
        assert!(c.get(id(50)).is_none());
        assert!(c.get(id(99)).is_some());
        let s = c.stats();
        assert_eq!((s.hits, s.misses), (101, 100));
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_not_cached() {
        let c = MenuCache::new(10);
        let before = c.epoch();
        c.invalidate(id(1));
        c.fill(id(1), Bytes::from_static(b"old"), before, 1);
        assert!(c.get(id(1)).is_none());
        c.fill(id(1), Bytes::from_static(b"new"), c.epoch(), 1);
        assert_eq!(c.get(id(1)).unwrap(), Bytes::from_static(b"new"));
        c.invalidate(id(1));
        assert!(c.get(id(1)).is_none());
        assert_eq!(c.stats().bytes, 0);
    }

    #[test]
    fn capacity_zero_caches_nothing() {
        let c = MenuCache::new(0);
        c.fill(id(1), Bytes::from_static(b"x"), c.epoch(), 1);
        assert!(c.get(id(1)).is_none());
        assert_eq!(c.stats().entries, 0);
    }
}
