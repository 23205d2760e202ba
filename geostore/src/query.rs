//! Queries: `nearest` and `within`, exact against brute force, lock-free against writers.
//!
//! # Search
//! Rings of H3 cells are visited outwards from the query point's cell. Ring `r` is a closed
//! fence: any great-circle path from the query point to a cell beyond it crosses a ring-`r` cell
//! (adjacent cells differ by at most one in grid distance), so every driver beyond ring `r` is at
//! least `min over ring r of (dist(q, centre) − circumradius)` away. The search stops when that
//! bound exceeds the radius, or the k-th best distance once k are found. Buckets whose own bound
//! exceeds the current k-th distance are skipped, and inside a bucket position hints are tested
//! against a cheap lower bound before any slot is read. When the rings would visit more cells
//! than there are buckets (huge radius, sparse fleet, coarse resolution) the search scans every
//! bucket instead. A `nearest` search first prunes at a guess of the k-th distance (from the
//! query cell's population) instead of the radius, and keeps that pass only if its k best all
//! lie within the guess (else it runs again to the radius). All pruning uses conservative
//! bounds; ranking uses the canonical haversine on stored coordinates and ties break on driver
//! id, so the answer is the brute-force answer.
//!
//! # Concurrency: never missing, never doubled
//! A query records each bucket's `ver` before scanning it and includes a member only if its
//! snapshot says it lives in that bucket, or, if the snapshot is marked *transit*, via a
//! de-duplicated side list. A move from bucket X to Y is five steps under the driver's lock:
//! (a) publish "transit, in X"; (b) add to Y (bumps Y.ver); (c) publish "transit, in Y, new
//! position"; (d) remove from X (bumps X.ver); (e) publish "settled in Y". At the end the query
//! re-reads every `ver` it recorded (and the bucket-creation counter) and starts over if any
//! changed. Then:
//! - *Doubled* needs two non-transit snapshots, one "in X" (read before (a)) and one "in Y"
//!   (after (e)); X was scanned before (a) and (d) happened before (e), so X.ver changed:
//!   caught. Transit snapshots are de-duplicated by driver id.
//! - *Missing* (both buckets visited) needs Y scanned before (b) and, in X, the driver gone or
//!   seen with a non-transit snapshot "in Y", i.e. after (d) or (e); both follow (b), so Y.ver
//!   changed after Y was scanned: caught.
//! - A member skipped by its hint was, at the moment the hint was read, at that (far) position:
//!   hints are `WILD` whenever the record is changing, so they never show an old position.
//!
//! So a validated pass is exact for one snapshot per driver, each current at some instant during
//! the query. Retries happen only when a writer completed a membership change in a scanned
//! bucket during the pass, so readers are lock-free (never waiting on a stalled writer); the
//! retry count is exported in [`crate::Stats`].

use crate::bucket::{TOMB, WILD, unhint};
use crate::geo::{E7Box, Origin, hav_threshold, max_circumradius_m};
use crate::scratch::Scratch;
use crate::slot::Snap;
use crate::stats::Ctr;
use crate::store::{GeoStore, to_driver};
use crate::{Error, Filter, Hit, Result};
use crossbeam_epoch::{self as epoch, Guard};
use h3o::{CellIndex, LatLng};
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::Ordering::Acquire;

/// The matches of [`GeoStore::within`], in no particular order.
#[derive(Debug)]
pub struct Within(std::vec::IntoIter<Hit>);

impl Iterator for Within {
    type Item = Hit;
    fn next(&mut self) -> Option<Hit> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for Within {}

#[derive(Clone, Copy)]
pub(crate) struct Cand {
    d: f64,
    snap: Snap,
}

impl PartialEq for Cand {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Cand {}
impl PartialOrd for Cand {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Cand {
    fn cmp(&self, o: &Self) -> Ordering {
        self.d.total_cmp(&o.d).then(self.snap.id.cmp(&o.snap.id))
    }
}

struct Search<'a> {
    st: &'a GeoStore,
    q: Origin,
    radius: f64,
    k: usize,
    filter: Filter,
    /// Candidates and buffers, reused by this thread's next query (see `scratch.rs`).
    b: Box<Scratch>,
    /// Where the search starts pruning: the radius, or a tentative guess at the k-th distance
    /// (see `GeoStore::first_limit`), checked by `limit_held` after the pass.
    limit: f64,
    bound: f64,
    thr: f64,
}

impl<'a> Search<'a> {
    fn new(st: &'a GeoStore, q: Origin, radius: f64, k: usize, filter: Filter) -> Self {
        Self {
            st,
            q,
            radius,
            k,
            filter,
            b: Scratch::take(),
            limit: radius,
            bound: radius,
            thr: hav_threshold(radius),
        }
    }

    /// Starts (or restarts) the search with a tentative outer limit below the radius.
    fn set_limit(&mut self, limit: f64) {
        self.limit = limit.min(self.radius);
        self.reset();
    }

    /// True when a pass under a tentative limit is final: k settled candidates, the k-th
    /// within the limit. Then the true k-th distance is within it too, so nothing the limit
    /// pruned could have been among the k; otherwise the search runs again to the radius.
    fn limit_held(&self) -> bool {
        self.limit >= self.radius
            || (self.b.heap.len() == self.k
                && self.b.heap.peek().is_some_and(|c| c.d <= self.limit))
    }

    fn reset(&mut self) {
        self.b.heap.clear();
        self.b.all.clear();
        self.b.transit.clear();
        self.b.scanned.clear();
        self.b.pending.clear();
        self.bound = self.limit;
        self.thr = hav_threshold(self.limit);
    }

    /// Exact test of one snapshot against the query; `Some(distance)` if it matches.
    fn matches(&self, s: &Snap) -> Option<f64> {
        if !self.filter.allows(s.state()) || self.st.is_stale(s.meta.ts_ms(), self.filter.now_ms) {
            return None;
        }
        let d = self.q.distance_m(s.pos.lat(), s.pos.lng());
        (d <= self.radius).then_some(d)
    }

    /// The hint pass over one bucket (sequential memory): records its version and queues the
    /// entries that may be within the bound as (lower bound, slot, bucket). Slots are read
    /// later by `resolve`, closest first across every bucket queued so far.
    fn scan(&mut self, bi: u32, g: &Guard) {
        let b = self.st.buckets.get(bi);
        self.b.scanned.push((bi, b.ver.load(Acquire)));
        let m = b.members(g);
        let bx = E7Box::around(&self.q, self.bound);
        for i in 0..m.len() {
            let h = m.hint(i);
            if h == TOMB {
                continue;
            }
            let lb = if h == WILD {
                0.0
            } else {
                let (pos, available) = unhint(h);
                if !self.filter.allows_hint(available) || !bx.may_contain(pos) {
                    continue;
                }
                self.q.hav_lower_bound(pos)
            };
            if lb <= self.thr {
                self.b.pending.push((lb, m.slot(i), bi));
            }
        }
        if self.k == usize::MAX {
            self.resolve();
        }
    }

    /// Reads the queued slots (a cache miss each), for nearest in lower-bound order: once k are
    /// found the bound drops and the rest are skipped unread.
    fn resolve(&mut self) {
        let mut pending = std::mem::take(&mut self.b.pending);
        if self.k != usize::MAX {
            pending.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        }
        const AHEAD: usize = 8;
        for &(_, s, _) in pending.iter().take(AHEAD) {
            self.st.slots.prefetch(s);
        }
        for (j, &(lb, s, bi)) in pending.iter().enumerate() {
            if lb > self.thr {
                break;
            }
            if let Some(&(_, next, _)) = pending.get(j + AHEAD) {
                self.st.slots.prefetch(next);
            }
            let snap = self.st.slots.get(s).read();
            if !snap.live() || (!snap.transit() && snap.bucket() != bi) {
                continue;
            }
            let Some(d) = self.matches(&snap) else {
                continue;
            };
            let c = Cand { d, snap };
            if snap.transit() {
                self.b.transit.push(c);
            } else if self.k == usize::MAX {
                self.b.all.push(c);
            } else if self.b.heap.len() < self.k {
                self.b.heap.push(c);
                self.tighten();
            } else if self.b.heap.peek().is_some_and(|top| c < *top) {
                self.b.heap.pop();
                self.b.heap.push(c);
                self.tighten();
            }
        }
        pending.clear();
        self.b.pending = pending;
    }

    fn tighten(&mut self) {
        if self.b.heap.len() == self.k {
            let d = self.b.heap.peek().map_or(self.radius, |c| c.d);
            if d < self.bound {
                self.bound = d;
                self.thr = hav_threshold(d);
            }
        }
    }

    /// Lower bound on the distance from q to any point of a bucket's cell.
    fn bucket_lb(&self, bi: u32) -> f64 {
        let geo = &self.st.buckets.get(bi).geo;
        (self.q.distance_lower_bound_m(geo.lat, geo.lng) - geo.circ_m).max(0.0)
    }

    /// One pass; `false` if a concurrent membership change invalidated it.
    fn run(&mut self, origin: CellIndex, g: &Guard) -> bool {
        let created = self.st.created.load(Acquire);
        let nbuckets = self.st.buckets.len() as usize;
        let rmax = max_circumradius_m(self.st.cfg.resolution);
        let mut visited = 0usize;
        let mut ring = std::mem::take(&mut self.b.ring);
        let mut empties = std::mem::take(&mut self.b.empties);
        let mut occupied = std::mem::take(&mut self.b.occupied);
        let mut found = std::mem::take(&mut self.b.found);
        for r in 0u32.. {
            ring.clear();
            // The fast walk fails only next to a pentagon; then h3o's safe (slower) ring.
            if origin
                .grid_ring_fast(r)
                .try_for_each(|c| c.map(|c| ring.push(c)))
                .is_none()
            {
                ring.clear();
                ring.extend(origin.grid_ring::<Vec<_>>(r));
            }
            visited += ring.len();
            if r > 0 && visited > nbuckets + 64 {
                // Fewer buckets than cells left to visit: scanning all buckets is cheaper.
                self.reset();
                self.scan_all(g);
                break;
            }
            let mut ring_lb = f64::INFINITY;
            empties.clear();
            occupied.clear();
            // Table entries, then bucket headers, are fetched for the whole ring at once: the
            // misses overlap instead of queueing one behind the other.
            for c in &ring {
                self.st.cells.prefetch(u64::from(*c), g);
            }
            found.clear();
            for &c in &ring {
                match self.st.cells.get(u64::from(c), g) {
                    Some(bi) => {
                        self.st.buckets.get(bi).prefetch();
                        found.push(bi);
                    }
                    None => empties.push(c),
                }
            }
            for &bi in &found {
                let lb = self.bucket_lb(bi);
                ring_lb = ring_lb.min(lb);
                occupied.push((lb, bi));
            }
            // Closest buckets first: the k-th distance tightens sooner, so more are skipped.
            occupied.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
            // The member arrays of the buckets that will probably be scanned, fetched together
            // (a miss each, overlapped) before the scans read them one after the other.
            for &(lb, bi) in &occupied {
                if lb > self.bound {
                    break;
                }
                self.st.buckets.get(bi).prefetch_members(g);
            }
            for &(lb, bi) in &occupied {
                if lb > self.bound {
                    break;
                }
                self.scan(bi, g);
            }
            // Slots are read once the queue could fill the k best: reading the nearest ring's
            // entries before the next ring's hints are seen would read far ones first.
            if self.b.heap.len() + self.b.pending.len() >= self.k {
                self.resolve();
            }
            // Empty cells still belong to the fence; their centres cost an h3o call, so only
            // compute them when the occupied ones alone would let us stop.
            for c in &empties {
                if ring_lb <= self.bound {
                    break;
                }
                let (lat, lng) = self.b.centres.of(*c);
                ring_lb = ring_lb.min((self.q.distance_m(lat, lng) - rmax).max(0.0));
            }
            if ring_lb > self.bound {
                break;
            }
        }
        self.resolve();
        self.b.ring = ring;
        self.b.empties = empties;
        self.b.occupied = occupied;
        self.b.found = found;
        self.b
            .scanned
            .iter()
            .all(|&(bi, v)| self.st.buckets.get(bi).ver.load(Acquire) == v)
            && self.st.created.load(Acquire) == created
    }

    fn scan_all(&mut self, g: &Guard) {
        for bi in 0..self.st.buckets.len() {
            if self.bucket_lb(bi) <= self.bound {
                self.scan(bi, g);
            }
        }
        self.resolve();
    }

    /// Merges settled and transit candidates, one per driver, sorted by (distance, id).
    fn finish(&mut self) -> Vec<Hit> {
        let mut out: Vec<Cand> = if self.k == usize::MAX {
            std::mem::take(&mut self.b.all)
        } else {
            std::mem::take(&mut self.b.heap).into_vec()
        };
        if !self.b.transit.is_empty() {
            self.b.transit.sort_by_key(|c| c.snap.id);
            self.b.transit.dedup_by_key(|c| c.snap.id);
            let mut ids: Vec<u64> = out.iter().map(|c| c.snap.id).collect();
            ids.sort_unstable();
            out.extend(
                self.b
                    .transit
                    .iter()
                    .filter(|t| ids.binary_search(&t.snap.id).is_err()),
            );
        }
        out.sort_unstable();
        out.truncate(self.k);
        let hits = out
            .drain(..)
            .map(|c| Hit {
                distance_m: c.d,
                driver: to_driver(&c.snap),
            })
            .collect();
        if self.k == usize::MAX {
            self.b.all = out;
        } else {
            self.b.heap = BinaryHeap::from(out);
        }
        hits
    }
}

fn check(lat: f64, lng: f64, radius_m: f64) -> Result<(Origin, LatLng)> {
    let ll = LatLng::new(lat, lng).map_err(|_| Error::InvalidCoordinates { lat, lng })?;
    if lat.abs() > 90.0 || lng.abs() > 180.0 {
        return Err(Error::InvalidCoordinates { lat, lng });
    }
    if !radius_m.is_finite() || radius_m < 0.0 {
        return Err(Error::InvalidRadius(radius_m));
    }
    Ok((Origin::new(lat, lng), ll))
}

impl GeoStore {
    /// Up to `k` drivers within `radius_m` metres of (`lat`, `lng`) that pass `filter`, nearest
    /// first; ties on distance are ordered by driver id. Exactly what a brute-force haversine scan
    /// of the stored positions returns (see the module docs for the concurrency guarantee).
    ///
    /// # Errors
    /// Invalid coordinates or radius (checked even when `k == 0`).
    pub fn nearest(
        &self,
        lat: f64,
        lng: f64,
        radius_m: f64,
        k: usize,
        filter: Filter,
    ) -> Result<Vec<Hit>> {
        let (q, ll) = check(lat, lng, radius_m)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        Ok(self.search(q, ll, radius_m, k, filter))
    }

    /// Every driver within `radius_m` of (`lat`, `lng`) passing `filter`, in no particular
    /// order. The match set is gathered and validated in one pass, then handed out as an
    /// iterator (a pass that must be retried cannot have already yielded).
    ///
    /// # Errors
    /// Invalid coordinates or radius.
    pub fn within(&self, lat: f64, lng: f64, radius_m: f64, filter: Filter) -> Result<Within> {
        let (q, ll) = check(lat, lng, radius_m)?;
        Ok(Within(
            self.search(q, ll, radius_m, usize::MAX, filter).into_iter(),
        ))
    }

    /// A guess at the k-th distance from the query cell's population: twice the radius of a
    /// disc that would hold k of its drivers at that density (so a filter that passes a
    /// quarter of them still fits). Without it the first bucket is scanned against the whole
    /// radius: at 1M drivers every match in it was queued and sorted (~70 for k = 20).
    fn first_limit(&self, origin: CellIndex, k: usize, g: &Guard) -> f64 {
        let Some(bi) = self.cells.get(u64::from(origin), g) else {
            return f64::INFINITY;
        };
        let b = self.buckets.get(bi);
        let n = b.members(g).len();
        if n < 4 {
            return f64::INFINITY;
        }
        // A hexagon's area is 2.6 × (circumradius)²; `circ_m` is a little above the true one.
        let area = 2.6 * b.geo.circ_m * b.geo.circ_m;
        2.0 * (k as f64 * area / (std::f64::consts::PI * n as f64)).sqrt()
    }

    fn search(&self, q: Origin, ll: LatLng, radius: f64, k: usize, filter: Filter) -> Vec<Hit> {
        self.ctr.add(Ctr::Queries, 1);
        let origin = ll.to_cell(self.cfg.resolution);
        let g = epoch::pin();
        let mut s = Search::new(self, q, radius, k, filter);
        if k != usize::MAX {
            s.set_limit(self.first_limit(origin, k, &g));
        }
        loop {
            if s.run(origin, &g) {
                if !s.limit_held() {
                    s.set_limit(radius);
                    continue;
                }
                let hits = s.finish();
                s.b.put_back();
                return hits;
            }
            self.ctr.add(Ctr::Retries, 1);
            s.reset();
        }
    }
}

#[cfg(test)]
#[path = "query_tests.rs"]
mod tests;
