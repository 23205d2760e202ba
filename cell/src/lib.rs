//! A city cell: one process serving a region. The REST API (customers, restaurants), the
//! order flows with payments, the catalog, the QUIC driver gateway, matching, tracking and
//! notifications.
//!
//! # Layout
//! - `config`: the typed [`config::Config`], loaded once (embedded defaults, file, flags).
//! - `app`: [`app::App`], the shared state handlers use, and the [`app::Clock`] seam.
//! - `auth`: JWT bearer tokens and the [`auth::Principal`] they speak for.
//! - `orders`: key layout, the transactional repository, and [`orders::Orders`], the order
//!   flows: placement (replay, pricing, region check, payment, create) in `orders::place`,
//!   transitions (payment effects committed as pending) in `orders::transition`. HTTP only
//!   parses and maps errors; any other caller (a simulator) takes the same path.
//! - `limits`: `[limits]`, the per-user API request rate ([`limits::ApiLimiter`]) and the
//!   order placement limit's settings; admins exempt.
//! - `saga`: the payment worker that performs pending captures, voids and refunds, its retry
//!   schedule, the compensation of a failed capture, and the whole-store payment checker.
//! - `ownership`: [`ownership::Ownership`], the router's latest cell map: who owns a region.
//! - `http`: the REST API, its one error type, extractors, DTOs, ops endpoints, OpenAPI.
//! - `dispatch`: driver sessions, GPS pings into the geostore, matching (the sans-IO
//!   `dispatch::matching::machine`, fed by the async `dispatch::matching::task`), delivery
//!   progress. The QUIC gateway and REST call the same methods.
//! - `tracking`: the fan-out hub, ETA updates and the WebSocket endpoints.
//! - `events`: event-log consumers with durable or live cursors.
//! - `drain`: a draining cell finishing its own orders (drivers kept while needed, a
//!   deadline for orders no driver took) and the progress the router shows.
//! - `people`: profiles (display name, phone) of customers, drivers and restaurants.
//! - `earnings`: each delivery's payout, recorded at delivery; a driver's totals.
//! - `fraud`: the fraud scorer (a log consumer plus dispatch's signals), its rule table and the
//!   stored flags staff review.
//! - `reconcile`: periodic payment reconciliation against the provider, and the drift records.
//! - `lease`: [`lease::CellLease`], the cell's lease: one instance per cell id serves, others
//!   stand by; every write is fenced.
//! - `history`: location history (issue 20): each delivery's path recorded from the ping
//!   path, encrypted per day, purged after the retention, read by staff with an audited
//!   reason (the dispute view).
//! - `server`: startup (store, lease or standby, catalog, demo seed, payments, recovery) and
//!   serving.

pub mod app;
pub mod background;
pub use ::auth;
pub mod config;
pub mod dispatch;
pub mod drain;
pub mod earnings;
pub mod envelope;
pub mod events;
pub mod fraud;
pub mod gateway;
pub mod history;
pub mod http;
pub mod lease;
pub mod limits;
pub mod notify;
pub mod orders;
pub mod ownership;
pub mod people;
pub mod people_claims;
pub mod personal;
pub mod reconcile;
pub mod saga;
pub mod server;
#[cfg(test)]
pub(crate) mod test_app;
pub mod tracking;
