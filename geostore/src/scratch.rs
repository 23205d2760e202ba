//! Per-thread buffers of a query, so that a query allocates nothing in the common case
//! (allocation was ~8 % of a query at 100K drivers), and a cache of the centres of empty cells.

use h3o::{CellIndex, LatLng};
use std::cell::Cell;
use std::collections::{BinaryHeap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use crate::query::Cand;

/// The candidates and buffers of one search.
#[derive(Default)]
pub(crate) struct Scratch {
    /// Max-heap of the best k settled candidates (nearest).
    pub heap: BinaryHeap<Cand>,
    /// Every settled candidate (within).
    pub all: Vec<Cand>,
    /// Candidates seen in transit between buckets (de-duplicated at the end).
    pub transit: Vec<Cand>,
    /// Buckets scanned in this pass and the version each had.
    pub scanned: Vec<(u32, u64)>,
    /// Entries queued by the hint scan for slot reads: (hav lower bound, slot, bucket).
    pub pending: Vec<(f64, u32, u32)>,
    /// Per-ring buffers of the ring search.
    pub ring: Vec<CellIndex>,
    pub empties: Vec<CellIndex>,
    pub occupied: Vec<(f64, u32)>,
    pub found: Vec<u32>,
    pub centres: Centres,
}

thread_local! {
    static SCRATCH: Cell<Option<Box<Scratch>>> = const { Cell::new(None) };
}

impl Scratch {
    /// Buffers that grew past this many entries (a huge `within`) are not kept.
    const KEEP: usize = 1 << 14;

    /// This thread's buffers, or new ones (first query, or a query inside a query).
    pub fn take() -> Box<Self> {
        SCRATCH.with(Cell::take).unwrap_or_default()
    }

    /// Empties the buffers and keeps them (box and all) for this thread's next query.
    pub fn put_back(mut self: Box<Self>) {
        fn keep<T>(v: &mut Vec<T>) {
            v.clear();
            if v.capacity() > Scratch::KEEP {
                *v = Vec::new();
            }
        }
        self.heap.clear();
        if self.heap.capacity() > Scratch::KEEP {
            self.heap = BinaryHeap::new();
        }
        keep(&mut self.all);
        keep(&mut self.transit);
        keep(&mut self.scanned);
        keep(&mut self.pending);
        keep(&mut self.ring);
        keep(&mut self.empties);
        keep(&mut self.occupied);
        keep(&mut self.found);
        SCRATCH.with(|c| c.set(Some(self)));
    }
}

/// Centres of cells that hold no bucket, which the ring search needs for its fence bound near
/// the edge of the fleet. h3o computes one in ~200 ns; near a city's edge a query met a dozen
/// per ring, which was most of the p99. A cell's centre never changes, so a cached one is
/// exact; the cache is per thread (no synchronisation) and dropped when it grows past `CAP`.
#[derive(Default)]
pub(crate) struct Centres(HashMap<u64, (f64, f64), BuildHasherDefault<CellHasher>>);

impl Centres {
    /// ~40 B per entry: at most ~1.3 MiB per querying thread.
    const CAP: usize = 1 << 15;

    pub fn of(&mut self, c: CellIndex) -> (f64, f64) {
        if self.0.len() >= Self::CAP {
            self.0.clear();
        }
        *self.0.entry(u64::from(c)).or_insert_with(|| {
            let ll = LatLng::from(c);
            (ll.lat(), ll.lng())
        })
    }
}

/// H3 indexes keep their variable bits in the middle (low bits are unused digits, all ones),
/// so one multiply and a fold spread them over the word.
#[derive(Default)]
pub(crate) struct CellHasher(u64);

impl Hasher for CellHasher {
    fn finish(&self) -> u64 {
        let x = self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^ (x >> 29)
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys");
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_centres_are_h3o_centres_and_the_cache_stays_bounded() {
        let mut c = Centres::default();
        let origin = LatLng::new(52.37, 4.89)
            .unwrap()
            .to_cell(h3o::Resolution::Twelve);
        let cells: Vec<CellIndex> = origin.grid_disk(120);
        assert!(cells.len() > Centres::CAP);
        for &cell in cells.iter().chain(cells.iter().take(100)) {
            let ll = LatLng::from(cell);
            assert_eq!(c.of(cell), (ll.lat(), ll.lng()));
            assert!(c.0.len() <= Centres::CAP);
        }
    }

    #[test]
    fn buffers_come_back_empty() {
        let mut s = Scratch::take();
        s.pending.push((1.0, 2, 3));
        s.found.extend(0..(Scratch::KEEP as u32 + 1));
        s.put_back();
        let s = Scratch::take();
        assert!(s.pending.is_empty() && s.pending.capacity() > 0);
        assert_eq!(s.found.capacity(), 0, "an outsized buffer is not kept");
    }
}
