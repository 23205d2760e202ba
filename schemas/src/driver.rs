//! Driver -> cell messages and their envelope, [`DriverMsg`].

use flatbuffers::{FlatBufferBuilder, UnionWIPOffset, WIPOffset};

use crate::check;
use crate::codec::{into_body, member, unknown_member, verified_root};
use crate::enums::{OfferDecision, StatusKind};
use crate::error::Result;
use crate::fb;
use crate::limits::{
    MAX_APP_VERSION_BYTES, MAX_CONTROL_MESSAGE_BYTES, MAX_TOKEN_BYTES, control_verifier_options,
};
use crate::{Ack, LocationPing, frame};

/// First message on the control stream: authenticate and maybe resume a session.
///
/// Decoding checks: `token` 1..=[`crate::limits::MAX_TOKEN_BYTES`] bytes, `app_version`
/// 1..=[`crate::limits::MAX_APP_VERSION_BYTES`], optional ids non-zero. The token's signature and the
/// protocol version are for the gateway to judge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Hello {
    /// Protocol version the app speaks ([`crate::PROTOCOL_VERSION`] for this build).
    pub protocol_version: u16,
    /// JWT bearer token.
    pub token: String,
    /// App version, e.g. `"ios/5.12.0"`.
    pub app_version: String,
    /// Session to resume (a `HelloAck.session_id` from an earlier connection).
    pub resume_session_id: Option<u64>,
    /// Highest `Offer.offer_id` the driver has seen.
    pub last_offer_id: Option<u64>,
}

impl Hello {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::length("Hello.token", &self.token, 1, MAX_TOKEN_BYTES)?;
        check::length(
            "Hello.app_version",
            &self.app_version,
            1,
            MAX_APP_VERSION_BYTES,
        )?;
        check::opt_id("Hello.resume_session_id", self.resume_session_id)?;
        check::opt_id("Hello.last_offer_id", self.last_offer_id)
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Hello<'f>> {
        let token = fbb.create_string(&self.token);
        let app_version = fbb.create_string(&self.app_version);
        fb::Hello::create(
            fbb,
            &fb::HelloArgs {
                protocol_version: self.protocol_version,
                token: Some(token),
                app_version: Some(app_version),
                resume_session_id: self.resume_session_id,
                last_offer_id: self.last_offer_id,
            },
        )
    }

    fn read(t: fb::Hello<'_>) -> Result<Self> {
        let hello = Self {
            protocol_version: t.protocol_version(),
            token: t.token().to_owned(),
            app_version: t.app_version().to_owned(),
            resume_session_id: t.resume_session_id(),
            last_offer_id: t.last_offer_id(),
        };
        hello.validate()?;
        Ok(hello)
    }
}

/// A driver status, with the delivery it concerns where there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DriverStatus {
    /// Available for offers.
    Online,
    /// Not available.
    Offline,
    /// At the restaurant for this delivery.
    ArrivedAtRestaurant {
        /// The delivery.
        delivery_id: u64,
    },
    /// Has the food.
    PickedUp {
        /// The delivery.
        delivery_id: u64,
    },
    /// Handed it to the customer.
    Delivered {
        /// The delivery.
        delivery_id: u64,
    },
}

impl DriverStatus {
    /// The delivery this status is about, if any.
    pub fn delivery_id(self) -> Option<u64> {
        match self {
            Self::Online | Self::Offline => None,
            Self::ArrivedAtRestaurant { delivery_id }
            | Self::PickedUp { delivery_id }
            | Self::Delivered { delivery_id } => Some(delivery_id),
        }
    }

    fn kind(self) -> StatusKind {
        match self {
            Self::Online => StatusKind::Online,
            Self::Offline => StatusKind::Offline,
            Self::ArrivedAtRestaurant { .. } => StatusKind::ArrivedAtRestaurant,
            Self::PickedUp { .. } => StatusKind::PickedUp,
            Self::Delivered { .. } => StatusKind::Delivered,
        }
    }
}

/// The driver reports a status change.
///
/// Decoding checks: `delivery_id` present and non-zero for the delivery statuses, absent for
/// `Online`/`Offline`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusChange {
    /// The new status.
    pub status: DriverStatus,
    /// Client clock when it happened, Unix milliseconds.
    pub client_ts_ms: u64,
}

impl StatusChange {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::opt_id("StatusChange.delivery_id", self.status.delivery_id())
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::StatusChange<'f>> {
        fb::StatusChange::create(
            fbb,
            &fb::StatusChangeArgs {
                status: self.status.kind().to_fb(),
                delivery_id: self.status.delivery_id(),
                client_ts_ms: self.client_ts_ms,
            },
        )
    }

    fn read(t: fb::StatusChange<'_>) -> Result<Self> {
        const FIELD: &str = "StatusChange.delivery_id";
        let kind = StatusKind::from_fb(t.status())?;
        let status = match (kind, t.delivery_id()) {
            (StatusKind::Online, None) => DriverStatus::Online,
            (StatusKind::Offline, None) => DriverStatus::Offline,
            (StatusKind::Online | StatusKind::Offline, Some(_)) => {
                return Err(check::invalid(FIELD, "must be absent for Online/Offline"));
            }
            (_, None) => {
                return Err(check::invalid(FIELD, "required for this status"));
            }
            (StatusKind::ArrivedAtRestaurant, Some(delivery_id)) => {
                DriverStatus::ArrivedAtRestaurant { delivery_id }
            }
            (StatusKind::PickedUp, Some(delivery_id)) => DriverStatus::PickedUp { delivery_id },
            (StatusKind::Delivered, Some(delivery_id)) => DriverStatus::Delivered { delivery_id },
        };
        let change = Self {
            status,
            client_ts_ms: t.client_ts_ms(),
        };
        change.validate()?;
        Ok(change)
    }
}

/// The driver accepts or declines an offer.
///
/// Decoding checks: both ids non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OfferResponse {
    /// `Offer.offer_id` being answered.
    pub offer_id: u64,
    /// `Offer.delivery_id` being answered.
    pub delivery_id: u64,
    /// Accept or decline.
    pub decision: OfferDecision,
}

impl OfferResponse {
    /// The checks decoding applies.
    pub fn validate(&self) -> Result<()> {
        check::id("OfferResponse.offer_id", self.offer_id)?;
        check::id("OfferResponse.delivery_id", self.delivery_id)
    }

    fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::OfferResponse<'f>> {
        fb::OfferResponse::create(
            fbb,
            &fb::OfferResponseArgs {
                offer_id: self.offer_id,
                delivery_id: self.delivery_id,
                decision: self.decision.to_fb(),
            },
        )
    }

    fn read(t: fb::OfferResponse<'_>) -> Result<Self> {
        let response = Self {
            offer_id: t.offer_id(),
            delivery_id: t.delivery_id(),
            decision: OfferDecision::from_fb(t.decision())?,
        };
        response.validate()?;
        Ok(response)
    }
}

/// Any driver -> cell control-stream message.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverBody {
    /// Authenticate (first message).
    Hello(Hello),
    /// A location ping sent on the stream (when `HelloAck.ping_transport` is `Stream`).
    LocationPing(LocationPing),
    /// A status change.
    StatusChange(StatusChange),
    /// An answer to an offer.
    OfferResponse(OfferResponse),
    /// Acknowledges a cell message.
    Ack(Ack),
}

/// Envelope of every driver -> cell control-stream message: one verified decode dispatches
/// them all.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverMsg {
    /// The driver's per-connection message number, echoed by `Ack` and `ErrorMsg.ref_seq`.
    pub seq: u64,
    /// The message.
    pub body: DriverBody,
}

impl DriverMsg {
    /// Wraps a body.
    pub fn new(seq: u64, body: impl Into<DriverBody>) -> Self {
        Self {
            seq,
            body: body.into(),
        }
    }

    /// Encodes the envelope as a bare buffer (no frame header). Resets `fbb` first.
    /// Does not validate: see [`DriverMsg::validate`].
    pub fn encode<'b>(&self, fbb: &'b mut FlatBufferBuilder<'_>) -> &'b [u8] {
        fbb.reset();
        let body = self.write_body(fbb);
        let root = fb::DriverMessage::create(
            fbb,
            &fb::DriverMessageArgs {
                seq: self.seq,
                body_type: self.body_type(),
                body: Some(body),
            },
        );
        fbb.finish(root, None);
        fbb.finished_data()
    }

    /// Appends one frame (header + buffer) for the control stream to `out`.
    pub fn encode_framed(&self, fbb: &mut FlatBufferBuilder<'_>, out: &mut Vec<u8>) {
        frame::append(self.encode(fbb), out);
    }

    /// Encodes into a fresh `Vec` (no frame header).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::with_capacity(256);
        self.encode(&mut fbb).to_vec()
    }

    /// Decodes a frame body: at most [`crate::MAX_CONTROL_MESSAGE_BYTES`], verified with
    /// [`crate::control_verifier_options`], then validated.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let opts = control_verifier_options();
        let t = verified_root::<fb::DriverMessage>(bytes, MAX_CONTROL_MESSAGE_BYTES, &opts)?;
        let body = match t.body_type() {
            fb::DriverBody::Hello => DriverBody::Hello(Hello::read(member(t.body_as_hello())?)?),
            fb::DriverBody::LocationPing => {
                DriverBody::LocationPing(LocationPing::read(member(t.body_as_location_ping())?)?)
            }
            fb::DriverBody::StatusChange => {
                DriverBody::StatusChange(StatusChange::read(member(t.body_as_status_change())?)?)
            }
            fb::DriverBody::OfferResponse => {
                DriverBody::OfferResponse(OfferResponse::read(member(t.body_as_offer_response())?)?)
            }
            fb::DriverBody::Ack => DriverBody::Ack(Ack::read(member(t.body_as_ack())?)?),
            other => return Err(unknown_member("DriverBody", other.0)),
        };
        Ok(Self { seq: t.seq(), body })
    }

    /// The checks [`DriverMsg::decode`] applies after verification.
    pub fn validate(&self) -> Result<()> {
        match &self.body {
            DriverBody::Hello(m) => m.validate(),
            DriverBody::LocationPing(m) => m.validate(),
            DriverBody::StatusChange(m) => m.validate(),
            DriverBody::OfferResponse(m) => m.validate(),
            DriverBody::Ack(_) => Ok(()),
        }
    }

    fn body_type(&self) -> fb::DriverBody {
        match &self.body {
            DriverBody::Hello(_) => fb::DriverBody::Hello,
            DriverBody::LocationPing(_) => fb::DriverBody::LocationPing,
            DriverBody::StatusChange(_) => fb::DriverBody::StatusChange,
            DriverBody::OfferResponse(_) => fb::DriverBody::OfferResponse,
            DriverBody::Ack(_) => fb::DriverBody::Ack,
        }
    }

    fn write_body(&self, fbb: &mut FlatBufferBuilder<'_>) -> WIPOffset<UnionWIPOffset> {
        match &self.body {
            DriverBody::Hello(m) => m.write(fbb).as_union_value(),
            DriverBody::LocationPing(m) => m.write(fbb).as_union_value(),
            DriverBody::StatusChange(m) => m.write(fbb).as_union_value(),
            DriverBody::OfferResponse(m) => m.write(fbb).as_union_value(),
            DriverBody::Ack(m) => m.write(fbb).as_union_value(),
        }
    }
}

into_body!(DriverBody: Hello, LocationPing, StatusChange, OfferResponse, Ack);
