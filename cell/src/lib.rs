//! A city cell: one process serving a region. The REST API (customers, restaurants), the
//! order service with payments, the catalog, and (next) the QUIC driver gateway, matching,
//! tracking and notifications.
//!
//! # Layout
//! - `config`: the typed [`config::Config`], loaded once (embedded defaults, file, flags).
//! - `app`: [`app::App`], the shared state handlers use, and the [`app::Clock`] seam.
//! - `auth`: JWT bearer tokens and the [`auth::Principal`] they speak for.
//! - `orders`: key layout, the transactional repository, and the order service (payments
//!   around state-machine transitions).
//! - `http`: the REST API, its one error type, extractors, DTOs, ops endpoints, OpenAPI.
//! - `server`: startup (store, catalog, demo seed, payments) and serving.

pub mod app;
pub mod auth;
pub mod config;
pub mod http;
pub mod orders;
pub mod server;
