//! Open-loop pacing: every request has an intended send time fixed in advance by the
//! target rate, independent of how fast earlier requests were answered.
//!
//! During ramp-up the rate grows linearly from 0 to `rate`, so the number of requests
//! due by time `t < R` is `rate·t²/(2R)`; after it, `rate·R/2 + rate·(t−R)`. The
//! intended time of request `i` is the inverse of that count.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Target requests per second after ramp-up.
    pub rate: f64,
    pub ramp_up: Duration,
    /// Steady-state duration after ramp-up.
    pub duration: Duration,
}

impl Schedule {
    /// Requests sent during ramp-up.
    fn ramp_count(&self) -> f64 {
        self.rate * self.ramp_up.as_secs_f64() / 2.0
    }

    /// Offset from the start of the run of request `i` (0-based), or None once past the
    /// end of the run.
    pub fn offset(&self, i: u64) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        let i = i as f64;
        let r = self.ramp_up.as_secs_f64();
        let n_ramp = self.ramp_count();
        let t = if i < n_ramp {
            (2.0 * r * i / self.rate).sqrt()
        } else {
            r + (i - n_ramp) / self.rate
        };
        (t < self.total().as_secs_f64()).then(|| Duration::from_secs_f64(t))
    }

    /// Ramp-up plus steady state.
    pub fn total(&self) -> Duration {
        self.ramp_up + self.duration
    }

    /// Number of requests the schedule holds.
    pub fn total_requests(&self) -> u64 {
        (self.ramp_count() + self.rate * self.duration.as_secs_f64()).ceil() as u64
    }
}

/// Parses "30s", "500ms", "2m", "1.5s" or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    num.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| Duration::from_secs_f64(v * mult))
        .ok_or_else(|| format!("{s:?} is not a duration (e.g. 30s, 500ms, 2m)"))
}
