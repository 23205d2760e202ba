//! The obvious in-process designs geostore is compared with: an R-tree behind a `RwLock` and a
//! uniform square grid behind a `RwLock`. Both work in a local equirectangular projection (metres
//! around the city centre), which is what such designs usually do for a city, and index dense
//! ids; `grid_exact.rs` holds the grid to geostore's contract (any id, exact answers).

use parking_lot::RwLock;
use rstar::RTree;
use rstar::primitives::GeomWithData;

pub trait Baseline: Sync {
    fn name(&self) -> &'static str;
    /// `shift` is added to the ping's timestamp (replayed streams must stay newer); designs
    /// that keep no timestamp ignore it.
    fn upsert(&self, p: &crate::Ping, shift: u64);
    /// A batch under one write-lock acquisition: what the batched comparison gives these
    /// designs, so that geostore's `upsert_batch` is not compared with their single calls.
    fn upsert_batch(&self, pings: &[crate::Ping], shift: u64);
    /// Number of available drivers among the k nearest within `r` metres.
    fn nearest(&self, lat: f64, lng: f64, r: f64, k: usize) -> usize;
}

#[derive(Clone, Copy)]
pub struct Proj {
    lat0: f64,
    lng0: f64,
    mx: f64,
    my: f64,
}

impl Proj {
    pub fn new(lat0: f64, lng0: f64) -> Self {
        let my = 111_195.0;
        Self {
            lat0,
            lng0,
            mx: my * lat0.to_radians().cos(),
            my,
        }
    }
    pub fn xy(&self, lat: f64, lng: f64) -> [f64; 2] {
        [(lng - self.lng0) * self.mx, (lat - self.lat0) * self.my]
    }
}

type Pt = GeomWithData<[f64; 2], u32>;

struct RInner {
    tree: RTree<Pt>,
    pos: Vec<[f64; 2]>,
}

impl RInner {
    fn upsert(&mut self, new: [f64; 2], id: u32) {
        let old = self.pos[id as usize];
        self.tree.remove(&Pt::new(old, id));
        self.tree.insert(Pt::new(new, id));
        self.pos[id as usize] = new;
    }
}

pub struct RTreeLock {
    p: Proj,
    inner: RwLock<RInner>,
    avail: Vec<bool>,
}

impl RTreeLock {
    pub fn new(p: Proj, fleet: &[(f64, f64)], avail: Vec<bool>) -> Self {
        let pos: Vec<[f64; 2]> = fleet.iter().map(|&(a, b)| p.xy(a, b)).collect();
        let tree = RTree::bulk_load(
            pos.iter()
                .enumerate()
                .map(|(i, &x)| Pt::new(x, i as u32))
                .collect(),
        );
        Self {
            p,
            inner: RwLock::new(RInner { tree, pos }),
            avail,
        }
    }
}

impl Baseline for RTreeLock {
    fn name(&self) -> &'static str {
        "R-tree+RwLock, planar"
    }
    fn upsert(&self, p: &crate::Ping, _: u64) {
        RInner::upsert(&mut self.inner.write(), self.p.xy(p.lat, p.lng), p.id);
    }
    fn upsert_batch(&self, pings: &[crate::Ping], _: u64) {
        let mut g = self.inner.write();
        for p in pings {
            RInner::upsert(&mut g, self.p.xy(p.lat, p.lng), p.id);
        }
    }
    fn nearest(&self, lat: f64, lng: f64, r: f64, k: usize) -> usize {
        let q = self.p.xy(lat, lng);
        let g = self.inner.read();
        g.tree
            .nearest_neighbor_iter_with_distance_2(&q)
            .take_while(|(_, d2)| *d2 <= r * r)
            .filter(|(p, _)| self.avail[p.data as usize])
            .take(k)
            .count()
    }
}

struct GInner {
    cells: Vec<Vec<u32>>,
    /// Per driver: position, cell, index within the cell's vector.
    at: Vec<([f64; 2], u32, u32)>,
}

impl GInner {
    fn upsert(&mut self, id: u32, xy: [f64; 2], c: u32) {
        let (_, oc, oi) = self.at[id as usize];
        if oc == c {
            self.at[id as usize].0 = xy;
            return;
        }
        let v = &mut self.cells[oc as usize];
        v.swap_remove(oi as usize);
        if let Some(&moved) = v.get(oi as usize) {
            self.at[moved as usize].2 = oi;
        }
        let idx = self.cells[c as usize].len() as u32;
        self.cells[c as usize].push(id);
        self.at[id as usize] = (xy, c, idx);
    }
}

pub struct GridLock {
    p: Proj,
    cell_m: f64,
    n: i64,
    half: f64,
    inner: RwLock<GInner>,
    avail: Vec<bool>,
}

impl GridLock {
    /// A grid of `cell_m` squares covering `extent_m` × `extent_m` around the centre.
    pub fn new(
        p: Proj,
        extent_m: f64,
        cell_m: f64,
        fleet: &[(f64, f64)],
        avail: Vec<bool>,
    ) -> Self {
        let n = (extent_m / cell_m).ceil() as i64 + 2;
        let mut g = Self {
            p,
            cell_m,
            n,
            half: n as f64 * cell_m / 2.0,
            inner: RwLock::new(GInner {
                cells: vec![Vec::new(); (n * n) as usize],
                at: Vec::new(),
            }),
            avail,
        };
        let inner = g.inner.get_mut();
        for &(a, b) in fleet {
            let xy = p.xy(a, b);
            let c = Self::cell_of(n, cell_m, n as f64 * cell_m / 2.0, xy);
            inner.at.push((xy, c, inner.cells[c as usize].len() as u32));
            let id = inner.at.len() as u32 - 1;
            inner.cells[c as usize].push(id);
        }
        g
    }
    fn cell_of(n: i64, cell_m: f64, half: f64, xy: [f64; 2]) -> u32 {
        let cx = (((xy[0] + half) / cell_m) as i64).clamp(0, n - 1);
        let cy = (((xy[1] + half) / cell_m) as i64).clamp(0, n - 1);
        (cy * n + cx) as u32
    }
}

impl Baseline for GridLock {
    fn name(&self) -> &'static str {
        "grid+RwLock, planar, dense ids"
    }
    fn upsert(&self, p: &crate::Ping, _: u64) {
        let xy = self.p.xy(p.lat, p.lng);
        let c = Self::cell_of(self.n, self.cell_m, self.half, xy);
        GInner::upsert(&mut self.inner.write(), p.id, xy, c);
    }
    fn upsert_batch(&self, pings: &[crate::Ping], _: u64) {
        let mut g = self.inner.write();
        for p in pings {
            let xy = self.p.xy(p.lat, p.lng);
            let c = Self::cell_of(self.n, self.cell_m, self.half, xy);
            GInner::upsert(&mut g, p.id, xy, c);
        }
    }

    fn nearest(&self, lat: f64, lng: f64, r: f64, k: usize) -> usize {
        let q = self.p.xy(lat, lng);
        let g = self.inner.read();
        let c = Self::cell_of(self.n, self.cell_m, self.half, q) as i64;
        let (cx, cy) = (c % self.n, c / self.n);
        let mut best: Vec<(f64, u32)> = Vec::new();
        for ring in 0..self.n {
            // Squares at Chebyshev distance `ring` are at least (ring − 1) × cell away.
            let lb = (ring - 1).max(0) as f64 * self.cell_m;
            if lb > r || (best.len() >= k && best[k - 1].0 < lb) {
                break;
            }
            for y in (cy - ring)..=(cy + ring) {
                for x in (cx - ring)..=(cx + ring) {
                    if (y - cy).abs() != ring && (x - cx).abs() != ring
                        || x < 0
                        || y < 0
                        || x >= self.n
                        || y >= self.n
                    {
                        continue;
                    }
                    for &id in &g.cells[(y * self.n + x) as usize] {
                        let p = g.at[id as usize].0;
                        let d = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt();
                        if d <= r && self.avail[id as usize] {
                            best.push((d, id));
                        }
                    }
                }
            }
            best.sort_by(|a, b| a.0.total_cmp(&b.0));
            best.truncate(k);
        }
        best.len()
    }
}
