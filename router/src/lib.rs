//! The global router: the one entry point for customer and restaurant apps, the place
//! drivers ask which cell to stream to, and the SREs' tool to add, drain and rebalance cells.
//!
//! # Layout
//! - `route.rs`: which cell a request belongs to (path, query, body), pure.
//! - `table.rs`: the live map + per-cell health, swapped atomically (lock-free lookups).
//! - `mapstore.rs`: the map and its audit log in the store (redb here, FoundationDB in prod).
//! - `proxy.rs`: HTTP forwarding over pooled keep-alive connections, WebSocket splicing.
//! - `fanout.rs`: search and order lists answered from several cells under a deadline;
//!   `pages.rs` merges and pages search results (pure), `merge.rs` order lists (pure),
//!   `disk.rs` finds the regions a search disk touches (pure).
//! - `limit.rs`: per-IP and per-token token buckets.
//! - `cells.rs`: the client for the cells' admin API; its wire types and paths are the
//!   cells' own, from the `cellapi` crate.
//! - `ops/`: cell operations through [`ops::Control`]: `add.rs`, `move_region.rs`, `drain.rs`,
//!   `remove.rs`, one per operation.
//! - `health.rs`: health checks, map pushes and map refresh loops.
//! - `web.rs`: the embedded web pages (`webpages` crate), the demo token endpoint and the
//!   regions as GeoJSON for the operations console.
//! - `server.rs` + `admin.rs`: the HTTP service; `boot.rs`: wiring and listeners (TLS).
//! - `config.rs`: the typed configuration; `testing.rs`: unit-test fixtures (test builds only).

pub mod admin;
pub mod boot;
pub mod cells;
pub mod config;
pub mod disk;
pub mod error;
pub mod fanout;
pub mod health;
pub mod hold;
pub mod limit;
pub mod mapstore;
pub mod merge;
pub mod ops;
pub mod pages;
pub mod proxy;
pub mod route;
pub mod server;
pub mod splice;
pub mod table;
#[cfg(test)]
mod testing;
pub mod web;
