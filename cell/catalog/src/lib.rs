//! The cell's catalog: restaurants and menus. The store is the source of truth (the catalog
//! is the cell's durable data, and moves between cells with its H3 region via
//! [`Catalog::export_region`] / [`Catalog::import`]). Restaurant records live in memory;
//! menus are read from the store on demand and the recently read ones kept in a bounded
//! cache.
//!
//! - Discovery ([`Catalog::search`]): an H3 index (resolution 7) of restaurants; a query
//!   visits the grid disk covering its radius and filters exactly by haversine distance,
//!   delivery radius, cuisine and opening hours in each restaurant's own time zone.
//! - Menus ([`Catalog::menu_json`], [`Catalog::menu`]): the response body comes from the menu
//!   cache, or on a miss from one store read (the stored JSON with the restaurant header
//!   spliced in front, no parsing), and is then cached. Every write drops the restaurant's
//!   entry, so the next read is fresh. The cache holds a fifth of the restaurants' menus by
//!   default ([`menu_cache_capacity`]); its hits and misses are metrics.
//! - Ordering ([`price_cart`]): pure cart validation, totals in integer cents and the ETA,
//!   configured per cell by [`PricingConfig`].
//! - Demo data ([`demo::generate`], [`demo::generate_range`]): a deterministic metro for the
//!   quickstart, tests and benchmarks.
//!
//! Nothing here reads the clock: every time-dependent call takes `now`.
//!
//! Performance: `examples/catalog_bench.rs` (search and menu reads in process) and
//! `examples/heap_breakdown.rs` (what the loaded catalog holds, with dhat); the figures, before
//! and after, and the cell at 50,000 restaurants are in `cell/catalog/README.md`.
//!
//! # Layout
//! - `model.rs`: [`Restaurant`], [`Menu`] and their validation (every write passes it).
//! - `hours.rs`: [`WeeklyHours`], past-midnight intervals, local time via `chrono-tz`.
//! - `listing.rs`: [`Listing`] (the in-memory record) and the menu response body [`MenuBody`].
//! - `menu_cache.rs`: the bounded menu cache, its freshness rule and metrics.
//! - `geo.rs`: haversine and the H3 bucket index; `chunk.rs`: runs of neighbouring rows
//!   with their own bounds and a cached open mask, so a search counts most matches without
//!   reading them.
//! - `search.rs`: [`SearchQuery`] validation, the search, paging.
//! - `pricing.rs`: [`price_cart`], [`CartError`], the delivery tariff and the ETA model.
//! - `catalog.rs`: [`Catalog`]: load, reads, writes, export/import.
//! - `stored.rs`: the store keys, menus in chunks under the value limit, the paged load and
//!   the write budget that keeps each transaction inside FoundationDB's limits.
//! - `demo.rs`, `demo_data.rs`: the generator and its word lists.
//! - `error.rs`: [`CatalogError`], [`ValidationError`].
//! - `*_tests.rs`, `testing.rs` (also for other crates' tests, feature `testing`): unit tests
//!   next to the code (search against a brute-force scan, every cart error, store round
//!   trips on the redb backend, menu freshness with and without the cache).
//!
//! `serde_json` is built with `float_roundtrip` so stored coordinates read back bit-exact
//! (the default parser may be one ULP off, and an export must equal what was imported).

mod catalog;
mod chunk;
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
pub use search::{
    MAX_CUISINE_CHARS, MAX_PAGE, QueryError, RADIUS_PATTERN, SearchHit, SearchPage, SearchQuery,
    parse_radius,
};
pub use stored::{MAX_MENU_BYTES, MENU, MENU_CHUNK_BYTES, REST, menu_prefix, rest_key};

#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod demo_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod pricing_tests;
#[cfg(test)]
mod search_tests;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
