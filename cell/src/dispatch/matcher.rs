//! Driver matching (the seed's Flow 2) as a sans-IO state machine: no clock, no geostore, no
//! network. The dispatch driver feeds it candidates and time, and carries out what it asks.
//!
//! Per order: offer to the best candidate within 5 km (30 s to answer); decline or timeout
//! → the next candidate; after 3 offers (or when nobody is left) widen to 10 km for 3 more;
//! still nobody → the order is flagged delayed (the customer is told) and matching keeps
//! trying at the wide radius every `retry_delayed`. A driver holds at most one open offer.

use domain::{DeliveryId, DriverId, OrderId, UnixMs};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Matching settings (`[dispatch.matching]` in the cell config).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatchConfig {
    pub radius_m: f64,
    pub wide_radius_m: f64,
    /// Candidates fetched per attempt (geostore `nearest` k).
    pub candidates: usize,
    pub offer_ttl_ms: u64,
    /// Offers per radius before widening.
    pub offers_per_phase: u32,
    /// Once delayed, how often to look again.
    pub retry_delayed_ms: u64,
    /// After a search found nobody, wait this long before the next round.
    pub empty_retry_ms: u64,
    pub weight_distance: f64,
    pub weight_heading: f64,
    pub weight_acceptance: f64,
    /// More orders waiting than this: skip scoring, offer to the nearest (seed §12 degrade).
    pub degrade_above_waiting: usize,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            radius_m: 5_000.0,
            wide_radius_m: 10_000.0,
            candidates: 20,
            offer_ttl_ms: 30_000,
            offers_per_phase: 3,
            retry_delayed_ms: 30_000,
            empty_retry_ms: 10_000,
            weight_distance: 0.6,
            weight_heading: 0.2,
            weight_acceptance: 0.2,
            degrade_above_waiting: 500,
        }
    }
}

impl MatchConfig {
    pub fn offer_ttl(&self) -> Duration {
        Duration::from_millis(self.offer_ttl_ms)
    }
}

/// What the order needs carried.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub order: OrderId,
    pub delivery: DeliveryId,
    pub pickup: (f64, f64),
    pub dropoff: (f64, f64),
}

/// A driver the geostore returned, with what scoring needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub driver: DriverId,
    pub distance_m: f64,
    pub lat: f64,
    pub lng: f64,
    pub heading_deg: f32,
    pub speed_mps: f32,
    /// 0..=1; new drivers count as 1.
    pub acceptance_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Near,
    Wide,
    Delayed,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OpenOffer {
    pub driver: DriverId,
    pub delivery: DeliveryId,
    pub offer_id: u64,
    pub expires_at: UnixMs,
}

#[derive(Debug, Clone)]
struct Job {
    spec: JobSpec,
    phase: Phase,
    offers_in_phase: u32,
    tried: HashSet<DriverId>,
    open: Option<OpenOffer>,
    /// The open offer's driver accepted and the store is assigning: the offer neither
    /// expires nor takes a second answer until [`Matcher::remove`] or
    /// [`Matcher::assign_failed`].
    accepting: bool,
    next_attempt: UnixMs,
}

/// What the driver of the machine must do after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to do now.
    Idle,
    /// Radius widened; try again at once.
    Widened,
    /// Nobody found after widening: flag the order delayed (once) and tell the customer.
    FlagDelayed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("no open offer of this delivery for this driver")]
    NoSuchOffer,
    #[error("the offer expired")]
    Expired,
}

#[derive(Debug, Default)]
pub struct Matcher {
    jobs: HashMap<OrderId, Job>,
    /// delivery → order, for driver answers that name the delivery.
    by_delivery: HashMap<DeliveryId, OrderId>,
    /// Drivers holding an open offer.
    offered: HashMap<DriverId, OrderId>,
    next_offer_id: u64,
}

impl Matcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts matching an order (idempotent: a known order is left as it is).
    pub fn add(&mut self, spec: JobSpec, now: UnixMs) -> bool {
        if self.jobs.contains_key(&spec.order) {
            return false;
        }
        self.by_delivery.insert(spec.delivery, spec.order);
        self.jobs.insert(
            spec.order,
            Job {
                spec,
                phase: Phase::Near,
                offers_in_phase: 0,
                tried: HashSet::new(),
                open: None,
                accepting: false,
                next_attempt: now,
            },
        );
        true
    }

    /// Stops matching (assigned elsewhere, cancelled). Returns the open offer to withdraw.
    pub fn remove(&mut self, order: OrderId) -> Option<OpenOffer> {
        let job = self.jobs.remove(&order)?;
        self.by_delivery.remove(&job.spec.delivery);
        let open = job.open?;
        self.offered.remove(&open.driver);
        Some(open)
    }

    pub fn waiting(&self) -> usize {
        self.jobs.len()
    }

    pub fn has_offer(&self, driver: DriverId) -> bool {
        self.offered.contains_key(&driver)
    }

    pub fn open_offer_of(&self, driver: DriverId) -> Option<(JobSpec, OpenOffer)> {
        let order = self.offered.get(&driver)?;
        let job = self.jobs.get(order)?;
        Some((job.spec.clone(), job.open.clone()?))
    }

    pub fn order_of_delivery(&self, d: DeliveryId) -> Option<OrderId> {
        self.by_delivery.get(&d).copied()
    }

    /// Orders that need an offer now: no open offer and their next attempt is due.
    pub fn due(&self, now: UnixMs, cfg: &MatchConfig) -> Vec<(JobSpec, f64)> {
        let mut v: Vec<_> = self
            .jobs
            .values()
            .filter(|j| j.open.is_none() && j.next_attempt <= now)
            .map(|j| (j.spec.clone(), radius(j, cfg)))
            .collect();
        // Oldest orders first (ids are time-ordered Snowflakes).
        v.sort_by_key(|(s, _)| s.order);
        v
    }

    /// Ranks candidates for `order`: untried drivers without an open offer, best first.
    /// `degraded` skips scoring: nearest first.
    pub fn rank(
        &self,
        order: OrderId,
        mut candidates: Vec<Candidate>,
        cfg: &MatchConfig,
        degraded: bool,
    ) -> Vec<Candidate> {
        let Some(job) = self.jobs.get(&order) else {
            return vec![];
        };
        candidates
            .retain(|c| !job.tried.contains(&c.driver) && !self.offered.contains_key(&c.driver));
        if degraded {
            candidates.sort_by(|a, b| {
                a.distance_m
                    .total_cmp(&b.distance_m)
                    .then(a.driver.cmp(&b.driver))
            });
            return candidates;
        }
        let radius = radius(job, cfg).max(1.0);
        let pickup = job.spec.pickup;
        let score = |c: &Candidate| -> f64 {
            let near = 1.0 - (c.distance_m / radius).clamp(0.0, 1.0);
            let heading = if c.speed_mps > 1.0 {
                let bearing = bearing_deg(c.lat, c.lng, pickup.0, pickup.1);
                let diff = ((f64::from(c.heading_deg) - bearing).rem_euclid(360.0))
                    .min(360.0 - (f64::from(c.heading_deg) - bearing).rem_euclid(360.0));
                (1.0 + diff.to_radians().cos()) / 2.0
            } else {
                0.5
            };
            cfg.weight_distance * near
                + cfg.weight_heading * heading
                + cfg.weight_acceptance * c.acceptance_rate.clamp(0.0, 1.0)
        };
        let mut scored: Vec<(f64, Candidate)> =
            candidates.into_iter().map(|c| (score(&c), c)).collect();
        scored.sort_by(|(sa, a), (sb, b)| {
            sb.total_cmp(sa)
                .then(a.distance_m.total_cmp(&b.distance_m))
                .then(a.driver.cmp(&b.driver))
        });
        scored.into_iter().map(|(_, c)| c).collect()
    }

    /// Records that an offer went out; returns its id.
    pub fn offered(
        &mut self,
        order: OrderId,
        driver: DriverId,
        now: UnixMs,
        cfg: &MatchConfig,
    ) -> Option<OpenOffer> {
        let job = self.jobs.get_mut(&order)?;
        self.next_offer_id += 1;
        let open = OpenOffer {
            driver,
            delivery: job.spec.delivery,
            offer_id: self.next_offer_id,
            expires_at: now.plus(cfg.offer_ttl()),
        };
        job.open = Some(open.clone());
        job.tried.insert(driver);
        self.offered.insert(driver, order);
        Some(open)
    }

    /// Nobody could be offered this attempt. An empty search counts as a round like a
    /// declined offer: retry after `empty_retry`, widen after `offers_per_phase` rounds, flag
    /// the order delayed after as many more at the wide radius.
    pub fn no_candidate(&mut self, order: OrderId, now: UnixMs, cfg: &MatchConfig) -> Step {
        let Some(job) = self.jobs.get_mut(&order) else {
            return Step::Idle;
        };
        job.offers_in_phase += 1;
        if job.offers_in_phase < cfg.offers_per_phase && job.phase != Phase::Delayed {
            job.next_attempt = now.plus(Duration::from_millis(cfg.empty_retry_ms));
            return Step::Idle;
        }
        self.advance_phase(order, now, cfg)
    }

    fn advance_phase(&mut self, order: OrderId, now: UnixMs, cfg: &MatchConfig) -> Step {
        let Some(job) = self.jobs.get_mut(&order) else {
            return Step::Idle;
        };
        job.offers_in_phase = 0;
        match job.phase {
            Phase::Near => {
                job.phase = Phase::Wide;
                job.next_attempt = now;
                Step::Widened
            }
            Phase::Wide => {
                job.phase = Phase::Delayed;
                // Everyone gets another chance on the next sweep.
                job.tried.clear();
                job.next_attempt = now.plus(Duration::from_millis(cfg.retry_delayed_ms));
                Step::FlagDelayed
            }
            Phase::Delayed => {
                job.tried.clear();
                job.next_attempt = now.plus(Duration::from_millis(cfg.retry_delayed_ms));
                Step::Idle
            }
        }
    }

    /// A declined or expired offer: count it and move on.
    fn offer_failed(&mut self, order: OrderId, now: UnixMs, cfg: &MatchConfig) -> Step {
        let Some(job) = self.jobs.get_mut(&order) else {
            return Step::Idle;
        };
        if let Some(open) = job.open.take() {
            self.offered.remove(&open.driver);
        }
        job.offers_in_phase += 1;
        job.next_attempt = now;
        if job.offers_in_phase >= cfg.offers_per_phase && job.phase != Phase::Delayed {
            return self.advance_phase(order, now, cfg);
        }
        Step::Idle
    }

    /// A driver declined.
    pub fn decline(
        &mut self,
        driver: DriverId,
        delivery: DeliveryId,
        now: UnixMs,
        cfg: &MatchConfig,
    ) -> Result<(OrderId, Step), MatchError> {
        let order = self.check(driver, delivery)?;
        Ok((order, self.offer_failed(order, now, cfg)))
    }

    /// A driver accepted: valid only for their open, unexpired offer, once. The caller then
    /// assigns in the store and calls [`Matcher::remove`] (or [`Matcher::assign_failed`]);
    /// meanwhile the offer cannot expire and a second answer is [`MatchError::NoSuchOffer`],
    /// so no other driver can be offered the order while the store assigns it.
    pub fn accept(
        &mut self,
        driver: DriverId,
        delivery: DeliveryId,
        now: UnixMs,
    ) -> Result<OrderId, MatchError> {
        let order = self.check(driver, delivery)?;
        let Some(job) = self.jobs.get_mut(&order) else {
            return Err(MatchError::NoSuchOffer);
        };
        if job.open.as_ref().is_some_and(|o| o.expires_at <= now) {
            return Err(MatchError::Expired);
        }
        job.accepting = true;
        Ok(order)
    }

    /// The store refused the assignment (driver busy, order gone): treat as a decline.
    pub fn assign_failed(&mut self, order: OrderId, now: UnixMs, cfg: &MatchConfig) -> Step {
        if let Some(job) = self.jobs.get_mut(&order) {
            job.accepting = false;
        }
        self.offer_failed(order, now, cfg)
    }

    fn check(&self, driver: DriverId, delivery: DeliveryId) -> Result<OrderId, MatchError> {
        let order = self
            .by_delivery
            .get(&delivery)
            .ok_or(MatchError::NoSuchOffer)?;
        let open = self
            .jobs
            .get(order)
            .filter(|j| !j.accepting)
            .and_then(|j| j.open.as_ref())
            .ok_or(MatchError::NoSuchOffer)?;
        if open.driver != driver {
            return Err(MatchError::NoSuchOffer);
        }
        Ok(*order)
    }

    /// Offers past their expiry, with what to do next for each.
    pub fn expire(&mut self, now: UnixMs, cfg: &MatchConfig) -> Vec<(OrderId, OpenOffer, Step)> {
        let expired: Vec<(OrderId, OpenOffer)> = self
            .jobs
            .values()
            .filter(|j| !j.accepting)
            .filter_map(|j| {
                j.open
                    .as_ref()
                    .filter(|o| o.expires_at <= now)
                    .map(|o| (j.spec.order, o.clone()))
            })
            .collect();
        expired
            .into_iter()
            .map(|(order, open)| (order, open, self.offer_failed(order, now, cfg)))
            .collect()
    }

    pub fn phase(&self, order: OrderId) -> Option<Phase> {
        self.jobs.get(&order).map(|j| j.phase)
    }
}

fn radius(j: &Job, cfg: &MatchConfig) -> f64 {
    match j.phase {
        Phase::Near => cfg.radius_m,
        Phase::Wide | Phase::Delayed => cfg.wide_radius_m,
    }
}

/// Initial bearing from (lat1, lng1) to (lat2, lng2), degrees clockwise from north.
pub fn bearing_deg(lat1: f64, lng1: f64, lat2: f64, lng2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dl = (lng2 - lng1).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    y.atan2(x).to_degrees().rem_euclid(360.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(o: u64) -> JobSpec {
        JobSpec {
            order: OrderId(o),
            delivery: DeliveryId(o + 1000),
            pickup: (52.52, 13.40),
            dropoff: (52.53, 13.41),
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
        m.add(spec(1), t0);
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
        m.add(spec(2), t0);
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
        m.add(spec(1), t0);
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
        assert_eq!(o.offer_id, 1);
    }

    #[test]
    fn a_driver_holds_one_offer_and_only_theirs_can_be_accepted() {
        let cfg = MatchConfig::default();
        let mut m = Matcher::new();
        let t0 = UnixMs(0);
        m.add(spec(1), t0);
        m.add(spec(2), t0);
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
        m.add(spec(1), UnixMs(0));
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
}
