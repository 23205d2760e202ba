//! The driver side of the cell's QUIC driver gateway, for the simulator, the load generator
//! and tests: [`DriverClient`] speaks the protocol of [`schemas`] (a `Hello` on the control
//! stream, pings as datagrams, framed messages both ways) and [`Route`] moves a simulated driver
//! along plausible paths.
//!
//! ```no_run
//! # async fn demo() -> Result<(), driver_client::ClientError> {
//! use driver_client::{City, DriverClient, Route, Trust};
//!
//! let trust = Trust::ca_pem_file(".data/dev-certs/ca.pem")?;
//! let client = DriverClient::connect("127.0.0.1:4433".parse().unwrap(), "localhost", trust,
//!                                    "eyJ...", None).await?;
//! let mut route = Route::new(City::default(), 7);
//! route.advance(1.0);
//! client.send_ping(&route.ping(42, 1_700_000_000_000))?;
//! while let Some(msg) = client.next_message().await {
//!     println!("{msg:?}");
//! }
//! println!("closed: {:?}", client.close_reason());
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `client.rs`: [`DriverClient`], [`ConnectOptions`], shared [`client_endpoint`]s.
//! - `tls.rs`: [`Trust`] (a CA PEM or a pinned SHA-256 fingerprint) and the rustls/quinn
//!   client configuration.
//! - `route.rs`: [`City`], [`Route`]: straight segments between random waypoints.
//! - `bin/drivesim.rs` (+ `bin/drivesim/orders.rs`): the `drivesim` command, N simulated
//!   drivers carrying deliveries end to end (and optionally customers and restaurants), so a
//!   local city shows live deliveries: `cargo run -p driver-client --bin drivesim -- --help`.

mod client;
mod route;
mod tls;

pub use client::{ClientError, ConnectOptions, DriverClient, client_endpoint};
pub use route::{City, Route};
pub use tls::{Trust, client_config};

/// TLS application protocol of the driver gateway (the cell's `gateway::ALPN`).
pub const ALPN: &[u8] = b"delivery-driver/1";
