//! Compact delivery paths: the assigned driver's GPS fixes for one delivery, at a few bytes per
//! ping instead of the seed's 50.
//!
//! A block is a header, then one record per fix:
//! - header: delivery id, sequence, first timestamp (ms), first latitude and longitude as
//!   integers at 1e-5° (≈ 1.1 m), fix count;
//! - record: the delta-of-delta of time in 100 ms ticks, the deltas of latitude and longitude
//!   in 1e-5°, of heading in 2° steps and of speed in 0.5 m/s steps.
//!
//! Every value is ZigZag + LEB128, so the common case (regular pings, ≤ 70 m between them, a
//! steady heading) is one byte per field. Coordinates are quantized before delta coding:
//! integer deltas of 7–14 bits beat the ~35 significant bits a float XOR leaves (Gorilla), and
//! 1.1 m is far below a phone's 7–13 m error in a city. Longitude deltas wrap at ±180°, so a
//! path across the antimeridian costs no more than any other; heading deltas wrap at 360°.
//!
//! Decoding takes untrusted bytes (a store can be corrupted, a backup edited): it never panics
//! and never allocates more than the input can justify; every problem is a [`DecodeError`].

mod codec;
pub mod fuzzing;
mod varint;

#[cfg(test)]
mod tests;

pub use codec::{Block, PathBuffer, decode, encode};

/// One GPS fix as the cell accepted it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    /// When the phone took it, Unix ms.
    pub t_ms: i64,
    pub lat: f64,
    pub lng: f64,
    /// Degrees clockwise from north; any value (wrapped into 0..360).
    pub heading_deg: f32,
    /// Metres per second; negative (unknown) is stored as 0.
    pub speed_mps: f32,
}

/// Latitude and longitude units per degree (1e-5°).
pub const COORD_SCALE: f64 = 1e5;
/// Time resolution after the block's first fix, ms.
pub const TICK_MS: i64 = 100;
/// Heading resolution, degrees.
pub const HEADING_STEP: f32 = 2.0;
/// Speed resolution, m/s.
pub const SPEED_STEP: f32 = 0.5;

/// Why bytes are not a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the block ends inside a value")]
    Truncated,
    #[error("a varint is longer than 64 bits")]
    VarintOverflow,
    #[error("the fix count ({0}) is more than the bytes can hold")]
    Count(u64),
    #[error("a value is out of range (coordinate, time or sequence)")]
    Range,
    #[error("{0} bytes follow the last fix")]
    Trailing(usize),
}
