//! What one run simulates: the seed, the city's size, how long, which faults, which matching.

use crate::faults::FaultPlan;
use cell::dispatch::matching::machine::MatchConfig;

/// 2026-03-02 00:00 in Berlin (the demo city's zone): every simulated day starts here.
pub const DAY_START_MS: i64 = 1_772_406_000_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const MINUTE_MS: i64 = 60_000;

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    /// Orders a whole day brings (spread by the demand curve).
    pub orders_per_day: u32,
    /// Drivers with a shift that day.
    pub drivers: u32,
    pub restaurants: usize,
    /// Local hour of day the run starts at.
    pub start_hour: f64,
    /// How long customers order (and faults fire), in hours.
    pub hours: f64,
    /// After that, the bound within which every order must end.
    pub drain_ms: i64,
    pub faults: FaultPlan,
    pub matching: MatchConfig,
    /// Stop (successfully) after this many steps.
    pub until_step: Option<u64>,
    /// Print every trace line.
    pub verbose: bool,
    /// Record carried deliveries' paths (`cell::history`), flushed every segment interval.
    pub history: bool,
}

impl SimConfig {
    /// A small city around lunch: what `sim run` and the seed sweeps use by default.
    pub fn small(seed: u64) -> Self {
        Self {
            seed,
            orders_per_day: 2_000,
            drivers: 60,
            restaurants: 60,
            start_hour: 11.75,
            hours: 0.5,
            drain_ms: 90 * MINUTE_MS,
            faults: FaultPlan::none(),
            matching: MatchConfig::default(),
            until_step: None,
            verbose: false,
            history: false,
        }
    }

    /// The city the CI seed sweep and the fault tests use: 30 simulated minutes at lunch.
    pub fn ci(seed: u64) -> Self {
        Self {
            orders_per_day: 1_500,
            drivers: 40,
            restaurants: 40,
            ..Self::small(seed)
        }
    }

    pub fn start_ms(&self) -> i64 {
        DAY_START_MS + (self.start_hour * HOUR_MS as f64) as i64
    }

    /// When customers stop ordering and faults stop.
    pub fn active_end_ms(&self) -> i64 {
        self.start_ms() + (self.hours * HOUR_MS as f64) as i64
    }
}
