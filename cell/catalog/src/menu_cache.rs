//! [`MenuCache`]: the menu bodies of recently read restaurants, bounded by a number of entries.
//!
//! Menus are most of a catalog's bytes and most restaurants' menus are rarely read, so only
//! the hot ones stay in memory; a miss reads the menu from the store (one read transaction)
//! and fills the cache.
//!
//! # Eviction
//! CLOCK (second chance), an O(1) approximation of LRU: entries sit in a ring of at most
//! `capacity` slots, each with a "referenced" bit that a hit sets. To make room, a hand sweeps
//! the ring, clearing set bits and evicting the first entry whose bit was clear, i.e. one not
//! read since the hand last passed. A working set that fits the capacity is never evicted by
//! a scan of itself, and an entry read between sweeps stays.
//!
//! # Parsed menus
//! Pricing a cart needs the menu's items, not its body: each entry also holds the menu parsed
//! once, on its first pricing ([`MenuCache::get_parsed`]), so an order costs no JSON parse of
//! its menu. It lives and dies with the body it was parsed from, so it is never staler than
//! the body; only menus that were priced while cached pay for the parsed copy.
//!
//! # Freshness
//! A write invalidates the restaurant's entry after its commit. A miss that read the store
//! *before* that commit must not put the old body back: every invalidation bumps `epoch`,
//! a miss notes the epoch before its store read, and inserts only if nothing was invalidated
//! since. (It still returns what it read: that read began before the write finished.)

use crate::model::Menu;
use bytes::Bytes;
use domain::RestaurantId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// An entry's menu, parsed from its body at most once (see the module doc).
pub(crate) type Parsed = Arc<OnceLock<Arc<Menu>>>;

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

struct Slot {
    id: RestaurantId,
    body: Bytes,
    parsed: Parsed,
    referenced: bool,
}

/// The ring of slots, and where each restaurant's slot is.
#[derive(Default)]
struct Ring {
    slots: Vec<Slot>,
    at: HashMap<RestaurantId, usize>,
    hand: usize,
    bytes: usize,
}

impl Ring {
    fn get(&mut self, id: RestaurantId) -> Option<(Bytes, Parsed)> {
        let slot = &mut self.slots[*self.at.get(&id)?];
        slot.referenced = true;
        Some((slot.body.clone(), slot.parsed.clone()))
    }

    /// Inserts or replaces `id`'s body, evicting to stay within `capacity` (> 0).
    fn put(&mut self, id: RestaurantId, body: Bytes, capacity: usize) {
        self.remove(id);
        while self.slots.len() >= capacity {
            self.evict_one();
        }
        self.bytes += body.len();
        self.at.insert(id, self.slots.len());
        self.slots.push(Slot {
            id,
            body,
            parsed: Parsed::default(),
            referenced: false,
        });
    }

    /// The hand's sweep: clears referenced bits until it finds a clear one, and evicts that.
    fn evict_one(&mut self) {
        loop {
            if self.hand >= self.slots.len() {
                self.hand = 0;
            }
            let slot = &mut self.slots[self.hand];
            if !slot.referenced {
                let id = slot.id;
                self.remove(id);
                return;
            }
            slot.referenced = false;
            self.hand += 1;
        }
    }

    fn remove(&mut self, id: RestaurantId) {
        let Some(i) = self.at.remove(&id) else {
            return;
        };
        let gone = self.slots.swap_remove(i);
        self.bytes -= gone.body.len();
        // The last slot moved into the hole (unless the hole was the last slot).
        if let Some(moved) = self.slots.get(i) {
            self.at.insert(moved.id, i);
        }
    }
}

pub(crate) struct MenuCache {
    /// Changes as the catalog grows or shrinks (see `Catalog`); a smaller one takes effect
    /// at the next insertion.
    capacity: AtomicUsize,
    ring: Mutex<Ring>,
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
            ring: Mutex::new(Ring::default()),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            miss_read_us: AtomicU64::new(0),
        }
    }

    /// The cached body, counting a hit; `None` counts nothing (the caller reads the store and
    /// calls [`MenuCache::fill`]).
    pub fn get(&self, id: RestaurantId) -> Option<Bytes> {
        self.get_parsed(id).map(|(body, _)| body)
    }

    /// [`MenuCache::get`], with the entry's parsed menu: set if it was priced before, else for
    /// the caller to set once it parsed the body.
    pub fn get_parsed(&self, id: RestaurantId) -> Option<(Bytes, Parsed)> {
        let entry = self.ring.lock().get(id)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("catalog_menu_cache_hits_total").increment(1);
        Some(entry)
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
        let capacity = self.capacity();
        if capacity == 0 {
            return;
        }
        let mut ring = self.ring.lock();
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        ring.put(id, body, capacity);
        Self::publish(&ring);
    }

    fn publish(ring: &Ring) {
        metrics::gauge!("catalog_menu_cache_entries").set(ring.slots.len() as f64);
        metrics::gauge!("catalog_menu_cache_bytes").set(ring.bytes as f64);
    }

    /// Drops `id`'s entry; called after a write to it committed.
    pub fn invalidate(&self, id: RestaurantId) {
        let mut ring = self.ring.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        ring.remove(id);
        Self::publish(&ring);
    }

    /// The most menus it holds.
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity, Ordering::Relaxed);
    }

    /// Counters and size now.
    pub fn stats(&self) -> MenuCacheStats {
        let ring = self.ring.lock();
        MenuCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            miss_read_us: self.miss_read_us.load(Ordering::Relaxed),
            entries: ring.slots.len(),
            bytes: ring.bytes,
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

    /// A working set of exactly the capacity, read in order again and again (the pattern that
    /// defeats generational caches), is served from the cache after the first pass; a shrunk
    /// capacity applies at the next insertion.
    #[test]
    fn a_scan_that_fits_stays_cached() {
        let c = MenuCache::new(100);
        for pass in 0..3 {
            for n in 0..100 {
                if c.get(id(n)).is_none() {
                    c.fill(id(n), Bytes::from(vec![1u8; 5]), c.epoch(), 1);
                }
            }
            let s = c.stats();
            assert_eq!(
                (s.misses, s.entries, s.bytes),
                (100, 100, 500),
                "pass {pass}"
            );
        }
        assert_eq!(c.stats().hits, 200);
        // Removing from the middle keeps every other entry reachable.
        for n in (0..100).step_by(3) {
            c.invalidate(id(n));
        }
        for n in 0..100 {
            assert_eq!(c.get(id(n)).is_some(), n % 3 != 0, "{n}");
        }
        c.set_capacity(10);
        c.fill(id(1_000), Bytes::from(vec![1u8; 5]), c.epoch(), 1);
        let s = c.stats();
        assert_eq!((s.entries, s.bytes), (10, 50));
        assert!(c.get(id(1_000)).is_some());
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
