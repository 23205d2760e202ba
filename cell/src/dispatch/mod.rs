//! Dispatch: the logistics half of the cell. Driver sessions (QUIC or REST), GPS pings into
//! the geostore, matching orders to drivers (Flow 2), and drivers' progress through a
//! delivery. The QUIC gateway and the REST driver endpoints call the same methods here.
//!
//! Matching decisions are made by the sans-IO [`matcher::Matcher`]; this module only feeds it
//! candidates and time and carries out what it asks. Assignment itself is a store
//! transaction ([`crate::orders::repo::assign_driver`]) so no race can give an order two
//! drivers or a driver two orders.

pub mod matcher;
pub mod pings;
pub mod port;

use crate::orders::repo::{self, RepoError};
use crate::orders::service::{OrderError, OrderService};
use crate::tracking::Tracker;
use domain::{
    Actor, Command, DeliveryId, DriverId, EventKind, Order, OrderEvent, OrderId, OrderStatus,
    UnixMs,
};
use geostore::{DriverState, Filter, GeoStore};
use matcher::{Candidate, JobSpec, MatchConfig, Matcher, Step};
use parking_lot::{Mutex, RwLock};
use pings::{Fix, PingLimits, PingRejection};
use schemas::{Assignment, CancelReason, CancelTarget, Cancellation, CellBody, Offer, Place};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// Per-driver outbox depth: offers and confirmations are rare; a full box means a dead peer.
const OUTBOX: usize = 32;

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

/// Why a driver action was refused. Maps to an `ErrorMsg` code on QUIC, a status on REST.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("no open offer or delivery {0} for this driver")]
    UnknownDelivery(DeliveryId),
    #[error("the offer expired")]
    OfferExpired,
    #[error(transparent)]
    Order(#[from] OrderError),
}

impl From<RepoError> for DispatchError {
    fn from(e: RepoError) -> Self {
        DispatchError::Order(OrderError::Repo(e))
    }
}

/// What a driver tells us about their state or their delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverUpdate {
    Online,
    Offline,
    ArrivedAtRestaurant(DeliveryId),
    PickedUp(DeliveryId),
    Delivered(DeliveryId),
}

/// One GPS fix as a driver reports it (QUIC datagram or REST).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GpsFix {
    pub lat: f64,
    pub lng: f64,
    pub heading: f32,
    pub speed: f32,
    /// Driver clock, Unix milliseconds.
    pub ts_ms: u64,
}

struct Session {
    id: u64,
    tx: Option<mpsc::Sender<CellBody>>,
    /// Set when the connection dropped; the driver goes offline after the grace period.
    lost_at: Option<UnixMs>,
}

#[derive(Default)]
struct DriverStats {
    offers: u64,
    accepts: u64,
    spoof_flags: u64,
}

struct State {
    matcher: Matcher,
    sessions: HashMap<DriverId, Session>,
    stats: HashMap<DriverId, DriverStats>,
    /// Order specs by id, for offers (pickup/dropoff names).
    jobs: HashMap<OrderId, Order>,
}

pub struct Dispatch {
    cfg: DispatchConfig,
    geo: Arc<GeoStore>,
    orders: Arc<OrderService>,
    tracker: Arc<Tracker>,
    state: Mutex<State>,
    /// Driver → the order they carry: read on every ping to fan out locations.
    carrying: RwLock<HashMap<DriverId, Order>>,
    next_session: AtomicU64,
    wake: Notify,
}

/// A `Place` the wire accepts: `address` must be 1..=512 bytes (the coordinates when there
/// is no address), `name` at most 256. An offer failing these checks is dropped by the
/// gateway, so the driver would never see it.
fn place(at: (f64, f64), name: &str, address: &str) -> Place {
    fn clip(s: &str, max: usize) -> String {
        let mut end = s.len().min(max);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    }
    let address = if address.trim().is_empty() {
        format!("{:.6}, {:.6}", at.0, at.1)
    } else {
        clip(address, 512)
    };
    Place {
        lat: at.0,
        lng: at.1,
        name: clip(name, 256),
        address,
    }
}

fn to_geo(d: DriverId) -> geostore::DriverId {
    geostore::DriverId(d.0)
}

impl Dispatch {
    pub fn new(
        cfg: DispatchConfig,
        geo: Arc<GeoStore>,
        orders: Arc<OrderService>,
        tracker: Arc<Tracker>,
    ) -> Self {
        Self {
            cfg,
            geo,
            orders,
            tracker,
            state: Mutex::new(State {
                matcher: Matcher::new(),
                sessions: HashMap::new(),
                stats: HashMap::new(),
                jobs: HashMap::new(),
            }),
            carrying: RwLock::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            wake: Notify::new(),
        }
    }

    pub fn geo(&self) -> &Arc<GeoStore> {
        &self.geo
    }

    pub fn config(&self) -> &DispatchConfig {
        &self.cfg
    }

    // === sessions ===

    /// A driver connected; returns the session id and the outbox the transport drains. A
    /// previous session of the same driver is superseded; an open offer is sent again.
    pub fn connect(&self, driver: DriverId, _now: UnixMs) -> (u64, mpsc::Receiver<CellBody>, bool) {
        let (tx, rx) = mpsc::channel(OUTBOX);
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let mut st = self.state.lock();
        let resumed = st
            .sessions
            .get(&driver)
            .is_some_and(|s| s.lost_at.is_some());
        st.sessions.insert(
            driver,
            Session {
                id,
                tx: Some(tx.clone()),
                lost_at: None,
            },
        );
        if let Some((spec, open)) = st.matcher.open_offer_of(driver)
            && let Some(order) = st.jobs.get(&spec.order)
        {
            let _ = tx.try_send(CellBody::Offer(self.offer_msg(
                order,
                &spec,
                open.offer_id,
                open.expires_at,
            )));
        }
        metrics::gauge!("cell_drivers_connected")
            .set(st.sessions.values().filter(|s| s.lost_at.is_none()).count() as f64);
        (id, rx, resumed)
    }

    /// The transport lost the driver's session (a newer session is left alone).
    pub fn disconnect(&self, driver: DriverId, session: u64, now: UnixMs) {
        let mut st = self.state.lock();
        if let Some(s) = st.sessions.get_mut(&driver)
            && s.id == session
        {
            s.tx = None;
            s.lost_at = Some(now);
        }
        metrics::gauge!("cell_drivers_connected")
            .set(st.sessions.values().filter(|s| s.lost_at.is_none()).count() as f64);
    }

    fn send(&self, st: &State, driver: DriverId, msg: CellBody) -> bool {
        match st.sessions.get(&driver).and_then(|s| s.tx.as_ref()) {
            Some(tx) => tx.try_send(msg).is_ok(),
            None => false,
        }
    }

    // === pings ===

    /// One GPS ping: checked, stored in the geostore, fanned out to the customer tracking
    /// the driver's order.
    pub fn ping(&self, driver: DriverId, fix: GpsFix, now: UnixMs) -> Result<(), PingRejection> {
        let GpsFix {
            lat,
            lng,
            heading,
            speed,
            ts_ms,
        } = fix;
        let prev = self.geo.get(to_geo(driver)).map(|d| Fix {
            lat: d.lat,
            lng: d.lng,
            ts_ms: d.ts_ms,
        });
        if let Err(e) = pings::check(&self.cfg.pings, prev, lat, lng, ts_ms, now) {
            metrics::counter!("cell_pings_rejected_total", "reason" => e.as_str()).increment(1);
            if matches!(e, PingRejection::Spoofed { .. }) {
                self.state
                    .lock()
                    .stats
                    .entry(driver)
                    .or_default()
                    .spoof_flags += 1;
                tracing::warn!(%driver, error = %e, "likely GPS spoofing");
            }
            return Err(e);
        }
        let heading = if heading.is_finite() {
            heading.rem_euclid(360.0)
        } else {
            0.0
        };
        let speed = if speed.is_finite() && speed >= 0.0 {
            speed
        } else {
            0.0
        };
        if self
            .geo
            .upsert(to_geo(driver), lat, lng, heading, speed, ts_ms)
            .is_err()
        {
            metrics::counter!("cell_pings_rejected_total", "reason" => "invalid").increment(1);
            return Err(PingRejection::InvalidCoordinates);
        }
        metrics::counter!("cell_pings_total").increment(1);
        let carrying = self.carrying.read().get(&driver).cloned();
        if let Some(order) = carrying {
            // After a restart the geostore is empty and a first ping registers the driver as
            // available: one carrying an order must not be offered another.
            let _ = self.geo.compare_and_set_state(
                to_geo(driver),
                DriverState::Available,
                DriverState::OnDelivery,
            );
            self.tracker.location(&order, lat, lng, heading, ts_ms, now);
        }
        Ok(())
    }

    /// Spoofing flags recorded for a driver (admin view, tests).
    pub fn spoof_flags(&self, driver: DriverId) -> u64 {
        self.state
            .lock()
            .stats
            .get(&driver)
            .map_or(0, |s| s.spoof_flags)
    }

    // === driver actions ===

    /// Status changes and delivery progress.
    pub async fn update(
        &self,
        driver: DriverId,
        update: DriverUpdate,
        now: UnixMs,
    ) -> Result<Option<Order>, DispatchError> {
        let (cmd, delivery) = match update {
            DriverUpdate::Online => {
                if !self.carrying.read().contains_key(&driver) {
                    let _ = self.geo.set_state(to_geo(driver), DriverState::Available);
                }
                self.wake.notify_one();
                return Ok(None);
            }
            DriverUpdate::Offline => {
                let _ = self.geo.set_state(to_geo(driver), DriverState::Offline);
                return Ok(None);
            }
            DriverUpdate::ArrivedAtRestaurant(d) => (Command::ArriveAtRestaurant, d),
            DriverUpdate::PickedUp(d) => (Command::PickUp, d),
            DriverUpdate::Delivered(d) => (Command::Deliver, d),
        };
        let order = self.carrying.read().get(&driver).cloned();
        let Some(order) = order.filter(|o| o.delivery_id == Some(delivery)) else {
            return Err(DispatchError::UnknownDelivery(delivery));
        };
        let actor = Actor::Driver(driver);
        let (mut o, _) = self
            .orders
            .transition(order.id, cmd.clone(), actor, now)
            .await?;
        if cmd == Command::PickUp {
            // Leaving the restaurant with the food is "on the way" for the customer.
            o = self
                .orders
                .transition(order.id, Command::StartDelivering, actor, now)
                .await?
                .0;
        }
        if o.status == OrderStatus::Delivered {
            self.carrying.write().remove(&driver);
            let _ = self.geo.set_state(to_geo(driver), DriverState::Available);
            self.wake.notify_one();
        } else {
            self.carrying.write().insert(driver, o.clone());
        }
        Ok(Some(o))
    }

    /// A driver's answer to an offer.
    pub async fn respond(
        &self,
        driver: DriverId,
        delivery: DeliveryId,
        accept: bool,
        now: UnixMs,
    ) -> Result<Option<Order>, DispatchError> {
        let cfg = &self.cfg.matching;
        if !accept {
            let r = self
                .state
                .lock()
                .matcher
                .decline(driver, delivery, now, cfg);
            let (order, step) = r.map_err(|_| DispatchError::UnknownDelivery(delivery))?;
            let _ = self.geo.compare_and_set_state(
                to_geo(driver),
                DriverState::Offered,
                DriverState::Available,
            );
            metrics::counter!("cell_offers_total", "outcome" => "declined").increment(1);
            self.after_step(order, step, now).await;
            self.wake.notify_one();
            return Ok(None);
        }
        let order = {
            let mut st = self.state.lock();
            match st.matcher.accept(driver, delivery, now) {
                Ok(o) => o,
                Err(matcher::MatchError::Expired) => return Err(DispatchError::OfferExpired),
                Err(matcher::MatchError::NoSuchOffer) => {
                    return Err(DispatchError::UnknownDelivery(delivery));
                }
            }
        };
        let kv = self.orders.kv().clone();
        match repo::assign_driver(&*kv, self.orders.log(), order, driver, delivery, now).await {
            Ok((o, _)) => {
                let mut st = self.state.lock();
                let open = st.matcher.remove(order);
                st.jobs.remove(&order);
                st.stats.entry(driver).or_default().accepts += 1;
                let offer_id = open.map_or(0, |o| o.offer_id);
                self.send(
                    &st,
                    driver,
                    CellBody::Assignment(Assignment {
                        offer_id,
                        delivery_id: delivery.0,
                        order_id: order.0,
                    }),
                );
                drop(st);
                let _ = self.geo.set_state(to_geo(driver), DriverState::OnDelivery);
                self.carrying.write().insert(driver, o.clone());
                metrics::counter!("cell_offers_total", "outcome" => "accepted").increment(1);
                metrics::gauge!("cell_matching_waiting")
                    .set(self.state.lock().matcher.waiting() as f64);
                Ok(Some(o))
            }
            Err(e) => {
                let step = self.state.lock().matcher.assign_failed(order, now, cfg);
                let _ = self.geo.compare_and_set_state(
                    to_geo(driver),
                    DriverState::Offered,
                    DriverState::Available,
                );
                metrics::counter!("cell_offers_total", "outcome" => "assign_failed").increment(1);
                self.after_step(order, step, now).await;
                self.wake.notify_one();
                Err(e.into())
            }
        }
    }

    async fn after_step(&self, order: OrderId, step: Step, now: UnixMs) {
        match step {
            Step::Idle => {}
            Step::Widened => {
                metrics::counter!("cell_matching_widened_total").increment(1);
            }
            Step::FlagDelayed => {
                metrics::counter!("cell_matching_delayed_total").increment(1);
                if let Err(e) = self
                    .orders
                    .transition(order, Command::FlagDelayed, Actor::System, now)
                    .await
                {
                    tracing::debug!(%order, error = %e, "could not flag order delayed");
                }
            }
        }
    }

    // === matching ===

    /// Starts matching an order (idempotent).
    pub fn start_matching(&self, order: Order, now: UnixMs) {
        if order.driver_id.is_some() || order.status.is_terminal() {
            return;
        }
        let delivery = order
            .delivery_id
            .unwrap_or_else(|| self.orders.next_delivery_id(now));
        let spec = JobSpec {
            order: order.id,
            delivery,
            pickup: (order.restaurant_lat, order.restaurant_lng),
            dropoff: (order.delivery_address.lat, order.delivery_address.lng),
        };
        let mut st = self.state.lock();
        if st.matcher.add(spec, now) {
            st.jobs.insert(order.id, order);
            metrics::gauge!("cell_matching_waiting").set(st.matcher.waiting() as f64);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Stops matching a cancelled order; tells a driver who had it.
    pub fn order_cancelled(
        &self,
        order: OrderId,
        driver: Option<DriverId>,
        delivery: Option<DeliveryId>,
    ) {
        let mut st = self.state.lock();
        if let Some(open) = st.matcher.remove(order) {
            let _ = self.geo.compare_and_set_state(
                to_geo(open.driver),
                DriverState::Offered,
                DriverState::Available,
            );
            let target = CancelTarget::Offer {
                offer_id: open.offer_id,
                delivery_id: open.delivery.0,
            };
            self.send(
                &st,
                open.driver,
                CellBody::Cancellation(Cancellation {
                    target,
                    reason: CancelReason::OrderCancelled,
                }),
            );
        }
        st.jobs.remove(&order);
        if let (Some(d), Some(del)) = (driver, delivery) {
            let target = CancelTarget::Delivery { delivery_id: del.0 };
            self.send(
                &st,
                d,
                CellBody::Cancellation(Cancellation {
                    target,
                    reason: CancelReason::OrderCancelled,
                }),
            );
            drop(st);
            self.carrying.write().remove(&d);
            let _ = self.geo.set_state(to_geo(d), DriverState::Available);
        }
    }

    fn offer_msg(&self, order: &Order, spec: &JobSpec, offer_id: u64, expires_at: UnixMs) -> Offer {
        let km =
            geostore::haversine_m(spec.pickup.0, spec.pickup.1, spec.dropoff.0, spec.dropoff.1)
                / 1000.0;
        Offer {
            offer_id,
            delivery_id: spec.delivery.0,
            order_id: order.id.0,
            // The order keeps no restaurant address; the driver navigates by coordinates.
            pickup: place(spec.pickup, &order.restaurant_name, ""),
            dropoff: place(spec.dropoff, "", &order.delivery_address.formatted),
            payout_cents: self.cfg.payout_base_cents
                + (km * self.cfg.payout_per_km_cents as f64).round() as i64,
            expires_at_ms: expires_at.0.max(0) as u64,
        }
    }

    /// One pass: expire offers and lost sessions, then offer waiting orders to drivers.
    pub async fn tick(&self, now: UnixMs) {
        let cfg = &self.cfg.matching;
        let mut steps = Vec::new();
        {
            let mut st = self.state.lock();
            for (order, open, step) in st.matcher.expire(now, cfg) {
                let _ = self.geo.compare_and_set_state(
                    to_geo(open.driver),
                    DriverState::Offered,
                    DriverState::Available,
                );
                metrics::counter!("cell_offers_total", "outcome" => "expired").increment(1);
                self.send(
                    &st,
                    open.driver,
                    CellBody::Cancellation(Cancellation {
                        target: CancelTarget::Offer {
                            offer_id: open.offer_id,
                            delivery_id: open.delivery.0,
                        },
                        reason: CancelReason::OfferExpired,
                    }),
                );
                steps.push((order, step));
            }
            // Drivers whose connection stayed lost past the grace period go offline.
            let grace = Duration::from_millis(self.cfg.reconnect_grace_ms);
            let gone: Vec<DriverId> = st
                .sessions
                .iter()
                .filter(|(_, s)| s.lost_at.is_some_and(|t| now.since(t) >= grace))
                .map(|(d, _)| *d)
                .collect();
            for d in gone {
                st.sessions.remove(&d);
                if !self.carrying.read().contains_key(&d) {
                    let _ = self.geo.set_state(to_geo(d), DriverState::Offline);
                }
                // An offer they held moves on at once.
                if let Some((spec, _)) = st.matcher.open_offer_of(d)
                    && let Ok((order, step)) = st.matcher.decline(d, spec.delivery, now, cfg)
                {
                    steps.push((order, step));
                }
            }
        }
        for (order, step) in steps {
            self.after_step(order, step, now).await;
        }
        self.offer_waiting(now).await;
    }

    async fn offer_waiting(&self, now: UnixMs) {
        let cfg = &self.cfg.matching;
        let due = self.state.lock().matcher.due(now, cfg);
        let degraded = due.len() > cfg.degrade_above_waiting;
        if degraded {
            metrics::counter!("cell_matching_degraded_total").increment(1);
        }
        for (spec, radius) in due {
            let start = std::time::Instant::now();
            let hits = self
                .geo
                .nearest(
                    spec.pickup.0,
                    spec.pickup.1,
                    radius,
                    cfg.candidates,
                    Filter::available(now.0.max(0) as u64),
                )
                .unwrap_or_default();
            let step = {
                let mut st = self.state.lock();
                let candidates: Vec<Candidate> = hits
                    .iter()
                    .map(|h| {
                        let s = st.stats.get(&DriverId(h.driver.id.0));
                        let rate = s
                            .filter(|s| s.offers >= 3)
                            .map_or(1.0, |s| s.accepts as f64 / s.offers as f64);
                        Candidate {
                            driver: DriverId(h.driver.id.0),
                            distance_m: h.distance_m,
                            lat: h.driver.lat,
                            lng: h.driver.lng,
                            heading_deg: h.driver.heading_deg,
                            speed_mps: h.driver.speed_mps,
                            acceptance_rate: rate,
                        }
                    })
                    .collect();
                let ranked = st.matcher.rank(spec.order, candidates, cfg, degraded);
                let mut sent = false;
                for c in ranked {
                    // QUIC drivers must be connected; REST-only drivers (no session) poll for offers.
                    let reachable = st.sessions.get(&c.driver).is_none_or(|s| s.tx.is_some());
                    if !reachable {
                        continue;
                    }
                    // Atomically claim the driver: a concurrent offer elsewhere loses this race.
                    if self.geo.compare_and_set_state(
                        to_geo(c.driver),
                        DriverState::Available,
                        DriverState::Offered,
                    ) != Ok(true)
                    {
                        continue;
                    }
                    let Some(open) = st.matcher.offered(spec.order, c.driver, now, cfg) else {
                        break;
                    };
                    let Some(order) = st.jobs.get(&spec.order) else {
                        break;
                    };
                    let msg = CellBody::Offer(self.offer_msg(
                        order,
                        &spec,
                        open.offer_id,
                        open.expires_at,
                    ));
                    st.stats.entry(c.driver).or_default().offers += 1;
                    // A full outbox keeps the offer open: it is sent again on reconnect or expires.
                    self.send(&st, c.driver, msg);
                    metrics::counter!("cell_offers_total", "outcome" => "sent").increment(1);
                    sent = true;
                    break;
                }
                let step = if sent {
                    Step::Idle
                } else {
                    st.matcher.no_candidate(spec.order, now, cfg)
                };
                metrics::gauge!("cell_matching_waiting").set(st.matcher.waiting() as f64);
                step
            };
            metrics::histogram!("cell_match_attempt_seconds").record(start.elapsed().as_secs_f64());
            if step == Step::Widened {
                metrics::counter!("cell_matching_widened_total").increment(1);
                self.wake.notify_one();
            } else {
                self.after_step(spec.order, step, now).await;
            }
        }
    }

    /// Reacts to an order event from the log (the durable "matching" consumer).
    pub fn on_event(&self, ev: &OrderEvent, order: Option<Order>, now: UnixMs) {
        match ev.kind {
            EventKind::OrderConfirmed => {
                if let Some(o) = order {
                    self.start_matching(o, now);
                }
            }
            EventKind::OrderCancelled | EventKind::OrderRejected => {
                let (driver, delivery) =
                    order.map_or((None, None), |o| (o.driver_id, o.delivery_id));
                self.order_cancelled(ev.order_id, driver, delivery);
            }
            EventKind::OrderCreated
            | EventKind::OrderPreparing
            | EventKind::OrderReady
            | EventKind::DriverAssigned
            | EventKind::DriverUnassigned
            | EventKind::DriverAtRestaurant
            | EventKind::OrderPickedUp
            | EventKind::OrderDelivering
            | EventKind::OrderDelivered
            | EventKind::OrderDelayed => {}
        }
    }

    /// Rebuilds matching and "who carries what" from the store after a restart.
    pub async fn recover(&self, now: UnixMs) -> Result<(), RepoError> {
        let kv = self.orders.kv().clone();
        for s in [
            OrderStatus::Confirmed,
            OrderStatus::Preparing,
            OrderStatus::ReadyForPickup,
        ] {
            for o in repo::list_by_status(&*kv, s, 100_000).await? {
                self.start_matching(o, now);
            }
        }
        for s in [
            OrderStatus::DriverAssigned,
            OrderStatus::DriverAtRestaurant,
            OrderStatus::PickedUp,
            OrderStatus::Delivering,
        ] {
            for o in repo::list_by_status(&*kv, s, 100_000).await? {
                if let Some(d) = o.driver_id {
                    self.carrying.write().insert(d, o);
                }
            }
        }
        Ok(())
    }

    /// Runs the matching loop until `shutdown` flips: ticks on a timer and when woken.
    pub async fn run(
        self: Arc<Self>,
        clock: Arc<dyn crate::app::Clock>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = Duration::from_millis(self.cfg.tick_ms.max(10));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            self.tick(clock.now()).await;
            let swept = self.geo.sweep(clock.now().0.max(0) as u64);
            let _ = swept;
        }
    }

    /// The order a driver holds an open offer for (status `offered` in the response).
    pub fn open_offer(&self, driver: DriverId) -> Option<Order> {
        let st = self.state.lock();
        let (spec, _) = st.matcher.open_offer_of(driver)?;
        let mut o = st.jobs.get(&spec.order)?.clone();
        o.delivery_id = Some(spec.delivery);
        Some(o)
    }

    /// More orders wait for a driver than matching handles with scoring: the cell is
    /// overloaded, and non-essential work (notifications) is shed.
    pub fn is_overloaded(&self) -> bool {
        self.state.lock().matcher.waiting() > self.cfg.matching.degrade_above_waiting
    }

    /// The order a driver carries now, if any.
    pub fn carrying(&self, driver: DriverId) -> Option<Order> {
        self.carrying.read().get(&driver).cloned()
    }

    /// Refreshes the cached order a driver carries (after a status event).
    pub fn refresh_carried(&self, order: &Order) {
        if let Some(d) = order.driver_id {
            let mut c = self.carrying.write();
            if order.status.is_terminal() {
                c.remove(&d);
            } else if c.contains_key(&d) {
                c.insert(d, order.clone());
            }
        }
    }
}
