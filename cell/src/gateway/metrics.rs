//! Metric handles, resolved once per [`super::serve`] so the per-datagram path does no
//! registry lookup (the recorder is installed before the gateway starts serving).

use metrics::{Counter, Gauge, counter, gauge};
use schemas::{CloseReason, DriverBody};

use super::PingRejected;

pub(super) struct Metrics {
    pub connections: Gauge,
    /// Handshakes in flight (`cell_quic_handshakes`).
    pub handshakes: Gauge,
    pub dg_ok: Counter,
    pub dg_undecodable: Counter,
    pub dg_wrong_driver: Counter,
    dg_rejected: [Counter; 6],
    frames: [Counter; 6],
}

/// Why a connection ended, for `cell_quic_close_total{reason}`: ours are `CloseReason` names,
/// the rest describe what the peer or the network did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// We closed it with this code.
    Closed(CloseReason),
    /// The driver closed it (any application code).
    PeerClosed,
    /// Idle timeout: the driver vanished.
    TimedOut,
    /// Reset, transport error, or a failed handshake.
    Lost,
}

impl Ended {
    fn as_str(self) -> &'static str {
        match self {
            Self::Closed(r) => r.as_str(),
            Self::PeerClosed => "peer_closed",
            Self::TimedOut => "timed_out",
            Self::Lost => "lost",
        }
    }
}

const REJECTED: [PingRejected; 6] = [
    PingRejected::Invalid,
    PingRejected::FromFuture,
    PingRejected::Spoofed,
    PingRejected::Stale,
    PingRejected::RateLimited,
    PingRejected::WrongDriver,
];
const KINDS: [&str; 6] = [
    "hello",
    "location_ping",
    "status_change",
    "offer_response",
    "ack",
    "invalid",
];

impl Metrics {
    pub fn new() -> Self {
        let dg =
            |outcome: &'static str| counter!("cell_quic_datagrams_total", "outcome" => outcome);
        Self {
            connections: gauge!("cell_quic_connections"),
            handshakes: gauge!("cell_quic_handshakes"),
            dg_ok: dg("ok"),
            dg_undecodable: dg("undecodable"),
            dg_wrong_driver: dg("wrong_driver"),
            dg_rejected: REJECTED.map(|r| dg(r.as_str())),
            frames: KINDS.map(|k| counter!("cell_quic_frames_total", "kind" => k)),
        }
    }

    pub fn ping_rejected(&self, r: PingRejected) {
        let i = REJECTED.iter().position(|x| *x == r).unwrap_or(0);
        self.dg_rejected[i].increment(1);
    }

    /// Counts one control frame; `None` is an undecodable one.
    pub fn frame(&self, body: Option<&DriverBody>) {
        let i = match body {
            Some(DriverBody::Hello(_)) => 0,
            Some(DriverBody::LocationPing(_)) => 1,
            Some(DriverBody::StatusChange(_)) => 2,
            Some(DriverBody::OfferResponse(_)) => 3,
            Some(DriverBody::Ack(_)) => 4,
            None => 5,
        };
        self.frames[i].increment(1);
    }

    /// A new connection answered without a handshake: `retry` (address validation asked
    /// for) or `refused` (`max_handshakes` reached). Under a flood, one lookup per Initial
    /// is small next to the packet it answers.
    pub fn handshake(&self, outcome: &'static str) {
        counter!("cell_quic_handshakes_deferred_total", "outcome" => outcome).increment(1);
    }

    /// Rare (once per connection): a plain lookup is fine.
    pub fn ended(&self, e: Ended) {
        counter!("cell_quic_close_total", "reason" => e.as_str()).increment(1);
    }
}
