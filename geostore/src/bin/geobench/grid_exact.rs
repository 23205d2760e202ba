//! The locked grid held to geostore's contract: any `u64` driver id (through a hash map, not
//! an array indexed by a dense id), the newest timestamp wins, the state kept with the
//! position, and exact answers: great-circle distance with `geostore::haversine_m`, ties broken
//! by id, so it returns what geostore and a brute-force scan return. Pruning stays the grid's:
//! a planar pre-filter in the local projection with a 1 % margin (the projection is off by
//! < 0.5 % across the city), then the exact distance for what passes.

use crate::baselines::{Baseline, Proj};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiplicative hash (FxHash's idea): what a performance-minded engineer puts behind an
/// integer-keyed map instead of SipHash.
#[derive(Default)]
struct IdHasher(u64);
impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("u64 keys only");
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(26);
    }
}

#[derive(Clone, Copy)]
struct Entry {
    id: u64,
    lat: f64,
    lng: f64,
    ts: u64,
    available: bool,
}

struct Inner {
    cells: Vec<Vec<Entry>>,
    /// Driver id → (cell, index in the cell's vector).
    at: HashMap<u64, (u32, u32), BuildHasherDefault<IdHasher>>,
}

impl Inner {
    fn upsert(&mut self, e: Entry, c: u32) {
        let Some(&(oc, oi)) = self.at.get(&e.id) else {
            self.at
                .insert(e.id, (c, self.cells[c as usize].len() as u32));
            self.cells[c as usize].push(e);
            return;
        };
        let cur = &mut self.cells[oc as usize][oi as usize];
        if e.ts < cur.ts {
            return;
        }
        let e = Entry {
            available: cur.available,
            ..e
        };
        if oc == c {
            *cur = e;
            return;
        }
        let v = &mut self.cells[oc as usize];
        v.swap_remove(oi as usize);
        if let Some(moved) = v.get(oi as usize) {
            self.at.insert(moved.id, (oc, oi));
        }
        self.at
            .insert(e.id, (c, self.cells[c as usize].len() as u32));
        self.cells[c as usize].push(e);
    }
}

pub struct GridExact {
    p: Proj,
    cell_m: f64,
    n: i64,
    half: f64,
    inner: RwLock<Inner>,
}

impl GridExact {
    pub fn new(p: Proj, extent_m: f64, cell_m: f64, fleet: &[(f64, f64)], avail: &[bool]) -> Self {
        let n = (extent_m / cell_m).ceil() as i64 + 2;
        let g = Self {
            p,
            cell_m,
            n,
            half: n as f64 * cell_m / 2.0,
            inner: RwLock::new(Inner {
                cells: vec![Vec::new(); (n * n) as usize],
                at: HashMap::default(),
            }),
        };
        {
            let mut inner = g.inner.write();
            for (i, (&(lat, lng), &available)) in fleet.iter().zip(avail).enumerate() {
                let e = Entry {
                    id: i as u64,
                    lat,
                    lng,
                    ts: 0,
                    available,
                };
                inner.upsert(e, g.cell_of(lat, lng));
            }
        }
        g
    }

    fn cell_of(&self, lat: f64, lng: f64) -> u32 {
        let xy = self.p.xy(lat, lng);
        let cx = (((xy[0] + self.half) / self.cell_m) as i64).clamp(0, self.n - 1);
        let cy = (((xy[1] + self.half) / self.cell_m) as i64).clamp(0, self.n - 1);
        (cy * self.n + cx) as u32
    }

    fn entry(p: &crate::Ping, shift: u64) -> Entry {
        Entry {
            id: u64::from(p.id),
            lat: p.lat,
            lng: p.lng,
            ts: p.ts + shift,
            available: true,
        }
    }
}

impl Baseline for GridExact {
    fn name(&self) -> &'static str {
        "grid+RwLock, exact"
    }
    fn upsert(&self, p: &crate::Ping, shift: u64) {
        let c = self.cell_of(p.lat, p.lng);
        self.inner.write().upsert(Self::entry(p, shift), c);
    }
    fn upsert_batch(&self, pings: &[crate::Ping], shift: u64) {
        let mut g = self.inner.write();
        for p in pings {
            g.upsert(Self::entry(p, shift), self.cell_of(p.lat, p.lng));
        }
    }

    fn nearest(&self, lat: f64, lng: f64, r: f64, k: usize) -> usize {
        self.hits(lat, lng, r, k).len()
    }
}

impl GridExact {
    /// The k nearest available drivers within `r`: (distance, id), nearest first.
    fn hits(&self, lat: f64, lng: f64, r: f64, k: usize) -> Vec<(f64, u64)> {
        let q = self.p.xy(lat, lng);
        let g = self.inner.read();
        let c = self.cell_of(lat, lng) as i64;
        let (cx, cy) = (c % self.n, c / self.n);
        let mut best: Vec<(f64, u64)> = Vec::new();
        for ring in 0..self.n {
            // Squares at Chebyshev distance `ring` are at least (ring − 1) cells away (planar),
            // shrunk by the margin for the projection.
            let lb = ((ring - 1).max(0) as f64 * self.cell_m) * 0.99 - 1.0;
            let bound = if best.len() >= k { best[k - 1].0 } else { r };
            if lb > bound {
                break;
            }
            for y in (cy - ring).max(0)..=(cy + ring).min(self.n - 1) {
                for x in (cx - ring).max(0)..=(cx + ring).min(self.n - 1) {
                    if (y - cy).abs() != ring && (x - cx).abs() != ring {
                        continue;
                    }
                    for e in &g.cells[(y * self.n + x) as usize] {
                        if !e.available {
                            continue;
                        }
                        let p = self.p.xy(e.lat, e.lng);
                        let planar = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
                        if planar * 0.99 - 1.0 > bound {
                            continue;
                        }
                        let d = geostore::haversine_m(lat, lng, e.lat, e.lng);
                        if d <= r {
                            best.push((d, e.id));
                        }
                    }
                }
            }
            best.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            best.truncate(k);
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geostore::{Config, DriverId, DriverState, Filter, GeoStore};

    /// Same answers as geostore (which is property-tested against brute force).
    #[test]
    fn answers_like_geostore() {
        let mut w = crate::workload(20_000, 20_000, 300);
        // geostore stores E7 coordinates; the grid stores what it is given: give it those.
        let q7 = |a: f64, b: f64| geostore::quantize(a, b).unwrap();
        w.fleet.iter_mut().for_each(|f| *f = q7(f.0, f.1));
        w.one
            .iter_mut()
            .for_each(|p| (p.lat, p.lng) = q7(p.lat, p.lng));
        let p = Proj::new(crate::LAT0, crate::LNG0);
        let grid = GridExact::new(p, crate::CITY_M, 250.0, &w.fleet, &w.avail);
        let st = GeoStore::new(Config::default());
        for (i, &(a, b)) in w.fleet.iter().enumerate() {
            st.upsert(DriverId(i as u64), a, b, 0.0, 0.0, crate::NOW)
                .unwrap();
            if !w.avail[i] {
                st.set_state(DriverId(i as u64), DriverState::OnDelivery)
                    .unwrap();
            }
        }
        // Pings (some moving drivers across squares), then a stale replay that must be ignored.
        for q in w.one.iter().chain(w.one.iter().take(500)) {
            grid.upsert(q, 0);
            let _ = st.upsert(DriverId(u64::from(q.id)), q.lat, q.lng, 0.0, 0.0, q.ts);
        }
        for (la, lo) in w.queries.drain(..) {
            for (r, k) in [(5_000.0, 20), (300.0, 50), (40.0, 5)] {
                let ours: Vec<(f64, u64)> = st
                    .nearest(la, lo, r, k, Filter::available(crate::NOW))
                    .unwrap()
                    .iter()
                    .map(|h| (h.distance_m, h.driver.id.0))
                    .collect();
                assert_eq!(grid.hits(la, lo, r, k), ours);
            }
        }
    }
}
