//! A city cell: one process serving a region. REST API, order service, payments, catalog,
//! and (next) the QUIC driver gateway, matching, tracking and notifications.
//!
//! # Layout
//! - `orders`: order key layout, the transactional repository and the order service.

pub mod orders;
