//! Delivery time as a range (issue 19, "ETA as a range"): what is left of a delivery (the
//! restaurant's remaining preparation, the drive to the restaurant, the handoff, the drive to
//! the customer) drawn from learned distributions, 256 Monte Carlo samples, reported as
//! p10 / p50 / p90 ("25–35 min").
//!
//! Sans-IO and deterministic: observations and time come in as arguments, and the sampler is
//! seeded by the caller (the order id and how many times it was estimated), so the simulator
//! replays an estimate exactly.
//!
//! Distributions are [`Dist`]s: 64 log-spaced bins with counts, sampled by inverse CDF over a
//! cumulative table (a binary search, then a uniform draw inside the bin): about 256 bytes per
//! key, so one per restaurant fits a metro catalog, and a draw costs a few nanoseconds.
//! Keys: preparation time per restaurant (learned from "arrived at restaurant → picked up",
//! or from "ready → picked up" until geofences report arrival), and driving speed per H3
//! resolution-7 cell and hour of the week (learned from on-delivery pings). Unknown keys fall
//! back to a city-wide distribution, and that to a configured prior.

use std::collections::HashMap;

/// Bins per distribution.
const BINS: usize = 64;

/// A learned distribution of positive values over `[lo, hi)`, log-spaced bins.
#[derive(Debug, Clone)]
pub struct Dist {
    lo: f64,
    /// ln(hi / lo) / BINS: the width of a bin in log space.
    step: f64,
    counts: [u32; BINS],
    /// `cum[i]` = observations in bins `0..=i`.
    cum: [u32; BINS],
}

impl Dist {
    /// An empty distribution over `[lo, hi)`; values outside are clamped to the end bins.
    #[must_use]
    pub fn new(lo: f64, hi: f64) -> Self {
        debug_assert!(lo > 0.0 && hi > lo);
        Dist {
            lo,
            step: (hi / lo).ln() / BINS as f64,
            counts: [0; BINS],
            cum: [0; BINS],
        }
    }

    pub fn total(&self) -> u32 {
        self.cum[BINS - 1]
    }

    fn bin(&self, v: f64) -> usize {
        let b = ((v.max(self.lo) / self.lo).ln() / self.step) as usize;
        b.min(BINS - 1)
    }

    /// Records one observation. Counts halve when they near `u32::MAX / 2`, so old
    /// observations fade rather than overflow.
    pub fn record(&mut self, v: f64) {
        if !v.is_finite() || v <= 0.0 {
            return;
        }
        if self.total() >= u32::MAX / 2 {
            for c in &mut self.counts {
                *c /= 2;
            }
            self.rebuild();
        }
        let b = self.bin(v);
        self.counts[b] += 1;
        for c in &mut self.cum[b..] {
            *c += 1;
        }
        debug_assert_eq!(self.cum[BINS - 1], self.counts.iter().sum::<u32>());
    }

    fn rebuild(&mut self) {
        let mut acc = 0;
        for (c, n) in self.cum.iter_mut().zip(self.counts) {
            acc += n;
            *c = acc;
        }
    }

    /// A draw: `u` picks the bin by the cumulative counts, `w` the place inside it (both
    /// uniform in [0, 1)). `None` when empty.
    pub fn sample(&self, u: f64, w: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let target = (u * f64::from(total)) as u32;
        // The first bin whose cumulative count exceeds the target.
        let b = self.cum.partition_point(|&c| c <= target).min(BINS - 1);
        let lo = self.lo * (self.step * b as f64).exp();
        Some(lo * (self.step * w).exp())
    }
}

/// Settings (`[dispatch.eta]`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtaConfig {
    /// Monte Carlo samples per estimate.
    pub samples: usize,
    /// Handing the food over at the door.
    pub handoff_s: f64,
    /// Preparation time assumed before any restaurant reported one, seconds (min, max).
    pub prior_prep_s: (f64, f64),
    /// Driving speed assumed before any ping taught one, m/s (min, max).
    pub prior_speed_mps: (f64, f64),
    /// Straight-line distance × this = road distance.
    pub detour_factor: f64,
}

impl Default for EtaConfig {
    fn default() -> Self {
        EtaConfig {
            samples: 256,
            handoff_s: 120.0,
            prior_prep_s: (300.0, 1_500.0),
            prior_speed_mps: (3.0, 10.0),
            detour_factor: 1.3,
        }
    }
}

/// What is left of one delivery, at the moment of the estimate.
#[derive(Debug, Clone, Copy)]
pub struct Remaining {
    pub restaurant: u64,
    /// Seconds the kitchen has been preparing (0 before confirmation); `None` once picked up.
    pub prep_elapsed_s: Option<f64>,
    /// Metres from the driver to the restaurant (0 once picked up or if nobody is assigned:
    /// then the drive to the restaurant is not counted).
    pub to_restaurant_m: f64,
    /// Metres from the restaurant (or the driver, once picked up) to the customer.
    pub to_customer_m: f64,
    /// The speed key of the area (H3 res-7 cell) and hour of the week.
    pub area: u64,
    pub hour_of_week: u8,
}

/// A range, seconds from now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    pub p10_s: f64,
    pub p50_s: f64,
    pub p90_s: f64,
}

impl Eta {
    /// "25–35 min", rounded outwards to whole minutes.
    #[must_use]
    pub fn label(&self) -> String {
        let lo = (self.p10_s / 60.0).floor().max(1.0) as u64;
        let hi = ((self.p90_s / 60.0).ceil() as u64).max(lo);
        format!("{lo}–{hi} min")
    }
}

/// The learned distributions.
#[derive(Debug)]
pub struct EtaModel {
    cfg: EtaConfig,
    prep: HashMap<u64, Dist>,
    prep_city: Dist,
    speed: HashMap<(u64, u8), Dist>,
    speed_city: Dist,
    prior_prep: Dist,
    prior_speed: Dist,
}

fn uniform(lo: f64, hi: f64) -> Dist {
    let mut d = Dist::new(lo, hi * 1.0001);
    // A flat prior: one observation per bin.
    for i in 0..BINS {
        d.record(lo * ((hi / lo).ln() * (i as f64 + 0.5) / BINS as f64).exp());
    }
    d
}

impl EtaModel {
    #[must_use]
    pub fn new(cfg: EtaConfig) -> Self {
        EtaModel {
            prior_prep: uniform(cfg.prior_prep_s.0, cfg.prior_prep_s.1),
            prior_speed: uniform(cfg.prior_speed_mps.0, cfg.prior_speed_mps.1),
            prep: HashMap::new(),
            prep_city: prep_dist(),
            speed: HashMap::new(),
            speed_city: speed_dist(),
            cfg,
        }
    }

    /// A restaurant took `s` seconds from arrival (or ready) to handing the order over.
    pub fn learn_prep(&mut self, restaurant: u64, s: f64) {
        self.prep
            .entry(restaurant)
            .or_insert_with(prep_dist)
            .record(s);
        self.prep_city.record(s);
    }

    /// A driver on a delivery moved at `mps` in `area` at `hour_of_week`.
    pub fn learn_speed(&mut self, area: u64, hour_of_week: u8, mps: f64) {
        self.speed
            .entry((area, hour_of_week))
            .or_insert_with(speed_dist)
            .record(mps);
        self.speed_city.record(mps);
    }

    /// The most specific distribution with at least `MIN` observations.
    fn pick<'a>(&'a self, own: Option<&'a Dist>, city: &'a Dist, prior: &'a Dist) -> &'a Dist {
        const MIN: u32 = 8;
        own.filter(|d| d.total() >= MIN)
            .or(Some(city).filter(|d| d.total() >= MIN))
            .unwrap_or(prior)
    }

    /// Estimates what is left of a delivery. `seed` makes it reproducible (the order id
    /// mixed with the estimate's number); `scratch` is reused between calls.
    pub fn estimate(&self, r: &Remaining, seed: u64, scratch: &mut Vec<f64>) -> Eta {
        let prep = self.pick(
            self.prep.get(&r.restaurant),
            &self.prep_city,
            &self.prior_prep,
        );
        let speed = self.pick(
            self.speed.get(&(r.area, r.hour_of_week)),
            &self.speed_city,
            &self.prior_speed,
        );
        let mut rng = SplitMix(seed);
        let n = self.cfg.samples.max(1);
        scratch.clear();
        let road = self.cfg.detour_factor;
        for _ in 0..n {
            let v = speed.sample(rng.unit(), rng.unit()).unwrap_or(5.0).max(0.5);
            let drive_in = r.to_restaurant_m * road / v;
            let wait = match r.prep_elapsed_s {
                Some(done) => {
                    let total = prep.sample(rng.unit(), rng.unit()).unwrap_or(600.0);
                    // Neither the kitchen nor the drive waits for the other: the driver
                    // leaves the restaurant at the later of the two.
                    (total - done).max(0.0).max(drive_in)
                }
                None => drive_in,
            };
            let drive_out = r.to_customer_m * road / v;
            scratch.push(wait + self.cfg.handoff_s + drive_out);
        }
        let q = |p: f64, s: &mut Vec<f64>| {
            let k = ((p * s.len() as f64) as usize).min(s.len() - 1);
            *s.select_nth_unstable_by(k, f64::total_cmp).1
        };
        let (p10_s, p50_s, p90_s) = (q(0.1, scratch), q(0.5, scratch), q(0.9, scratch));
        debug_assert!(p10_s <= p50_s && p50_s <= p90_s);
        Eta {
            p10_s,
            p50_s,
            p90_s,
        }
    }
}

fn prep_dist() -> Dist {
    Dist::new(30.0, 7_200.0)
}

fn speed_dist() -> Dist {
    Dist::new(0.5, 40.0)
}

/// SplitMix64: a tiny seeded generator, enough for sampling.
struct SplitMix(u64);

impl SplitMix {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
#[path = "eta_tests.rs"]
mod tests;
