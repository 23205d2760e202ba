//! The sandbox's fault modes, as pure state: fail a share of calls, time out, be down for a
//! while, decline captures after authorization. Set from config at startup and at runtime
//! (the cell's `PUT /api/v1/admin/payments/sandbox/faults`). Every decision takes `now` and
//! a random `roll`, so tests choose both.

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The fault modes now in force.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Faults {
    /// Share of calls (0-100) that fail as unavailable before the provider does anything.
    pub fail_percent: u8,
    /// Every call goes unanswered: it waits the sandbox's slow-call delay, then fails as a
    /// timeout, without doing anything.
    pub timeout: bool,
    /// Every call fails as unavailable until then.
    pub down_until: Option<Instant>,
    /// Captures are declined (as if the authorization expired); authorizations, voids and
    /// refunds work.
    pub decline_after_authorize: bool,
}

/// A change to the fault modes: every field optional, missing = unchanged. The fault
/// endpoint's body.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultPatch {
    pub fail_percent: Option<u8>,
    pub timeout: Option<bool>,
    /// Down from now for this long; 0 = up again.
    pub down_for_ms: Option<u64>,
    pub decline_after_authorize: Option<bool>,
}

/// The fault modes as the endpoint reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultState {
    pub fail_percent: u8,
    pub timeout: bool,
    /// How much longer the provider is down (0 = up).
    pub down_for_ms: u64,
    pub decline_after_authorize: bool,
}

/// What a fault does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// Fail at once as unavailable.
    Unavailable,
    /// Wait, then fail as a timeout.
    Timeout,
}

impl Faults {
    /// Applies `patch` at `now`. Refuses a `fail_percent` above 100 (nothing is changed).
    pub fn patch(&mut self, patch: FaultPatch, now: Instant) -> Result<(), String> {
        if let Some(p) = patch.fail_percent
            && p > 100
        {
            return Err(format!("fail_percent must be 0-100 (got {p})"));
        }
        if let Some(p) = patch.fail_percent {
            self.fail_percent = p;
        }
        if let Some(t) = patch.timeout {
            self.timeout = t;
        }
        if let Some(ms) = patch.down_for_ms {
            self.down_until = (ms > 0).then(|| now + Duration::from_millis(ms));
        }
        if let Some(d) = patch.decline_after_authorize {
            self.decline_after_authorize = d;
        }
        Ok(())
    }

    /// The state at `now`, for the endpoint.
    pub fn state(&self, now: Instant) -> FaultState {
        let down = self
            .down_until
            .map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        FaultState {
            fail_percent: self.fail_percent,
            timeout: self.timeout,
            down_for_ms: u64::try_from(down.as_millis()).unwrap_or(u64::MAX),
            decline_after_authorize: self.decline_after_authorize,
        }
    }

    /// What happens to a call made at `now`; `roll` is uniformly random (only `roll % 100`
    /// matters). Down beats timeout beats the failure share.
    pub fn check(&self, now: Instant, roll: u64) -> Option<Injected> {
        if self.down_until.is_some_and(|u| now < u) {
            return Some(Injected::Unavailable);
        }
        if self.timeout {
            return Some(Injected::Timeout);
        }
        if roll % 100 < u64::from(self.fail_percent) {
            return Some(Injected::Unavailable);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_percent_fails_that_share_of_rolls() {
        let now = Instant::now();
        let mut f = Faults::default();
        f.patch(
            FaultPatch {
                fail_percent: Some(30),
                ..FaultPatch::default()
            },
            now,
        )
        .unwrap();
        let failed = (0..1000u64).filter(|r| f.check(now, *r).is_some()).count();
        assert_eq!(failed, 300);
        assert!(
            f.patch(
                FaultPatch {
                    fail_percent: Some(101),
                    ..FaultPatch::default()
                },
                now
            )
            .is_err()
        );
        assert_eq!(f.fail_percent, 30, "a refused patch changes nothing");
    }

    #[test]
    fn down_for_lasts_exactly_that_long_and_zero_ends_it() {
        let t0 = Instant::now();
        let mut f = Faults::default();
        let down = FaultPatch {
            down_for_ms: Some(60_000),
            ..FaultPatch::default()
        };
        f.patch(down, t0).unwrap();
        assert_eq!(f.check(t0, 99), Some(Injected::Unavailable));
        let later = t0 + Duration::from_millis(59_999);
        assert_eq!(f.check(later, 99), Some(Injected::Unavailable));
        assert_eq!(f.state(later).down_for_ms, 1);
        assert_eq!(f.check(t0 + Duration::from_secs(60), 99), None);
        f.patch(down, t0).unwrap();
        f.patch(
            FaultPatch {
                down_for_ms: Some(0),
                ..FaultPatch::default()
            },
            t0,
        )
        .unwrap();
        assert_eq!(f.check(t0, 99), None);
    }

    #[test]
    fn timeout_and_decline_are_switches() {
        let now = Instant::now();
        let mut f = Faults::default();
        f.patch(
            FaultPatch {
                timeout: Some(true),
                decline_after_authorize: Some(true),
                ..FaultPatch::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(f.check(now, 99), Some(Injected::Timeout));
        // Missing fields leave the rest unchanged.
        f.patch(
            FaultPatch {
                timeout: Some(false),
                ..FaultPatch::default()
            },
            now,
        )
        .unwrap();
        assert_eq!(f.check(now, 99), None);
        assert!(f.state(now).decline_after_authorize);
    }
}
