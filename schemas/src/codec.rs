//! The shared decode path: size check, then the verifier with explicit options.

use flatbuffers::{Follow, Verifiable, VerifierOptions};

use crate::error::{DecodeError, Result};

/// Verifies `bytes` as a buffer whose root is `T`, refusing anything over `max_bytes` before
/// the verifier reads a byte. This is the only place the crate turns untrusted bytes into
/// flatbuffer accessors.
pub(crate) fn verified_root<'buf, T>(
    bytes: &'buf [u8],
    max_bytes: usize,
    opts: &VerifierOptions,
) -> Result<T::Inner>
where
    T: 'buf + Follow<'buf> + Verifiable,
{
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    Ok(flatbuffers::root_with_opts::<T>(opts, bytes)?)
}

/// The table of a union member whose discriminant was just matched. The verifier has checked
/// the member (the `body` field is required), so `None` cannot come from a verified buffer;
/// it is still an error rather than a panic.
pub(crate) fn member<T>(table: Option<T>) -> Result<T> {
    table.ok_or(DecodeError::InvalidValue {
        field: "body",
        reason: "does not match body_type",
    })
}

/// The error for a union discriminant this build does not know (including `NONE`).
pub(crate) fn unknown_member(field: &'static str, value: u8) -> DecodeError {
    DecodeError::UnknownVariant {
        field,
        value: u64::from(value),
    }
}
