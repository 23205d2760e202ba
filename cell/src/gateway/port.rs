//! [`DriverPort`]: what the gateway needs from the rest of the cell.
//!
//! The gateway owns transport concerns only (QUIC, framing, verified decoding, deadlines,
//! close codes); every decision about drivers, offers and deliveries is behind this trait. The
//! cell's dispatch implements it, and the REST driver endpoints call the same dispatch, so a
//! driver behaves the same whichever way it talks to the cell.

use futures::future::BoxFuture;
use schemas::{CellBody, CloseReason, LocationPing, OfferResponse, StatusChange};
use tokio::sync::mpsc;

/// The cell side of driver sessions. Methods are called from the gateway's connection tasks,
/// concurrently for different drivers; the synchronous ones are on the hot path (one `ping`
/// per datagram) and must not block.
pub trait DriverPort: Send + Sync + 'static {
    /// Verifies the hello token; returns the driver and how long the token stays valid (the
    /// session is closed with [`CloseReason::TokenExpired`] then), or a close reason.
    fn authenticate(&self, token: &str) -> Result<Authenticated, CloseReason>;

    /// A driver's session opened; returns the session id and its outbox. `resume` is the
    /// hello's resume session id.
    ///
    /// Dropping the outbox's sender ends the connection with
    /// [`CloseReason::Superseded`] (the dispatch does so when the same driver connects again).
    fn connected(&self, driver: domain::DriverId, resume: Option<u64>) -> Session;

    /// The session's connection ended, for whatever reason. Called exactly once per
    /// [`DriverPort::connected`].
    fn disconnected(&self, driver: domain::DriverId, session: u64);

    /// A status change. `Err` with a code >= 100 is answered with an `ErrorMsg`; a code < 100
    /// closes the connection with it.
    fn status(
        &self,
        driver: domain::DriverId,
        change: StatusChange,
    ) -> BoxFuture<'_, Result<(), CloseReason>>;

    /// An answer to an offer; errors as for [`DriverPort::status`].
    fn respond(
        &self,
        driver: domain::DriverId,
        resp: OfferResponse,
    ) -> BoxFuture<'_, Result<(), CloseReason>>;
}

/// A driver whose hello token verified, as [`DriverPort::authenticate`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    pub driver: domain::DriverId,
    /// Time left on the token: the session ends when it runs out, and the driver reconnects
    /// with a fresh token.
    pub valid_for: std::time::Duration,
}

/// An open driver session, as [`DriverPort::connected`] returns it.
pub struct Session {
    /// Non-zero; sent in `HelloAck.session_id` and quoted by the driver to resume.
    pub id: u64,
    /// Messages for the driver. The gateway writes each as a framed `CellMsg`, in order.
    /// A `Handover`, or an `ErrorMsg` whose code closes connections, is written and then the
    /// connection is closed with that code.
    pub outbox: mpsc::Receiver<CellBody>,
    /// Whether `resume` was honoured (sent in `HelloAck.resumed`).
    pub resumed: bool,
    /// Takes the session's pings (datagrams, or pings on the control stream).
    pub pings: Box<dyn PingSink>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("resumed", &self.resumed)
            .finish_non_exhaustive()
    }
}

/// Where a session's pings go. One per session, so the port can keep per-driver and
/// per-session state (counters, sequence numbers, rate limits) where the hot path reaches it
/// without a lookup.
pub trait PingSink: Send + Sync + 'static {
    /// One verified ping (the gateway checked its `driver_id` is the session's); `Err` is
    /// counted in metrics, not sent back (datagrams have no answer). Must not block.
    fn ping(&self, ping: &LocationPing) -> Result<(), PingRejected>;
}

/// Why the cell refused a ping. Counted per kind in `cell_quic_datagrams_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PingRejected {
    /// Fails a check the decoder cannot make (e.g. outside the cell's area, stale).
    Invalid,
    /// The client timestamp is ahead of the cell's clock by more than the allowed skew.
    FromFuture,
    /// Implausible speed between consecutive pings: likely GPS spoofing.
    Spoofed,
    /// Its sequence number is not above one already seen in the session (reordered or
    /// duplicated datagram): dropped.
    Stale,
    /// Over the driver's ping rate limit: dropped.
    RateLimited,
    /// For another driver than the session's (REST callers; the gateway checks this itself
    /// and closes the connection).
    WrongDriver,
}

impl PingRejected {
    /// Snake-case name for metrics labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invalid => "invalid",
            Self::FromFuture => "from_future",
            Self::Spoofed => "spoofed",
            Self::Stale => "stale",
            Self::RateLimited => "rate_limited",
            Self::WrongDriver => "wrong_driver",
        }
    }
}

impl std::fmt::Display for PingRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
