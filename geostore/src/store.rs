//! [`GeoStore`]: configuration, the writer paths (upsert, state, remove, sweep) and stats.
//!
//! Locks, all writer-side (readers take none), in acquisition order: `alloc` (driver insert and
//! remove, slot allocation) → a slot's lock bit (one driver's writers) → `cells_lock` (bucket
//! creation) → a bucket's member mutex. Upserts of known drivers take only their slot's lock
//! and, when they change bucket, the two buckets' mutexes.

use crate::bucket::{Arena, Bucket, WILD, hint_of};
use crate::geo::Pos;
use crate::slot::{MAX_SLOTS, MAX_TS_MS, Meta, Slab, Snap, flags};
use crate::table::{CellMap, DriverMap, DriverMapCounts};
use crate::{Driver, DriverId, DriverState, Error, Result};
use crossbeam_epoch::{self as epoch, Guard};
use crossbeam_utils::CachePadded;
use h3o::Resolution;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::time::Duration;

/// Store configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// H3 resolution of the buckets. The default, 9 (≈ 0.1 km² cells), is chosen from the
    /// measurements in the crate README: it keeps both the 100K and 1M fleets fast; 10 is as
    /// fast at 1M but slower and bigger at 100K.
    pub resolution: Resolution,
    /// Pings older than this (relative to a query's `now_ms`) drop out of answers; `sweep`
    /// reclaims them.
    pub staleness: Duration,
    /// Expected number of drivers: presizes the driver table (it still grows on demand).
    pub expected_drivers: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resolution: Resolution::Nine,
            staleness: Duration::from_secs(30),
            expected_drivers: 1024,
        }
    }
}

/// What an upsert did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// First ping of this driver (state starts [`DriverState::Available`]).
    Inserted,
    /// Position replaced.
    Updated,
    /// The ping was older than the stored one and was ignored (out-of-order delivery).
    IgnoredOlder,
}

/// Result of one [`GeoStore::sweep`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Slots examined.
    pub scanned: u64,
    /// Drivers removed because their last ping was stale.
    pub expired: u64,
}

/// Counters and gauges for the cell to export (e.g. as Prometheus metrics). Counters are
/// monotonic since the store was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Drivers currently tracked (gauge).
    pub drivers: u64,
    /// Buckets (H3 cells ever occupied; gauge).
    pub buckets: u64,
    pub upserts_total: u64,
    pub inserts_total: u64,
    /// Pings ignored because a newer one was already stored.
    pub ignored_older_total: u64,
    /// Upserts that moved a driver to another bucket.
    pub bucket_moves_total: u64,
    /// Upserts that skipped the H3 computation (position surely inside the current cell).
    pub fast_path_total: u64,
    pub removes_total: u64,
    pub queries_total: u64,
    /// Query passes repeated because a concurrent move invalidated them.
    pub query_retries_total: u64,
    pub sweeps_total: u64,
    pub swept_expired_total: u64,
    /// Heap bytes held by the index (gauge; computed on demand).
    pub memory_bytes: u64,
}

#[derive(Clone, Copy)]
pub(crate) enum Ctr {
    /// Same-bucket updates that needed h3o (the fast-path ones count under `Fast`).
    Slow,
    Inserts,
    Ignored,
    Moves,
    Fast,
    Removes,
    Queries,
    Retries,
    Sweeps,
    Expired,
}
const NCTR: usize = 10;
const STRIPES: usize = 8;

/// Counters striped per thread so concurrent writers do not bounce one cache line.
pub(crate) struct Counters(Box<[CachePadded<[AtomicU64; NCTR]>]>);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_STRIPE: AtomicU64 = AtomicU64::new(0);

impl Counters {
    fn new() -> Self {
        Self(
            (0..STRIPES)
                .map(|_| CachePadded::new(Default::default()))
                .collect(),
        )
    }
    #[inline]
    pub fn add(&self, c: Ctr, n: u64) {
        let s = STRIPE.with(|s| {
            if s.get() == usize::MAX {
                s.set(NEXT_STRIPE.fetch_add(1, Relaxed) as usize % STRIPES);
            }
            s.get()
        });
        self.0[s][c as usize].fetch_add(n, Relaxed);
    }
    fn sum(&self, c: Ctr) -> u64 {
        self.0.iter().map(|s| s[c as usize].load(Relaxed)).sum()
    }
}

#[derive(Default)]
struct Alloc {
    free: Vec<u32>,
    next: u32,
    map: DriverMapCounts,
}

/// The driver-location index. `Send + Sync`: share it by reference or `Arc`.
pub struct GeoStore {
    pub(crate) cfg: Config,
    pub(crate) staleness_ms: u64,
    pub(crate) slots: Slab,
    pub(crate) drivers: DriverMap,
    pub(crate) cells: CellMap,
    pub(crate) buckets: Arena,
    /// Bumped after each bucket creation; queries validate against it, because a lookup that
    /// missed a bucket created meanwhile saw no version to re-check.
    pub(crate) created: AtomicU64,
    alloc: Mutex<Alloc>,
    cells_lock: Mutex<()>,
    pub(crate) ctr: Counters,
}

impl Default for GeoStore {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl GeoStore {
    #[must_use]
    pub fn new(cfg: Config) -> Self {
        Self {
            staleness_ms: cfg.staleness.as_millis() as u64,
            slots: Slab::new(),
            drivers: DriverMap::new(cfg.expected_drivers),
            cells: CellMap::new(cfg.expected_drivers / 8 + 64),
            buckets: Arena::new(),
            created: AtomicU64::new(0),
            alloc: Mutex::new(Alloc::default()),
            cells_lock: Mutex::new(()),
            ctr: Counters::new(),
            cfg,
        }
    }

    #[must_use]
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub(crate) fn is_stale(&self, ts_ms: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(ts_ms) > self.staleness_ms
    }

    /// Records a ping. The newest timestamp wins: a ping older than the stored one is ignored
    /// (equal timestamps overwrite). Coordinates are stored as E7 fixed point.
    ///
    /// # Errors
    /// Invalid coordinates, heading, speed or timestamp: nothing is stored.
    pub fn upsert(
        &self,
        id: DriverId,
        lat: f64,
        lng: f64,
        heading_deg: f32,
        speed_mps: f32,
        ts_ms: u64,
    ) -> Result<UpsertOutcome> {
        let pos = Pos::new(lat, lng)?;
        if !heading_deg.is_finite() {
            return Err(Error::InvalidHeading(heading_deg));
        }
        if !speed_mps.is_finite() || speed_mps < 0.0 {
            return Err(Error::InvalidSpeed(speed_mps));
        }
        if ts_ms > MAX_TS_MS {
            return Err(Error::InvalidTimestamp(ts_ms));
        }
        let meta = Meta::pack(ts_ms, heading_deg, speed_mps);
        let g = epoch::pin();
        // One counter per upsert (which path it took): `upserts_total` is their sum.
        loop {
            let Some(s) = self.drivers.get(id.0, &self.slots, &g) else {
                match self.insert(id, pos, meta, &g)? {
                    Some(o) => return Ok(o),
                    None => continue,
                }
            };
            let slot = self.slots.get(s);
            let cur = slot.lock();
            if !cur.live() || cur.id != id.0 {
                // Removed (or reused) since the lookup: the insert path re-checks under `alloc`.
                slot.unlock();
                match self.insert(id, pos, meta, &g)? {
                    Some(o) => return Ok(o),
                    None => continue,
                }
            }
            if ts_ms < cur.meta.ts_ms() {
                slot.unlock();
                self.ctr.add(Ctr::Ignored, 1);
                return Ok(UpsertOutcome::IgnoredOlder);
            }
            self.update_locked(s, cur, pos, meta, &g);
            slot.unlock();
            return Ok(UpsertOutcome::Updated);
        }
    }

    /// Moves a locked, live driver to `pos`, in place or to another bucket.
    fn update_locked(&self, s: u32, cur: Snap, pos: Pos, meta: Meta, g: &Guard) {
        let slot = self.slots.get(s);
        let bi = cur.bucket();
        let b = self.buckets.get(bi);
        let e = slot.entry();
        let fast = b.geo.surely_contains(pos);
        if fast || u64::from(pos.cell(self.cfg.resolution)) == b.cell {
            self.ctr.add(if fast { Ctr::Fast } else { Ctr::Slow }, 1);
            // The hint must never show an outdated position: WILD while the record changes.
            b.set_hint(e, WILD, g);
            slot.publish(pos, meta, flags(bi, true, false), None);
            b.set_hint(e, hint_of(pos, cur.state() == DriverState::Available), g);
            return;
        }
        // Moving between buckets. The transit flag marks every snapshot taken while the driver
        // may be listed in both buckets; `query.rs` explains why these five steps, in this order,
        // keep a concurrent query from missing or doubling the driver.
        self.ctr.add(Ctr::Moves, 1);
        let ni = self.bucket_for(pos, g);
        let nb = self.buckets.get(ni);
        b.set_hint(e, WILD, g);
        slot.publish(cur.pos, cur.meta, flags(bi, true, true), None); // (a) transit, old place
        let ne = nb.add(s, g); // (b) listed in both
        slot.set_entry(ne);
        slot.publish(pos, meta, flags(ni, true, true), None); // (c) new place, still transit
        nb.set_hint(ne, hint_of(pos, cur.state() == DriverState::Available), g);
        b.remove(e, g); // (d) listed in the new bucket only
        slot.publish(pos, meta, flags(ni, true, false), None); // (e) settled
    }

    /// The bucket for `pos`'s cell, created if needed.
    fn bucket_for(&self, pos: Pos, g: &Guard) -> u32 {
        let cell = pos.cell(self.cfg.resolution);
        if let Some(b) = self.cells.get(u64::from(cell), g) {
            return b;
        }
        let _l = self.cells_lock.lock();
        if let Some(b) = self.cells.get(u64::from(cell), g) {
            return b;
        }
        let len = self.buckets.len();
        let i = self.buckets.push(Bucket::new(cell));
        self.cells.insert(u64::from(cell), i, len as usize, g);
        self.created.fetch_add(1, Release);
        i
    }

    /// First ping of a driver. Returns `None` if it turned out to exist (caller retries).
    fn insert(
        &self,
        id: DriverId,
        pos: Pos,
        meta: Meta,
        g: &Guard,
    ) -> Result<Option<UpsertOutcome>> {
        let mut a = self.alloc.lock();
        if self.drivers.get(id.0, &self.slots, g).is_some() {
            return Ok(None);
        }
        let s = match a.free.pop() {
            Some(s) => s,
            None => {
                if a.next >= MAX_SLOTS {
                    return Err(Error::CapacityExceeded(MAX_SLOTS));
                }
                a.next += 1;
                self.slots.ensure(a.next - 1);
                a.next - 1
            }
        };
        let slot = self.slots.get(s);
        slot.lock();
        slot.set_id(id.0);
        let bi = self.bucket_for(pos, g);
        let b = self.buckets.get(bi);
        let e = b.add(s, g);
        slot.set_entry(e);
        slot.publish(
            pos,
            meta,
            flags(bi, true, false),
            Some(DriverState::Available),
        );
        b.set_hint(e, hint_of(pos, true), g);
        slot.unlock();
        let Alloc { map, .. } = &mut *a;
        self.drivers.insert(id.0, s, &self.slots, map, g);
        self.ctr.add(Ctr::Inserts, 1);
        Ok(Some(UpsertOutcome::Inserted))
    }

    /// The stored record of `id`, whatever its age (queries apply staleness; `get` reports).
    #[must_use]
    pub fn get(&self, id: DriverId) -> Option<Driver> {
        let g = epoch::pin();
        let s = self.drivers.get(id.0, &self.slots, &g)?;
        let snap = self.slots.get(s).read();
        (snap.live() && snap.id == id.0).then(|| to_driver(&snap))
    }

    /// Sets the state unconditionally (under the driver's writer lock; readers never wait).
    ///
    /// # Errors
    /// [`Error::UnknownDriver`] if `id` is not tracked.
    pub fn set_state(&self, id: DriverId, state: DriverState) -> Result<DriverState> {
        self.cas_state(id, None, state).map(|(prev, _)| prev)
    }

    /// Atomically moves `id` from `expected` to `new` (e.g. available → offered when matching
    /// picks a driver). Returns `Ok(true)` if it did, `Ok(false)` if the state was not
    /// `expected`.
    ///
    /// # Errors
    /// [`Error::UnknownDriver`] if `id` is not tracked.
    pub fn compare_and_set_state(
        &self,
        id: DriverId,
        expected: DriverState,
        new: DriverState,
    ) -> Result<bool> {
        self.cas_state(id, Some(expected), new)
            .map(|(_, done)| done)
    }

    fn cas_state(
        &self,
        id: DriverId,
        expected: Option<DriverState>,
        new: DriverState,
    ) -> Result<(DriverState, bool)> {
        let g = epoch::pin();
        let s = self
            .drivers
            .get(id.0, &self.slots, &g)
            .ok_or(Error::UnknownDriver(id))?;
        let slot = self.slots.get(s);
        // Under the driver's writer lock: the member hint carries "available", and like a
        // position it must never be outdated, so it is WILD while the state changes.
        let cur = slot.lock();
        if !cur.live() || cur.id != id.0 {
            slot.unlock();
            return Err(Error::UnknownDriver(id));
        }
        let st = cur.state();
        if expected.is_some_and(|e| e != st) {
            slot.unlock();
            return Ok((st, false));
        }
        let b = self.buckets.get(cur.bucket());
        let e = slot.entry();
        b.set_hint(e, WILD, &g);
        slot.set_state_locked(new);
        b.set_hint(e, hint_of(cur.pos, new == DriverState::Available), &g);
        slot.unlock();
        Ok((st, true))
    }

    /// Stops tracking `id` (going offline). Returns whether it was tracked.
    pub fn remove(&self, id: DriverId) -> bool {
        self.remove_if(id, |_| true)
    }

    fn remove_if(&self, id: DriverId, pred: impl Fn(&Snap) -> bool) -> bool {
        let g = epoch::pin();
        let mut a = self.alloc.lock();
        let Some(s) = self.drivers.get(id.0, &self.slots, &g) else {
            return false;
        };
        let slot = self.slots.get(s);
        let cur = slot.lock();
        if !cur.live() || cur.id != id.0 || !pred(&cur) {
            slot.unlock();
            return false;
        }
        let b = self.buckets.get(cur.bucket());
        let e = slot.entry();
        b.set_hint(e, WILD, &g);
        slot.publish(cur.pos, cur.meta, flags(cur.bucket(), false, false), None);
        b.remove(e, &g);
        slot.unlock();
        let Alloc { map, free, .. } = &mut *a;
        let removed = self.drivers.remove(id.0, &self.slots, map, &g);
        assert!(removed, "driver map and slot disagree about {id:?}");
        free.push(s);
        self.ctr.add(Ctr::Removes, 1);
        true
    }

    /// Removes every driver whose last ping is stale at `now_ms`. Call it on a timer (e.g. every
    /// second); queries already exclude stale drivers, so the period only bounds memory.
    pub fn sweep(&self, now_ms: u64) -> SweepStats {
        let n = self.alloc.lock().next;
        let mut st = SweepStats::default();
        for s in 0..n {
            let snap = self.slots.get(s).read();
            st.scanned += 1;
            if snap.live()
                && self.is_stale(snap.meta.ts_ms(), now_ms)
                && self.remove_if(DriverId(snap.id), |c| self.is_stale(c.meta.ts_ms(), now_ms))
            {
                st.expired += 1;
            }
        }
        self.ctr.add(Ctr::Sweeps, 1);
        self.ctr.add(Ctr::Expired, st.expired);
        st
    }

    /// Number of tracked drivers.
    #[must_use]
    pub fn len(&self) -> usize {
        self.alloc.lock().map.live
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes held by the index (slots, tables, buckets, member arrays). Walks the buckets.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        let g = epoch::pin();
        let buckets: usize = (0..self.buckets.len())
            .map(|i| self.buckets.get(i).bytes(&g))
            .sum();
        self.slots.bytes()
            + self.drivers.bytes(&g)
            + self.cells.bytes(&g)
            + self.buckets.bytes()
            + buckets
    }

    /// A snapshot of the counters and gauges.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            drivers: self.len() as u64,
            buckets: u64::from(self.buckets.len()),
            upserts_total: [Ctr::Fast, Ctr::Slow, Ctr::Moves, Ctr::Inserts, Ctr::Ignored]
                .into_iter()
                .map(|c| self.ctr.sum(c))
                .sum(),
            inserts_total: self.ctr.sum(Ctr::Inserts),
            ignored_older_total: self.ctr.sum(Ctr::Ignored),
            bucket_moves_total: self.ctr.sum(Ctr::Moves),
            fast_path_total: self.ctr.sum(Ctr::Fast),
            removes_total: self.ctr.sum(Ctr::Removes),
            queries_total: self.ctr.sum(Ctr::Queries),
            query_retries_total: self.ctr.sum(Ctr::Retries),
            sweeps_total: self.ctr.sum(Ctr::Sweeps),
            swept_expired_total: self.ctr.sum(Ctr::Expired),
            memory_bytes: self.memory_bytes() as u64,
        }
    }

    /// Every tracked driver (a per-driver-snapshot scan in slot order; for tests and debugging).
    #[must_use]
    pub fn drivers(&self) -> Vec<Driver> {
        let n = self.alloc.lock().next;
        (0..n)
            .map(|s| self.slots.get(s).read())
            .filter(Snap::live)
            .map(|s| to_driver(&s))
            .collect()
    }
}

pub(crate) fn to_driver(s: &Snap) -> Driver {
    Driver {
        id: DriverId(s.id),
        lat: s.pos.lat(),
        lng: s.pos.lng(),
        heading_deg: s.meta.heading_deg(),
        speed_mps: s.meta.speed_mps(),
        ts_ms: s.meta.ts_ms(),
        state: s.state(),
    }
}
