//! Size limits and verifier options, one set per kind of buffer.
//!
//! The verifier bounds the work done on a hostile buffer (`max_tables`, `max_depth`,
//! `max_apparent_size`); the byte limits are checked before the verifier runs, and the string
//! bounds after it. The numbers are sized from the schema: the largest
//! legitimate control message is a `Hello` with a 4 KiB token, or an `Offer` with two places.

use flatbuffers::VerifierOptions;

/// Largest accepted location-ping datagram. A ping encodes to [`LOCATION_PING_BYTES`]; the
/// slack admits fields appended by newer apps.
pub const MAX_PING_BYTES: usize = 256;

/// Size of an encoded [`crate::LocationPing`] today.
pub const LOCATION_PING_BYTES: usize = 72;

/// Largest accepted control-stream message (the body of one frame, without its header).
pub const MAX_CONTROL_MESSAGE_BYTES: usize = 8 * 1024;

/// Longest JWT accepted in `Hello.token`.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// Longest `Hello.app_version`.
pub const MAX_APP_VERSION_BYTES: usize = 64;
/// Longest `Place.name`.
pub const MAX_PLACE_NAME_BYTES: usize = 256;
/// Longest `Place.address`.
pub const MAX_ADDRESS_BYTES: usize = 512;
/// Longest `Handover.addr` ("ip:port"; the longest IPv6 form with a port is 47 bytes).
pub const MAX_SOCKET_ADDR_BYTES: usize = 64;
/// Longest `Handover.server_name` (a DNS name).
pub const MAX_SERVER_NAME_BYTES: usize = 253;
/// Longest `Error.message`.
pub const MAX_ERROR_MESSAGE_BYTES: usize = 512;

/// Verifier options for a location-ping datagram: one table holding one struct.
pub fn ping_verifier_options() -> VerifierOptions {
    VerifierOptions {
        max_depth: 2,
        max_tables: 2,
        max_apparent_size: 2 * MAX_PING_BYTES,
        ignore_missing_null_terminator: false,
    }
}

/// Verifier options for a control-stream envelope. The deepest message is
/// envelope -> Offer -> Place (depth 3), the widest an Offer (4 tables).
pub fn control_verifier_options() -> VerifierOptions {
    VerifierOptions {
        max_depth: 4,
        max_tables: 8,
        // Two places may share one table (a DAG); verified bytes then count twice.
        max_apparent_size: 2 * MAX_CONTROL_MESSAGE_BYTES,
        ignore_missing_null_terminator: false,
    }
}
