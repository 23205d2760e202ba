//! `geostore`: the live position of every online driver in a city cell, in memory.
//!
//! [`GeoStore::upsert`] records pings (newest timestamp wins; [`GeoStore::upsert_batch`] does
//! the same for a burst, overlapping the pings' cache misses), [`GeoStore::nearest`] and
//! [`GeoStore::within`] answer radius queries with exact great-circle results (the same set and
//! order a brute-force haversine scan over the stored positions gives: distance, then driver id),
//! and [`GeoStore::set_state`] / [`GeoStore::compare_and_set_state`] keep the driver state that
//! queries filter on. Drivers whose last ping is older than [`Config::staleness`] drop out of
//! answers at once and are reclaimed by [`GeoStore::sweep`], which the cell calls on a timer.
//!
//! The crate does no I/O and never reads the clock: every call that depends on time takes
//! `now_ms` (milliseconds since the Unix epoch, like ping timestamps).
//!
//! # Concurrency
//! Queries and [`GeoStore::get`] never block and are never blocked by writers: they take
//! consistent per-driver snapshots (double-buffered records) and scan bucket arrays without
//! locks. Writers to different drivers proceed in parallel. A driver moving between buckets
//! while a query runs appears in that query's answer exactly once if it is within the radius
//! (and passes the filter) both before and after the move; in general every answer is exact for
//! *some* per-driver snapshot, each of which was the driver's current record at an instant
//! during the query. See `query.rs` for the protocol and its argument.
//!
//! # Layout
//! - `lib.rs`: public types ([`DriverId`], [`DriverState`], [`Filter`], [`Hit`], [`Error`]).
//! - `store.rs`: [`GeoStore`], configuration, writers (upsert, state, remove, sweep), stats.
//! - `query.rs`: `nearest` / `within`: ring search over H3 cells, validation and retry.
//! - `bucket.rs`: per-H3-cell member arrays with position hints; the bucket arena.
//! - `slot.rs`: per-driver double-buffered records and the slot slab.
//! - `table.rs`: lock-free-read hash tables (driver → slot, H3 cell → bucket).
//! - `geo.rs`: the canonical haversine, E7 quantization, conservative distance bounds.
//! - `bin/geobench/`: the side-by-side benchmark against Redis GEO and in-process baselines.

mod bucket;
mod geo;
mod query;
mod scratch;
mod slot;
mod stats;
mod store;
mod table;

pub use geo::{EARTH_RADIUS_M, haversine_m, quantize};
pub use query::Within;
pub use stats::{Stats, SweepStats};
pub use store::{Config, GeoStore, Ping, UpsertOutcome};

/// A driver's identity. The cell converts its own ids into this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DriverId(pub u64);

/// Where a driver is in the dispatch cycle. New drivers start [`DriverState::Available`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DriverState {
    Available,
    Offered,
    OnDelivery,
    Offline,
}

impl DriverState {
    pub(crate) fn bits(self) -> u64 {
        match self {
            Self::Available => 0,
            Self::Offered => 1,
            Self::OnDelivery => 2,
            Self::Offline => 3,
        }
    }
    pub(crate) fn from_bits(b: u64) -> Self {
        match b & 3 {
            0 => Self::Available,
            1 => Self::Offered,
            2 => Self::OnDelivery,
            _ => Self::Offline,
        }
    }
}

/// Which drivers a query returns: a set of states, and freshness relative to `now_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Filter {
    states: u8,
    /// The query's "now" (ms since the Unix epoch): drivers whose last ping is older than the
    /// store's staleness relative to it are excluded.
    pub now_ms: u64,
}

impl Filter {
    /// Available drivers only: what matching asks for.
    #[must_use]
    pub fn available(now_ms: u64) -> Self {
        Self { states: 1, now_ms }
    }
    /// Drivers in any state.
    #[must_use]
    pub fn any(now_ms: u64) -> Self {
        Self {
            states: 0xF,
            now_ms,
        }
    }
    /// Drivers in any of `states`.
    #[must_use]
    pub fn states(states: &[DriverState], now_ms: u64) -> Self {
        Self {
            states: states.iter().fold(0, |m, s| m | (1 << s.bits())),
            now_ms,
        }
    }
    /// Whether a driver known only to be available (or not) can pass.
    pub(crate) fn allows_hint(&self, available: bool) -> bool {
        if available {
            self.states & 1 != 0
        } else {
            self.states & !1 != 0
        }
    }
    /// Whether `state` passes.
    #[must_use]
    pub fn allows(&self, state: DriverState) -> bool {
        self.states & (1 << state.bits()) != 0
    }
}

/// A driver's stored record. Positions are stored as E7 fixed point (≈ 1.1 cm), heading in
/// whole degrees and speed in 0.1 m/s; these are the values returned and ranked on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Driver {
    pub id: DriverId,
    pub lat: f64,
    pub lng: f64,
    pub heading_deg: f32,
    pub speed_mps: f32,
    pub ts_ms: u64,
    pub state: DriverState,
}

/// One query answer: a driver and its great-circle distance from the query point, in metres.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub distance_m: f64,
    pub driver: Driver,
}

/// Errors at the crate boundary. Invalid input is rejected and never stored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("invalid coordinates lat={lat} lng={lng}: need finite |lat| ≤ 90 and |lng| ≤ 180")]
    InvalidCoordinates { lat: f64, lng: f64 },
    #[error("invalid radius {0} m: need a finite value ≥ 0")]
    InvalidRadius(f64),
    #[error("invalid heading {0}: need a finite number of degrees")]
    InvalidHeading(f32),
    #[error("invalid speed {0}: need a finite value ≥ 0 m/s")]
    InvalidSpeed(f32),
    #[error("timestamp {0} ms is beyond the supported range (2^44 ms since the epoch)")]
    InvalidTimestamp(u64),
    #[error("unknown driver {0:?}")]
    UnknownDriver(DriverId),
    #[error("driver capacity exhausted ({0} drivers)")]
    CapacityExceeded(u32),
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

// The store is shared across the cell's threads by reference or `Arc`.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<GeoStore>();
};
