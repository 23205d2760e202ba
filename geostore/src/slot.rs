//! Per-driver records: a slab of [`Slot`]s, each a double-buffered record behind one control
//! word, so that readers take a consistent snapshot without ever waiting for a writer.
//!
//! The control word holds `seq | bucket | live | transit | lock | state`. A writer (holding the
//! lock bit, which only writers look at) fills the buffer that readers of the *current* `seq` are
//! not reading, then bumps `seq`. A reader loads the control word, reads buffer `seq & 1` and
//! re-checks `seq`: it retries only if a writer *finished* a publish meanwhile, so a writer
//! stalled mid-update never holds a reader up (lock-free, not just "short critical sections").
//! The driver state lives in the control word itself, so it is part of every snapshot; state
//! changes (matching's compare-and-set `available → offered`) take the driver's writer lock for a
//! few instructions, which lets every other control-word update be a plain store.

use crate::DriverState;
use crate::geo::Pos;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*, fence};

pub(crate) const STATE_MASK: u64 = 0b11;
pub(crate) const LOCK: u64 = 1 << 2;
pub(crate) const TRANSIT: u64 = 1 << 3;
pub(crate) const LIVE: u64 = 1 << 4;
const BUCKET_SHIFT: u32 = 8;
const BUCKET_MASK: u64 = 0xFFFF_FFFF << BUCKET_SHIFT;
const SEQ_SHIFT: u32 = 40;
const SEQ_MASK: u64 = !0 << SEQ_SHIFT;
/// Flags a publish replaces; state and the lock bit are preserved.
const PUBLISHED: u64 = SEQ_MASK | BUCKET_MASK | LIVE | TRANSIT;

/// Slots per slab segment: small, so that a fleet of 100K does not pay for a huge segment.
const SEG_BITS: u32 = 12;
const SEG_LEN: usize = 1 << SEG_BITS;
/// Segments in the slab: 16384 × 4096 = 64M slots, far above a city's fleet.
const MAX_SEGS: usize = 1 << 14;
pub(crate) const MAX_SLOTS: u32 = (MAX_SEGS * SEG_LEN) as u32 - 2;

/// Driver metadata packed into one word: `ts_ms` (44 bits: ms since the Unix epoch, good for
/// five centuries), heading in whole degrees (9 bits) and speed in 0.1 m/s (11 bits, ≤ 204.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Meta(pub u64);

pub(crate) const MAX_TS_MS: u64 = (1 << 44) - 1;

impl Meta {
    pub fn pack(ts_ms: u64, heading_deg: f32, speed_mps: f32) -> Self {
        // Truncating conversions of +0.5 round like `round` for these non-negative values, without
        // the libm calls `round`/`rem_euclid` are on the baseline x86-64 target.
        let h = if (0.0..360.0).contains(&heading_deg) {
            heading_deg
        } else {
            heading_deg.rem_euclid(360.0)
        };
        let h = ((h + 0.5) as u64) % 360;
        let s = ((speed_mps * 10.0 + 0.5) as u64).min(2047);
        Self((ts_ms.min(MAX_TS_MS) << 20) | (h << 11) | s)
    }
    pub fn ts_ms(self) -> u64 {
        self.0 >> 20
    }
    pub fn heading_deg(self) -> f32 {
        ((self.0 >> 11) & 0x1FF) as f32
    }
    pub fn speed_mps(self) -> f32 {
        (self.0 & 0x7FF) as f32 / 10.0
    }
}

/// A consistent view of one slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Snap {
    pub ctrl: u64,
    pub id: u64,
    pub pos: Pos,
    pub meta: Meta,
}

impl Snap {
    pub fn live(&self) -> bool {
        self.ctrl & LIVE != 0
    }
    pub fn transit(&self) -> bool {
        self.ctrl & TRANSIT != 0
    }
    pub fn bucket(&self) -> u32 {
        bucket_of(self.ctrl)
    }
    pub fn state(&self) -> DriverState {
        DriverState::from_bits(self.ctrl & STATE_MASK)
    }
}

pub(crate) fn bucket_of(ctrl: u64) -> u32 {
    ((ctrl & BUCKET_MASK) >> BUCKET_SHIFT) as u32
}

pub(crate) fn flags(bucket: u32, live: bool, transit: bool) -> u64 {
    (u64::from(bucket) << BUCKET_SHIFT)
        | if live { LIVE } else { 0 }
        | if transit { TRANSIT } else { 0 }
}

/// One cache line per slot: a query or upsert that touches a driver pays one miss, not two.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct Slot {
    ctrl: AtomicU64,
    /// The driver id, read inside the snapshot window so it is consistent with the record.
    id: AtomicU64,
    /// Index of this driver's entry in its bucket's member array. Only the lock holder reads or
    /// writes it, so it needs no place in the snapshot.
    entry: AtomicU32,
    /// `[buffer][pos, meta]`: buffer `seq & 1` is the published one.
    rec: [[AtomicU64; 2]; 2],
}

impl Slot {
    pub fn id(&self) -> u64 {
        self.id.load(Relaxed)
    }
    pub fn set_id(&self, id: u64) {
        self.id.store(id, Relaxed);
    }
    /// The control word without synchronisation: only for prefetch guesses.
    pub fn ctrl_relaxed(&self) -> u64 {
        self.ctrl.load(Relaxed)
    }
    pub fn entry(&self) -> u32 {
        self.entry.load(Relaxed)
    }
    pub fn set_entry(&self, e: u32) {
        self.entry.store(e, Relaxed);
    }

    /// Lock-free consistent read. Retries only when a publish completed during the read.
    pub fn read(&self) -> Snap {
        loop {
            let v1 = self.ctrl.load(Acquire);
            let b = ((v1 >> SEQ_SHIFT) & 1) as usize;
            let pos = self.rec[b][0].load(Relaxed);
            let meta = self.rec[b][1].load(Relaxed);
            let id = self.id.load(Relaxed);
            fence(Acquire);
            let v2 = self.ctrl.load(Relaxed);
            if (v1 ^ v2) & SEQ_MASK == 0 {
                return Snap {
                    ctrl: v2,
                    id,
                    pos: Pos(pos),
                    meta: Meta(meta),
                };
            }
            std::hint::spin_loop();
        }
    }

    /// Takes the writer lock (writers of the same driver only; readers never look at it) and
    /// returns the current snapshot.
    pub fn lock(&self) -> Snap {
        let mut spins = 0u32;
        loop {
            let c = self.ctrl.load(Relaxed);
            if c & LOCK == 0
                && self
                    .ctrl
                    .compare_exchange_weak(c, c | LOCK, Acquire, Relaxed)
                    .is_ok()
            {
                let b = ((c >> SEQ_SHIFT) & 1) as usize;
                return Snap {
                    ctrl: c | LOCK,
                    id: self.id.load(Relaxed),
                    pos: Pos(self.rec[b][0].load(Relaxed)),
                    meta: Meta(self.rec[b][1].load(Relaxed)),
                };
            }
            spins += 1;
            if spins > 64 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Takes the writer lock if it is free (bucket growth, which must not wait on a writer).
    pub fn try_lock(&self) -> bool {
        let c = self.ctrl.load(Relaxed);
        c & LOCK == 0
            && self
                .ctrl
                .compare_exchange(c, c | LOCK, Acquire, Relaxed)
                .is_ok()
    }

    /// Releases the writer lock. A plain store: while the lock is held nobody else writes the
    /// control word (state changes take the lock too), which saves a locked instruction.
    pub fn unlock(&self) {
        let c = self.ctrl.load(Relaxed);
        self.ctrl.store(c & !LOCK, Release);
    }

    /// Publishes a new record (lock held): writes the buffer readers of the current `seq` do
    /// not read, then bumps `seq` and replaces bucket/live/transit. Optionally sets the state.
    pub fn publish(&self, pos: Pos, meta: Meta, new_flags: u64, state: Option<DriverState>) {
        let c = self.ctrl.load(Relaxed);
        debug_assert!(c & LOCK != 0);
        let next = (c >> SEQ_SHIFT).wrapping_add(1);
        let b = (next & 1) as usize;
        // Orders the lock acquisition / previous publish before these data stores, so a reader
        // that sees them also sees a newer `seq` and retries.
        fence(Release);
        self.rec[b][0].store(pos.0, Relaxed);
        self.rec[b][1].store(meta.0, Relaxed);
        let mut n = (c & !PUBLISHED) | new_flags | (next << SEQ_SHIFT);
        if let Some(s) = state {
            n = (n & !STATE_MASK) | s.bits();
        }
        // Only the lock holder writes the control word, so a plain store suffices.
        self.ctrl.store(n, Release);
    }

    /// Replaces the state (lock held). State changes do not bump `seq`: a snapshot takes the
    /// state from its second control-word read, so it is current at that instant.
    pub fn set_state_locked(&self, new: DriverState) {
        let c = self.ctrl.load(Relaxed);
        debug_assert!(c & LOCK != 0);
        self.ctrl.store((c & !STATE_MASK) | new.bits(), Release);
    }
}

/// Segmented slab of slots. Segments are allocated on demand and never move or free before the
/// store is dropped, so a slot index read from any structure is always safe to dereference.
pub(crate) struct Slab {
    segs: Box<[AtomicPtr<Slot>]>,
}

impl Slab {
    pub fn new() -> Self {
        Self {
            segs: (0..MAX_SEGS)
                .map(|_| AtomicPtr::new(ptr::null_mut()))
                .collect(),
        }
    }

    /// Makes sure slot `i` exists (called under the allocation lock, before `i` is published).
    pub fn ensure(&self, i: u32) {
        let s = (i >> SEG_BITS) as usize;
        if self.segs[s].load(Acquire).is_null() {
            let seg: Box<[Slot]> = (0..SEG_LEN).map(|_| Slot::default()).collect();
            self.segs[s].store(Box::into_raw(seg).cast::<Slot>(), Release);
        }
    }

    #[inline]
    pub fn get(&self, i: u32) -> &Slot {
        let p = self.segs[(i >> SEG_BITS) as usize].load(Acquire);
        assert!(!p.is_null(), "slot {i} used before allocation");
        // SAFETY: a non-null segment pointer came from a leaked `Box<[Slot]>` of SEG_LEN slots
        // that lives until `Drop`, and the offset is < SEG_LEN.
        unsafe { &*p.add((i as usize) & (SEG_LEN - 1)) }
    }

    /// Hints the CPU to start loading slot `i`: queries know their next few slots in advance,
    /// and overlapping those cache misses is most of the speed of a scan.
    #[inline]
    pub fn prefetch(&self, i: u32) {
        prefetch(self.get(i));
    }

    pub fn segments(&self) -> usize {
        self.segs
            .iter()
            .take_while(|p| !p.load(Relaxed).is_null())
            .count()
    }

    pub fn bytes(&self) -> usize {
        self.segments() * SEG_LEN * std::mem::size_of::<Slot>() + MAX_SEGS * 8
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        for s in self.segs.iter() {
            let p = s.load(Relaxed);
            if !p.is_null() {
                // SAFETY: reconstructs exactly the boxed slice leaked in `ensure`.
                drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(p, SEG_LEN)) });
            }
        }
    }
}

/// Hints the CPU to start loading the cache line of `p`. No architectural effect.
#[inline]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch never faults and has no architectural effect, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
