//! Plain enums mirroring the schema's enums, with strict conversion from the wire.
//!
//! The generated enums are open newtypes (`struct CloseReason(pub u16)`) that accept any value;
//! these are closed Rust enums, and converting an unknown value is a
//! [`DecodeError::UnknownVariant`].

use crate::error::{DecodeError, Result};
use crate::fb;

/// Declares a closed enum whose variants have the same names as the generated enum's.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident: $fb:ident, $field:literal {
            $( $(#[$vmeta:meta])* $var:ident, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $var, )+
        }

        impl $name {
            /// Every variant, in schema order.
            #[allow(dead_code, reason = "unused for the crate-internal enums")]
            pub const ALL: &'static [Self] = &[$(Self::$var),+];

            pub(crate) fn to_fb(self) -> fb::$fb {
                match self {
                    $( Self::$var => fb::$fb::$var, )+
                }
            }

            pub(crate) fn from_fb(v: fb::$fb) -> Result<Self> {
                match v {
                    $( fb::$fb::$var => Ok(Self::$var), )+
                    other => Err(DecodeError::UnknownVariant {
                        field: $field,
                        value: u64::from(other.0),
                    }),
                }
            }
        }
    };
}

wire_enum! {
    /// Why a connection closed or a request failed, with stable numeric codes.
    ///
    /// [`CloseReason::code`] is the QUIC application error code to pass to
    /// `Connection::close` (codes `0..=99`), or the `code` of an [`crate::ErrorMsg`] answering
    /// one request while the connection stays open (codes `100..=199`). Codes never change
    /// meaning; new ones are only appended.
    pub enum CloseReason: CloseReason, "CloseReason" {
        /// 0: orderly close (driver logged off).
        Normal,
        /// 1: the JWT in `Hello` is missing, malformed, expired or not signed by us.
        BadToken,
        /// 2: no `Hello` arrived before the deadline.
        HelloTimeout,
        /// 3: undecodable frame, message out of order (e.g. anything before `Hello`).
        ProtocolViolation,
        /// 4: the cell's connection cap is reached.
        TooManyConnections,
        /// 5: the cell is shutting down; reconnect through the router.
        ServerShutdown,
        /// 6: after a `Handover` message: reconnect to the cell it named.
        Handover,
        /// 7: the driver sends faster than allowed.
        RateLimited,
        /// 8: `Hello.protocol_version` is not supported.
        VersionUnsupported,
        /// 9: the same driver connected again; this older connection is closed.
        Superseded,
        /// 10: a bug or an unavailable dependency on the cell.
        Internal,
        /// 11: the driver did not read the control stream: a write stalled past the cell's
        /// write timeout.
        SlowReader,
        /// 12: the token the session was opened with expired; reconnect with a fresh one.
        TokenExpired,
        /// 100: the status change or offer response names a delivery the cell does not know
        /// for this driver.
        UnknownDelivery,
        /// 101: the status change is not allowed in the delivery's current state.
        InvalidTransition,
        /// 102: the offer was answered after it expired or was withdrawn.
        OfferExpired,
    }
}

impl CloseReason {
    /// The stable numeric code (QUIC application error code).
    pub fn code(self) -> u16 {
        self.to_fb().0
    }

    /// The reason for a numeric code, e.g. from a received QUIC `CONNECTION_CLOSE`
    /// (`u64::from(varint)`). `None` for a code this build does not know.
    pub fn from_code(code: u64) -> Option<Self> {
        let code = u16::try_from(code).ok()?;
        Self::from_fb(fb::CloseReason(code)).ok()
    }

    /// True for codes that close the connection (`0..=99`), false for per-request errors.
    pub fn closes_connection(self) -> bool {
        self.code() < 100
    }

    /// Snake-case name for logs and metrics labels, e.g. `"bad_token"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::BadToken => "bad_token",
            Self::HelloTimeout => "hello_timeout",
            Self::ProtocolViolation => "protocol_violation",
            Self::TooManyConnections => "too_many_connections",
            Self::ServerShutdown => "server_shutdown",
            Self::Handover => "handover",
            Self::RateLimited => "rate_limited",
            Self::VersionUnsupported => "version_unsupported",
            Self::Superseded => "superseded",
            Self::Internal => "internal",
            Self::SlowReader => "slow_reader",
            Self::TokenExpired => "token_expired",
            Self::UnknownDelivery => "unknown_delivery",
            Self::InvalidTransition => "invalid_transition",
            Self::OfferExpired => "offer_expired",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.as_str(), self.code())
    }
}

wire_enum! {
    /// The driver's answer to an [`crate::Offer`].
    pub enum OfferDecision: OfferDecision, "OfferDecision" {
        /// Take the delivery.
        Accept,
        /// Refuse it.
        Decline,
    }
}

wire_enum! {
    /// How the driver must send location pings (told in [`crate::HelloAck`]).
    pub enum PingTransport: PingTransport, "PingTransport" {
        /// Bare [`crate::LocationPing`] buffers as QUIC datagrams.
        Datagram,
        /// Inside a [`crate::DriverMsg`] on the control stream (datagrams unavailable).
        Stream,
    }
}

wire_enum! {
    /// Why an offer or a delivery was cancelled.
    pub enum CancelReason: CancelReason, "CancelReason" {
        /// No reason given.
        Unspecified,
        /// The offer expired unanswered.
        OfferExpired,
        /// Another driver took the delivery.
        AssignedToOther,
        /// The customer or the restaurant cancelled the order.
        OrderCancelled,
        /// The cell gave the delivery to someone else after assigning it.
        Reassigned,
    }
}

wire_enum! {
    /// Why the cell hands the driver over to another cell.
    pub enum HandoverReason: HandoverReason, "HandoverReason" {
        /// The driver moved into a region owned by another cell.
        DriverMoved,
        /// The region was moved to another cell.
        RegionMoved,
        /// This cell is draining.
        CellDraining,
    }
}

wire_enum! {
    /// Discriminant of [`crate::DriverStatus`] on the wire (crate-internal).
    pub enum StatusKind: DriverStatus, "DriverStatus" {
        Online,
        Offline,
        ArrivedAtRestaurant,
        PickedUp,
        Delivered,
    }
}

wire_enum! {
    /// Discriminant of [`crate::CancelTarget`] on the wire (crate-internal).
    pub enum CancelScope: CancelScope, "CancelScope" {
        Offer,
        Delivery,
    }
}
