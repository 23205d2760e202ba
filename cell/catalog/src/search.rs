//! Restaurant discovery (seed 5.1): open restaurants that deliver to the address, within the
//! search radius, nearest first.

use crate::chunk::{CHUNK, Chunk, SLACK_M, bits, m_bounds, mask_of};
use crate::geo::{
    ABounds, Bucket, CuisineId, INDEX_RESOLUTION, Index, Point, Row, a_to_m, disk_k, haversine_m,
};
use crate::hours::local_day_minute;
use crate::listing::Listing;
use crate::pricing::{PricingConfig, delivery_fee, eta_label, eta_range_min};
use domain::{Cents, RestaurantId, UnixMs};
use serde::Serialize;
use std::sync::Arc;

/// Largest search radius: 20 km covers a metro area; farther restaurants cannot deliver
/// anyway (see [`crate::model::MAX_DELIVERY_RADIUS_M`]) and the grid disk grows with r².
pub const MAX_RADIUS_M: u32 = 20_000;
/// The radius when the client gives none (the seed's example uses 5 km).
pub const DEFAULT_RADIUS_M: u32 = 5_000;
pub const DEFAULT_PAGE_SIZE: u32 = 20;
pub const MAX_PAGE_SIZE: u32 = 50;
/// Deepest page: nobody scrolls past a few hundred restaurants, and a bound keeps a crafted
/// `page=4000000000` from costing anything.
pub const MAX_PAGE: u32 = 500;
/// Longest cuisine filter, in characters.
pub const MAX_CUISINE_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub lat: f64,
    pub lng: f64,
    pub radius_m: u32,
    /// Case-insensitive exact match on the restaurant's cuisine.
    pub cuisine: Option<String>,
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
}

/// A rejected query: all 400s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    #[error("lat and lng must be finite, lat within ±90 and lng within ±180")]
    InvalidCoordinates,
    #[error("radius must be 1..={MAX_RADIUS_M} m")]
    RadiusOutOfRange,
    #[error("page must be 1..={MAX_PAGE}")]
    PageOutOfRange,
    #[error("page_size must be 1..={MAX_PAGE_SIZE}")]
    PageSizeOutOfRange,
    #[error("cuisine filter is too long")]
    CuisineTooLong,
    #[error("radius {0:?} is not a distance like \"5km\", \"2.5km\", \"800m\" or \"800\"")]
    BadRadius(String),
}

impl QueryError {
    /// A stable machine-readable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            QueryError::InvalidCoordinates => "search.invalid_coordinates",
            QueryError::RadiusOutOfRange | QueryError::BadRadius(_) => "search.invalid_radius",
            QueryError::PageOutOfRange => "search.invalid_page",
            QueryError::PageSizeOutOfRange => "search.invalid_page_size",
            QueryError::CuisineTooLong => "search.invalid_cuisine",
        }
    }
}

/// The grammar of [`parse_radius`] as the OpenAPI document states it: whole metres 1..=20000
/// (with or without `m`), or kilometres with up to three decimals, 0.001..=20 `km`.
pub const RADIUS_PATTERN: &str = r"^(?:(?:[1-9][0-9]{0,3}|1[0-9]{4}|20000)m?|(?:(?:[1-9]|1[0-9])(?:\.[0-9]{1,3})?|20(?:\.0{1,3})?|0\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))km)$";

/// Parses the seed's `radius=5km` parameter: "5km", "2.5km", "800m" or bare metres "800",
/// exactly as [`RADIUS_PATTERN`] says: no spaces, signs, exponents or leading zeros, so the
/// API accepts what its document promises and nothing else.
pub fn parse_radius(s: &str) -> Result<u32, QueryError> {
    let bad = || QueryError::BadRadius(s.chars().take(32).collect());
    let (num, km) = match s.strip_suffix("km") {
        Some(n) => (n, true),
        None => (s.strip_suffix('m').unwrap_or(s), false),
    };
    let (int, frac) = match num.split_once('.') {
        Some((i, f)) if km => (i, f),
        Some(_) => return Err(bad()),
        None => (num, ""),
    };
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = int.len() > 1 && int.starts_with('0');
    if int.is_empty() || int.len() > 5 || !digits(int) || leading_zero {
        return Err(bad());
    }
    if frac.len() > 3 || !digits(frac) || (num.contains('.') && frac.is_empty()) {
        return Err(bad());
    }
    let int: u32 = int.parse().map_err(|_| bad())?;
    let m = if km {
        // Milli-kilometres are metres: "2.5" is 2 km and "500".
        let milli: u32 = format!("{frac:0<3}").parse().map_err(|_| bad())?;
        int.saturating_mul(1000).saturating_add(milli)
    } else {
        int
    };
    if m == 0 || m > MAX_RADIUS_M {
        return Err(QueryError::RadiusOutOfRange);
    }
    Ok(m)
}

impl SearchQuery {
    pub fn validate(&self) -> Result<(), QueryError> {
        if !crate::geo::valid_coordinates(self.lat, self.lng) {
            return Err(QueryError::InvalidCoordinates);
        }
        if self.radius_m == 0 || self.radius_m > MAX_RADIUS_M {
            return Err(QueryError::RadiusOutOfRange);
        }
        if self.page == 0 || self.page > MAX_PAGE {
            return Err(QueryError::PageOutOfRange);
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(QueryError::PageSizeOutOfRange);
        }
        // Characters, as the document's `maxLength` counts them, not bytes.
        if self
            .cuisine
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_CUISINE_CHARS)
        {
            return Err(QueryError::CuisineTooLong);
        }
        Ok(())
    }
}

/// One result, with the seed's fields. The name, cuisine and thumbnail are read from the
/// restaurant's listing when the hit is serialized, not copied per request.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub id: RestaurantId,
    pub rating: f32,
    /// For this address, by the cell's tariff.
    pub delivery_fee: Cents,
    /// "25-35 min".
    pub estimated_time: String,
    pub eta_min_minutes: u32,
    pub eta_max_minutes: u32,
    /// Straight-line distance from the address, rounded to whole metres.
    pub distance_m: u32,
    /// Where the restaurant is (a map pin).
    pub lat: f64,
    pub lng: f64,
    listing: Arc<Listing>,
}

impl SearchHit {
    pub fn name(&self) -> &str {
        &self.listing.restaurant.name
    }
    pub fn cuisine_type(&self) -> &str {
        &self.listing.restaurant.cuisine
    }
    pub fn thumbnail_url(&self) -> &str {
        &self.listing.restaurant.thumbnail_url
    }
}

impl PartialEq for SearchHit {
    fn eq(&self, o: &Self) -> bool {
        (
            self.id,
            self.rating,
            self.delivery_fee,
            &self.estimated_time,
        ) == (o.id, o.rating, o.delivery_fee, &o.estimated_time)
            && (self.eta_min_minutes, self.eta_max_minutes, self.distance_m)
                == (o.eta_min_minutes, o.eta_max_minutes, o.distance_m)
            && (self.lat, self.lng) == (o.lat, o.lng)
            && (self.name(), self.cuisine_type(), self.thumbnail_url())
                == (o.name(), o.cuisine_type(), o.thumbnail_url())
    }
}

/// The seed's field order, as the derive on the former all-owned struct wrote it.
impl Serialize for SearchHit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SearchHit", 12)?;
        st.serialize_field("id", &self.id)?;
        let json = &self.listing.json;
        st.serialize_field("name", &json.name)?;
        st.serialize_field("cuisine_type", &json.cuisine)?;
        st.serialize_field("rating", &self.rating)?;
        st.serialize_field("delivery_fee", &self.delivery_fee)?;
        st.serialize_field("estimated_time", &self.estimated_time)?;
        st.serialize_field("eta_min_minutes", &self.eta_min_minutes)?;
        st.serialize_field("eta_max_minutes", &self.eta_max_minutes)?;
        st.serialize_field("distance_m", &self.distance_m)?;
        st.serialize_field("thumbnail_url", &json.thumbnail_url)?;
        st.serialize_field("lat", &self.lat)?;
        st.serialize_field("lng", &self.lng)?;
        st.end()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchPage {
    pub restaurants: Vec<SearchHit>,
    pub next_page: Option<u32>,
    /// Matches over all pages.
    pub total: usize,
}

/// A matching row with its sort key: the haversine term `a` (monotonic in the distance; the
/// bits of a non-negative float sort like the float), ties by id. Only the rows on the page
/// pay for the arcsine that turns `a` into metres.
struct Match<'a> {
    key: (u64, RestaurantId),
    row: &'a Row,
}

impl PartialEq for Match<'_> {
    fn eq(&self, o: &Self) -> bool {
        self.key == o.key
    }
}
impl Eq for Match<'_> {}
impl PartialOrd for Match<'_> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Match<'_> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.key.cmp(&o.key)
    }
}

/// The nearest `keep` matches seen so far (up to the end of the requested page) in a max-heap,
/// and how many matched in all. A dense metro matches thousands of restaurants per query;
/// past the first `keep`, a candidate costs one comparison with the farthest kept, instead of
/// being collected and then selected.
struct Best<'a> {
    keep: usize,
    heap: std::collections::BinaryHeap<Match<'a>>,
    total: usize,
}

impl<'a> Best<'a> {
    fn new(q: &SearchQuery) -> Best<'a> {
        // The page bounds are validated: at most MAX_PAGE · MAX_PAGE_SIZE.
        let keep = (q.page as usize) * (q.page_size as usize);
        Best {
            keep,
            heap: std::collections::BinaryHeap::with_capacity(keep.min(1_024)),
            total: 0,
        }
    }

    /// Would no match farther than `m` metres make the page? (The page is full and its
    /// farthest match is nearer.)
    fn beyond(&self, m: f64) -> bool {
        self.heap.len() >= self.keep
            && self
                .heap
                .peek()
                .is_none_or(|far| a_to_m(f64::from_bits(far.key.0)) < m)
    }

    #[inline]
    fn offer(&mut self, m: Match<'a>) {
        self.total += 1;
        if self.heap.len() < self.keep {
            self.heap.push(m);
        } else if let Some(mut far) = self.heap.peek_mut()
            && m.key < far.key
        {
            *far = m;
        }
    }
}

/// Caches "local weekday and minute" per time zone for one query: a city's restaurants share
/// one zone, so the conversion runs about once per request instead of once per candidate.
struct LocalClock {
    now: UnixMs,
    seen: Vec<(chrono_tz::Tz, (u8, u16))>,
}

impl LocalClock {
    fn at(&mut self, tz: chrono_tz::Tz) -> (u8, u16) {
        if let Some((_, dm)) = self.seen.iter().find(|(t, _)| *t == tz) {
            return *dm;
        }
        let dm = local_day_minute(tz, self.now);
        self.seen.push((tz, dm));
        dm
    }
}

pub(crate) fn search(
    index: &Index,
    q: &SearchQuery,
    now: UnixMs,
    pricing: &PricingConfig,
) -> Result<SearchPage, QueryError> {
    q.validate()?;
    // Nobody delivers farther than the largest delivery radius: no need to look farther.
    let reach = f64::from(q.radius_m.min(index.max_delivery_m));
    let radius = f64::from(q.radius_m);
    let origin = h3o::LatLng::new(q.lat, q.lng)
        .expect("validated coordinates")
        .to_cell(INDEX_RESOLUTION);
    // A cuisine no restaurant has matches nothing; otherwise rows compare interned ids.
    let cuisine = match q
        .cuisine
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => match index.cuisine_id(c) {
            Some(id) => Some(id),
            None => return Ok(page(Best::new(q), q, pricing)),
        },
    };
    let probe = Filter {
        at: Point::new(q.lat, q.lng),
        radius: ABounds::new(radius),
        radius_m: radius,
    };
    let mut clock = LocalClock {
        now,
        seen: Vec::with_capacity(2),
    };
    let mut best = Best::new(q);
    if index.max_delivery_m > 0 {
        // Every chunk that may hold a match, nearest first: the page's matches are found
        // early, so farther chunks can be counted without reading their rows.
        let mut visits: Vec<Visit<'_>> = Vec::with_capacity(512);
        for cell in origin.grid_disk::<Vec<_>>(disk_k(reach)) {
            let Some(bucket) = index.buckets.get(&cell) else {
                continue;
            };
            // Triangle inequality: every member is at least (centre distance − reach) away.
            let to_centre = haversine_m(q.lat, q.lng, bucket.center_lat, bucket.center_lng);
            let nearest_possible = to_centre - bucket.reach_m;
            if nearest_possible > reach || nearest_possible > f64::from(bucket.max_delivery_m) {
                continue;
            }
            for chunk in &bucket.chunks {
                let (lo, hi) = m_bounds(probe.at.a_to(&chunk.center));
                let near = lo - chunk.reach_m - SLACK_M;
                if near > reach || near > f64::from(chunk.max_delivery_m) {
                    continue;
                }
                visits.push(Visit {
                    near,
                    far: hi + chunk.reach_m + SLACK_M,
                    bucket,
                    chunk,
                });
            }
        }
        // Only the nearest few need visiting in order: they fill the page, and then every
        // farther chunk is counted or read in whatever order (a full sort of ~1,000 chunks
        // cost more than it saved).
        let by_near = |a: &Visit<'_>, b: &Visit<'_>| a.near.total_cmp(&b.near);
        let first = visits.len().min(8 + 2 * best.keep.div_ceil(CHUNK));
        if first < visits.len() {
            visits.select_nth_unstable_by(first, by_near);
        }
        visits[..first].sort_unstable_by(by_near);
        for v in &visits {
            scan_chunk(v, &probe, cuisine, &mut clock, &mut best);
        }
    }
    Ok(page(best, q, pricing))
}

/// The query point and its radius bound.
struct Filter {
    at: Point,
    radius: ABounds,
    radius_m: f64,
}

/// Whether `row` is open and not closed by hand at local weekday `day`, minute `minute`.
fn open_at(row: &Row, day: u8, minute: u16) -> bool {
    !row.manually_closed
        && match &row.hours {
            Some(week) => week.is_open_local(day, minute),
            None => row.listing.restaurant.hours.is_open_local(day, minute),
        }
}

/// A chunk a search reads, with the bounds on its rows' distances from the query point.
struct Visit<'a> {
    near: f64,
    far: f64,
    bucket: &'a Bucket,
    chunk: &'a Chunk,
}

/// Offers the matches of one chunk: the exact filter of every row (distance, by haversine, in
/// metres within the radius and the restaurant's delivery radius; cuisine; manual toggle;
/// hours), where chunk-level bounds decide whole groups of rows at once (see
/// [`crate::chunk`]).
fn scan_chunk<'a>(
    v: &Visit<'a>,
    f: &Filter,
    cuisine: Option<CuisineId>,
    clock: &mut LocalClock,
    best: &mut Best<'a>,
) {
    let (chunk, near, far) = (v.chunk, v.near, v.far);
    let rows = &v.bucket.rows[chunk.range()];
    let mut mask = match chunk.tz {
        Some(tz) => {
            let (day, minute) = clock.at(tz);
            chunk.open_mask(rows, day, minute, |r| open_at(r, day, minute))
        }
        None => mask_of(rows, |r| {
            let (day, minute) = clock.at(r.tz);
            open_at(r, day, minute)
        }),
    };
    if let Some(c) = cuisine {
        mask &= mask_of(rows, |r| r.cuisine == c);
    }
    if mask == 0 {
        return;
    }
    // Every row is surely within the radius and none can enter the page: the rows that
    // surely deliver this far only count.
    if far <= f.radius_m && best.beyond(near) {
        let sure = mask & chunk.delivering(far);
        best.total += sure.count_ones() as usize;
        mask &= !sure;
    }
    // A row that delivers less far than the chunk's nearest bound surely does not deliver here.
    mask &= chunk.delivering(near);
    for i in bits(mask) {
        let a = f.at.a_to(&chunk.points[i]);
        if f.radius.contains(a, f.radius_m)
            && chunk.delivery[i].contains(a, f64::from(chunk.delivery_m[i]))
        {
            best.offer(Match {
                key: (a.to_bits(), chunk.ids[i]),
                row: &rows[i],
            });
        }
    }
}

fn page(best: Best<'_>, q: &SearchQuery, pricing: &PricingConfig) -> SearchPage {
    let total = best.total;
    let size = q.page_size as usize;
    let start = (q.page as usize - 1) * size;
    let end = (start + size).min(total);
    if start >= total {
        return SearchPage {
            restaurants: Vec::new(),
            next_page: None,
            total,
        };
    }
    // The heap holds exactly the nearest `end` matches.
    let matches = best.heap.into_sorted_vec();
    let restaurants = matches[start..end]
        .iter()
        .map(|m| {
            let r = &m.row.listing.restaurant;
            let distance_m = a_to_m(f64::from_bits(m.key.0)).round() as u32;
            let (lo, hi) = eta_range_min(r.prep_time_min, distance_m, pricing);
            SearchHit {
                id: r.id,
                rating: r.rating(),
                delivery_fee: delivery_fee(distance_m, pricing),
                estimated_time: eta_label(lo, hi),
                eta_min_minutes: lo,
                eta_max_minutes: hi,
                distance_m,
                lat: m.row.lat,
                lng: m.row.lng,
                listing: m.row.listing.clone(),
            }
        })
        .collect();
    let next_page = (end < total && q.page < MAX_PAGE).then_some(q.page + 1);
    SearchPage {
        restaurants,
        next_page,
        total,
    }
}
