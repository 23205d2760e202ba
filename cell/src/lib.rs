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
//! - `saga`: the payment worker that performs pending captures, voids and refunds, its retry
//!   schedule, the compensation of a failed capture, and the whole-store payment checker.
//! - `ownership`: [`ownership::Ownership`], the router's latest cell map: who owns a region.
//! - `http`: the REST API, its one error type, extractors, DTOs, ops endpoints, OpenAPI.
//! - `dispatch`: driver sessions, GPS pings into the geostore, matching (the sans-IO
//!   `dispatch::matching::machine`, fed by the async `dispatch::matching::task`), delivery
//!   progress. The QUIC gateway and REST call the same methods.
//! - `tracking`: the fan-out hub, ETA updates and the WebSocket endpoints.
//! - `events`: event-log consumers with durable or live cursors.
//! - `lease`: [`lease::CellLease`], the cell's lease: one instance per cell id serves, others
//!   stand by; every write is fenced.
//! - `server`: startup (store, lease or standby, catalog, demo seed, payments, recovery) and
//!   serving.

pub mod app;
pub use ::auth;
pub mod config;
pub mod dispatch;
pub mod events;
pub mod gateway;
pub mod http;
pub mod lease;
pub mod notify;
pub mod orders;
pub mod ownership;
pub mod saga;
pub mod server;
pub mod tracking;
