//! `[privacy]`: when a driver sees the customer's address, and the customer key cache.

use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};

/// Bounds of `address_grace_ms`: up to a day after the delivery ended.
pub const GRACE_MS_RANGE: std::ops::RangeInclusive<u64> = 0..=86_400_000;
/// Bounds of `key_cache_entries`.
pub const CACHE_ENTRIES_RANGE: std::ops::RangeInclusive<usize> = 1..=10_000_000;
/// Bounds of `key_cache_ttl_ms`: a second to a day.
pub const CACHE_TTL_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=86_400_000;

/// From which step the assigned driver sees the address, notes and the customer's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevealFrom {
    /// From the driver's `picked_up` (the default: the seed's "during the delivery").
    Pickup,
    /// From the driver's acceptance of the offer.
    Acceptance,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    pub driver_address_from: RevealFrom,
    /// After delivered or cancelled, the driver keeps the address this long, then sees the
    /// approximate area again and is sent `address_revoked`.
    pub address_grace_ms: u64,
    /// Most customer data keys kept unwrapped in memory.
    pub key_cache_entries: usize,
    /// A customer data key is unwrapped again this long after it was last unwrapped.
    pub key_cache_ttl_ms: u64,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        let limits = crate::envelope::CacheLimits::default();
        Self {
            driver_address_from: RevealFrom::Pickup,
            address_grace_ms: 600_000,
            key_cache_entries: limits.max_entries,
            key_cache_ttl_ms: limits.ttl_ms as u64,
        }
    }
}

impl PrivacyConfig {
    pub fn cache_limits(&self) -> crate::envelope::CacheLimits {
        crate::envelope::CacheLimits {
            max_entries: self.key_cache_entries,
            ttl_ms: i64::try_from(self.key_cache_ttl_ms).unwrap_or(i64::MAX),
        }
    }
}

impl Validate for PrivacyConfig {
    fn validate(&self, s: &mut Section<'_>) {
        let range = |lo: u64, hi: u64, v: u64| move || format!("must be {lo}..={hi} (got {v})");
        s.ensure(
            GRACE_MS_RANGE.contains(&self.address_grace_ms),
            "address_grace_ms",
            range(
                *GRACE_MS_RANGE.start(),
                *GRACE_MS_RANGE.end(),
                self.address_grace_ms,
            ),
        );
        s.ensure(
            CACHE_ENTRIES_RANGE.contains(&self.key_cache_entries),
            "key_cache_entries",
            range(
                *CACHE_ENTRIES_RANGE.start() as u64,
                *CACHE_ENTRIES_RANGE.end() as u64,
                self.key_cache_entries as u64,
            ),
        );
        s.ensure(
            CACHE_TTL_MS_RANGE.contains(&self.key_cache_ttl_ms),
            "key_cache_ttl_ms",
            range(
                *CACHE_TTL_MS_RANGE.start(),
                *CACHE_TTL_MS_RANGE.end(),
                self.key_cache_ttl_ms,
            ),
        );
    }
}
