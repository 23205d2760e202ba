//! Load generator for the delivery platform: drives a cell (or the router) at a target
//! rate with open-loop pacing and reports latency and errors per operation.
//!
//! Latency is measured from each request's *intended* send time, fixed in advance by the
//! target rate, so a server stall shows up in the latency of every request it delayed
//! (no coordinated omission). Results go into HDR histograms per operation; the report
//! is a one-screen table, a JSON file, a self-contained HTML page with plots over time,
//! and an exit status for `--slo` objectives.
//!
//! # Layout
//!
//! - [`pacing`]: the open-loop schedule (intended send times, linear ramp-up, flat or
//!   dinner-rush profile) and duration parsing.
//! - [`driver`]: the dispatcher thread, in-flight cap, drain, live progress line and the
//!   per-second timeline; protocol-agnostic.
//! - [`scenarios`]: the [`scenarios::Scenario`] trait and the HTTP scenarios `search`,
//!   `menu`, `browse`, `orders` and the browse/order mix of `city`, with their shared
//!   context, warm-up pool and carts.
//! - [`quic`]: the QUIC scenarios `pings`, `record`, `replay` (drivers pinging at a target
//!   rate, loss from the cell's counters, per driver where the cell counts it, the trace
//!   format) and `track` (WebSocket trackers on live orders, ping → push latency).
//! - [`city`]: the HTTP mix, pings and trackers at once, one combined report.
//! - [`http`]: the pooled keep-alive client and self-recording requests.
//! - [`auth`]: tokens from the demo cell's dev endpoint or minted with the HS256 secret.
//! - [`report`]: recorder and stats ([`report::stats`]), SLOs ([`report::slo`]), the
//!   target's Prometheus deltas ([`report::metrics`]), machine and CPU facts
//!   ([`report::machine`]), the summary table ([`report::summary`]), the HTML page
//!   ([`report::html`]) and the outputs every scenario shares ([`report::output`]).
//! - [`run`]: one run end to end, used by the `loadgen` binary (`src/main.rs`).

pub mod auth;
pub mod city;
pub mod driver;
pub mod http;
pub mod pacing;
pub mod quic;
pub mod report;
pub mod run;
pub mod scenarios;
