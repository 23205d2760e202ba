//! Buckets: one per H3 cell that has ever held a driver. A bucket lists its members as
//! `(slot, hint)` entries in an array readers scan without locks.
//!
//! The hint is the member's packed position, kept next to the slot index so that a query can
//! reject far members by reading this array sequentially instead of chasing every slot (a cache
//! miss each). Protocol: a hint is either `WILD` ("read the slot") or the member's position *at
//! the moment it is read*: writers set `WILD` before publishing a new position and the new
//! position after, so a hint is never an outdated position. `TOMB` marks a removed entry.
//!
//! Every membership change (add, remove, growth) happens under the bucket's writer mutex and then
//! bumps `ver`; queries record `ver` before scanning and re-check it at the end (see
//! `query.rs` for why that makes moves between buckets safe).

use crate::geo::{CellGeo, Pos};
use crossbeam_epoch::{Atomic, Guard, Owned};
use parking_lot::Mutex;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

pub(crate) const WILD: u64 = u64::MAX;
pub(crate) const TOMB: u64 = u64::MAX - 1;

/// Packs a position and "is available" into a hint. |lat_e7| ≤ 9e8 < 2^30, so the top two bits
/// of the latitude field are equal; their XOR carries the flag, letting queries that filter on
/// availability skip members without reading their slot. The two values that would collide with
/// the sentinels become `WILD` (always safe: the reader reads the slot).
pub(crate) fn hint_of(pos: Pos, available: bool) -> u64 {
    let h = pos.0 ^ (u64::from(available) << 63);
    if h >= TOMB { WILD } else { h }
}

/// Inverse of [`hint_of`] for a hint that is neither `WILD` nor `TOMB`.
#[inline]
pub(crate) fn unhint(h: u64) -> (Pos, bool) {
    let available = ((h >> 63) ^ (h >> 62)) & 1;
    (Pos(h ^ (available << 63)), available == 1)
}

pub(crate) struct Members {
    /// High-water mark of used entries; entries below it are live, `WILD` or `TOMB`.
    len: AtomicU32,
    hints: Box<[AtomicU64]>,
    slots: Box<[AtomicU32]>,
}

impl Members {
    fn with_capacity(cap: usize) -> Self {
        Self {
            len: AtomicU32::new(0),
            hints: (0..cap).map(|_| AtomicU64::new(TOMB)).collect(),
            slots: (0..cap).map(|_| AtomicU32::new(0)).collect(),
        }
    }
    pub fn len(&self) -> usize {
        self.len.load(Acquire) as usize
    }
    #[inline]
    pub fn hint(&self, i: usize) -> u64 {
        self.hints[i].load(Acquire)
    }
    #[inline]
    pub fn slot(&self, i: usize) -> u32 {
        self.slots[i].load(Acquire)
    }
}

pub(crate) struct Bucket {
    pub cell: u64,
    pub geo: CellGeo,
    /// Bumped after every membership change; queries validate against it.
    pub ver: AtomicU64,
    members: Atomic<Members>,
    /// Writer mutex; guards the free list of tombstoned entry indices.
    free: Mutex<Vec<u32>>,
    /// Live member count (maintained under `free`'s lock), for stats.
    pub count: AtomicU32,
}

impl Bucket {
    pub fn new(cell: h3o::CellIndex) -> Self {
        Self {
            cell: u64::from(cell),
            geo: CellGeo::new(cell),
            ver: AtomicU64::new(0),
            members: Atomic::new(Members::with_capacity(4)),
            free: Mutex::new(Vec::new()),
            count: AtomicU32::new(0),
        }
    }

    pub fn members<'g>(&self, g: &'g Guard) -> &'g Members {
        // SAFETY: never null; old arrays are freed only through the epoch.
        unsafe { self.members.load(Acquire, g).deref() }
    }

    /// Sets the hint of entry `i` (caller holds the member's slot lock, which owns the entry).
    /// If the array was just replaced by growth, the write may land in the old copy; the new
    /// copy then holds `WILD`, which is always safe.
    #[inline]
    pub fn set_hint(&self, i: u32, v: u64, g: &Guard) {
        self.members(g).hints[i as usize].store(v, Release);
    }

    /// Adds `slot` with a `WILD` hint and returns its entry index.
    pub fn add(&self, slot: u32, g: &Guard) -> u32 {
        let mut free = self.free.lock();
        let mut m = self.members(g);
        let i = match free.pop() {
            Some(i) => i as usize,
            None => {
                let len = m.len();
                if len == m.hints.len() {
                    m = self.grow(m, g);
                }
                len
            }
        };
        m.hints[i].store(WILD, Release);
        m.slots[i].store(slot, Release);
        if i == m.len() {
            m.len.store(i as u32 + 1, Release);
        }
        self.count.fetch_add(1, Relaxed);
        self.ver.fetch_add(1, Release);
        i as u32
    }

    /// Tombstones entry `i` (caller holds the member's slot lock).
    pub fn remove(&self, i: u32, g: &Guard) {
        let mut free = self.free.lock();
        self.members(g).hints[i as usize].store(TOMB, Release);
        free.push(i);
        self.count.fetch_sub(1, Relaxed);
        self.ver.fetch_add(1, Release);
    }

    /// Copy-on-write growth; entry indices are preserved, hints become `WILD` because a member's
    /// writer may be updating the old copy right now.
    fn grow<'g>(&self, old: &Members, g: &'g Guard) -> &'g Members {
        let cap = old.hints.len() * 2;
        let new = Members::with_capacity(cap);
        let len = old.len();
        for i in 0..len {
            let h = old.hint(i);
            new.hints[i].store(if h == TOMB { TOMB } else { WILD }, Relaxed);
            new.slots[i].store(old.slot(i), Relaxed);
        }
        new.len.store(len as u32, Relaxed);
        let prev = self.members.swap(Owned::new(new), AcqRel, g);
        // SAFETY: no longer reachable for new readers; pinned ones keep it alive.
        unsafe { g.defer_destroy(prev) };
        self.ver.fetch_add(1, Release);
        self.members(g)
    }

    pub fn bytes(&self, g: &Guard) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of::<Members>()
            + self.members(g).hints.len() * 12
    }
}

impl Drop for Bucket {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other reference exists.
        unsafe {
            drop(
                self.members
                    .load(Relaxed, crossbeam_epoch::unprotected())
                    .into_owned(),
            )
        };
    }
}

const SEG_BITS: u32 = 10;
const SEG_LEN: usize = 1 << SEG_BITS;
/// 4096 segments × 1024 = 4M buckets (a 30 × 30 km city holds ~8.6K at resolution 9); the
/// small top-level table stays in cache.
const MAX_SEGS: usize = 1 << 12;

/// Segmented arena of boxed buckets: indices are stable and buckets live until the store drops.
pub(crate) struct Arena {
    segs: Box<[AtomicPtr<AtomicPtr<Bucket>>]>,
    len: AtomicU32,
}

impl Arena {
    pub fn new() -> Self {
        Self {
            segs: (0..MAX_SEGS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
            len: AtomicU32::new(0),
        }
    }

    pub fn len(&self) -> u32 {
        self.len.load(Acquire)
    }

    /// Appends (caller holds the bucket-creation lock). Panics past 64M buckets.
    pub fn push(&self, b: Bucket) -> u32 {
        let i = self.len.load(Relaxed);
        let s = (i >> SEG_BITS) as usize;
        assert!(s < MAX_SEGS, "bucket arena full");
        if self.segs[s].load(Acquire).is_null() {
            let seg: Box<[AtomicPtr<Bucket>]> = (0..SEG_LEN)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect();
            self.segs[s].store(Box::into_raw(seg).cast(), Release);
        }
        // SAFETY: segment allocated above with SEG_LEN entries.
        let e = unsafe { &*self.segs[s].load(Acquire).add(i as usize & (SEG_LEN - 1)) };
        e.store(Box::into_raw(Box::new(b)), Release);
        self.len.store(i + 1, Release);
        i
    }

    #[inline]
    pub fn get(&self, i: u32) -> &Bucket {
        let s = self.segs[(i >> SEG_BITS) as usize].load(Acquire);
        assert!(!s.is_null());
        // SAFETY: published segment of SEG_LEN entries; a published index points at a bucket
        // that lives until `Drop`.
        unsafe {
            let p = (*s.add(i as usize & (SEG_LEN - 1))).load(Acquire);
            assert!(!p.is_null());
            &*p
        }
    }

    pub fn bytes(&self) -> usize {
        MAX_SEGS * 8 + self.len().div_ceil(SEG_LEN as u32) as usize * SEG_LEN * 8
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        let n = self.len() as usize;
        for s in 0..n.div_ceil(SEG_LEN) {
            let seg = self.segs[s].load(Relaxed);
            for j in 0..SEG_LEN.min(n - s * SEG_LEN) {
                // SAFETY: entries below `len` hold leaked boxes; each is freed once.
                unsafe { drop(Box::from_raw((*seg.add(j)).load(Relaxed))) };
            }
            // SAFETY: reconstructs the boxed slice leaked in `push`.
            unsafe { drop(Box::from_raw(ptr::slice_from_raw_parts_mut(seg, SEG_LEN))) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_round_trip() {
        for &(la, lo) in &[
            (0, 0),
            (-1, -1),
            (900_000_000, 1_800_000_000),
            (-900_000_000, -1_800_000_000),
            (523_700_000, 48_900_000),
            (-1, 0),
            (0, -1),
        ] {
            for avail in [false, true] {
                let p = Pos::from_e7(la, lo);
                let h = hint_of(p, avail);
                if h == WILD {
                    continue;
                }
                assert_ne!(h, TOMB);
                assert_eq!(unhint(h), (p, avail), "{la} {lo} {avail}");
            }
        }
    }
}
