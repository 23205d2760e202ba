//! The matcher's steps, checked without a runtime: offers, declines, expiry, widening,
//! delay, and the one-offer-per-driver rule. Debug builds also run the matcher's own
//! invariant checks after every step.

use super::*;

fn spec(o: u64) -> JobSpec {
    JobSpec {
        order: OrderId(o),
        delivery: DeliveryId(o + 1000),
        pickup: (52.52, 13.40),
        dropoff: (52.53, 13.41),
        // Placed in id order, no value bonus: the queue is oldest first.
        arrived: UnixMs(o as i64),
        value: Cents(0),
    }
}

fn cand(d: u64, dist: f64) -> Candidate {
    Candidate {
        driver: DriverId(d),
        distance_m: dist,
        lat: 52.52,
        lng: 13.40,
        heading_deg: 0.0,
        speed_mps: 0.0,
        acceptance_rate: 1.0,
    }
}

#[test]
fn an_accept_in_progress_neither_expires_nor_takes_a_second_answer() {
    let cfg = MatchConfig::default();
    let mut m = Matcher::new();
    let t0 = UnixMs(1_000_000);
    m.add(spec(1), t0, &cfg);
    let o = m.offered(OrderId(1), DriverId(1), t0, &cfg).unwrap();
    assert_eq!(m.accept(DriverId(1), DeliveryId(1001), t0), Ok(OrderId(1)));
    // A second accept (a retry on another transport) or a decline while the store assigns.
    assert_eq!(
        m.accept(DriverId(1), DeliveryId(1001), t0),
        Err(MatchError::NoSuchOffer)
    );
    assert_eq!(
        m.decline(DriverId(1), DeliveryId(1001), t0, &cfg),
        Err(MatchError::NoSuchOffer)
    );
    // The expiry passing meanwhile frees nothing: no other driver can be offered it.
    assert!(m.expire(t0.plus(cfg.offer_ttl()), &cfg).is_empty());
    assert!(m.due(t0.plus(cfg.offer_ttl()), &cfg).is_empty());
    // Success: the removed offer is the accepter's own.
    assert_eq!(m.remove(OrderId(1)), Some(o));

    // Failure: the order moves on to the next driver.
    m.add(spec(2), t0, &cfg);
    m.offered(OrderId(2), DriverId(1), t0, &cfg).unwrap();
    m.accept(DriverId(1), DeliveryId(1002), t0).unwrap();
    assert_eq!(m.assign_failed(OrderId(2), t0, &cfg), Step::Idle);
    assert!(!m.has_offer(DriverId(1)));
    assert_eq!(m.due(t0, &cfg).len(), 1);
}

#[test]
fn declines_and_timeouts_widen_then_delay() {
    let cfg = MatchConfig::default();
    let mut m = Matcher::new();
    let t0 = UnixMs(1_000_000);
    m.add(spec(1), t0, &cfg);
    assert_eq!(m.due(t0, &cfg)[0].1, 5_000.0);
    // Three offers at 5 km: decline, timeout, decline.
    let o = m.offered(OrderId(1), DriverId(1), t0, &cfg).unwrap();
    assert_eq!(
        m.decline(DriverId(1), DeliveryId(1001), t0, &cfg),
        Ok((OrderId(1), Step::Idle))
    );
    assert!(!m.has_offer(DriverId(1)));
    m.offered(OrderId(1), DriverId(2), t0, &cfg).unwrap();
    let later = t0.plus(cfg.offer_ttl());
    let expired = m.expire(later, &cfg);
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].2, Step::Idle);
    m.offered(OrderId(1), DriverId(3), later, &cfg).unwrap();
    let (_, step) = m
        .decline(DriverId(3), DeliveryId(1001), later, &cfg)
        .unwrap();
    assert_eq!(step, Step::Widened);
    assert_eq!(m.due(later, &cfg)[0].1, 10_000.0);
    // Tried drivers are not offered again; with none left at 10 km the order is delayed.
    let ranked = m.rank(
        OrderId(1),
        vec![cand(1, 10.0), cand(2, 20.0), cand(3, 30.0)],
        &cfg,
        false,
    );
    assert!(ranked.is_empty());
    // Empty searches are rounds too, spaced by `empty_retry`: delayed after the third.
    assert_eq!(m.no_candidate(OrderId(1), later, &cfg), Step::Idle);
    assert!(m.due(later, &cfg).is_empty());
    let later = later.plus(Duration::from_millis(cfg.empty_retry_ms));
    assert_eq!(m.due(later, &cfg).len(), 1);
    assert_eq!(m.no_candidate(OrderId(1), later, &cfg), Step::Idle);
    assert_eq!(m.no_candidate(OrderId(1), later, &cfg), Step::FlagDelayed);
    assert_eq!(m.phase(OrderId(1)), Some(Phase::Delayed));
    assert!(m.due(later, &cfg).is_empty(), "waits before retrying");
    // Delayed, the lockout holds: who declined or timed out is not offered it again...
    let all = vec![cand(1, 10.0), cand(2, 20.0), cand(3, 30.0)];
    assert!(m.rank(OrderId(1), all.clone(), &cfg, false).is_empty());
    // ...unless the exhausted-pool switch is on and nobody else is available.
    let switch = MatchConfig {
        reoffer_when_exhausted: true,
        ..cfg.clone()
    };
    assert_eq!(m.rank(OrderId(1), all.clone(), &switch, false).len(), 3);
    let mut with_new = all;
    with_new.push(cand(4, 40.0));
    let ranked = m.rank(OrderId(1), with_new, &switch, false);
    assert_eq!(
        ranked.iter().map(|c| c.driver).collect::<Vec<_>>(),
        vec![DriverId(4)]
    );
    assert_eq!(o.offer_id, 1);
}

#[test]
fn a_driver_holds_one_offer_and_only_theirs_can_be_accepted() {
    let cfg = MatchConfig::default();
    let mut m = Matcher::new();
    let t0 = UnixMs(0);
    m.add(spec(1), t0, &cfg);
    m.add(spec(2), t0, &cfg);
    m.offered(OrderId(1), DriverId(7), t0, &cfg).unwrap();
    // Driver 7 is not a candidate for order 2 while holding an offer.
    assert_eq!(
        m.rank(OrderId(2), vec![cand(7, 1.0), cand(8, 2.0)], &cfg, true)[0].driver,
        DriverId(8)
    );
    assert_eq!(
        m.accept(DriverId(8), DeliveryId(1001), t0),
        Err(MatchError::NoSuchOffer)
    );
    assert_eq!(
        m.accept(DriverId(7), DeliveryId(1002), t0),
        Err(MatchError::NoSuchOffer)
    );
    assert_eq!(
        m.accept(DriverId(7), DeliveryId(1001), t0.plus(cfg.offer_ttl())),
        Err(MatchError::Expired)
    );
    assert_eq!(m.accept(DriverId(7), DeliveryId(1001), t0), Ok(OrderId(1)));
    assert_eq!(m.remove(OrderId(1)).unwrap().driver, DriverId(7));
    assert!(!m.has_offer(DriverId(7)));
}

#[test]
fn scoring_prefers_near_drivers_heading_to_the_restaurant() {
    let cfg = MatchConfig::default();
    let mut m = Matcher::new();
    m.add(spec(1), UnixMs(0), &cfg);
    // Both 1 km south of the pickup; one drives north (towards it), one south.
    let mut toward = cand(1, 1_000.0);
    toward.lat = 52.511;
    toward.speed_mps = 10.0;
    toward.heading_deg = 0.0;
    let mut away = toward;
    away.driver = DriverId(2);
    away.heading_deg = 180.0;
    let ranked = m.rank(OrderId(1), vec![away, toward], &cfg, false);
    assert_eq!(ranked[0].driver, DriverId(1));
    // A much nearer driver wins over heading.
    let near = cand(3, 50.0);
    assert_eq!(
        m.rank(OrderId(1), vec![away, toward, near], &cfg, false)[0].driver,
        DriverId(3)
    );
    assert!((bearing_deg(52.0, 13.0, 53.0, 13.0) - 0.0).abs() < 1e-9);
    assert!((bearing_deg(52.0, 13.0, 52.0, 14.0) - 90.0).abs() < 1.0);
}

/// Offers lapsing in the same tick come back oldest order first, not in the job map's
/// order: which withdrawal, and which delay flag, comes first must not depend on hashing.
#[test]
fn offers_expiring_together_come_back_oldest_order_first() {
    let cfg = MatchConfig::default();
    let mut m = Matcher::new();
    let t0 = UnixMs(1_000_000);
    for o in (1..=40).rev() {
        m.add(spec(o), t0, &cfg);
        m.offered(OrderId(o), DriverId(o + 100), t0, &cfg).unwrap();
    }
    let expired: Vec<u64> = m
        .expire(t0.plus(cfg.offer_ttl()), &cfg)
        .iter()
        .map(|(o, _, _)| o.0)
        .collect();
    assert_eq!(expired, (1..=40).collect::<Vec<u64>>());
}

#[test]
fn value_moves_an_order_ahead_by_at_most_the_cap() {
    let cfg = MatchConfig::default();
    let mut m = Matcher::new();
    let now = UnixMs(1_000_000);
    let at = |ms: i64, value: i64, o: u64| JobSpec {
        arrived: UnixMs(ms),
        value: Cents(value),
        ..spec(o)
    };
    // Order 1: $5 (10 s bonus), waiting longest. Order 2: 30 s later, $25 (50 s): ahead of 1.
    // Order 3: 130 s after 1, worth $1,000 (bonus capped at 120 s): still behind 1.
    m.add(at(0, 500, 1), now, &cfg);
    m.add(at(30_000, 2_500, 2), now, &cfg);
    m.add(at(130_000, 100_000, 3), now, &cfg);
    let order: Vec<u64> = m.due(now, &cfg).iter().map(|(s, _)| s.order.0).collect();
    assert_eq!(order, vec![2, 1, 3]);
    assert_eq!(cfg.value_bonus_ms(Cents(100_000)), 120_000);
    assert_eq!(cfg.value_bonus_ms(Cents(2_500)), 50_000);
    // A freed driver near the restaurants gets the top one; one who tried it, the next.
    let near = (52.52, 13.40);
    assert_eq!(m.next_for(DriverId(7), near, now, &cfg), Some(OrderId(2)));
    m.offered(OrderId(2), DriverId(8), now, &cfg).unwrap();
    assert_eq!(m.next_for(DriverId(7), near, now, &cfg), Some(OrderId(1)));
    // Far away (beyond 5 km): nothing fits.
    assert_eq!(m.next_for(DriverId(7), (52.70, 13.40), now, &cfg), None);
    // Removing keeps the queue and the jobs in step (the debug checks look).
    m.remove(OrderId(1));
    assert_eq!(m.next_for(DriverId(7), near, now, &cfg), Some(OrderId(3)));
}

/// The queue's promise, over random arrivals and values: whenever two orders both fit a
/// driver, the one that arrived more than V earlier is offered first.
#[test]
fn no_order_is_overtaken_by_one_that_arrived_more_than_the_cap_later() {
    let cfg = MatchConfig::default();
    let v = cfg.value_bonus_cap_ms as i64;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..200 {
        let mut m = Matcher::new();
        let now = UnixMs(10_000_000);
        let n = 2 + rnd(60);
        let mut arrivals = HashMap::new();
        for o in 1..=n {
            let arrived = rnd(600_000) as i64;
            arrivals.insert(OrderId(o), arrived);
            let s = JobSpec {
                arrived: UnixMs(arrived),
                value: Cents(rnd(200_000) as i64),
                ..spec(o)
            };
            m.add(s, now, &cfg);
        }
        // Offer in queue order to distinct drivers, as rounds and freed drivers do.
        let mut offered = Vec::new();
        let mut d = 0;
        while let Some(o) = m.next_for(DriverId(10_000 + d), (52.52, 13.40), now, &cfg) {
            m.offered(o, DriverId(10_000 + d), now, &cfg).unwrap();
            offered.push(o);
            d += 1;
        }
        assert_eq!(
            offered.len() as u64,
            n,
            "round {round}: every order is offered"
        );
        for (i, a) in offered.iter().enumerate() {
            for b in &offered[i + 1..] {
                assert!(
                    arrivals[b] + v >= arrivals[a],
                    "round {round}: {b} arrived {} ms before {a} but was offered after it",
                    arrivals[a] - arrivals[b]
                );
            }
        }
    }
}
