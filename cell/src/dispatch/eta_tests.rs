//! The ETA model against a world whose true distributions are known: learned from past
//! deliveries, its [p10, p90] must cover about 80 % of new ones.

use super::*;

/// Test-side randomness (the model's own sampler is private).
struct Rng(SplitMix);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0.unit()
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The true world: restaurant r prepares in lognormal(median 400 + 40 r s, σ 0.35); drivers
/// move at normal(7, 1.5) m/s, at least 1.
struct World;

impl World {
    fn prep(r: u64, rng: &mut Rng) -> f64 {
        (400.0 + 40.0 * r as f64) * (0.35 * rng.normal()).exp()
    }
    fn speed(rng: &mut Rng) -> f64 {
        (7.0 + 1.5 * rng.normal()).max(1.0)
    }
}

fn trained(rng: &mut Rng) -> EtaModel {
    let mut m = EtaModel::new(EtaConfig::default());
    for r in 0..20 {
        for _ in 0..300 {
            m.learn_prep(r, World::prep(r, rng));
        }
    }
    for _ in 0..3_000 {
        m.learn_speed(7, 42, World::speed(rng));
    }
    m
}

#[test]
fn the_p10_p90_range_covers_about_eighty_percent_of_deliveries() {
    let mut rng = Rng(SplitMix(11));
    let m = trained(&mut rng);
    let cfg = EtaConfig::default();
    let (mut inside, n) = (0, 4_000);
    let mut scratch = Vec::new();
    let mut err = Vec::new();
    for i in 0..n {
        let r = Remaining {
            restaurant: i % 20,
            prep_elapsed_s: Some(0.0),
            to_restaurant_m: 300.0 + 2_000.0 * rng.unit(),
            to_customer_m: 500.0 + 4_000.0 * rng.unit(),
            area: 7,
            hour_of_week: 42,
        };
        let eta = m.estimate(&r, i, &mut scratch);
        // The truth, drawn from the same world the model learned from.
        let v = World::speed(&mut rng);
        let drive_in = r.to_restaurant_m * cfg.detour_factor / v;
        let truth = World::prep(r.restaurant, &mut rng).max(drive_in)
            + cfg.handoff_s
            + r.to_customer_m * cfg.detour_factor / v;
        if (eta.p10_s..=eta.p90_s).contains(&truth) {
            inside += 1;
        }
        err.push((truth - eta.p50_s).abs());
    }
    let coverage = f64::from(inside) / n as f64;
    err.sort_by(f64::total_cmp);
    assert!(
        (0.75..=0.85).contains(&coverage),
        "[p10, p90] covered {:.1} % (median |error| of p50 {:.0} s)",
        coverage * 100.0,
        err[err.len() / 2]
    );
}

#[test]
fn an_unknown_restaurant_uses_the_city_then_the_prior_and_picked_up_skips_the_kitchen() {
    let mut rng = Rng(SplitMix(5));
    let empty = EtaModel::new(EtaConfig::default());
    let trained = trained(&mut rng);
    let mut s = Vec::new();
    let at = |prep: Option<f64>| Remaining {
        restaurant: 999,
        prep_elapsed_s: prep,
        to_restaurant_m: 0.0,
        to_customer_m: 3_000.0,
        area: 123,
        hour_of_week: 0,
    };
    let prior = empty.estimate(&at(Some(0.0)), 1, &mut s);
    let city = trained.estimate(&at(Some(0.0)), 1, &mut s);
    // The prior is wide (5–25 min of kitchen); the city has learned a narrower one.
    assert!(prior.p90_s - prior.p10_s > city.p90_s - city.p10_s);
    // Once picked up, only the drive and the handoff are left.
    let out = trained.estimate(&at(None), 1, &mut s);
    assert!(out.p90_s < city.p10_s, "{out:?} vs {city:?}");
    // The same seed gives the same range: the simulator replays estimates exactly.
    assert_eq!(
        trained.estimate(&at(None), 9, &mut s),
        trained.estimate(&at(None), 9, &mut s)
    );
}

#[test]
fn a_dist_samples_what_it_recorded_and_labels_round_outwards() {
    let mut d = Dist::new(1.0, 1_000.0);
    assert_eq!(d.sample(0.5, 0.5), None);
    for v in 1..=100 {
        d.record(f64::from(v));
    }
    d.record(f64::NAN);
    d.record(-3.0);
    assert_eq!(d.total(), 100);
    let med = d.sample(0.5, 0.5).unwrap();
    assert!((40.0..=60.0).contains(&med), "median draw {med}");
    assert!(d.sample(0.0, 0.0).unwrap() <= 1.2);
    assert!(d.sample(0.999, 0.999).unwrap() >= 90.0);
    let eta = Eta {
        p10_s: 25.0 * 60.0 + 20.0,
        p50_s: 30.0 * 60.0,
        p90_s: 34.0 * 60.0 + 10.0,
    };
    assert_eq!(eta.label(), "25–35 min");
}
