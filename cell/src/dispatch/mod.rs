//! Dispatch: the logistics half of the cell. Driver sessions (QUIC or REST), GPS pings into
//! the geostore, matching orders to drivers (Flow 2), and drivers' progress through a
//! delivery. The QUIC gateway and the REST driver endpoints call the same methods here.
//!
//! Matching decisions are made by the sans-IO [`matching::machine::Matcher`]; the async
//! `matching::task` only feeds it candidates and time and carries out what it asks. Every
//! offer is a lease in the store (`offers`): created, accepted, declined and expired each in
//! one transaction, the accept together with the assignment
//! ([`crate::orders::repo::assign_in`]), so no race can give an order two drivers or a
//! driver two orders, and a repeated accept answers what the first did.

mod config;
pub mod eta;
pub mod handover;
mod history_hook;
pub mod matching;
pub mod offers;
pub mod pings;
pub mod port;
mod revoke;
mod validate;

pub use config::DispatchConfig;

use crate::orders::repo::RepoError;
use crate::orders::{OrderError, Orders};
use crate::tracking::Tracker;
use domain::{Actor, Command, DeliveryId, DriverId, Order, OrderId, OrderStatus, UnixMs};
use geostore::{DriverState, GeoStore};
use matching::machine::Matcher;
use offers::offer_error;
use parking_lot::{Mutex, RwLock};
use pings::{Fix, Ledger, Outcome, PingCounters, PingRejection, SessionSeq};
use schemas::CellBody;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc};

/// Per-driver outbox depth: offers and confirmations are rare; a full box means a dead peer.
const OUTBOX: usize = 32;

/// Why a driver action was refused. Maps to an `ErrorMsg` code on QUIC, a status on REST.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("no open offer or delivery {0} for this driver")]
    UnknownDelivery(DeliveryId),
    /// The offer's lease refused the answer (`offer_expired`, `offer_superseded`,
    /// `order_taken`).
    #[error(transparent)]
    Refused(offers::Refusal),
    #[error("offer store: {0}")]
    Store(#[from] store::StoreError),
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

#[cfg(test)]
impl GpsFix {
    /// A driver standing still at `(lat, lng)`, reporting at `now` (tests).
    pub(crate) fn still((lat, lng): (f64, f64), now: UnixMs) -> GpsFix {
        GpsFix {
            lat,
            lng,
            heading: 0.0,
            speed: 0.0,
            ts_ms: now.0 as u64,
        }
    }
}

/// Per-driver state of the ping path, kept across reconnects. A QUIC session holds its
/// driver's link, so a datagram touches only atomics here (no map lookup, no shared lock).
#[derive(Debug, Default)]
pub struct DriverLink {
    pub pings: PingCounters,
    rate: pings::RateGate,
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
    /// Offers whose message could not be handed to the driver's session (full outbox):
    /// undeliverable unless sent again on reconnect.
    undelivered: std::collections::HashSet<u64>,
    /// Offers of cancelled orders whose leases the next tick closes as withdrawn.
    withdrawn: Vec<offers::OfferId>,
    /// Orders whose matching could not start (no delivery id while the store refused the id
    /// lease): each tick tries them again, so a store fault delays them but strands none.
    unstarted: Vec<Order>,
}

pub struct Dispatch {
    cfg: DispatchConfig,
    geo: Arc<GeoStore>,
    orders: Arc<Orders>,
    tracker: Arc<Tracker>,
    state: Mutex<State>,
    /// Driver → the order they carry: read on every ping to fan out locations.
    carrying: RwLock<HashMap<DriverId, Order>>,
    links: Ledger<DriverLink>,
    ping_metrics: pings::PingMetrics,
    next_session: AtomicU64,
    wake: Notify,
    /// Where spoofed pings and `delivered` taps go for fraud scoring (set at startup when
    /// `[fraud]` is enabled).
    fraud: std::sync::OnceLock<crate::fraud::SignalSink>,
    /// Where the carried order's accepted pings are recorded (set at startup when
    /// `[history]` is enabled).
    history: std::sync::OnceLock<Arc<crate::history::History>>,
    /// `[privacy]`, set at startup (the defaults otherwise).
    privacy: std::sync::OnceLock<crate::personal::PrivacyConfig>,
    /// `address_revoked` messages due at the end of a delivery's grace (`revoke.rs`).
    revocations: Mutex<Vec<revoke::Due>>,
}

fn to_geo(d: DriverId) -> geostore::DriverId {
    geostore::DriverId(d.0)
}

impl Dispatch {
    pub fn new(
        cfg: DispatchConfig,
        geo: Arc<GeoStore>,
        orders: Arc<Orders>,
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
                undelivered: Default::default(),
                withdrawn: Vec::new(),
                unstarted: Vec::new(),
            }),
            carrying: RwLock::new(HashMap::new()),
            links: Ledger::default(),
            ping_metrics: pings::PingMetrics::new(),
            next_session: AtomicU64::new(1),
            wake: Notify::new(),
            fraud: std::sync::OnceLock::new(),
            history: std::sync::OnceLock::new(),
            privacy: std::sync::OnceLock::new(),
            revocations: Mutex::new(Vec::new()),
        }
    }

    pub fn geo(&self) -> &Arc<GeoStore> {
        &self.geo
    }

    pub fn config(&self) -> &DispatchConfig {
        &self.cfg
    }

    /// Sends fraud signals to `sink` from now on (once; later calls are ignored).
    pub fn set_fraud_signals(&self, sink: crate::fraud::SignalSink) {
        let _ = self.fraud.set(sink);
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
            let msg = CellBody::Offer(self.offer_msg(order, &spec, open.offer_id, open.expires_at));
            if tx.try_send(msg).is_ok() {
                st.undelivered.remove(&open.offer_id);
            }
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

    /// The driver's ping-path state (created on first use). A session looks it up once.
    pub fn link(&self, driver: DriverId) -> Arc<DriverLink> {
        self.links.entry(driver)
    }

    /// Every driver's ping counters (or one driver's), sorted by driver id.
    pub fn ping_counts(&self, only: Option<DriverId>) -> Vec<(DriverId, pings::PingCounts)> {
        let links = match only {
            Some(d) => self.links.get(d).map(|l| (d, l)).into_iter().collect(),
            None => self.links.all(),
        };
        links
            .into_iter()
            .map(|(d, l)| (d, l.pings.snapshot()))
            .collect()
    }

    /// One GPS ping without a sequence number (REST).
    pub fn ping(&self, driver: DriverId, fix: GpsFix, now: UnixMs) -> Result<(), PingRejection> {
        self.session_ping(driver, &self.link(driver), None, fix, now)
    }

    /// One GPS ping of a session: `seq` is the ping's sequence number and the session's
    /// highest so far (a ping not above it is dropped as stale). Counted in the driver's link.
    pub fn session_ping(
        &self,
        driver: DriverId,
        link: &DriverLink,
        seq: Option<(u64, &SessionSeq)>,
        fix: GpsFix,
        now: UnixMs,
    ) -> Result<(), PingRejection> {
        let entered = std::time::Instant::now();
        link.pings.arrived(seq.map_or(0, |(s, _)| s));
        if let Some((s, session)) = seq
            && let Err(e) = session.advance(s)
        {
            link.pings.record(Outcome::Stale);
            self.ping_metrics.rejected(&e);
            return Err(e);
        }
        let r = self.checked_ping(driver, link, fix, now, entered);
        link.pings.record(match r {
            Ok(()) => Outcome::Accepted,
            Err(PingRejection::RateLimited) => Outcome::RateLimited,
            Err(_) => Outcome::Rejected,
        });
        r
    }

    /// Checked, within the driver's rate limit, stored in the geostore, fanned out to the
    /// customer tracking the driver's order.
    fn checked_ping(
        &self,
        driver: DriverId,
        link: &DriverLink,
        fix: GpsFix,
        now: UnixMs,
        entered: std::time::Instant,
    ) -> Result<(), PingRejection> {
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
            self.ping_metrics.rejected(&e);
            if let PingRejection::Spoofed { implied_mps } = e {
                if let Some(sink) = self.fraud.get() {
                    sink.send(crate::fraud::Signal::Spoofed {
                        driver,
                        lat,
                        lng,
                        implied_mps,
                        ts_ms,
                        at: now,
                    });
                }
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
        // After the checks (cheap, and a ping they refuse must not spend the driver's
        // allowance), before the geostore write the limit protects.
        let limits = &self.cfg.pings;
        if !link.rate.admit(
            limits.max_pings_per_s,
            limits.ping_burst,
            pings::rate_clock(limits, ts_ms, now),
        ) {
            self.ping_metrics.rejected(&PingRejection::RateLimited);
            return Err(PingRejection::RateLimited);
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
            self.ping_metrics
                .rejected(&PingRejection::InvalidCoordinates);
            return Err(PingRejection::InvalidCoordinates);
        }
        self.ping_metrics.accepted();
        let carrying = self.carrying.read().get(&driver).cloned();
        if let Some(order) = carrying {
            // After a restart the geostore is empty and a first ping registers the driver as
            // available: one carrying an order must not be offered another.
            let _ = self.geo.compare_and_set_state(
                to_geo(driver),
                DriverState::Available,
                DriverState::OnDelivery,
            );
            if let (Some(h), Some(d)) = (self.history.get(), order.delivery_id) {
                // After every check: only accepted pings of the assigned driver are kept.
                let fix = GpsFix {
                    heading,
                    speed,
                    ..fix
                };
                h.record(d, order.id, &fix, now);
            }
            self.tracker
                .location(&order, lat, lng, heading, ts_ms, now, entered);
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
                // Immediate, also after an auto-offline (`missed_offers`), which it clears.
                offers::store::online(&**self.orders.kv(), driver)
                    .await
                    .map_err(offer_error)?;
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
            if let Some(sink) = self.fraud.get() {
                // The driver's last stored fix: where they were when they tapped.
                let tap = self.geo.get(to_geo(driver)).map(|d| (d.lat, d.lng));
                let dropoff = (o.delivery_address.lat, o.delivery_address.lng);
                sink.send(crate::fraud::Signal::DeliveredTap {
                    driver,
                    order: o.id,
                    tap,
                    dropoff,
                    at: now,
                });
            }
            self.carrying.write().remove(&driver);
            self.end_path(&o);
            // The carried order as it was before: what the driver could see.
            self.schedule_revoke(driver, &order, now);
            let _ = self.geo.set_state(to_geo(driver), DriverState::Available);
            self.wake.notify_one();
        } else {
            self.carrying.write().insert(driver, o.clone());
        }
        Ok(Some(o))
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
                self.end_path(order);
            } else if c.contains_key(&d) {
                c.insert(d, order.clone());
            }
        }
    }
}
