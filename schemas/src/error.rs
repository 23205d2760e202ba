//! The one error type of this crate.

use flatbuffers::InvalidFlatbuffer;

/// Why bytes from the network were rejected.
///
/// Every variant means "the peer sent something we will not act on"; a gateway typically closes
/// the connection with [`crate::CloseReason::ProtocolViolation`] on any of them (or drops the
/// datagram). [`DecodeError::UnknownVariant`] is the one case a newer peer can cause without a
/// bug: it used an enum or union member this build does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The buffer (or a frame header) is larger than the limit for its kind.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Length of the buffer, or length announced by a frame header.
        len: usize,
        /// The limit that applies.
        max: usize,
    },
    /// The flatbuffers verifier rejected the buffer (bad offsets, bad UTF-8, missing required
    /// field, too deep, too many tables, ...).
    #[error("flatbuffer verification failed: {0}")]
    Verify(#[from] InvalidFlatbuffer),
    /// An enum or union discriminant this build does not know.
    #[error("unknown {field} value {value}")]
    UnknownVariant {
        /// Schema name of the enum or union field.
        field: &'static str,
        /// The raw discriminant.
        value: u64,
    },
    /// A string is shorter or longer than its bound (lengths in bytes).
    #[error("{field} is {len} bytes long, allowed {min}..={max}")]
    BadLength {
        /// Schema name of the field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// Smallest allowed length.
        min: usize,
        /// Largest allowed length.
        max: usize,
    },
    /// A value the verifier accepts but the protocol does not (zero id, NaN latitude, a
    /// field that must be present or absent given another, ...).
    #[error("invalid {field}: {reason}")]
    InvalidValue {
        /// Schema name of the field.
        field: &'static str,
        /// What the rule is.
        reason: &'static str,
    },
}

/// Result alias for this crate.
pub type Result<T, E = DecodeError> = std::result::Result<T, E>;
