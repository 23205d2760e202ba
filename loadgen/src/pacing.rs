//! Open-loop pacing: every request has an intended send time fixed in advance by the
//! target rate, independent of how fast earlier requests were answered.
//!
//! During ramp-up the rate grows linearly from 0 to `rate`, then follows the profile:
//! flat, or a dinner rush (base → 5× peak → base). The rate is piecewise linear in time,
//! so the count due by `t` is piecewise quadratic, and the intended time of request `i`
//! is its exact inverse on the segment holding `i`.

use std::time::Duration;

/// How the rate moves over the steady window (after the ramp-up).
#[derive(Debug, Clone, Copy, PartialEq, Default, clap::ValueEnum)]
pub enum Profile {
    /// `rate` throughout.
    #[default]
    Flat,
    /// A dinner rush: fifths of the window at base, rising to `PEAK`×, holding the peak,
    /// falling back, base again (the seed's 5× peak over average).
    Dinner,
}

/// Peak multiple of the dinner profile.
pub const PEAK: f64 = 5.0;

#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Target requests per second after ramp-up (the base rate of a profile).
    pub rate: f64,
    pub ramp_up: Duration,
    /// Steady-state duration after ramp-up.
    pub duration: Duration,
    pub profile: Profile,
}

/// Knots `(t_s, rate)` of the piecewise-linear rate; the rate between knots is linear.
type Knots = [(f64, f64); 7];

impl Schedule {
    pub fn flat(rate: f64, ramp_up: Duration, duration: Duration) -> Self {
        Self {
            rate,
            ramp_up,
            duration,
            profile: Profile::Flat,
        }
    }

    fn knots(&self) -> Knots {
        let (r, d, b) = (
            self.ramp_up.as_secs_f64(),
            self.duration.as_secs_f64(),
            self.rate,
        );
        let peak = match self.profile {
            Profile::Flat => b,
            Profile::Dinner => b * PEAK,
        };
        let at = |f: f64| r + d * f;
        [
            (0.0, 0.0),
            (r, b),
            (at(0.2), b),
            (at(0.4), peak),
            (at(0.6), peak),
            (at(0.8), b),
            (at(1.0), b),
        ]
    }

    /// The target rate at `t` after the start (0 past the end).
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        let k = self.knots();
        for w in k.windows(2) {
            let ((t0, r0), (t1, r1)) = (w[0], w[1]);
            if t < t1 {
                let f = if t1 > t0 { (t - t0) / (t1 - t0) } else { 1.0 };
                return r0 + (r1 - r0) * f.clamp(0.0, 1.0);
            }
        }
        0.0
    }

    /// Requests due by `t` after the start: the integral of the rate.
    pub fn due(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        let mut n = 0.0;
        for w in self.knots().windows(2) {
            let ((t0, r0), (t1, r1)) = (w[0], w[1]);
            if t <= t0 {
                break;
            }
            let len = t1 - t0;
            if len <= 0.0 {
                continue;
            }
            let x = (t.min(t1) - t0).max(0.0);
            n += r0 * x + (r1 - r0) * x * x / (2.0 * len);
        }
        n
    }

    /// Offset from the start of the run of request `i` (0-based), or None once past the
    /// end of the run: the inverse of [`Schedule::due`], exact per linear segment.
    pub fn offset(&self, i: u64) -> Option<Duration> {
        // Compared with the total up front: summing the segments leaves rounding crumbs.
        if self.rate <= 0.0 || i as f64 >= self.due(self.total()) - 1e-9 {
            return None;
        }
        let mut left = i as f64;
        for w in self.knots().windows(2) {
            let ((t0, r0), (t1, r1)) = (w[0], w[1]);
            let len = t1 - t0;
            if len <= 0.0 {
                continue;
            }
            let seg = (r0 + r1) * len / 2.0;
            if left < seg {
                // Solve a·x² + r0·x = left for the offset x into the segment.
                let a = (r1 - r0) / (2.0 * len);
                let x = if a.abs() < 1e-12 {
                    left / r0
                } else {
                    (-r0 + (r0 * r0 + 4.0 * a * left).max(0.0).sqrt()) / (2.0 * a)
                };
                return Some(Duration::from_secs_f64(t0 + x.clamp(0.0, len)));
            }
            left -= seg;
        }
        Some(self.total())
    }

    /// Ramp-up plus steady state.
    pub fn total(&self) -> Duration {
        self.ramp_up + self.duration
    }

    /// Number of requests the schedule holds.
    pub fn total_requests(&self) -> u64 {
        self.due(self.total()).ceil() as u64
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
