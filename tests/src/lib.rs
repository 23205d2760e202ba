//! Cross-process integration tests: they start the real `cell` binary (built with
//! `cargo build -p cell`), talk to it over HTTP like a client would, and kill it with
//! SIGKILL to check durability.
//!
//! Each process gets its own temp dir and log file, kept (and named on stderr) when a test
//! fails; readiness is the `READY {json}` line the cell prints once it serves, so there are
//! no sleeps and no port races (`--listen 127.0.0.1:0`).
//!
//! # Layout
//! - `harness`: [`harness::Cell`]: find the binary (`CELL_BIN` or next to the test
//!   executable), start, wait for `READY`, `kill9`, `restart`, one shared cell per binary.
//! - `client`: a blocking HTTP client, [`client::Resp`] and the error-shape assertion.
//! - `fixtures`: open restaurants, valid carts from real menus, order short-hands.
//! - `live`: QUIC drivers (`driver-client`) and WebSocket trackers for the real-time tests,
//!   driven from synchronous tests through a tokio runtime.
//! - `tests/api_flow.rs`: the customer/restaurant flow, payments, the state machine over
//!   HTTP, durability across SIGKILL.
//! - `tests/api_errors.rs`: every documented error status and its JSON shape.
//! - `tests/api_authz.rs`: the authorization matrix over every endpoint of the OpenAPI doc.
//! - `smallfs`: [`smallfs::SmallFs`], a tmpfs mounted for one test and a ballast that fills
//!   it; `tests/disk_full.rs` runs a cell on it until writes fail.
//! - `tests/ids.rs`: a cell restarted with its clock set back never reissues an order id.
//! - `router`: [`router::Router`], a real `router` process, with admin helpers.
//! - `tests/router.rs`: two cities through the router, a region moving while orders flow,
//!   a drain, a killed cell answered with 503 and recovering, a follower router.
//! - `tests/realtime.rs`: a complete delivery over QUIC + WebSocket, racing accepts (the
//!   timing scenarios run on virtual time in `cell/src/dispatch/matching/scenario_tests.rs`).
//! - `tests/loadgen.rs`: every `loadgen` scenario for a few seconds against real cells
//!   (needs the `loadgen` binary too), reports and exit statuses checked.
//! - `attack`: raw HTTP and WebSocket frames over TCP, bare QUIC Initials, a process's RSS;
//!   `tests/edge_limits.rs` attacks the edge limits with them (slow headers, the connection
//!   cap, WebSocket protocol violations, a flood of incomplete QUIC handshakes).
//! - `architecture`: rules over the source tree read as text (pure libraries stay pure, only
//!   edge files read the clock, every file has a module comment); `tests/architecture.rs`
//!   runs them over this repository and over planted violations.

pub mod architecture;
pub mod attack;
pub mod client;
pub mod fixtures;
pub mod harness;
pub mod live;
pub mod router;
pub mod smallfs;

pub use client::{Resp, assert_error_shape};
pub use harness::{Cell, CellOpts, SHARED_CONFIG};
