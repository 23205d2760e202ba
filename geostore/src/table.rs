//! Two open-addressing hash tables with lock-free lookups: driver id → slot, and H3 cell →
//! bucket. Mutations are rare (a driver going on/offline, a bucket created) and are serialised
//! by a mutex in the caller; lookups never take it. A table that fills up is rebuilt and swapped
//! in; the old one is freed through crossbeam-epoch once no lookup can still be reading it.

use crate::slot::Slab;
use crossbeam_epoch::{Atomic, Guard, Owned};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::*};

const EMPTY: u32 = 0;
const TOMB: u32 = u32::MAX;
/// Driver-table entries are `tag << 26 | (slot + 1)`: the 6-bit hash tag filters almost all
/// probe collisions without touching the slot (a cache miss).
const SLOT_BITS: u32 = 26;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

fn mix(x: u64) -> u64 {
    let x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

struct DriverTable {
    mask: usize,
    vals: Box<[AtomicU32]>,
}

impl DriverTable {
    fn with_capacity(cap: usize) -> Self {
        let n = cap.next_power_of_two().max(1024);
        Self {
            mask: n - 1,
            vals: (0..n).map(|_| AtomicU32::new(EMPTY)).collect(),
        }
    }
}

/// Driver id → slot index. Keys live in the slots themselves (4 bytes per table entry).
pub(crate) struct DriverMap {
    table: Atomic<DriverTable>,
}

/// Bookkeeping for the driver map, owned by the caller's allocation mutex.
#[derive(Default)]
pub(crate) struct DriverMapCounts {
    pub live: usize,
    /// Entries that are not EMPTY (live + tombstones): what probe lengths depend on.
    pub used: usize,
}

impl DriverMap {
    pub fn new(cap: usize) -> Self {
        Self {
            table: Atomic::new(DriverTable::with_capacity(cap * 2)),
        }
    }

    fn probe(id: u64) -> (usize, u32) {
        let h = mix(id);
        (h as usize, ((h >> 58) as u32) << SLOT_BITS)
    }

    /// Lock-free lookup. The returned slot held `id` at some instant; callers re-check the id
    /// under the slot lock or inside a snapshot.
    pub fn get(&self, id: u64, slab: &Slab, g: &Guard) -> Option<u32> {
        // SAFETY: the table pointer is never null and is freed only through the epoch.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        let (h, tag) = Self::probe(id);
        let mut i = h & t.mask;
        loop {
            let v = t.vals[i].load(Acquire);
            if v == EMPTY {
                return None;
            }
            if v != TOMB && v & !SLOT_MASK == tag {
                let s = (v & SLOT_MASK) - 1;
                if slab.get(s).id() == id {
                    return Some(s);
                }
            }
            i = (i + 1) & t.mask;
        }
    }

    /// Starts loading the table entry where a lookup of `id` begins.
    #[inline]
    pub fn prefetch(&self, id: u64, g: &Guard) {
        // SAFETY: as in `get`.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        crate::slot::prefetch(&t.vals[Self::probe(id).0 & t.mask]);
    }

    /// The slot `id` probably has: the first probed entry whose tag matches, found without
    /// reading any slot (for prefetching: a wrong or missing guess only wastes a prefetch).
    #[inline]
    pub fn peek(&self, id: u64, g: &Guard) -> Option<u32> {
        // SAFETY: as in `get`.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        let (h, tag) = Self::probe(id);
        let mut i = h & t.mask;
        // Probe runs are short (load ≤ 1/2); the bound keeps a guess cheap in any case.
        for _ in 0..16 {
            let v = t.vals[i].load(Relaxed);
            if v == EMPTY {
                return None;
            }
            if v != TOMB && v & !SLOT_MASK == tag {
                return Some((v & SLOT_MASK) - 1);
            }
            i = (i + 1) & t.mask;
        }
        None
    }

    /// Inserts `id → slot` (caller holds the allocation lock and knows `id` is absent).
    pub fn insert(&self, id: u64, slot: u32, slab: &Slab, c: &mut DriverMapCounts, g: &Guard) {
        debug_assert!(slot < SLOT_MASK - 1);
        // SAFETY: as in `get`.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        if (c.used + 1) * 2 > t.vals.len() {
            self.rebuild(slab, c, g);
            return self.insert(id, slot, slab, c, g);
        }
        let (h, tag) = Self::probe(id);
        let mut i = h & t.mask;
        loop {
            let v = t.vals[i].load(Relaxed);
            if v == EMPTY || v == TOMB {
                if v == EMPTY {
                    c.used += 1;
                }
                c.live += 1;
                t.vals[i].store(tag | (slot + 1), Release);
                return;
            }
            i = (i + 1) & t.mask;
        }
    }

    /// Removes `id` (caller holds the allocation lock).
    pub fn remove(&self, id: u64, slab: &Slab, c: &mut DriverMapCounts, g: &Guard) -> bool {
        // SAFETY: as in `get`.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        let (h, tag) = Self::probe(id);
        let mut i = h & t.mask;
        loop {
            let v = t.vals[i].load(Relaxed);
            if v == EMPTY {
                return false;
            }
            if v != TOMB && v & !SLOT_MASK == tag && slab.get((v & SLOT_MASK) - 1).id() == id {
                t.vals[i].store(TOMB, Release);
                c.live -= 1;
                return true;
            }
            i = (i + 1) & t.mask;
        }
    }

    /// Rebuilds without tombstones, sized for the live count (so it also shrinks after churn).
    fn rebuild(&self, slab: &Slab, c: &mut DriverMapCounts, g: &Guard) {
        let old = self.table.load(Acquire, g);
        // SAFETY: as in `get`.
        let t = unsafe { old.deref() };
        let new = DriverTable::with_capacity((c.live + 1) * 3);
        for v in t.vals.iter() {
            let v = v.load(Relaxed);
            if v != EMPTY && v != TOMB {
                let id = slab.get((v & SLOT_MASK) - 1).id();
                let mut i = Self::probe(id).0 & new.mask;
                while new.vals[i].load(Relaxed) != EMPTY {
                    i = (i + 1) & new.mask;
                }
                new.vals[i].store(v, Relaxed);
            }
        }
        c.used = c.live;
        self.table.store(Owned::new(new), Release);
        // SAFETY: unreachable for new lookups; in-flight ones are pinned.
        unsafe { g.defer_destroy(old) };
    }

    pub fn bytes(&self, g: &Guard) -> usize {
        // SAFETY: as in `get`.
        unsafe { self.table.load(Acquire, g).deref() }.vals.len() * 4
    }
}

impl Drop for DriverMap {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other reference exists.
        unsafe {
            drop(
                self.table
                    .load(Relaxed, crossbeam_epoch::unprotected())
                    .into_owned(),
            )
        };
    }
}

/// Key and value side by side: a lookup is one cache miss, not two.
#[derive(Default)]
struct CellEntry {
    key: AtomicU64,
    val: AtomicU32,
}

struct CellTable {
    mask: usize,
    entries: Box<[CellEntry]>,
}

/// H3 cell → bucket index; insert-only (buckets are never deleted).
pub(crate) struct CellMap {
    table: Atomic<CellTable>,
}

impl CellMap {
    pub fn new(cap: usize) -> Self {
        Self {
            table: Atomic::new(Self::alloc(cap)),
        }
    }

    fn alloc(cap: usize) -> CellTable {
        let n = (cap * 2).next_power_of_two().max(256);
        CellTable {
            mask: n - 1,
            entries: (0..n).map(|_| CellEntry::default()).collect(),
        }
    }

    /// Starts loading the entry where a lookup of `cell` begins.
    #[inline]
    pub fn prefetch(&self, cell: u64, g: &Guard) {
        // SAFETY: never null; freed only through the epoch.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        crate::slot::prefetch(&t.entries[mix(cell) as usize & t.mask]);
    }

    /// Lock-free lookup (`0` is not a valid H3 index, so it marks empty entries).
    pub fn get(&self, cell: u64, g: &Guard) -> Option<u32> {
        // SAFETY: never null; freed only through the epoch.
        let t = unsafe { self.table.load(Acquire, g).deref() };
        let mut i = mix(cell) as usize & t.mask;
        loop {
            let e = &t.entries[i];
            let k = e.key.load(Acquire);
            if k == cell {
                return Some(e.val.load(Relaxed));
            }
            if k == 0 {
                return None;
            }
            i = (i + 1) & t.mask;
        }
    }

    /// Inserts (caller holds the bucket-creation lock; `len` is the count before insertion).
    pub fn insert(&self, cell: u64, bucket: u32, len: usize, g: &Guard) {
        let cur = self.table.load(Acquire, g);
        // SAFETY: as in `get`.
        let t = unsafe { cur.deref() };
        if (len + 1) * 2 > t.entries.len() {
            let new = Self::alloc(len * 2 + 2);
            for e in t.entries.iter() {
                let k = e.key.load(Relaxed);
                if k != 0 {
                    Self::put(&new, k, e.val.load(Relaxed));
                }
            }
            self.table.store(Owned::new(new), Release);
            // SAFETY: unreachable for new lookups; in-flight ones are pinned.
            unsafe { g.defer_destroy(cur) };
            return self.insert(cell, bucket, len, g);
        }
        Self::put(t, cell, bucket);
    }

    fn put(t: &CellTable, cell: u64, bucket: u32) {
        let mut i = mix(cell) as usize & t.mask;
        while t.entries[i].key.load(Relaxed) != 0 {
            i = (i + 1) & t.mask;
        }
        // Value first: a reader that sees the key (Acquire) sees the value.
        t.entries[i].val.store(bucket, Relaxed);
        t.entries[i].key.store(cell, Release);
    }

    pub fn bytes(&self, g: &Guard) -> usize {
        // SAFETY: as in `get`.
        unsafe { self.table.load(Acquire, g).deref() }.entries.len()
            * std::mem::size_of::<CellEntry>()
    }
}

impl Drop for CellMap {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other reference exists.
        unsafe {
            drop(
                self.table
                    .load(Relaxed, crossbeam_epoch::unprotected())
                    .into_owned(),
            )
        };
    }
}
