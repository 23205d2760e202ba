//! Cell -> driver messages and their envelope, [`CellMsg`].

use std::net::SocketAddr;

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::Ack;
use crate::check;
use crate::enums::{CancelReason, CancelScope, CloseReason, HandoverReason, PingTransport};
use crate::envelope::envelope;
use crate::error::Result;
use crate::fb;
use crate::limits::{
    MAX_ADDRESS_BYTES, MAX_ERROR_MESSAGE_BYTES, MAX_PLACE_NAME_BYTES, MAX_SERVER_NAME_BYTES,
    MAX_SOCKET_ADDR_BYTES,
};

/// Answer to `Hello`: the session is open.
///
/// Decoding checks: `session_id != 0`, `ping_interval_ms != 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HelloAck {
    /// Session id to quote in `Hello.resume_session_id` when reconnecting.
    pub session_id: u64,
    /// Cell clock, Unix milliseconds (lets the app estimate its clock offset).
    pub server_time_ms: u64,
    /// How often to send location pings while online.
    pub ping_interval_ms: u32,
    /// Datagrams or the control stream for pings.
    pub ping_transport: PingTransport,
    /// Whether `Hello.resume_session_id` was honoured.
    pub resumed: bool,
}

impl HelloAck {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::id("HelloAck.session_id", self.session_id)?;
        if self.ping_interval_ms == 0 {
            return Err(check::invalid(
                "HelloAck.ping_interval_ms",
                "must be non-zero",
            ));
        }
        Ok(())
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::HelloAck<'f>> {
        fb::HelloAck::create(
            fbb,
            &fb::HelloAckArgs {
                session_id: self.session_id,
                server_time_ms: self.server_time_ms,
                ping_interval_ms: self.ping_interval_ms,
                ping_transport: self.ping_transport.to_fb(),
                resumed: self.resumed,
            },
        )
    }

    fn read(t: fb::HelloAck<'_>) -> Result<Self> {
        let ack = Self {
            session_id: t.session_id(),
            server_time_ms: t.server_time_ms(),
            ping_interval_ms: t.ping_interval_ms(),
            ping_transport: PingTransport::from_fb(t.ping_transport())?,
            resumed: t.resumed(),
        };
        ack.validate()?;
        Ok(ack)
    }
}

/// A pickup or dropoff location.
///
/// Decoding checks: coordinates in range, `name` at most [`crate::limits::MAX_PLACE_NAME_BYTES`]
/// (empty = absent on the wire), `address` 1..=[`crate::limits::MAX_ADDRESS_BYTES`].
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lng: f64,
    /// Restaurant name for a pickup; usually empty for a dropoff.
    pub name: String,
    /// Street address.
    pub address: String,
}

impl Place {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::lat("Place.lat", self.lat)?;
        check::lng("Place.lng", self.lng)?;
        check::length("Place.name", &self.name, 0, MAX_PLACE_NAME_BYTES)?;
        check::length("Place.address", &self.address, 1, MAX_ADDRESS_BYTES)
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Place<'f>> {
        let name = (!self.name.is_empty()).then(|| fbb.create_string(&self.name));
        let address = fbb.create_string(&self.address);
        fb::Place::create(
            fbb,
            &fb::PlaceArgs {
                lat: self.lat,
                lng: self.lng,
                name,
                address: Some(address),
            },
        )
    }

    fn read(t: fb::Place<'_>) -> Result<Self> {
        let place = Self {
            lat: t.lat(),
            lng: t.lng(),
            name: t.name().unwrap_or_default().to_owned(),
            address: t.address().to_owned(),
        };
        place.validate()?;
        Ok(place)
    }
}

/// A delivery offered to the driver, to accept or decline with an `OfferResponse`.
///
/// Decoding checks: ids non-zero, both places valid, `payout_cents >= 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    /// Cell-assigned, increasing per driver.
    pub offer_id: u64,
    /// The delivery offered.
    pub delivery_id: u64,
    /// The order it belongs to.
    pub order_id: u64,
    /// Where to collect the food.
    pub pickup: Place,
    /// Where to bring it.
    pub dropoff: Place,
    /// What the driver earns, in cents.
    pub payout_cents: i64,
    /// When the offer lapses, Unix milliseconds (cell clock).
    pub expires_at_ms: u64,
}

impl Offer {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::id("Offer.offer_id", self.offer_id)?;
        check::id("Offer.delivery_id", self.delivery_id)?;
        check::id("Offer.order_id", self.order_id)?;
        self.pickup.validate()?;
        self.dropoff.validate()?;
        if self.payout_cents < 0 {
            return Err(check::invalid("Offer.payout_cents", "must be >= 0"));
        }
        Ok(())
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Offer<'f>> {
        let pickup = self.pickup.write(fbb);
        let dropoff = self.dropoff.write(fbb);
        fb::Offer::create(
            fbb,
            &fb::OfferArgs {
                offer_id: self.offer_id,
                delivery_id: self.delivery_id,
                order_id: self.order_id,
                pickup: Some(pickup),
                dropoff: Some(dropoff),
                payout_cents: self.payout_cents,
                expires_at_ms: self.expires_at_ms,
            },
        )
    }

    fn read(t: fb::Offer<'_>) -> Result<Self> {
        let offer = Self {
            offer_id: t.offer_id(),
            delivery_id: t.delivery_id(),
            order_id: t.order_id(),
            pickup: Place::read(t.pickup())?,
            dropoff: Place::read(t.dropoff())?,
            payout_cents: t.payout_cents(),
            expires_at_ms: t.expires_at_ms(),
        };
        offer.validate()?;
        Ok(offer)
    }
}

/// The delivery is assigned to the driver (confirms an accepted offer).
///
/// Decoding checks: ids non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Assignment {
    /// The accepted offer.
    pub offer_id: u64,
    /// The delivery now assigned.
    pub delivery_id: u64,
    /// Its order.
    pub order_id: u64,
}

impl Assignment {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::id("Assignment.offer_id", self.offer_id)?;
        check::id("Assignment.delivery_id", self.delivery_id)?;
        check::id("Assignment.order_id", self.order_id)
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Assignment<'f>> {
        fb::Assignment::create(
            fbb,
            &fb::AssignmentArgs {
                offer_id: self.offer_id,
                delivery_id: self.delivery_id,
                order_id: self.order_id,
            },
        )
    }

    fn read(t: fb::Assignment<'_>) -> Result<Self> {
        let assignment = Self {
            offer_id: t.offer_id(),
            delivery_id: t.delivery_id(),
            order_id: t.order_id(),
        };
        assignment.validate()?;
        Ok(assignment)
    }
}

/// What a [`Cancellation`] cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelTarget {
    /// An offer not (yet) accepted is withdrawn.
    Offer {
        /// The withdrawn offer.
        offer_id: u64,
        /// Its delivery.
        delivery_id: u64,
    },
    /// An assigned delivery is cancelled.
    Delivery {
        /// The cancelled delivery.
        delivery_id: u64,
    },
}

/// The cell withdraws an offer or cancels an assigned delivery.
///
/// Decoding checks: ids non-zero; `offer_id` present for an offer, absent for a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cancellation {
    /// Offer or delivery.
    pub target: CancelTarget,
    /// Why.
    pub reason: CancelReason,
}

impl Cancellation {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        match self.target {
            CancelTarget::Offer {
                offer_id,
                delivery_id,
            } => {
                check::id("Cancellation.offer_id", offer_id)?;
                check::id("Cancellation.delivery_id", delivery_id)
            }
            CancelTarget::Delivery { delivery_id } => {
                check::id("Cancellation.delivery_id", delivery_id)
            }
        }
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Cancellation<'f>> {
        let (scope, offer_id, delivery_id) = match self.target {
            CancelTarget::Offer {
                offer_id,
                delivery_id,
            } => (CancelScope::Offer, Some(offer_id), delivery_id),
            CancelTarget::Delivery { delivery_id } => (CancelScope::Delivery, None, delivery_id),
        };
        fb::Cancellation::create(
            fbb,
            &fb::CancellationArgs {
                scope: scope.to_fb(),
                delivery_id,
                offer_id,
                reason: self.reason.to_fb(),
            },
        )
    }

    fn read(t: fb::Cancellation<'_>) -> Result<Self> {
        const FIELD: &str = "Cancellation.offer_id";
        let delivery_id = t.delivery_id();
        let target = match (CancelScope::from_fb(t.scope())?, t.offer_id()) {
            (CancelScope::Offer, Some(offer_id)) => CancelTarget::Offer {
                offer_id,
                delivery_id,
            },
            (CancelScope::Offer, None) => {
                return Err(check::invalid(FIELD, "required when scope is Offer"));
            }
            (CancelScope::Delivery, None) => CancelTarget::Delivery { delivery_id },
            (CancelScope::Delivery, Some(_)) => {
                return Err(check::invalid(
                    FIELD,
                    "must be absent when scope is Delivery",
                ));
            }
        };
        let cancellation = Self {
            target,
            reason: CancelReason::from_fb(t.reason())?,
        };
        cancellation.validate()?;
        Ok(cancellation)
    }
}

/// Reconnect to another cell; this connection closes with [`CloseReason::Handover`] soon after.
///
/// Decoding checks: `addr` parses as `ip:port`, `server_name`
/// 1..=[`crate::limits::MAX_SERVER_NAME_BYTES`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Handover {
    /// The new cell's QUIC endpoint.
    pub addr: SocketAddr,
    /// TLS server name to verify on the new connection.
    pub server_name: String,
    /// Why.
    pub reason: HandoverReason,
}

impl Handover {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::length(
            "Handover.server_name",
            &self.server_name,
            1,
            MAX_SERVER_NAME_BYTES,
        )
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Handover<'f>> {
        let addr = fbb.create_string(&self.addr.to_string());
        let server_name = fbb.create_string(&self.server_name);
        fb::Handover::create(
            fbb,
            &fb::HandoverArgs {
                addr: Some(addr),
                server_name: Some(server_name),
                reason: self.reason.to_fb(),
            },
        )
    }

    fn read(t: fb::Handover<'_>) -> Result<Self> {
        check::length("Handover.addr", t.addr(), 1, MAX_SOCKET_ADDR_BYTES)?;
        let addr = t
            .addr()
            .parse()
            .map_err(|_| check::invalid("Handover.addr", "must be ip:port"))?;
        let handover = Self {
            addr,
            server_name: t.server_name().to_owned(),
            reason: HandoverReason::from_fb(t.reason())?,
        };
        handover.validate()?;
        Ok(handover)
    }
}

/// A request failed (codes `100..`), or the connection is about to close (codes `0..=99`;
/// the QUIC close then carries the same code).
///
/// Decoding checks: `message` at most [`crate::limits::MAX_ERROR_MESSAGE_BYTES`] (empty = absent).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ErrorMsg {
    /// What went wrong.
    pub code: CloseReason,
    /// `seq` of the driver message this answers, if any.
    pub ref_seq: Option<u64>,
    /// Detail for logs; never parsed.
    pub message: String,
}

impl ErrorMsg {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::length("Error.message", &self.message, 0, MAX_ERROR_MESSAGE_BYTES)
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Error<'f>> {
        let message = (!self.message.is_empty()).then(|| fbb.create_string(&self.message));
        fb::Error::create(
            fbb,
            &fb::ErrorArgs {
                code: self.code.to_fb(),
                ref_seq: self.ref_seq,
                message,
            },
        )
    }

    fn read(t: fb::Error<'_>) -> Result<Self> {
        let error = Self {
            code: CloseReason::from_fb(t.code())?,
            ref_seq: t.ref_seq(),
            message: t.message().unwrap_or_default().to_owned(),
        };
        error.validate()?;
        Ok(error)
    }
}

/// The grace after a delivery ended is over: the app forgets the customer's address, notes
/// and name.
///
/// Decoding checks: ids non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressRevoked {
    /// The delivery whose address is revoked.
    pub delivery_id: u64,
    /// Its order.
    pub order_id: u64,
}

impl AddressRevoked {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::id("AddressRevoked.delivery_id", self.delivery_id)?;
        check::id("AddressRevoked.order_id", self.order_id)
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::AddressRevoked<'f>> {
        fb::AddressRevoked::create(
            fbb,
            &fb::AddressRevokedArgs {
                delivery_id: self.delivery_id,
                order_id: self.order_id,
            },
        )
    }

    fn read(t: fb::AddressRevoked<'_>) -> Result<Self> {
        let r = Self {
            delivery_id: t.delivery_id(),
            order_id: t.order_id(),
        };
        r.validate()?;
        Ok(r)
    }
}

envelope! {
    /// Any cell -> driver control-stream message.
    pub enum CellBody: fb::CellBody {
        /// Session open.
        HelloAck = HelloAck via body_as_hello_ack,
        /// A delivery offer.
        Offer = Offer via body_as_offer,
        /// Assignment confirmed.
        Assignment = Assignment via body_as_assignment,
        /// Offer withdrawn or delivery cancelled.
        Cancellation = Cancellation via body_as_cancellation,
        /// Reconnect elsewhere.
        Handover = Handover via body_as_handover,
        /// Acknowledges a driver message.
        Ack = Ack via body_as_ack,
        /// A request failed, or the connection is closing.
        ErrorMsg = Error via body_as_error,
        /// The customer's address is no longer the driver's to see.
        AddressRevoked = AddressRevoked via body_as_address_revoked,
    }
    /// Envelope of every cell -> driver control-stream message.
    pub struct CellMsg: fb::CellMessage, fb::CellMessageArgs, capacity 512 {
        /// The cell's per-connection message number, echoed by the driver's `Ack`.
        seq
    }
}
