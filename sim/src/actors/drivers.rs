//! Drivers on shifts: they connect, move in straight lines at city speeds, send a fix every
//! 5 s, think over offers (accepting most), go to the restaurant, wait for the food, take it
//! to the customer. They act on their session's messages (offers, assignments,
//! cancellations) and on the answers to their requests.

use crate::actors::{distance_m, offset};
use crate::apps::{Msg, Reply};
use crate::config::{HOUR_MS, SimConfig};
use crate::world::{Ev, World};
use cell::dispatch::{DriverUpdate, GpsFix};
use domain::{DeliveryId, DriverId, OrderId, UnixMs};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use schemas::{CancelTarget, CellBody};
use std::collections::BTreeMap;
use tokio::sync::mpsc::Receiver;

const PING_MS: i64 = 5_000;
/// The demo city's centre.
const CENTRE: (f64, f64) = (52.52, 13.405);

/// What a driver is doing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Job {
    Idle,
    Offered {
        delivery: u64,
        order: u64,
        pickup: (f64, f64),
        dropoff: (f64, f64),
    },
    ToRestaurant(Trip),
    AtRestaurant(Trip),
    ToCustomer(Trip),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trip {
    pub order: u64,
    pub delivery: u64,
    pub pickup: (f64, f64),
    pub dropoff: (f64, f64),
}

pub struct Driver {
    pub id: DriverId,
    pub shift: (i64, i64),
    pub on: bool,
    pub pos: (f64, f64),
    pub target: (f64, f64),
    pub speed_mps: f64,
    pub accept_p: f64,
    pub job: Job,
    /// A delivery update is on its way: do not send another.
    pub waiting: bool,
    session: Option<u64>,
    rx: Option<Receiver<CellBody>>,
    busy_since: Option<i64>,
    pub busy: Vec<(i64, i64)>,
}

pub struct Drivers {
    pub list: Vec<Driver>,
    /// Offers each order received.
    pub offers: BTreeMap<u64, u32>,
}

impl Drivers {
    pub fn new(cfg: &SimConfig, rng: &mut ChaCha8Rng) -> Self {
        let list = (0..cfg.drivers)
            .map(|i| {
                let shift = if cfg.hours >= 24.0 {
                    // Shifts start where demand builds up: drawn by the demand curve.
                    let start = loop {
                        let h = rng.random_range(0.0..24.0);
                        if rng.random::<f64>() * crate::demand::MAX_WEIGHT
                            <= crate::demand::weight(h + 1.5)
                        {
                            break h;
                        }
                    };
                    let len = rng.random_range(4.0..9.0);
                    let s = crate::config::DAY_START_MS + (start * HOUR_MS as f64) as i64;
                    (s, s + (len * HOUR_MS as f64) as i64)
                } else {
                    let s = cfg.start_ms() - rng.random_range(0..2 * HOUR_MS);
                    (
                        s,
                        cfg.active_end_ms() + rng.random_range(HOUR_MS..3 * HOUR_MS),
                    )
                };
                let pos = offset(
                    CENTRE,
                    rng.random_range(0.0..5_000.0),
                    rng.random_range(0.0..std::f64::consts::TAU),
                );
                Driver {
                    id: DriverId(1_000 + u64::from(i)),
                    shift,
                    on: false,
                    pos,
                    target: pos,
                    speed_mps: rng.random_range(6.0..10.0),
                    accept_p: rng.random_range(0.7..0.97),
                    job: Job::Idle,
                    waiting: false,
                    session: None,
                    rx: None,
                    busy_since: None,
                    busy: Vec::new(),
                }
            })
            .collect();
        Self {
            list,
            offers: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn id(&self, d: usize) -> DriverId {
        self.list[d].id
    }

    pub fn shift_start(&self, d: usize) -> i64 {
        self.list[d].shift.0
    }

    pub fn on_shift(&self) -> Vec<usize> {
        (0..self.list.len()).filter(|d| self.list[*d].on).collect()
    }

    pub fn connected(&mut self, d: usize, session: u64, rx: Receiver<CellBody>) {
        self.list[d].session = Some(session);
        self.list[d].rx = Some(rx);
    }

    /// The cell died: every session with it is gone.
    pub fn drop_sessions(&mut self) {
        for d in &mut self.list {
            d.session = None;
            d.rx = None;
        }
    }
}

fn to_target(from: (f64, f64), to: (f64, f64), step_m: f64) -> ((f64, f64), bool) {
    let dist = distance_m(from, to);
    if dist <= step_m {
        return (to, true);
    }
    let f = step_m / dist;
    (
        (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f),
        false,
    )
}

impl World {
    pub(crate) fn shift_start(&mut self, d: usize) {
        self.drivers.list[d].on = true;
        self.log(|| format!("driver {d} starts"));
        self.send(Msg::Connect(d));
        let first = self.rng.random_range(0..PING_MS);
        self.at(first, Ev::Move(d));
    }

    pub(crate) fn reconnect(&mut self, d: usize) {
        if self.drivers.list[d].on && !self.net.is_cut(self.drivers.list[d].id.0, self.now) {
            self.send(Msg::Connect(d));
        }
    }

    /// The session is cut (partition): the transport notices and dispatch is told.
    pub(crate) fn lose_session(&mut self, d: usize) {
        let drv = &mut self.drivers.list[d];
        drv.rx = None;
        if let (Some(s), Some(n)) = (drv.session.take(), &self.node) {
            n.dispatch.disconnect(drv.id, s, UnixMs(self.now));
        }
    }

    pub(crate) fn move_driver(&mut self, d: usize) {
        let now = self.now;
        let drv = &mut self.drivers.list[d];
        if !drv.on {
            return;
        }
        if now >= drv.shift.1 && drv.job == Job::Idle {
            drv.on = false;
            self.log(|| format!("driver {d} ends shift"));
            self.send(Msg::Update(d, DriverUpdate::Offline));
            return;
        }
        let step = drv.speed_mps * (PING_MS as f64 / 1_000.0);
        let before = drv.pos;
        let (pos, arrived) = to_target(drv.pos, drv.target, step);
        drv.pos = pos;
        let heading = crate::actors::distance_m(before, pos);
        let fix = GpsFix {
            lat: pos.0,
            lng: pos.1,
            heading: if heading > 0.0 {
                cell::dispatch::matching::machine::bearing_deg(before.0, before.1, pos.0, pos.1)
                    as f32
            } else {
                0.0
            },
            speed: (heading / 5.0) as f32,
            ts_ms: now as u64,
        };
        let job = drv.job;
        let waiting = drv.waiting;
        match job {
            Job::Idle | Job::Offered { .. } if arrived => {
                let b = self.rng.random_range(0.0..std::f64::consts::TAU);
                let mut t = offset(pos, self.rng.random_range(300.0..1_500.0), b);
                if distance_m(t, CENTRE) > 6_000.0 {
                    t = offset(CENTRE, self.rng.random_range(0.0..3_000.0), b);
                }
                self.drivers.list[d].target = t;
            }
            Job::ToRestaurant(trip) if arrived && !waiting => {
                self.drivers.list[d].waiting = true;
                let u = DriverUpdate::ArrivedAtRestaurant(DeliveryId(trip.delivery));
                self.send(Msg::Update(d, u));
            }
            Job::AtRestaurant(trip)
                if !waiting && self.restaurants.ready(OrderId(trip.order), now) =>
            {
                self.drivers.list[d].waiting = true;
                self.send(Msg::Update(
                    d,
                    DriverUpdate::PickedUp(DeliveryId(trip.delivery)),
                ));
            }
            Job::ToCustomer(trip) if arrived && !waiting => {
                self.drivers.list[d].waiting = true;
                self.send(Msg::Update(
                    d,
                    DriverUpdate::Delivered(DeliveryId(trip.delivery)),
                ));
            }
            _ => {}
        }
        let id = self.drivers.list[d].id.0;
        for at in self.net.send(now, crate::net::From::Driver(id)) {
            self.queue.push(at, Ev::PingIn(d, fix));
        }
        self.at(PING_MS, Ev::Move(d));
    }

    pub(crate) fn ping_in(&mut self, d: usize, fix: GpsFix) {
        if let Some(n) = &self.node {
            let _ = n
                .dispatch
                .ping(self.drivers.list[d].id, fix, UnixMs(self.now));
        }
    }

    pub(crate) fn answer(&mut self, d: usize, delivery: u64, accept: bool) {
        if let Job::Offered { delivery: x, .. } = self.drivers.list[d].job
            && x == delivery
        {
            self.log(|| format!("driver {d} answers {delivery} accept={accept}"));
            self.send(Msg::Respond(d, DeliveryId(delivery), accept));
            if !accept {
                self.drivers.list[d].job = Job::Idle;
            }
        }
    }

    fn start_trip(&mut self, d: usize, delivery: u64) {
        let drv = &mut self.drivers.list[d];
        if let Job::Offered {
            delivery: x,
            order,
            pickup,
            dropoff,
        } = drv.job
            && x == delivery
        {
            drv.job = Job::ToRestaurant(Trip {
                order,
                delivery,
                pickup,
                dropoff,
            });
            drv.target = pickup;
            drv.busy_since = Some(self.now);
        }
    }

    fn end_trip(&mut self, d: usize) {
        let now = self.now;
        let drv = &mut self.drivers.list[d];
        drv.job = Job::Idle;
        drv.waiting = false;
        if let Some(s) = drv.busy_since.take() {
            drv.busy.push((s, now));
        }
    }

    pub(crate) fn responded(&mut self, d: usize, delivery: DeliveryId, accept: bool, reply: Reply) {
        if !accept {
            return;
        }
        match reply {
            // The answer names the order: the app follows it whatever it showed meanwhile.
            Reply::Done(Some(o)) => {
                if matches!(self.drivers.list[d].job, Job::Idle | Job::Offered { .. }) {
                    self.drivers.list[d].job = Job::Offered {
                        delivery: delivery.0,
                        order: o.id.0,
                        pickup: (o.restaurant_lat, o.restaurant_lng),
                        dropoff: (o.delivery_address.lat, o.delivery_address.lng),
                    };
                    self.start_trip(d, delivery.0);
                }
            }
            // Refused, or no answer while the acceptance may have stood: the app drops this
            // offer and asks what it carries.
            _ => {
                if matches!(self.drivers.list[d].job, Job::Offered { delivery: x, .. } if x == delivery.0)
                {
                    self.drivers.list[d].job = Job::Idle;
                }
                self.sync_driver(d);
            }
        }
    }

    pub(crate) fn updated(&mut self, d: usize, u: DriverUpdate, reply: Reply) {
        self.drivers.list[d].waiting = false;
        let job = self.drivers.list[d].job;
        match (u, job, reply) {
            (DriverUpdate::ArrivedAtRestaurant(_), Job::ToRestaurant(t), Reply::Done(_)) => {
                self.drivers.list[d].job = Job::AtRestaurant(t);
            }
            (DriverUpdate::PickedUp(_), Job::AtRestaurant(t), Reply::Done(_)) => {
                self.drivers.list[d].job = Job::ToCustomer(t);
                self.drivers.list[d].target = t.dropoff;
            }
            (DriverUpdate::Delivered(_), Job::ToCustomer(_), Reply::Done(_)) => self.end_trip(d),
            (DriverUpdate::Online | DriverUpdate::Offline, ..) => {}
            // Refused or unanswered: the app reads where its delivery stands and goes on from
            // there (the next move sends again what is still to do).
            _ => self.sync_driver(d),
        }
    }

    /// What the driver app does when unsure: asks the cell for its active delivery and
    /// follows it (a REST read; skipped while the cell is down or the driver cut off).
    pub(crate) fn sync_driver(&mut self, d: usize) {
        let id = self.drivers.list[d].id;
        let Some(n) = &self.node else { return };
        if self.net.is_cut(id.0, self.now) {
            return;
        }
        let kv = n.kv.clone();
        let Ok(active) = self.block(cell::orders::repo::active_for_driver(&*kv, id)) else {
            return;
        };
        let job = self.drivers.list[d].job;
        let trip_of = |o: &domain::Order| Trip {
            order: o.id.0,
            delivery: o.delivery_id.map_or(0, |x| x.0),
            pickup: (o.restaurant_lat, o.restaurant_lng),
            dropoff: (o.delivery_address.lat, o.delivery_address.lng),
        };
        use domain::OrderStatus as S;
        match active.first() {
            None => {
                if matches!(
                    job,
                    Job::ToRestaurant(_) | Job::AtRestaurant(_) | Job::ToCustomer(_)
                ) {
                    self.log(|| format!("driver {d} finds no active delivery"));
                    self.end_trip(d);
                }
            }
            Some(o) => {
                let t = trip_of(o);
                let drv = &mut self.drivers.list[d];
                if drv.busy_since.is_none() {
                    drv.busy_since = Some(self.now);
                }
                let (next, target) = match o.status {
                    S::DriverAssigned => (Job::ToRestaurant(t), t.pickup),
                    S::DriverAtRestaurant => (Job::AtRestaurant(t), t.pickup),
                    _ => (Job::ToCustomer(t), t.dropoff),
                };
                if next != job {
                    drv.job = next;
                    drv.target = target;
                    self.log(|| format!("driver {d} resumes order {} ({})", o.id, o.status));
                }
            }
        }
    }

    /// Reads every session's messages from the cell.
    pub(crate) fn drain_outboxes(&mut self) {
        for d in 0..self.drivers.list.len() {
            let mut msgs = Vec::new();
            if let Some(rx) = self.drivers.list[d].rx.as_mut() {
                while let Ok(m) = rx.try_recv() {
                    msgs.push(m);
                }
            }
            for m in msgs {
                self.on_session_msg(d, m);
            }
        }
    }

    fn on_session_msg(&mut self, d: usize, m: CellBody) {
        match m {
            CellBody::Offer(o) => {
                *self.drivers.offers.entry(o.order_id).or_default() += 1;
                let drv = &mut self.drivers.list[d];
                if drv.job != Job::Idle || !drv.on {
                    return;
                }
                drv.job = Job::Offered {
                    delivery: o.delivery_id,
                    order: o.order_id,
                    pickup: (o.pickup.lat, o.pickup.lng),
                    dropoff: (o.dropoff.lat, o.dropoff.lng),
                };
                let accept = self.rng.random_bool(self.drivers.list[d].accept_p);
                let think = self.rng.random_range(2_000..10_000);
                self.log(|| {
                    format!(
                        "driver {d} offered order {} delivery {}",
                        o.order_id, o.delivery_id
                    )
                });
                self.at(think, Ev::Answer(d, o.delivery_id, accept));
            }
            CellBody::Assignment(a) => self.start_trip(d, a.delivery_id),
            CellBody::Cancellation(c) => {
                let job = self.drivers.list[d].job;
                match (c.target, job) {
                    (CancelTarget::Offer { delivery_id, .. }, Job::Offered { delivery, .. })
                        if delivery == delivery_id =>
                    {
                        self.drivers.list[d].job = Job::Idle;
                    }
                    (
                        CancelTarget::Delivery { delivery_id },
                        Job::ToRestaurant(t) | Job::AtRestaurant(t) | Job::ToCustomer(t),
                    ) if t.delivery == delivery_id => {
                        self.log(|| format!("driver {d} told {} is cancelled", t.order));
                        self.end_trip(d);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}
