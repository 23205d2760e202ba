//! QUIC scenarios: `pings`, `record`, `replay` ([`pings`]) and `track` ([`track`]).
//!
//! Each simulated driver authenticates like a real one: a driver token (from the demo
//! cell's dev endpoint or minted with the secret, `sub` = the driver id), a QUIC connection
//! to the cell's gateway, `Hello` → `HelloAck` on the control stream, then pings as
//! datagrams ([`driver_client::DriverClient`]). By default every driver has its own
//! connection *and* UDP socket (its own client endpoint), as phones would. With
//! `--share-sockets K` the connections are spread over K client endpoints (K UDP sockets),
//! so one box can open more connections than it has sockets or endpoint tasks for; the cell
//! still sees one QUIC connection per driver.
//!
//! - [`fleet`]: target flags, trust, tokens and connecting the drivers.
//! - [`pings`]: the paced senders, the trace source, the report.
//! - [`ping_run`]: one ping run end to end (also a phase of `city`).
//! - [`find_max`]: `pings --find-max`, the rate stepped up on one fleet until it stops holding.
//! - [`loss`]: server-side counters and the loss math.
//! - [`seen`]: per-driver loss from the cell's admin counters.
//! - [`trace`]: the trace file format.
//! - [`track`]: orders, drivers accepting offers, WebSocket trackers, ping → push latency.
//! - [`trackers`]: many trackers held on a few orders, spread over local source addresses:
//!   memory per connection, drops, push latency at scale.

pub mod find_max;
pub mod fleet;
pub mod loss;
pub mod ping_run;
pub mod pings;
pub mod seen;
pub mod trace;
pub mod track;
pub mod trackers;

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall clock, Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Wall clock, Unix microseconds.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
