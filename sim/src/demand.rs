//! The day's demand: a base rate through the day (low at night), a lunch peak and a dinner
//! peak at five times the base. Arrivals are a Poisson process with that rate, drawn by
//! thinning, so the same seed gives the same customers.

use crate::config::HOUR_MS;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

fn bump(h: f64, centre: f64, width: f64) -> f64 {
    let z = (h - centre) / width;
    (-0.5 * z * z).exp()
}

/// Relative demand at local hour `h` (0..24): 1 is the daytime base, the dinner peak is 5.
pub fn weight(h: f64) -> f64 {
    let h = h.rem_euclid(24.0);
    let base = if (7.0..23.5).contains(&h) { 1.0 } else { 0.15 };
    base + 2.0 * bump(h, 12.75, 0.9) + 4.0 * bump(h, 19.5, 1.2)
}

/// The highest weight (for thinning).
pub const MAX_WEIGHT: f64 = 5.05;

/// The day's total weight-hours (numerically), so a day brings `orders_per_day` orders.
pub fn day_weight() -> f64 {
    let steps = 24 * 60;
    (0..steps).map(|i| weight(i as f64 / 60.0) / 60.0).sum()
}

/// Arrivals per ms at weight 1.
pub fn base_rate_per_ms(orders_per_day: u32) -> f64 {
    f64::from(orders_per_day) / day_weight() / HOUR_MS as f64
}

/// The next arrival after `now_ms` (local hour from `day_start_ms`), by thinning.
pub fn next_arrival(rng: &mut ChaCha8Rng, now_ms: i64, day_start_ms: i64, base_per_ms: f64) -> i64 {
    let max = base_per_ms * MAX_WEIGHT;
    let mut t = now_ms as f64;
    loop {
        let u: f64 = rng.random::<f64>().max(1e-12);
        t += -u.ln() / max;
        let h = (t - day_start_ms as f64) / HOUR_MS as f64;
        if rng.random::<f64>() * MAX_WEIGHT <= weight(h) {
            return t.ceil() as i64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn dinner_peaks_at_five_times_the_base() {
        let peak = (0..2400)
            .map(|i| weight(i as f64 / 100.0))
            .fold(0.0, f64::max);
        assert!((peak - 5.0).abs() < 0.1, "{peak}");
        assert!(peak <= MAX_WEIGHT);
        assert!(weight(12.75) > 2.5 && weight(3.0) < 0.2);
    }

    #[test]
    fn a_day_brings_about_the_orders_asked_for() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let rate = base_rate_per_ms(5_000);
        let (mut t, mut n) = (0, 0);
        while t < 24 * HOUR_MS {
            t = next_arrival(&mut rng, t, 0, rate);
            n += 1;
        }
        assert!((4_700..5_300).contains(&n), "{n}");
    }
}
