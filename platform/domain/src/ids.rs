//! Typed ids. Never a bare `u64` across a module boundary.
//!
//! What an id tells the router (see ARCHITECTURE.md):
//! - [`OrderId`] and [`DeliveryId`] are Snowflakes that embed the [`CellId`] that created
//!   them: orders never move, so everything about an order goes to that cell for its whole
//!   life, even after its region moved.
//! - [`RestaurantId`] embeds the restaurant's coarse H3 region ([`RegionId`]), not a cell:
//!   restaurants move with their region, and the router resolves region → cell through the
//!   current map, so a moved restaurant keeps its id.
//!
//! In JSON every id is a decimal string: JavaScript numbers lose precision above 2^53.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Errors decoding or building an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("not a valid id: {0:?}")]
    Malformed(String),
    #[error("cell id {0} is out of range (0..=1023)")]
    CellOutOfRange(u32),
    #[error("coordinates out of range")]
    BadCoordinates,
    #[error("not a valid region index")]
    BadRegion,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                // Only plain decimal digits: no sign, no whitespace, no leading "+".
                if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(IdError::Malformed(s.chars().take(32).collect()));
                }
                s.parse::<u64>().map($name).map_err(|_| IdError::Malformed(s.to_string()))
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// A customer account.
    CustomerId
);
typed_id!(
    /// A driver account.
    DriverId
);
typed_id!(
    /// A menu item, unique within the platform (allocated with its restaurant).
    MenuItemId
);
typed_id!(
    /// An order: a Snowflake embedding the cell that owns it for life.
    OrderId
);
typed_id!(
    /// One delivery of an order: a Snowflake embedding the owning cell, so driver actions
    /// addressed by delivery id route like the order.
    DeliveryId
);
typed_id!(
    /// A restaurant: embeds its coarse H3 region (see [`RegionId`]).
    RestaurantId
);

/// A city cell (a shard of the platform), 0..=1023.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CellId(u16);

impl CellId {
    pub const MAX: u16 = (1 << CELL_BITS) - 1;

    pub fn new(id: u32) -> Result<CellId, IdError> {
        if id > u32::from(Self::MAX) {
            return Err(IdError::CellOutOfRange(id));
        }
        Ok(CellId(id as u16))
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for CellId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

// Snowflake layout (bit 63 is always 0 so the id is a positive i64 in any language):
// | 41 bits ms since SNOWFLAKE_EPOCH | 10 bits cell | 12 bits sequence |
const SEQ_BITS: u32 = 12;
const CELL_BITS: u32 = 10;
const TIME_BITS: u32 = 41;
/// 2025-01-01T00:00:00Z: 41 bits of milliseconds last until 2094.
pub const SNOWFLAKE_EPOCH_MS: i64 = 1_735_689_600_000;

fn snowflake_cell(raw: u64) -> CellId {
    CellId(((raw >> SEQ_BITS) & u64::from(CellId::MAX)) as u16)
}

fn snowflake_ms(raw: u64) -> i64 {
    (raw >> (SEQ_BITS + CELL_BITS)) as i64 + SNOWFLAKE_EPOCH_MS
}

impl OrderId {
    /// The cell that created this order and owns it for life.
    pub fn cell(self) -> CellId {
        snowflake_cell(self.0)
    }
    /// Creation time embedded in the id (ms since the Unix epoch).
    pub fn created_ms(self) -> i64 {
        snowflake_ms(self.0)
    }
}

impl DeliveryId {
    pub fn cell(self) -> CellId {
        snowflake_cell(self.0)
    }
}

/// Generates Snowflakes for one cell. Deterministic: time comes in as an argument. If the
/// sequence is exhausted within a millisecond, or the clock steps back, it borrows the next
/// millisecond, so ids stay strictly increasing within a process.
///
/// Across restarts the generator relies on a persisted high-water mark (kept by the caller in
/// its store): [`SnowflakeGen::resume`] starts above the mark, so a clock that stepped back
/// never reissues an id, and a lease ([`SnowflakeGen::set_lease`]) caps the milliseconds it
/// issues from. The caller persists the lease before granting it, in large steps, so the mark
/// is written once per lease and not once per id.
#[derive(Debug)]
pub struct SnowflakeGen {
    cell: CellId,
    last: u64,
    /// Ids are never issued at a millisecond past this (ms since the Unix epoch); `None` for
    /// an unleased generator (tests, tools).
    lease_ms: Option<i64>,
}

fn epoch_ms(now_ms: i64) -> u64 {
    (now_ms - SNOWFLAKE_EPOCH_MS).clamp(0, (1 << TIME_BITS) - 1) as u64
}

impl SnowflakeGen {
    /// An unleased generator: nothing bounds it, nothing is remembered across restarts.
    pub fn new(cell: CellId) -> Self {
        Self {
            cell,
            last: 0,
            lease_ms: None,
        }
    }

    /// A generator whose ids are all above every id of millisecond `mark_ms` (the persisted
    /// high-water mark of the previous run). It holds a lease up to the mark only, so it
    /// issues nothing until [`Self::set_lease`] grants more.
    pub fn resume(cell: CellId, mark_ms: i64) -> Self {
        let ms = epoch_ms(mark_ms);
        let last = (ms << (SEQ_BITS + CELL_BITS))
            | (u64::from(cell.0) << SEQ_BITS)
            | ((1 << SEQ_BITS) - 1);
        Self {
            cell,
            last,
            lease_ms: Some(mark_ms),
        }
    }

    /// The cell whose ids this generator issues.
    pub fn cell(&self) -> CellId {
        self.cell
    }

    /// Allows ids up to millisecond `until_ms`, once the caller has persisted it as the mark.
    /// A lease never shrinks.
    pub fn set_lease(&mut self, until_ms: i64) {
        self.lease_ms = Some(self.lease_ms.map_or(until_ms, |l| l.max(until_ms)));
    }

    /// The current lease, if the generator is leased.
    pub fn lease_ms(&self) -> Option<i64> {
        self.lease_ms
    }

    /// Whether the lease ends within `ahead_ms` of the next id's millisecond: time to persist
    /// a new mark. Always `false` for an unleased generator.
    pub fn needs_lease(&self, now_ms: i64, ahead_ms: i64) -> bool {
        let last_ms = snowflake_ms(self.last);
        self.lease_ms
            .is_some_and(|l| l < now_ms.max(last_ms).saturating_add(ahead_ms))
    }

    /// The next id at `now_ms` (ms since the Unix epoch), or `None` if it would lie past the
    /// lease: persist a new mark, [`Self::set_lease`], and ask again. A clock past the lease
    /// issues from the lease's millisecond while its sequence numbers last.
    pub fn try_next_raw(&mut self, now_ms: i64) -> Option<u64> {
        let now_ms = self.lease_ms.map_or(now_ms, |l| now_ms.min(l));
        let ms = epoch_ms(now_ms);
        let candidate = (ms << (SEQ_BITS + CELL_BITS)) | (u64::from(self.cell.0) << SEQ_BITS);
        let next = if candidate > self.last {
            candidate
        } else {
            // Same millisecond or clock went back: next sequence number, carrying into the
            // time bits (never into the cell bits) when the sequence wraps.
            let seq = (self.last & ((1 << SEQ_BITS) - 1)) + 1;
            if seq < (1 << SEQ_BITS) {
                (self.last & !((1 << SEQ_BITS) - 1)) | seq
            } else {
                let ms = (self.last >> (SEQ_BITS + CELL_BITS)) + 1;
                (ms << (SEQ_BITS + CELL_BITS)) | (u64::from(self.cell.0) << SEQ_BITS)
            }
        };
        if self.lease_ms.is_some_and(|l| snowflake_ms(next) > l) {
            return None;
        }
        self.last = next;
        Some(next)
    }

    /// The next id of an unleased generator.
    ///
    /// # Panics
    /// If the generator is leased and its lease is used up (use [`Self::try_next_raw`]).
    pub fn next_raw(&mut self, now_ms: i64) -> u64 {
        self.try_next_raw(now_ms)
            .expect("a leased generator is asked through try_next_raw")
    }

    pub fn next_order(&mut self, now_ms: i64) -> OrderId {
        OrderId(self.next_raw(now_ms))
    }

    pub fn try_next_order(&mut self, now_ms: i64) -> Option<OrderId> {
        self.try_next_raw(now_ms).map(OrderId)
    }

    pub fn next_delivery(&mut self, now_ms: i64) -> DeliveryId {
        DeliveryId(self.next_raw(now_ms))
    }

    pub fn try_next_delivery(&mut self, now_ms: i64) -> Option<DeliveryId> {
        self.try_next_raw(now_ms).map(DeliveryId)
    }
}

/// The H3 resolution of the router's map: the unit of ownership that moves between cells.
/// Resolution 5 hexagons average ≈ 253 km² (edge ≈ 8.5 km): a metro area spans several, so
/// a city can be split or rebalanced, while the map stays small (≈ 2 M cells on Earth, a few
/// dozen per city).
pub const REGION_RESOLUTION: h3o::Resolution = h3o::Resolution::Five;

/// A coarse H3 region (resolution [`REGION_RESOLUTION`]), packed into 22 bits: 7 bits of base
/// cell and 5 × 3 bits of digits. This is what a restaurant id embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RegionId(u32);

const REGION_BITS: u32 = 22;
const RESTAURANT_LOCAL_BITS: u32 = 41;

impl RegionId {
    pub fn from_latlng(lat: f64, lng: f64) -> Result<RegionId, IdError> {
        let ll = h3o::LatLng::new(lat, lng).map_err(|_| IdError::BadCoordinates)?;
        Ok(Self::from_cell(ll.to_cell(REGION_RESOLUTION)))
    }

    /// The region containing `cell`, which must be at resolution ≥ [`REGION_RESOLUTION`].
    pub fn from_cell(cell: h3o::CellIndex) -> RegionId {
        let parent = cell.parent(REGION_RESOLUTION).unwrap_or(cell);
        RegionId(((u64::from(parent) >> 30) & ((1 << REGION_BITS) - 1)) as u32)
    }

    pub fn cell(self) -> h3o::CellIndex {
        // Mode 1 (cell), resolution 5, our 22 bits, unused digits 6..=15 all set to 7.
        let raw = (1u64 << 59) | (5u64 << 52) | (u64::from(self.0) << 30) | ((1u64 << 30) - 1);
        h3o::CellIndex::try_from(raw).expect("a RegionId always packs a valid resolution-5 cell")
    }

    pub fn try_from_cell_index(raw: u64) -> Result<RegionId, IdError> {
        let cell = h3o::CellIndex::try_from(raw).map_err(|_| IdError::BadRegion)?;
        if cell.resolution() != REGION_RESOLUTION {
            return Err(IdError::BadRegion);
        }
        Ok(Self::from_cell(cell))
    }

    pub fn packed(self) -> u32 {
        self.0
    }
}

impl fmt::Display for RegionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.cell())
    }
}

impl RestaurantId {
    /// `local` must fit 41 bits; the region fills the 22 bits above it.
    pub fn new(region: RegionId, local: u64) -> RestaurantId {
        RestaurantId(
            (u64::from(region.0) << RESTAURANT_LOCAL_BITS)
                | (local & ((1 << RESTAURANT_LOCAL_BITS) - 1)),
        )
    }

    /// The region the restaurant was created in; the router maps it to the owning cell.
    pub fn region(self) -> Result<RegionId, IdError> {
        let packed = (self.0 >> RESTAURANT_LOCAL_BITS) as u32;
        let region = RegionId(packed);
        // Validate: a forged id must not panic the router.
        let raw = (1u64 << 59) | (5u64 << 52) | (u64::from(packed) << 30) | ((1u64 << 30) - 1);
        h3o::CellIndex::try_from(raw).map_err(|_| IdError::BadRegion)?;
        Ok(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn snowflakes_embed_cell_and_increase() {
        let cell = CellId::new(513).unwrap();
        let mut g = SnowflakeGen::new(cell);
        let now = 1_760_000_000_000;
        let mut last = 0;
        for i in 0..10_000 {
            // The same millisecond 5,000 times forces sequence wrap into the next ms.
            let id = g.next_order(now + i / 5_000);
            assert!(id.0 > last, "ids strictly increase");
            assert_eq!(id.cell(), cell);
            assert!((id.0 as i64) > 0);
            last = id.0;
        }
        // Clock going backwards never repeats an id.
        let back = g.next_order(now - 10_000);
        assert!(back.0 > last);
        assert_eq!(back.cell(), cell);
        assert!(CellId::new(1024).is_err());
    }

    #[test]
    fn resumed_generator_never_reissues_when_the_clock_went_back() {
        let cell = CellId::new(7).unwrap();
        let now = 1_760_000_000_000;
        // First run: a lease of 60 s, ids at `now`.
        let mut g = SnowflakeGen::resume(cell, now - 1);
        assert_eq!(g.try_next_order(now), None, "nothing past the lease");
        assert!(g.needs_lease(now, 30_000));
        g.set_lease(now + 60_000);
        assert!(!g.needs_lease(now, 30_000));
        let first: Vec<u64> = (0..5_000).map(|_| g.try_next_raw(now).unwrap()).collect();
        // Restart with the clock 10 s back: the mark is the lease the first run persisted.
        let mut g = SnowflakeGen::resume(cell, now + 60_000);
        g.set_lease(now + 120_000);
        let second: Vec<u64> = (0..5_000)
            .map(|_| g.try_next_raw(now - 10_000).unwrap())
            .collect();
        assert!(second[0] > *first.last().unwrap());
        assert!(second.windows(2).all(|w| w[0] < w[1]));
        assert!(OrderId(second[0]).created_ms() > now + 60_000);
        assert_eq!(OrderId(second[0]).cell(), cell);
    }

    #[test]
    fn a_clock_past_the_lease_issues_from_the_lease_until_its_sequences_run_out() {
        let cell = CellId::new(3).unwrap();
        let now = 1_760_000_000_000;
        let mut g = SnowflakeGen::resume(cell, now);
        g.set_lease(now + 10);
        g.set_lease(now + 5); // never shrinks
        assert_eq!(g.lease_ms(), Some(now + 10));
        let mut last = 0;
        for _ in 0..4096 {
            let id = g
                .try_next_raw(now + 1_000)
                .expect("within the lease's millisecond");
            assert!(id > last);
            assert_eq!(OrderId(id).created_ms(), now + 10);
            last = id;
        }
        assert_eq!(g.try_next_raw(now + 1_000), None);
        g.set_lease(now + 2_000);
        assert!(g.try_next_raw(now + 1_000).unwrap() > last);
    }

    #[test]
    fn ids_parse_strictly() {
        assert_eq!("42".parse::<OrderId>(), Ok(OrderId(42)));
        for bad in [
            "",
            "-1",
            "+1",
            " 1",
            "1a",
            "99999999999999999999999",
            "0x10",
        ] {
            assert!(bad.parse::<OrderId>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&OrderId(u64::MAX)).unwrap();
        assert_eq!(json, "\"18446744073709551615\"");
        assert_eq!(
            serde_json::from_str::<OrderId>(&json).unwrap(),
            OrderId(u64::MAX)
        );
        assert!(serde_json::from_str::<OrderId>("12").is_err());
    }

    proptest! {
        #[test]
        fn restaurant_ids_round_trip_their_region(lat in -89.9f64..89.9, lng in -180.0f64..180.0, local in 0u64..(1 << 41)) {
            let region = RegionId::from_latlng(lat, lng).unwrap();
            let ll = h3o::LatLng::new(lat, lng).unwrap();
            prop_assert_eq!(region.cell(), ll.to_cell(REGION_RESOLUTION));
            let id = RestaurantId::new(region, local);
            prop_assert_eq!(id.region().unwrap(), region);
            prop_assert!((id.0 as i64) >= 0);
        }

        #[test]
        fn forged_restaurant_ids_never_panic(raw in any::<u64>()) {
            let _ = RestaurantId(raw).region();
        }
    }
}
