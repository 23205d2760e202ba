//! [`GeoStore`]: configuration, the writer paths (upsert, state, remove, sweep) and stats.
//!
//! Locks, all writer-side (readers take none), in acquisition order: `alloc` (driver insert and
//! remove, slot allocation) → a slot's lock bit (one driver's writers) → `cells_lock` (bucket
//! creation) → a bucket's member mutex. Upserts of known drivers take only their slot's lock
//! and, when they change bucket, the two buckets' mutexes.

use crate::bucket::{Arena, Bucket, WILD, hint_of};
use crate::geo::Pos;
use crate::slot::{MAX_SLOTS, MAX_TS_MS, Meta, Slab, Snap, flags};
use crate::stats::{CTRS, Counters, Ctr, NCTR, Stats, SweepStats};
use crate::table::{CellMap, DriverMap, DriverMapCounts};
use crate::{Driver, DriverId, DriverState, Error, Result};
use crossbeam_epoch::{self as epoch, Guard};
use h3o::{CellIndex, Resolution};
use parking_lot::Mutex;
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

/// One ping for [`GeoStore::upsert_batch`]: the arguments of [`GeoStore::upsert`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ping {
    pub driver: DriverId,
    pub lat: f64,
    pub lng: f64,
    pub heading_deg: f32,
    pub speed_mps: f32,
    pub ts_ms: u64,
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
        let (pos, meta) = validate(lat, lng, heading_deg, speed_mps, ts_ms)?;
        let g = epoch::pin();
        let (o, c) = self.upsert_in(id, pos, meta, &g)?;
        self.ctr.add(c, 1);
        Ok(o)
    }

    /// Records many pings (in order; each as [`GeoStore::upsert`] would) and returns one outcome
    /// per ping. Same semantics, but cheaper per ping: the store is entered once, and while one
    /// ping is applied the memory of the next ones is already being fetched (an upsert is a
    /// chain of dependent cache misses, which a batch overlaps). Use it where pings arrive in
    /// bursts, e.g. one per received batch of datagrams.
    pub fn upsert_batch(&self, pings: &[Ping]) -> Vec<Result<UpsertOutcome>> {
        let mut out = Vec::with_capacity(pings.len());
        let g = epoch::pin();
        let mut ctr = [0u64; NCTR];
        // Software pipeline over the chain of dependent misses: the driver table entry is
        // fetched 3·D pings ahead, the slot 2·D ahead (its index is in the table entry), the
        // bucket D ahead (its index is in the slot), the member hint D/2 ahead (its address is
        // in the bucket). Each stage reads only what the previous one already fetched.
        // D = 2 measured best here (1M drivers, 64-ping batches, 3 runs each on a quiet box:
        // D = 2–3 ≈ 5.2–5.4M/s, 4 ≈ 5.0, 6 ≈ 4.7, 10 ≈ 4.4): longer distances keep more lines
        // in flight than the core's fill buffers hold, and prefetched lines get evicted.
        const D: usize = 2;
        for (i, p) in pings.iter().enumerate() {
            let guess = |ahead: usize| {
                pings
                    .get(i + ahead)
                    .and_then(|q| self.drivers.peek(q.driver.0, &g))
            };
            if let Some(q) = pings.get(i + 3 * D) {
                self.drivers.prefetch(q.driver.0, &g);
            }
            if let Some(s) = guess(2 * D) {
                self.slots.prefetch(s);
            }
            if let Some(b) = guess(D).and_then(|s| self.guess_bucket(s)) {
                b.prefetch();
            }
            if let Some(s) = guess(D / 2)
                && let Some(b) = self.guess_bucket(s)
            {
                b.prefetch_hint(self.slots.get(s).entry(), &g);
            }
            let r = validate(p.lat, p.lng, p.heading_deg, p.speed_mps, p.ts_ms)
                .and_then(|(pos, meta)| self.upsert_in(p.driver, pos, meta, &g));
            out.push(r.map(|(o, c)| {
                ctr[c as usize] += 1;
                o
            }));
        }
        for (c, n) in ctr.into_iter().enumerate() {
            if n > 0 {
                self.ctr.add(CTRS[c], n);
            }
        }
        out
    }

    /// The bucket of the driver in slot `s`, from an unlocked read (for prefetching only).
    fn guess_bucket(&self, s: u32) -> Option<&Bucket> {
        let ctrl = self.slots.get(s).ctrl_relaxed();
        let bi = crate::slot::bucket_of(ctrl);
        (ctrl & crate::slot::LIVE != 0 && bi < self.buckets.len()).then(|| self.buckets.get(bi))
    }

    /// The upsert proper, inside the caller's epoch pin; returns the counter to bump.
    fn upsert_in(
        &self,
        id: DriverId,
        pos: Pos,
        meta: Meta,
        g: &Guard,
    ) -> Result<(UpsertOutcome, Ctr)> {
        loop {
            let Some(s) = self.drivers.get(id.0, &self.slots, g) else {
                match self.insert(id, pos, meta, g)? {
                    Some(o) => return Ok((o, Ctr::Inserts)),
                    None => continue,
                }
            };
            let slot = self.slots.get(s);
            let cur = slot.lock();
            if !cur.live() || cur.id != id.0 {
                // Removed (or reused) since the lookup: the insert path re-checks under `alloc`.
                slot.unlock();
                match self.insert(id, pos, meta, g)? {
                    Some(o) => return Ok((o, Ctr::Inserts)),
                    None => continue,
                }
            }
            if meta.ts_ms() < cur.meta.ts_ms() {
                slot.unlock();
                return Ok((UpsertOutcome::IgnoredOlder, Ctr::Ignored));
            }
            let c = self.update_locked(s, cur, pos, meta, g);
            slot.unlock();
            return Ok((UpsertOutcome::Updated, c));
        }
    }

    /// Moves a locked, live driver to `pos`, in place or to another bucket; returns which path
    /// it took (the counter to bump).
    fn update_locked(&self, s: u32, cur: Snap, pos: Pos, meta: Meta, g: &Guard) -> Ctr {
        let slot = self.slots.get(s);
        let bi = cur.bucket();
        let b = self.buckets.get(bi);
        let e = slot.entry();
        let fast = b.geo.surely_contains(pos);
        // Not surely here: most likely surely in a neighbour this bucket's drivers moved to
        // before; only otherwise ask h3o (about 1 µs).
        let known = if fast {
            None
        } else {
            b.neighbours()
                .find(|&n| self.buckets.get(n).geo.surely_contains(pos))
        };
        let cell = if fast || known.is_some() {
            None
        } else {
            Some(pos.cell(self.cfg.resolution))
        };
        if known.is_none() && cell.is_none_or(|c| self.cells.get(u64::from(c), g) == Some(bi)) {
            // The hint must never show an outdated position: WILD while the record changes.
            b.set_hint(e, WILD, g);
            slot.publish(pos, meta, flags(bi, true, false), None);
            b.set_hint(e, hint_of(pos, cur.state() == DriverState::Available), g);
            return if fast { Ctr::Fast } else { Ctr::Slow };
        }
        // Moving between buckets. The transit flag marks every snapshot taken while the driver
        // may be listed in both buckets; `query.rs` explains why these five steps, in this order,
        // keep a concurrent query from missing or doubling the driver.
        let ni = known.unwrap_or_else(|| {
            let n = self.bucket_for(cell.expect("computed when no bucket is known"), g);
            b.remember(n);
            n
        });
        let nb = self.buckets.get(ni);
        b.set_hint(e, WILD, g);
        slot.publish(cur.pos, cur.meta, flags(bi, true, true), None); // (a) transit, old place
        let ne = nb.add(s, &self.slots, g); // (b) listed in both
        slot.set_entry(ne);
        slot.publish(pos, meta, flags(ni, true, true), None); // (c) new place, still transit
        nb.set_hint(ne, hint_of(pos, cur.state() == DriverState::Available), g);
        b.remove(e, g); // (d) listed in the new bucket only
        slot.publish(pos, meta, flags(ni, true, false), None); // (e) settled
        Ctr::Moves
    }

    /// The bucket for `cell`, created if needed.
    fn bucket_for(&self, cell: CellIndex, g: &Guard) -> u32 {
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
        let bi = self.bucket_for(pos.cell(self.cfg.resolution), g);
        let b = self.buckets.get(bi);
        let e = b.add(s, &self.slots, g);
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

/// Checks a ping's fields and packs them as stored.
fn validate(
    lat: f64,
    lng: f64,
    heading_deg: f32,
    speed_mps: f32,
    ts_ms: u64,
) -> Result<(Pos, Meta)> {
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
    Ok((pos, Meta::pack(ts_ms, heading_deg, speed_mps)))
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

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
