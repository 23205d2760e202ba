//! The cell's catalog: restaurants and menus. The store is the source of truth (the catalog
//! is the cell's durable data, and moves between cells with its H3 region via
//! [`Catalog::export_region`] / [`Catalog::import`]); every read is served from memory.
//!
//! - Discovery ([`Catalog::search`]): an H3 index (resolution 7) of restaurants; a query
//!   visits the grid disk covering its radius and filters exactly by haversine distance,
//!   delivery radius, cuisine and opening hours in each restaurant's own time zone.
//! - Menus ([`Catalog::menu`], [`Catalog::menu_json`]): an immutable [`Listing`] per
//!   restaurant with its response body pre-serialized, rebuilt on every write.
//! - Ordering ([`price_cart`]): pure cart validation, totals in integer cents and the ETA,
//!   configured per cell by [`PricingConfig`].
//! - Demo data ([`demo::generate`]): a deterministic city for the quickstart and tests.
//!
//! Nothing here reads the clock: every time-dependent call takes `now`.
//!
//! Performance (`examples/catalog_bench.rs`, release, one core of this 2-core machine, 5,000
//! restaurants around Berlin, 5 km radius, ~600 matches per query): search p50 ≈ 37 µs,
//! p99 ≈ 80 µs; `menu_json` ≈ 0.3 µs (an `Arc` clone). Menu bodies take ≈ 16 KB per
//! restaurant (80 MB for 5,000).
//!
//! # Layout
//! - `model.rs`: [`Restaurant`], [`Menu`] and their validation (every write passes it).
//! - `hours.rs`: [`WeeklyHours`], past-midnight intervals, local time via `chrono-tz`.
//! - `listing.rs`: [`Listing`] and the menu response body [`MenuBody`].
//! - `geo.rs`: haversine and the H3 bucket index.
//! - `search.rs`: [`SearchQuery`] validation, the search, paging.
//! - `pricing.rs`: [`price_cart`], [`CartError`], the delivery tariff and the ETA model.
//! - `catalog.rs`: [`Catalog`]: load, writes, export/import.
//! - `stored.rs`: the store keys, menus in chunks under the value limit, the paged load and
//!   the write budget that keeps each transaction inside FoundationDB's limits.
//! - `demo.rs`, `demo_data.rs`: the generator and its word lists.
//! - `error.rs`: [`CatalogError`], [`ValidationError`].
//! - `*_tests.rs`, `testing.rs` (also for other crates' tests, feature `testing`): unit tests next to the code (search against a brute-force
//!   scan, every cart error, store round trips on the redb backend).
//! - `examples/catalog_bench.rs`: the numbers above.
//!
//! `serde_json` is built with `float_roundtrip` so stored coordinates read back bit-exact
//! (the default parser may be one ULP off, and an export must equal what was imported).

mod catalog;
pub mod demo;
mod demo_data;
mod error;
pub mod geo;
pub mod hours;
mod listing;
mod menu_cache;
pub mod model;
pub mod pricing;
pub mod search;
mod stored;

pub use catalog::{Catalog, MIN_MENU_CACHE, menu_cache_capacity};
pub use error::{CatalogError, Result, ValidationError};
pub use hours::{ClockTime, Interval, WeeklyHours};
pub use listing::{Listing, MenuBody};
pub use menu_cache::MenuCacheStats;
pub use model::{Category, CustomOption, CustomizationGroup, Menu, MenuItem, Restaurant};
pub use pricing::{
    CartError, CartLine, CartRequest, CustomizationProblem, PricedCart, PricingConfig,
    delivery_fee, eta_range_min, price_cart,
};
pub use search::{QueryError, SearchHit, SearchPage, SearchQuery, parse_radius};
pub use stored::{MAX_MENU_BYTES, MENU, MENU_CHUNK_BYTES, REST, menu_prefix, rest_key};

#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod pricing_tests;
#[cfg(test)]
mod search_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
