//! `[dispatch]`: matching, ping checks, reconnection grace, the tick and driver payouts.

use super::matching::machine::MatchConfig;
use super::pings::PingLimits;

/// Dispatch settings.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    pub matching: MatchConfig,
    pub pings: PingLimits,
    /// A dropped driver keeps their offer and state this long before going offline.
    pub reconnect_grace_ms: u64,
    /// How often expiries and waiting orders are looked at (also woken on events).
    pub tick_ms: u64,
    /// Payout to the driver: base plus per km of pickup→dropoff, in cents.
    pub payout_base_cents: i64,
    pub payout_per_km_cents: i64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            matching: MatchConfig::default(),
            pings: PingLimits::default(),
            reconnect_grace_ms: 30_000,
            tick_ms: 250,
            payout_base_cents: 350,
            payout_per_km_cents: 120,
        }
    }
}
