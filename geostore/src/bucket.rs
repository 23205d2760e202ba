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
use crate::slot::Slab;
use crossbeam_epoch::{Atomic, Guard, Owned, Pointer, Shared};
use parking_lot::Mutex;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};

pub(crate) const WILD: u64 = u64::MAX;
pub(crate) const TOMB: u64 = u64::MAX - 1;
const INITIAL_CAP: usize = 4;
/// An empty entry of [`Bucket`]'s neighbour cache.
const NONE: u32 = u32::MAX;

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

/// A bucket's member array, one allocation (one cache miss fewer per upsert and per scanned
/// bucket than separately boxed parts): word 0 is the high-water mark `len`, words `1..=cap`
/// the hints, then the slot indices packed two per word.
type Words = [MaybeUninit<AtomicU64>];

/// A pinned view of a member array.
#[derive(Clone, Copy)]
pub(crate) struct Members<'g> {
    words: &'g [AtomicU64],
    cap: usize,
}

/// Address of hint `i` in the array at `p`: crossbeam-epoch lays a `[MaybeUninit<T>]` out as
/// `{ len: usize, elements }` (checked by `tests::hint_addresses_match`), and element `1 + i` is
/// hint `i`. The pointer is never tagged, so its bits are the address.
fn hint_addr(p: Shared<'_, Words>, i: u32) -> *const AtomicU64 {
    (p.into_usize() + 8 * (2 + i as usize)) as *const AtomicU64
}

fn m_cap_of(o: &Owned<Words>) -> usize {
    Members::view(o).cap
}

fn words_for(cap: usize) -> usize {
    1 + cap + cap.div_ceil(2)
}

fn new_members(cap: usize) -> Owned<Words> {
    let mut o = Owned::<Words>::init(words_for(cap));
    for (i, w) in o.iter_mut().enumerate() {
        let init = if (1..=cap).contains(&i) { TOMB } else { 0 };
        w.write(AtomicU64::new(init));
    }
    o
}

impl<'g> Members<'g> {
    fn view(words: &'g Words) -> Self {
        // SAFETY: every word is initialised in `new_members` before the array is published,
        // and `MaybeUninit<AtomicU64>` has the layout of `AtomicU64`.
        let words = unsafe { &*(std::ptr::from_ref(words) as *const [AtomicU64]) };
        // words = 1 + cap + ceil(cap / 2) → cap = floor(2 (words − 1) / 3).
        let cap = (words.len() - 1) * 2 / 3;
        debug_assert_eq!(words_for(cap), words.len());
        Self { words, cap }
    }
    pub fn len(&self) -> usize {
        self.words[0].load(Acquire) as usize
    }
    fn set_len(&self, n: usize) {
        self.words[0].store(n as u64, Release);
    }
    fn hint_ref(&self, i: usize) -> &'g AtomicU64 {
        assert!(i < self.cap);
        &self.words[1 + i]
    }
    #[inline]
    pub fn hint(&self, i: usize) -> u64 {
        self.hint_ref(i).load(Acquire)
    }
    fn slot_ref(&self, i: usize) -> &'g AtomicU32 {
        assert!(i < self.cap);
        let w: *const AtomicU64 = &self.words[1 + self.cap + i / 2];
        // SAFETY: an `AtomicU64` is two naturally aligned `AtomicU32`s; this half is only ever
        // accessed as an `AtomicU32` (mixed-size access to one word never happens).
        unsafe { &*w.cast::<AtomicU32>().add(i % 2) }
    }
    #[inline]
    pub fn slot(&self, i: usize) -> u32 {
        self.slot_ref(i).load(Acquire)
    }
}

/// Laid out so that what every upsert reads (the member array pointer and the geometry of the
/// same-cell test) sits in the first two cache lines; membership-change fields come last.
#[repr(C, align(64))]
pub(crate) struct Bucket {
    members: Atomic<Words>,
    /// Capacity of the member array, stored after a growth publishes the bigger array: a
    /// writer that reads it before the pointer gets a capacity ≤ the array's, so it can
    /// address its hint without reading the array's header (a cache line, on every upsert).
    cap: AtomicU32,
    pub geo: CellGeo,
    /// Bumped after every membership change; queries validate against it.
    pub ver: AtomicU64,
    /// Buckets this one's drivers recently moved to (its neighbours, once warm), `NONE` when
    /// empty: a driver leaving the cell is looked for in their same-cell tests first, which
    /// spares most moves the h3o cell computation. Any bucket is a correct entry, so racing
    /// writers may overwrite each other freely.
    neigh: [AtomicU32; 6],
    /// Writer mutex; guards the free list of tombstoned entry indices.
    free: Mutex<Vec<u32>>,
}

// Three cache lines per bucket: the memory budget counts them (≈ 8 600 buckets at 100K drivers).
const _: () = assert!(std::mem::size_of::<Bucket>() == 192);

impl Bucket {
    pub fn new(cell: h3o::CellIndex) -> Self {
        Self {
            cap: AtomicU32::new(INITIAL_CAP as u32),
            geo: CellGeo::new(cell),
            ver: AtomicU64::new(0),
            members: Atomic::from(new_members(INITIAL_CAP)),
            free: Mutex::new(Vec::new()),
            neigh: Default::default(),
        }
    }

    pub fn members<'g>(&self, g: &'g Guard) -> Members<'g> {
        // SAFETY: never null; old arrays are freed only through the epoch.
        Members::view(unsafe { self.members.load(Acquire, g).deref() })
    }

    /// Sets the hint of entry `i` (caller holds the member's slot lock, which owns the entry).
    /// If the array was just replaced by growth, the write may land in the old copy; the new
    /// copy then holds `WILD`, which is always safe.
    #[inline]
    pub fn set_hint(&self, i: u32, v: u64, g: &Guard) {
        self.hint_at(i, g).store(v, Release);
    }

    /// Entry `i`'s hint word, addressed from the array pointer and `cap` alone.
    #[inline]
    fn hint_at<'g>(&self, i: u32, g: &'g Guard) -> &'g AtomicU64 {
        let cap = self.cap.load(Acquire);
        assert!(i < cap, "member entry {i} beyond capacity {cap}");
        let p = hint_addr(self.members.load(Acquire, g), i);
        // SAFETY: the array is live (pinned) and holds ≥ `cap` > i hints (see `cap`); word
        // `1 + i` of its elements is initialised (`new_members`).
        unsafe { &*p }
    }

    /// The recently moved-to buckets (`NONE` entries skipped).
    pub fn neighbours(&self) -> impl Iterator<Item = u32> + '_ {
        self.neigh
            .iter()
            .map(|n| n.load(Relaxed))
            .filter(|&n| n != NONE)
    }

    /// Remembers that a driver moved from here to bucket `to`.
    pub fn remember(&self, to: u32) {
        if self.neighbours().any(|n| n == to) {
            return;
        }
        let free = self.neigh.iter().position(|n| n.load(Relaxed) == NONE);
        self.neigh[free.unwrap_or(to as usize % 6)].store(to, Relaxed);
    }

    /// Starts loading the two cache lines an upsert reads.
    #[inline]
    pub fn prefetch(&self) {
        let p: *const Self = self;
        crate::slot::prefetch(p);
        crate::slot::prefetch(p.cast::<u8>().wrapping_add(64));
    }

    /// Starts loading a member array about to be scanned: its header and hints (up to
    /// `LINES` lines), and the first line of its slot indices.
    #[inline]
    pub fn prefetch_members(&self, g: &Guard) {
        const LINES: usize = 4;
        let p = self.members.load(Relaxed, g).into_usize();
        let cap = self.cap.load(Relaxed) as usize;
        let hint_lines = (16 + 8 * cap).div_ceil(64).min(LINES);
        for l in 0..hint_lines {
            crate::slot::prefetch((p + 64 * l) as *const u8);
        }
        crate::slot::prefetch((p + 16 + 8 * cap) as *const u8);
    }

    /// Starts loading the hint of entry `i`, computing the address without reading the array
    /// (which may not be in cache yet). `i` is an unlocked
    /// guess: an address past the array is only a wasted prefetch (prefetches never fault).
    #[inline]
    pub fn prefetch_hint(&self, i: u32, g: &Guard) {
        crate::slot::prefetch(hint_addr(self.members.load(Relaxed, g), i));
    }

    /// Adds `slot` with a `WILD` hint and returns its entry index.
    pub fn add(&self, slot: u32, slab: &Slab, g: &Guard) -> u32 {
        let mut free = self.free.lock();
        let mut m = self.members(g);
        let i = match free.pop() {
            Some(i) => i as usize,
            None => {
                let len = m.len();
                if len == m.cap {
                    m = self.grow(m, slab, g);
                }
                len
            }
        };
        // Slot index before hint: a reused entry (i < len) is visible to scans at once, and a
        // scan that reads the new `WILD` hint must not pair it with the previous occupant's
        // slot index. That driver could be back in this bucket at another entry and be counted
        // twice, by a pass that validates if this writer stalls before the `ver` bump below.
        m.slot_ref(i).store(slot, Release);
        m.hint_ref(i).store(WILD, Release);
        if i == m.len() {
            m.set_len(i + 1);
        }
        self.ver.fetch_add(1, Release);
        i as u32
    }

    /// Tombstones entry `i` (caller holds the member's slot lock).
    pub fn remove(&self, i: u32, g: &Guard) {
        let mut free = self.free.lock();
        self.members(g).hint_ref(i as usize).store(TOMB, Release);
        free.push(i);
        self.ver.fetch_add(1, Release);
    }

    /// Copy-on-write growth (under the bucket mutex); entry indices are preserved. A hint may
    /// be copied only while no writer can be changing it, i.e. while its driver's slot lock is
    /// held: growth *tries* each lock (it must not wait on writers, who may be waiting for this
    /// mutex), copies the hints of the slots it got, makes the others `WILD` (always safe; the
    /// next ping repairs them), publishes the new array and only then releases the locks, so a
    /// writer that takes one afterwards writes into the new array.
    fn grow<'g>(&self, old: Members<'_>, slab: &Slab, g: &'g Guard) -> Members<'g> {
        let new = new_members(old.cap * 2);
        let len = old.len();
        let mut held = Vec::new();
        {
            let m = Members::view(&new);
            for i in 0..len {
                let h = old.hint(i);
                let s = old.slot(i);
                let copy = if h == TOMB {
                    TOMB
                } else if slab.get(s).try_lock() {
                    held.push(s);
                    // Re-read under the lock: this is the value its last writer left.
                    old.hint(i)
                } else {
                    WILD
                };
                m.hint_ref(i).store(copy, Relaxed);
                m.slot_ref(i).store(s, Relaxed);
            }
            m.set_len(len);
        }
        let cap = m_cap_of(&new) as u32;
        let prev = self.members.swap(new, AcqRel, g);
        // After the swap: whoever reads the new capacity also sees the new array.
        self.cap.store(cap, Release);
        for s in held {
            slab.get(s).unlock();
        }
        // SAFETY: no longer reachable for new readers; pinned ones keep it alive.
        unsafe { g.defer_destroy(prev) };
        self.ver.fetch_add(1, Release);
        self.members(g)
    }

    pub fn bytes(&self, g: &Guard) -> usize {
        std::mem::size_of::<Self>() + 8 + self.members(g).words.len() * 8
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
    fn hint_addresses_match() {
        let b = Bucket::new(
            h3o::LatLng::new(1.0, 2.0)
                .unwrap()
                .to_cell(h3o::Resolution::Nine),
        );
        let g = crossbeam_epoch::pin();
        let slab = Slab::new();
        slab.ensure(0);
        for _ in 0..40 {
            b.add(0, &slab, &g);
        }
        let m = b.members(&g);
        assert!(m.cap >= 40 && b.cap.load(Relaxed) as usize == m.cap);
        for i in 0..40 {
            assert!(std::ptr::eq(b.hint_at(i, &g), m.hint_ref(i as usize)));
        }
    }

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
