//! Semantic checks the flatbuffers verifier cannot make.

use crate::error::{DecodeError, Result};

/// Checks the byte length of `s` is within `min..=max`.
pub(crate) fn length(field: &'static str, s: &str, min: usize, max: usize) -> Result<()> {
    if (min..=max).contains(&s.len()) {
        Ok(())
    } else {
        Err(DecodeError::BadLength {
            field,
            len: s.len(),
            min,
            max,
        })
    }
}

/// Ids are non-zero (zero is what an absent field reads as).
pub(crate) fn id(field: &'static str, v: u64) -> Result<()> {
    if v == 0 {
        Err(invalid(field, "must be non-zero"))
    } else {
        Ok(())
    }
}

/// Like [`id`] for an optional id: absent is fine, present must be non-zero.
pub(crate) fn opt_id(field: &'static str, v: Option<u64>) -> Result<()> {
    v.map_or(Ok(()), |v| id(field, v))
}

pub(crate) fn lat(field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && (-90.0..=90.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, "must be a latitude in [-90, 90]"))
    }
}

pub(crate) fn lng(field: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && (-180.0..=180.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, "must be a longitude in [-180, 180]"))
    }
}

/// Finite and `>= 0` (speed, accuracy).
pub(crate) fn non_negative(field: &'static str, v: f32) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(invalid(field, "must be finite and >= 0"))
    }
}

pub(crate) fn heading(field: &'static str, v: f32) -> Result<()> {
    if v.is_finite() && (0.0..=360.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, "must be degrees in [0, 360]"))
    }
}

pub(crate) fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::InvalidValue { field, reason }
}
