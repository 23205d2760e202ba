//! Driver -> cell messages and their envelope, [`DriverMsg`].

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::check;
use crate::enums::{OfferDecision, StatusKind};
use crate::envelope::envelope;
use crate::error::Result;
use crate::fb;
use crate::limits::{MAX_APP_VERSION_BYTES, MAX_TOKEN_BYTES};
use crate::{Ack, LocationPing};

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

envelope! {
    /// Any driver -> cell control-stream message.
    pub enum DriverBody: fb::DriverBody {
        /// Authenticate (first message).
        Hello = Hello via body_as_hello,
        /// A location ping sent on the stream (when `HelloAck.ping_transport` is `Stream`).
        LocationPing = LocationPing via body_as_location_ping,
        /// A status change.
        StatusChange = StatusChange via body_as_status_change,
        /// An answer to an offer.
        OfferResponse = OfferResponse via body_as_offer_response,
        /// Acknowledges a cell message.
        Ack = Ack via body_as_ack,
    }
    /// Envelope of every driver -> cell control-stream message: one verified decode dispatches
    /// them all.
    pub struct DriverMsg: fb::DriverMessage, fb::DriverMessageArgs, capacity 256 {
        /// The driver's per-connection message number, echoed by `Ack` and `ErrorMsg.ref_seq`.
        seq
    }
}
