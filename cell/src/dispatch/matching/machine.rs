//! Driver matching (the seed's Flow 2) as a sans-IO state machine: no clock, no geostore, no
//! network. The async matching task (`super::task`) feeds it candidates and time, and
//! carries out what it asks.
//!
//! Per order: offer to the best candidate within 5 km (30 s to answer); decline or timeout
//! → the next candidate; after 3 offers (or when nobody is left) widen to 10 km for 3 more;
//! still nobody → the order is flagged delayed (the customer is told) and matching keeps
//! trying at the wide radius every `retry_delayed`. A driver holds at most one open offer.
//!
//! Waiting orders form one queue (seed §11: older orders first, high value prioritised):
//! priority = seconds waited + a bonus for the order's value capped at V (`QueueKey`), so
//! value can move an order ahead by at most V and none starves. Rounds take orders in that
//! order, and a freed driver is given the first feasible one (`Matcher::next_for`).

use super::queue::QueueKey;
use domain::{Cents, DeliveryId, DriverId, OrderId, UnixMs};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

pub use super::match_config::MatchConfig;

/// What the order needs carried.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub order: OrderId,
    pub delivery: DeliveryId,
    pub pickup: (f64, f64),
    pub dropoff: (f64, f64),
    /// When the order started waiting (its placement: a restart rebuilds the same queue).
    pub arrived: UnixMs,
    /// What the order is worth (its total), for the queue's value bonus.
    pub value: Cents,
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
    key: QueueKey,
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

/// What the matching task must do after a step.
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
    /// Every job in queue order (see [`QueueKey`]).
    queue: BTreeSet<QueueKey>,
    next_offer_id: u64,
}

impl Matcher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts matching an order (idempotent: a known order is left as it is).
    pub fn add(&mut self, spec: JobSpec, now: UnixMs, cfg: &MatchConfig) -> bool {
        if self.jobs.contains_key(&spec.order) {
            return false;
        }
        let spec_order = spec.order;
        let key = QueueKey::of(&spec, cfg);
        self.by_delivery.insert(spec.delivery, spec.order);
        self.queue.insert(key);
        self.jobs.insert(
            spec.order,
            Job {
                spec,
                key,
                phase: Phase::Near,
                offers_in_phase: 0,
                tried: HashSet::new(),
                open: None,
                accepting: false,
                next_attempt: now,
            },
        );
        self.debug_check(spec_order, None);
        true
    }

    /// Stops matching (assigned elsewhere, cancelled). Returns the open offer to withdraw.
    pub fn remove(&mut self, order: OrderId) -> Option<OpenOffer> {
        let job = self.jobs.remove(&order)?;
        self.by_delivery.remove(&job.spec.delivery);
        self.queue.remove(&job.key);
        let open = job.open;
        if let Some(open) = &open {
            self.offered.remove(&open.driver);
        }
        self.debug_check(order, None);
        open
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

    /// Orders that need an offer now (no open offer, next attempt due), in queue order:
    /// highest priority first (see [`QueueKey`]).
    pub fn due(&self, now: UnixMs, cfg: &MatchConfig) -> Vec<(JobSpec, f64)> {
        self.queue
            .iter()
            .filter_map(|k| self.jobs.get(&k.order))
            .filter(|j| j.open.is_none() && j.next_attempt <= now)
            .map(|j| (j.spec.clone(), radius(j, cfg)))
            .collect()
    }

    /// A driver who just became free (online, delivered, declined) at `pos`: the first order
    /// in queue order that is due, not offered, not tried by this driver, and whose pickup is
    /// within its current radius. Walks the queue from the top, so with every order feasible
    /// it looks at one.
    pub fn next_for(
        &self,
        driver: DriverId,
        pos: (f64, f64),
        now: UnixMs,
        cfg: &MatchConfig,
    ) -> Option<OrderId> {
        if self.offered.contains_key(&driver) {
            return None;
        }
        self.queue
            .iter()
            .filter_map(|k| self.jobs.get(&k.order))
            .find(|j| {
                j.open.is_none()
                    && j.next_attempt <= now
                    && !j.tried.contains(&driver)
                    && geostore::haversine_m(pos.0, pos.1, j.spec.pickup.0, j.spec.pickup.1)
                        <= radius(j, cfg)
            })
            .map(|j| j.spec.order)
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
        candidates.retain(|c| !self.offered.contains_key(&c.driver));
        // Lockout: who declined or timed out on this order is not offered it again, unless
        // the switch is on and nobody else is available.
        let fresh = candidates.iter().any(|c| !job.tried.contains(&c.driver));
        if fresh || !cfg.reoffer_when_exhausted {
            candidates.retain(|c| !job.tried.contains(&c.driver));
        }
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
        // Only orders `due` returned (no open offer) are offered, to drivers `rank` returned
        // (none holding an offer), both under the one lock the task holds across the step.
        debug_assert!(
            job.open.is_none(),
            "order {order} already has an open offer"
        );
        debug_assert!(
            !self.offered.contains_key(&driver),
            "driver {driver} already holds an open offer"
        );
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
        self.debug_check(order, Some(cfg));
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
            self.debug_check(order, Some(cfg));
            return Step::Idle;
        }
        let step = self.advance_phase(order, now, cfg);
        self.debug_check(order, Some(cfg));
        step
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
                job.next_attempt = now.plus(Duration::from_millis(cfg.retry_delayed_ms));
                Step::FlagDelayed
            }
            Phase::Delayed => {
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
        let open = job.open.take();
        if let Some(open) = &open {
            self.offered.remove(&open.driver);
        }
        job.offers_in_phase += 1;
        job.next_attempt = now;
        let step = if job.offers_in_phase >= cfg.offers_per_phase && job.phase != Phase::Delayed {
            self.advance_phase(order, now, cfg)
        } else {
            Step::Idle
        };
        if let Some(open) = &open {
            self.debug_check_driver(open.driver);
        }
        self.debug_check(order, Some(cfg));
        step
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
        self.debug_check(order, None);
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

    /// Offers past their expiry, with what to do next for each (the matcher alone: the
    /// dispatch closes the lease in the store first, then calls [`Matcher::lapsed`]).
    pub fn expire(&mut self, now: UnixMs, cfg: &MatchConfig) -> Vec<(OrderId, OpenOffer, Step)> {
        self.expired(now)
            .into_iter()
            .map(|(order, open)| (order, open, self.offer_failed(order, now, cfg)))
            .collect()
    }

    /// Open offers at or past their expiry (nothing changes: the lease in the store decides
    /// first, then [`Matcher::lapsed`] moves the order on).
    pub fn expired(&self, now: UnixMs) -> Vec<(OrderId, OpenOffer)> {
        let mut out: Vec<(OrderId, OpenOffer)> = self
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
        // Oldest order first: the map's iteration order must not decide what comes first.
        out.sort_by_key(|(order, _)| *order);
        out
    }

    /// Offer `offer_id` of `order` ended without an acceptance (its lease closed in the
    /// store): the order moves on. `locked`: the driver declined or timed out, and is not
    /// offered the order again; otherwise (undeliverable, withdrawn, never created) they may
    /// be. A stale id (the order moved on already) changes nothing.
    pub fn lapsed(
        &mut self,
        order: OrderId,
        offer_id: u64,
        locked: bool,
        now: UnixMs,
        cfg: &MatchConfig,
    ) -> Step {
        let Some(job) = self.jobs.get_mut(&order) else {
            return Step::Idle;
        };
        let Some(open) = job.open.as_ref().filter(|o| o.offer_id == offer_id) else {
            return Step::Idle;
        };
        if !locked {
            let driver = open.driver;
            job.tried.remove(&driver);
        }
        job.accepting = false;
        self.offer_failed(order, now, cfg)
    }

    /// Offer ids continue above `last` (the highest one stored, after a restart).
    pub fn resume_offer_ids(&mut self, last: u64) {
        self.next_offer_id = self.next_offer_id.max(last);
    }

    /// An open offer read back from the store after a restart (the job takes the lease's
    /// delivery id). `false` if the order is not waiting or already has one, or the driver
    /// holds another.
    pub fn restore(&mut self, order: OrderId, open: OpenOffer) -> bool {
        if self.offered.contains_key(&open.driver) {
            return false;
        }
        let Some(job) = self.jobs.get_mut(&order) else {
            return false;
        };
        if job.open.is_some() {
            return false;
        }
        // A restart drew a new delivery id for the waiting order; the driver knows the one
        // in the lease.
        if job.spec.delivery != open.delivery {
            self.by_delivery.remove(&job.spec.delivery);
            job.spec.delivery = open.delivery;
            self.by_delivery.insert(open.delivery, order);
        }
        job.tried.insert(open.driver);
        self.offered.insert(open.driver, order);
        self.next_offer_id = self.next_offer_id.max(open.offer_id);
        job.open = Some(open);
        self.debug_check(order, None);
        true
    }

    /// Drivers locked out of `order` (read back from the store after a restart).
    pub fn lock_out(&mut self, order: OrderId, drivers: impl IntoIterator<Item = DriverId>) {
        if let Some(job) = self.jobs.get_mut(&order) {
            job.tried.extend(drivers);
        }
    }

    pub fn phase(&self, order: OrderId) -> Option<Phase> {
        self.jobs.get(&order).map(|j| j.phase)
    }

    /// Debug builds: the invariants around `order` after a step changed it. Only the touched
    /// order and its driver are looked at, so a step stays O(1) with thousands waiting.
    fn debug_check(&self, order: OrderId, cfg: Option<&MatchConfig>) {
        // `add` and `remove` write `jobs` and `by_delivery` together, one entry each.
        debug_assert_eq!(
            self.by_delivery.len(),
            self.jobs.len(),
            "every job, and only a job, is indexed by its delivery"
        );
        // `add` and `remove` insert and remove the queue key with the job.
        debug_assert_eq!(self.queue.len(), self.jobs.len(), "one queue key per job");
        // An entry in `offered` is an open offer of a distinct job.
        debug_assert!(self.offered.len() <= self.jobs.len());
        let Some(job) = self.jobs.get(&order) else {
            return;
        };
        debug_assert_eq!(self.by_delivery.get(&job.spec.delivery), Some(&order));
        match &job.open {
            // `offered` and `offer_failed`/`remove` set and clear both sides together, and
            // `offered` refuses a driver who already holds an offer: the two maps agree, so a
            // driver holds at most one open offer.
            Some(open) => {
                debug_assert_eq!(
                    self.offered.get(&open.driver),
                    Some(&order),
                    "driver {} holds the open offer of order {order}",
                    open.driver
                );
                debug_assert_eq!(open.delivery, job.spec.delivery);
            }
            // `accept` marks only an open offer, and `assign_failed` clears the mark before
            // the offer is dropped.
            None => debug_assert!(!job.accepting, "order {order} accepting without an offer"),
        }
        // A phase ends (and the count restarts) once `offers_per_phase` rounds are used up;
        // only the delayed phase keeps counting, as it retries for ever.
        if let Some(cfg) = cfg
            && job.phase != Phase::Delayed
        {
            debug_assert!(
                job.offers_in_phase < cfg.offers_per_phase.max(1),
                "order {order}: {} rounds in {:?}, {} allowed",
                job.offers_in_phase,
                job.phase,
                cfg.offers_per_phase
            );
        }
    }

    /// Debug builds: `driver`'s entry in `offered`, if any, is the open offer of that order.
    fn debug_check_driver(&self, driver: DriverId) {
        if let Some(order) = self.offered.get(&driver) {
            let holder = self
                .jobs
                .get(order)
                .and_then(|j| j.open.as_ref())
                .map(|o| o.driver);
            debug_assert_eq!(holder, Some(driver), "stale offer index for {driver}");
        }
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
#[path = "machine_tests.rs"]
mod tests;
