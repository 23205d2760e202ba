//! Framing on the control stream: a 4-byte little-endian length, then one bare buffer.
//!
//! Bare (not flatbuffers "size-prefixed") buffers are framed so that a frame body decodes with
//! the same [`crate::DriverMsg::decode`]/[`crate::CellMsg::decode`] as any other buffer; the
//! flatbuffers verifier checks alignment relative to the start of the slice it is given.

use crate::error::{DecodeError, Result};
use crate::limits::MAX_CONTROL_MESSAGE_BYTES;

/// Length of a frame header.
pub const FRAME_HEADER_BYTES: usize = 4;

/// The body length announced by a frame header. Rejects `0` and anything over
/// [`crate::MAX_CONTROL_MESSAGE_BYTES`] before the reader allocates for it.
pub fn frame_len(header: [u8; FRAME_HEADER_BYTES]) -> Result<usize> {
    // u32 always fits in usize on the 32- and 64-bit targets we build for.
    let len = u32::from_le_bytes(header) as usize;
    if len == 0 {
        Err(DecodeError::InvalidValue {
            field: "frame length",
            reason: "must be non-zero",
        })
    } else if len > MAX_CONTROL_MESSAGE_BYTES {
        Err(DecodeError::TooLarge {
            len,
            max: MAX_CONTROL_MESSAGE_BYTES,
        })
    } else {
        Ok(len)
    }
}

/// Splits the first complete frame off a receive buffer.
///
/// Returns `Ok(None)` when more bytes are needed, `Ok(Some((body, consumed)))` when a whole
/// frame is present (`consumed` = header + body), or the [`frame_len`] error.
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let Some((header, rest)) = buf.split_first_chunk::<FRAME_HEADER_BYTES>() else {
        return Ok(None);
    };
    let len = frame_len(*header)?;
    Ok(rest.get(..len).map(|body| (body, FRAME_HEADER_BYTES + len)))
}

/// Appends header + `body` to `out`.
pub(crate) fn append(body: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(body.len()).expect("an encoded message is far below 4 GiB");
    out.reserve(FRAME_HEADER_BYTES + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
}
