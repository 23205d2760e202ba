//! Chunks: runs of up to [`CHUNK`] neighbouring rows of one H3 bucket, each with its own
//! bounds, so a search decides most rows without reading them.
//!
//! A dense metro matches thousands of restaurants per query, and the search must count every
//! match (`total`) though it returns one page. A chunk knows its centre, how far its farthest
//! row is from it, its rows' delivery radii, and caches which of its rows are open at a local
//! week-minute (opening hours repeat weekly, so the cache is a pure function of that minute
//! and of the rows, and any write to the rows clears it). When a chunk lies wholly inside the
//! search radius, and cannot hold anything nearer than the page's farthest kept match, its
//! open rows that surely deliver that far are counted from the cached mask with one popcount;
//! only the other rows are tested one by one, exactly as before.

use crate::geo::{ABounds, EARTH_RADIUS_M, Point, Row, a_to_m, haversine_m};
use domain::RestaurantId;
use std::sync::atomic::{AtomicU64, Ordering};

/// Rows per chunk: one `u32` mask of open rows.
pub(crate) const CHUNK: usize = 32;

/// Slack on chunk-level distance bounds, metres: far more than the rounding error of a
/// haversine over a metro (≈1e-9 relative), so a bound never decides a row the exact test
/// would decide otherwise.
pub(crate) const SLACK_M: f64 = 1.0;

/// "No open mask cached": no week-minute key is 0 (see [`Chunk::open_mask`]).
const EMPTY: u64 = 0;

#[derive(Debug)]
pub(crate) struct Chunk {
    /// First row of the chunk in the bucket's `rows`.
    pub start: u32,
    pub len: u32,
    pub center_lat: f64,
    pub center_lng: f64,
    pub center: Point,
    /// Distance from the centre to the farthest row.
    pub reach_m: f64,
    pub max_delivery_m: u32,
    pub delivery_m: [u32; CHUNK],
    /// Copies of what the exact per-row test reads, side by side, so it does not pull each
    /// row's cache lines (the rows are 160 bytes; a search tests hundreds of them).
    pub points: [Point; CHUNK],
    pub delivery: [ABounds; CHUNK],
    pub ids: [RestaurantId; CHUNK],
    /// The time zone every row shares; `None` if they differ (then nothing is cached).
    pub tz: Option<chrono_tz::Tz>,
    /// `key << 32 | mask`: the rows open (and not closed by hand) at local week-minute
    /// `key - 1`, or [`EMPTY`]. One word, so a reader never sees a key with another mask.
    open: AtomicU64,
}

impl Chunk {
    fn new(start: usize, rows: &[Row]) -> Chunk {
        let n = rows.len() as f64;
        // Cities do not straddle the antimeridian; if one did, the mean would only loosen the
        // bound (the reach is measured from whatever centre this is).
        let center_lat = rows.iter().map(|r| r.lat).sum::<f64>() / n;
        let center_lng = rows.iter().map(|r| r.lng).sum::<f64>() / n;
        let mut c = Chunk {
            start: start as u32,
            len: 0,
            center_lat,
            center_lng,
            center: Point::new(center_lat, center_lng),
            reach_m: 0.0,
            max_delivery_m: 0,
            delivery_m: [0; CHUNK],
            points: [Point::new(0.0, 0.0); CHUNK],
            delivery: [ABounds::new(0.0); CHUNK],
            ids: [RestaurantId(0); CHUNK],
            tz: rows.first().map(|r| r.tz),
            open: AtomicU64::new(EMPTY),
        };
        for r in rows {
            c.push(r);
        }
        c
    }

    /// Adds `r` as the chunk's next row (there is room).
    fn push(&mut self, r: &Row) {
        let i = self.len as usize;
        debug_assert!(i < CHUNK);
        self.delivery_m[i] = r.delivery_radius_m;
        self.points[i] = r.point;
        self.delivery[i] = r.delivery;
        self.ids[i] = r.id;
        self.max_delivery_m = self.max_delivery_m.max(r.delivery_radius_m);
        self.reach_m =
            self.reach_m
                .max(haversine_m(self.center_lat, self.center_lng, r.lat, r.lng));
        if self.tz != Some(r.tz) {
            self.tz = None;
        }
        self.len += 1;
        *self.open.get_mut() = EMPTY;
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }

    /// The rows of `rows` (this chunk's) that are open and not closed by hand at local
    /// weekday `day`, minute `minute` of the chunk's zone, by `open`; cached per week-minute.
    pub fn open_mask(
        &self,
        rows: &[Row],
        day: u8,
        minute: u16,
        open: impl Fn(&Row) -> bool,
    ) -> u32 {
        let key = u64::from(day % 7) * 1440 + u64::from(minute) + 1;
        let cached = self.open.load(Ordering::Relaxed);
        if cached >> 32 == key {
            return cached as u32;
        }
        let mask = mask_of(rows, open);
        self.open
            .store(key << 32 | u64::from(mask), Ordering::Relaxed);
        mask
    }

    /// Rows whose delivery radius is at least `m` metres.
    #[inline]
    pub fn delivering(&self, m: f64) -> u32 {
        let mut mask = 0u32;
        for (i, d) in self.delivery_m[..self.len as usize].iter().enumerate() {
            mask |= u32::from(f64::from(*d) >= m) << i;
        }
        mask
    }
}

/// Lower and upper bounds on [`a_to_m`]`(a)` without its arcsine, for chunk-level tests: with
/// x = √a ≤ 0.1 (up to ≈ 1,270 km), x ≤ asin x ≤ x·(1 + x²/5) (the series x + x³/6 + 3x⁵/40 + …);
/// farther, the exact value. Their rounding error is far inside [`SLACK_M`].
#[inline]
pub(crate) fn m_bounds(a: f64) -> (f64, f64) {
    let x = a.sqrt();
    if x > 0.1 {
        let m = a_to_m(a);
        return (m, m);
    }
    let lo = 2.0 * EARTH_RADIUS_M * x;
    (lo, lo * (1.0 + x * x / 5.0))
}

/// The mask of `rows` for which `f` holds.
pub(crate) fn mask_of(rows: &[Row], mut f: impl FnMut(&Row) -> bool) -> u32 {
    rows.iter()
        .enumerate()
        .fold(0u32, |m, (i, r)| m | (u32::from(f(r)) << i))
}

/// Chunks of `rows` as they lie, [`CHUNK`] at a time.
pub(crate) fn chunks_of(rows: &[Row]) -> Vec<Chunk> {
    rows.chunks(CHUNK)
        .enumerate()
        .map(|(i, c)| Chunk::new(i * CHUNK, c))
        .collect()
}

/// Extends `chunks` with the last row of `rows`, just appended.
pub(crate) fn append(chunks: &mut Vec<Chunk>, rows: &[Row]) {
    let i = rows.len() - 1;
    match chunks.last_mut() {
        Some(c) if (c.len as usize) < CHUNK => c.push(&rows[i]),
        _ => chunks.push(Chunk::new(i, &rows[i..])),
    }
}

/// Sorts `rows` so that neighbours are near each other (by their H3 cell at a fine
/// resolution: an H3 index orders cells by their parents first) and cuts them into chunks.
pub(crate) fn compact(rows: &mut [Row]) -> Vec<Chunk> {
    rows.sort_by_cached_key(|r| {
        h3o::LatLng::new(r.lat, r.lng)
            .map(|p| u64::from(p.to_cell(h3o::Resolution::Twelve)))
            .unwrap_or(0)
    });
    chunks_of(rows)
}

/// The set bits of `mask`, lowest first.
pub(crate) fn bits(mut mask: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_bounds_hold_the_exact_distance() {
        let mut a = 1e-16;
        while a < 1.0 {
            let (lo, hi) = m_bounds(a);
            let m = a_to_m(a);
            assert!(lo <= m + 1e-6 && m <= hi + 1e-6, "a {a}: {lo} {m} {hi}");
            // Tight enough to decide chunks: under half a metre at metro distances.
            if m < 50_000.0 {
                assert!(hi - lo < 0.5, "a {a}: {lo} {hi}");
            }
            a *= 1.37;
        }
    }
}
