//! Checks on a GPS ping before it moves a driver: coordinates in range, not from the
//! future, and physically possible given the driver's previous fix (a jump faster than any
//! car is flagged as likely spoofing and not stored). Pure: time comes in as an argument.

use domain::UnixMs;

/// Limits (`[pings]` in the cell config).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PingLimits {
    /// Client clocks run ahead; more than this is "from the future".
    pub max_future_skew_ms: i64,
    /// Older than this relative to now: dropped (geostore would expire it anyway).
    pub max_age_ms: i64,
    /// Fastest plausible ground speed between fixes (≈ 180 km/h).
    pub max_speed_mps: f64,
    /// Jumps shorter than this are GPS noise, never spoofing.
    pub min_jump_m: f64,
}

impl Default for PingLimits {
    fn default() -> Self {
        Self {
            max_future_skew_ms: 5_000,
            max_age_ms: 30_000,
            max_speed_mps: 50.0,
            min_jump_m: 250.0,
        }
    }
}

/// The previous accepted fix of a driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub lat: f64,
    pub lng: f64,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PingRejection {
    #[error("coordinates out of range")]
    InvalidCoordinates,
    #[error("timestamp {ahead_ms} ms in the future")]
    FromFuture { ahead_ms: i64 },
    #[error("ping older than the staleness window")]
    TooOld,
    #[error("implied speed {implied_mps:.0} m/s: likely GPS spoofing")]
    Spoofed { implied_mps: f64 },
}

impl PingRejection {
    pub fn as_str(&self) -> &'static str {
        match self {
            PingRejection::InvalidCoordinates => "invalid",
            PingRejection::FromFuture { .. } => "from_future",
            PingRejection::TooOld => "too_old",
            PingRejection::Spoofed { .. } => "spoofed",
        }
    }
}

/// Decides whether a ping may move the driver.
pub fn check(
    limits: &PingLimits,
    prev: Option<Fix>,
    lat: f64,
    lng: f64,
    ts_ms: u64,
    now: UnixMs,
) -> Result<(), PingRejection> {
    if !(lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0) {
        return Err(PingRejection::InvalidCoordinates);
    }
    let ts = i64::try_from(ts_ms).unwrap_or(i64::MAX);
    if ts - now.0 > limits.max_future_skew_ms {
        return Err(PingRejection::FromFuture {
            ahead_ms: ts - now.0,
        });
    }
    if now.0 - ts > limits.max_age_ms {
        return Err(PingRejection::TooOld);
    }
    if let Some(p) = prev
        && ts_ms > p.ts_ms
    {
        let d = geostore::haversine_m(p.lat, p.lng, lat, lng);
        // At least one second between fixes, so two pings a few ms apart never divide by ~0.
        let dt = ((ts_ms - p.ts_ms) as f64 / 1000.0).max(1.0);
        let implied = d / dt;
        if d > limits.min_jump_m && implied > limits.max_speed_mps {
            return Err(PingRejection::Spoofed {
                implied_mps: implied,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_pings() {
        let l = PingLimits::default();
        let now = UnixMs(1_800_000_000_000);
        let t = now.0 as u64;
        assert_eq!(check(&l, None, 52.5, 13.4, t, now), Ok(()));
        assert_eq!(
            check(&l, None, f64::NAN, 13.4, t, now),
            Err(PingRejection::InvalidCoordinates)
        );
        assert_eq!(
            check(&l, None, 91.0, 13.4, t, now),
            Err(PingRejection::InvalidCoordinates)
        );
        assert!(matches!(
            check(&l, None, 52.5, 13.4, t + 60_000, now),
            Err(PingRejection::FromFuture { .. })
        ));
        assert_eq!(
            check(&l, None, 52.5, 13.4, t - 60_000, now),
            Err(PingRejection::TooOld)
        );
        let prev = Fix {
            lat: 52.5,
            lng: 13.4,
            ts_ms: t - 5_000,
        };
        // 50 m in 5 s: a cyclist.
        assert_eq!(check(&l, Some(prev), 52.50045, 13.4, t, now), Ok(()));
        // 11 km in 5 s: nobody drives that fast.
        assert!(matches!(
            check(&l, Some(prev), 52.6, 13.4, t, now),
            Err(PingRejection::Spoofed { .. })
        ));
        // An older ping than the previous fix is not judged here (geostore ignores it).
        assert_eq!(check(&l, Some(prev), 52.6, 13.4, t - 6_000, now), Ok(()));
    }
}
