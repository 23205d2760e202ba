//! The QUIC driver gateway: drivers' apps connect here (quinn + rustls, TLS 1.3, ALPN
//! [`ALPN`]), authenticate with a `Hello` on their control stream, send location pings as
//! datagrams and exchange control messages ([`schemas`]) with the cell.
//!
//! The gateway does transport only: verified decoding, deadlines, limits, close codes and
//! metrics. Decisions are the [`DriverPort`]'s (the cell's dispatch).
//!
//! # Connection lifecycle
//! 1. Accept, unless `max_connections` are open (handshaking ones included): then the handshake
//!    completes and the connection is closed with `too_many_connections` (a code needs an
//!    established connection), or, past a small number of such rejections in flight, is refused
//!    outright so a connection flood cannot buy handshakes.
//! 2. The first frame on the first bidirectional stream must be a `Hello` within
//!    `hello_timeout_ms` (`hello_timeout`), of [`schemas::PROTOCOL_VERSION`]
//!    (`version_unsupported`), whose token [`DriverPort::authenticate`] accepts (`bad_token`).
//! 3. [`DriverPort::connected`], then `HelloAck` (seq 1, pings as datagrams).
//! 4. Three loops (datagrams in a task of their own, the other two sharing the connection's
//!    task): datagrams -> the session's [`PingSink`]; control frames -> [`DriverPort::status`]/[`DriverPort::respond`], answered with `Ack` or
//!    `ErrorMsg`; the session outbox and those answers -> framed `CellMsg`s, seq increasing.
//!    The first loop to end decides the close. A protocol violation (undecodable frame, second
//!    `Hello`, a ping for another driver) closes with `protocol_violation`; an undecodable
//!    datagram is only dropped and counted.
//! 5. [`DriverPort::disconnected`], exactly once, however the connection ended.
//!
//! # Threads
//! [`bind`] binds one UDP socket per gateway thread (`gateway_threads`, default: the cores
//! available to the process), all on the same address with `SO_REUSEPORT`; the kernel hashes
//! each client's address and port to one socket. [`spawn`] runs one single-threaded runtime
//! with its own quinn endpoint per socket, so a connection, its datagram wake-ups and its
//! session tasks stay on one thread, while the threads share one `quinn::ServerConfig` (Retry
//! tokens), one `quinn::EndpointConfig` (stateless-reset key), the caps, counters and metrics,
//! and the [`DriverPort`]. The server refuses connection migration: a client whose address
//! changes may hash to another thread, which does not know its connection (README, Threads).
//!
//! # Metrics
//! `cell_quic_connections` (gauge), `cell_quic_datagrams_total{outcome}`,
//! `cell_quic_frames_total{kind}`, `cell_quic_close_total{reason}`.
//!
//! # Layout
//! - `config.rs`: [`QuicConfig`].
//! - `port.rs`: [`DriverPort`], [`Session`], [`PingRejected`].
//! - `tls.rs`: certificate loading, dev-mode CA and leaf, fingerprint.
//! - `socket.rs`: the UDP sockets (SO_REUSEPORT, SO_RCVBUF).
//! - `endpoint.rs`: transport limits, [`bind`], [`spawn`], [`serve`], the accept loop.
//! - `conn.rs`: one connection, from handshake to `disconnected`.
//! - `frames.rs`: control-stream frame reader and writer; `metrics.rs`: metric handles.
//!
//! See `README.md` beside this file for dev-mode trust and the datagram-vs-stream figures.

mod config;
mod conn;
mod endpoint;
mod frames;
mod metrics;
mod port;
mod socket;
mod tls;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub use config::QuicConfig;
pub use endpoint::{bind, serve, spawn};
pub use port::{Authenticated, DriverPort, PingRejected, PingSink, Session};
pub use tls::fingerprint;

/// TLS application protocol of the driver gateway.
pub const ALPN: &[u8] = b"delivery-driver/1";

/// Errors starting the gateway. Per-connection problems are never errors here: they close that
/// connection with a [`schemas::CloseReason`].
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("invalid QUIC gateway config: {0}")]
    Config(String),
    #[error("QUIC gateway certificate: {0}")]
    Cert(String),
    #[error("QUIC gateway TLS setup: {0}")]
    Tls(rustls::Error),
    #[error("QUIC gateway I/O ({0}): {1}")]
    Io(String, #[source] std::io::Error),
}

/// A bound, not yet serving gateway. Pass it to [`spawn`] (or [`serve`]).
pub struct Gateway {
    /// The bound sockets, one per gateway thread, and the settings all their endpoints share;
    /// each endpoint is made by [`spawn`] or [`serve`] on the runtime that serves it (quinn
    /// spawns its drivers on the runtime current at creation).
    sockets: Vec<std::net::UdpSocket>,
    server: quinn::ServerConfig,
    endpoint: quinn::EndpointConfig,
    cfg: QuicConfig,
    local_addr: SocketAddr,
    ca_pem_path: Option<PathBuf>,
    fingerprint: String,
    socket_recv_buffer_bytes: usize,
}

impl Gateway {
    /// The bound UDP address (the real port when `listen_addr` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Gateway threads [`spawn`] will run: one per bound socket.
    pub fn threads(&self) -> usize {
        self.sockets.len()
    }

    /// TLS server name clients must connect with.
    pub fn server_name(&self) -> &str {
        &self.cfg.server_name
    }

    /// Dev mode: the generated CA certificate (PEM) clients should trust. `None` with a
    /// configured certificate.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.ca_pem_path.as_deref()
    }

    /// SHA-256 fingerprint of the leaf certificate the gateway presents (`AB:CD:…`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// SO_RCVBUF as the kernel reports it (Linux: twice the usable size).
    pub fn socket_recv_buffer_bytes(&self) -> usize {
        self.socket_recv_buffer_bytes
    }

    /// The settings it was bound with.
    pub fn config(&self) -> &QuicConfig {
        &self.cfg
    }
}
