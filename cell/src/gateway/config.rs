//! [`QuicConfig`]: the gateway's settings, each with its unit in the name.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};

use super::GatewayError;

/// Most gateway threads: each holds a socket, a runtime and an endpoint, and past the cores a
/// box has more only add contention.
pub const MAX_GATEWAY_THREADS: usize = 256;

/// Settings of the QUIC driver gateway. Missing keys take the [`Default`] values; unknown keys
/// are errors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuicConfig {
    /// UDP address to bind; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// PEM certificate chain (leaf first). Empty, with `key_path` empty: dev mode.
    pub cert_path: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// Dev mode only: where the generated CA (`ca.pem`), leaf (`cert.pem`) and key (`key.pem`)
    /// are written, and reused from on the next start so clients keep trusting them.
    pub dev_cert_dir: PathBuf,
    /// TLS server name clients connect with. Dev mode puts it (and `localhost`, 127.0.0.1,
    /// ::1) in the generated certificate.
    pub server_name: String,
    /// Connections (including those still in the handshake) above which new ones are closed
    /// with `too_many_connections`. An idle connection costs about 30 KiB.
    pub max_connections: usize,
    /// Handshakes in flight above which a new connection from an address not yet validated
    /// gets a stateless Retry (RFC 9000 §8.1): it must echo a token from its own address
    /// before the server keeps any state, so spoofed or abandoned Initials cost nothing.
    /// Below it, drivers connect without the extra round trip.
    pub retry_above_handshakes: usize,
    /// Handshakes in flight at most; past it, new (validated) connections are refused.
    /// A half-open connection holds its TLS state and buffers until it fails or times out.
    pub max_handshakes: usize,
    /// Deadline from the end of the handshake to a complete `Hello` frame.
    pub hello_timeout_ms: u64,
    /// A connection with no packet from the peer for this long is dropped.
    pub idle_timeout_ms: u64,
    /// Server-sent keep-alive interval; 0 = off. Drivers ping (and the client library sends
    /// keep-alives), so the server need not spend a packet per connection per interval.
    pub keep_alive_ms: u64,
    /// Ping interval the cell asks for in `HelloAck`.
    pub ping_interval_ms: u32,
    /// Per-connection limit of received, not yet read datagram payload bytes (quinn's default
    /// is about 1.25 MB, which let a flood grow the server to gigabytes).
    pub datagram_recv_buffer_bytes: usize,
    /// SO_RCVBUF asked of the kernel for the UDP socket; a warning is logged when it grants
    /// less.
    pub socket_recv_buffer_bytes: usize,
    /// Largest control-stream frame body accepted; at most `schemas::MAX_CONTROL_MESSAGE_BYTES`.
    pub max_frame_bytes: usize,
    /// A write to a driver's control stream that cannot complete for this long (the driver
    /// stopped reading and its flow-control window is full) closes the connection with
    /// `slow_reader`, so a stuck driver holds no outbox, buffers or offer for longer.
    pub control_write_timeout_ms: u64,
    /// Gateway threads, each a single-threaded runtime with its own quinn endpoint on its own
    /// `SO_REUSEPORT` socket (Linux; elsewhere one); 0 = the cores available to the process
    /// (`available_parallelism`, which honours taskset and cgroup CPU limits). One thread per
    /// core: a connection's packets, its driver and its session tasks stay on one thread, so a
    /// datagram wakes tasks where it already is (see `README.md` beside this file).
    pub gateway_threads: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 4433)),
            cert_path: PathBuf::new(),
            key_path: PathBuf::new(),
            dev_cert_dir: PathBuf::from(".data/dev-certs"),
            server_name: "localhost".to_owned(),
            max_connections: 100_000,
            // A handshake takes about one round trip: 256 in flight is thousands of connects
            // per second, more than a city's drivers reconnecting after a restart; above it
            // a connect costs one more round trip.
            retry_above_handshakes: 256,
            // About 30 KiB each (an idle connection's figure), so some 60 MiB of half-open
            // connections at most, all from addresses that proved they are real.
            max_handshakes: 2_048,
            hello_timeout_ms: 5_000,
            idle_timeout_ms: 30_000,
            keep_alive_ms: 0,
            ping_interval_ms: 1_000,
            datagram_recv_buffer_bytes: 32 * 1024,
            socket_recv_buffer_bytes: 4 * 1024 * 1024,
            max_frame_bytes: schemas::MAX_CONTROL_MESSAGE_BYTES,
            control_write_timeout_ms: 10_000,
            gateway_threads: 0,
        }
    }
}

impl QuicConfig {
    /// Dev mode: no certificate configured, one is generated.
    pub fn dev_mode(&self) -> bool {
        self.cert_path.as_os_str().is_empty() && self.key_path.as_os_str().is_empty()
    }

    /// Gateway threads to run: `gateway_threads`, or with 0 the cores available to the
    /// process (at most [`MAX_GATEWAY_THREADS`]).
    pub fn threads(&self) -> usize {
        match self.gateway_threads {
            0 => std::thread::available_parallelism()
                .map_or(1, usize::from)
                .min(MAX_GATEWAY_THREADS),
            n => n,
        }
    }

    pub(crate) fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms)
    }

    pub(crate) fn control_write_timeout(&self) -> Duration {
        Duration::from_millis(self.control_write_timeout_ms)
    }

    /// Every unusable value of this section, as one [`GatewayError::Config`] (for [`bind`],
    /// which may be handed a config that did not go through the cell's validation).
    ///
    /// [`bind`]: super::bind
    pub fn check(&self) -> Result<(), GatewayError> {
        service::config::check("quic", self).map_err(|e| match e {
            service::config::ConfigError::Invalid(p) => {
                let list: Vec<String> = p.iter().map(ToString::to_string).collect();
                GatewayError::Config(list.join("; "))
            }
            other => GatewayError::Config(other.to_string()),
        })
    }
}

/// Rejects values the gateway cannot work with: every one, each under its own key.
impl Validate for QuicConfig {
    fn validate(&self, s: &mut Section<'_>) {
        let (cert_set, key_set) = (
            !self.cert_path.as_os_str().is_empty(),
            !self.key_path.as_os_str().is_empty(),
        );
        if cert_set != key_set {
            let (missing, other) = if cert_set {
                ("key_path", "cert_path")
            } else {
                ("cert_path", "key_path")
            };
            s.push(
                missing,
                format!("must be set together with {other}, or both left empty (dev mode)"),
            );
        }
        s.ensure(
            !self.server_name.is_empty() && self.server_name.len() <= 253,
            "server_name",
            || format!("must be 1..=253 bytes (got {})", self.server_name.len()),
        );
        s.ensure(self.max_connections > 0, "max_connections", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.max_handshakes > 0, "max_handshakes", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(
            self.retry_above_handshakes <= self.max_handshakes,
            "retry_above_handshakes",
            || {
                format!(
                    "must be at most max_handshakes = {} (got {}), or unvalidated clients \
                     would be refused before Retry is used",
                    self.max_handshakes, self.retry_above_handshakes
                )
            },
        );
        for (key, ms) in [
            ("hello_timeout_ms", self.hello_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("ping_interval_ms", u64::from(self.ping_interval_ms)),
            ("control_write_timeout_ms", self.control_write_timeout_ms),
        ] {
            s.ensure(ms > 0, key, || "must be greater than 0 (got 0)".to_owned());
        }
        s.ensure(
            self.keep_alive_ms == 0 || self.keep_alive_ms < self.idle_timeout_ms,
            "keep_alive_ms",
            || {
                format!(
                    "must be 0 (off) or below idle_timeout_ms = {} (got {})",
                    self.idle_timeout_ms, self.keep_alive_ms
                )
            },
        );
        // One datagram must fit, or every datagram is dropped.
        s.ensure(
            self.datagram_recv_buffer_bytes >= 1500,
            "datagram_recv_buffer_bytes",
            || {
                format!(
                    "must be at least 1500, one datagram (got {})",
                    self.datagram_recv_buffer_bytes
                )
            },
        );
        s.ensure(
            self.gateway_threads <= MAX_GATEWAY_THREADS,
            "gateway_threads",
            || {
                format!(
                    "must be in 0..={MAX_GATEWAY_THREADS}, 0 = one per available core (got {})",
                    self.gateway_threads
                )
            },
        );
        s.ensure(
            (64..=schemas::MAX_CONTROL_MESSAGE_BYTES).contains(&self.max_frame_bytes),
            "max_frame_bytes",
            || {
                format!(
                    "must be in 64..={} (got {})",
                    schemas::MAX_CONTROL_MESSAGE_BYTES,
                    self.max_frame_bytes
                )
            },
        );
    }
}
