//! Customers: arrivals follow the day's demand; each picks a restaurant near them and a
//! cart, places the order (the same idempotency key on every resend), tracks it, and
//! sometimes cancels (on a whim, or because nobody confirmed it in time).
//!
//! Demand is drawn apart from everything else: arrivals from their own stream, each
//! customer's cart and whims from a generator seeded by (seed, customer, choice). So a what-if
//! day under another matcher sees the same customers order the same food at the same times,
//! whatever happens to their orders.

use crate::apps::{Msg, Reply};
use crate::config::{MINUTE_MS, SimConfig};
use crate::demand;
use crate::world::{Ev, World};
use catalog::{CartLine, CartRequest};
use cell::orders::PlaceOrder;
use cell::tracking::hub::{Subscription, Topic};
use domain::order::Address;
use domain::{CustomerId, OrderId, OrderStatus};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// A generator for one customer's `purpose` (cart per choice, whim), from the seed alone.
fn own_rng(seed: u64, customer: CustomerId, purpose: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ customer.0.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    r.set_stream(purpose);
    r
}

/// `own_rng`'s purpose for the whim (carts use their choice number, far below it).
const WHIM: u64 = 1 << 32;

/// One placement as the customer's app holds it.
#[derive(Debug, Clone)]
pub struct Placement {
    pub customer: CustomerId,
    pub key: String,
    pub restaurant: usize,
    pub lines: Vec<(domain::MenuItemId, u32, Vec<String>)>,
    pub address: (f64, f64),
    /// Which restaurant choice this is (a refused cart makes the customer try another).
    pub choice: u32,
}

/// An order the cell acknowledged to its customer.
#[derive(Debug, Clone)]
pub struct Acked {
    pub customer: CustomerId,
    pub placed_ms: i64,
    pub promised_ms: i64,
}

pub struct Customers {
    base_rate: f64,
    /// Arrivals so far (the next customer's id), and their own stream.
    arrivals: u64,
    arrival_rng: ChaCha8Rng,
    book: Vec<Placement>,
    pub acked: BTreeMap<OrderId, Acked>,
    trackers: BTreeMap<OrderId, Subscription>,
    /// Tracking sockets the crash closed, to open again.
    lost: BTreeSet<OrderId>,
    /// What each customer last saw of their order.
    pub seen: BTreeMap<OrderId, OrderStatus>,
    whims: BTreeSet<OrderId>,
}

impl Customers {
    pub fn new(cfg: &SimConfig) -> Self {
        Self {
            base_rate: demand::base_rate_per_ms(cfg.orders_per_day),
            arrivals: 0,
            arrival_rng: {
                let mut r = ChaCha8Rng::seed_from_u64(cfg.seed);
                r.set_stream(11);
                r
            },
            book: Vec::new(),
            acked: BTreeMap::new(),
            trackers: BTreeMap::new(),
            lost: BTreeSet::new(),
            seen: BTreeMap::new(),
            whims: BTreeSet::new(),
        }
    }

    pub fn placed(&self) -> u64 {
        self.book.len() as u64
    }

    pub fn open_trackers(&self) -> usize {
        self.trackers.len()
    }

    pub fn drop_trackers(&mut self) {
        let gone = std::mem::take(&mut self.trackers);
        self.lost.extend(gone.into_keys());
    }

    /// The request placement `n` sends (every resend is the same request).
    pub fn request(&self, n: usize, restaurants: &crate::actors::Restaurants) -> PlaceOrder {
        let p = &self.book[n];
        let spot = &restaurants.spots[p.restaurant];
        let fingerprint =
            cell::orders::fingerprint(format!("{}:{:?}", spot.id, p.lines).as_bytes());
        PlaceOrder {
            customer: p.customer,
            idempotency_key: p.key.clone(),
            fingerprint,
            restaurant_id: spot.id,
            cart: CartRequest {
                items: p
                    .lines
                    .iter()
                    .map(|(id, q, c)| CartLine {
                        item_id: *id,
                        quantity: *q,
                        customizations: c.clone(),
                    })
                    .collect(),
                address: Address {
                    lat: p.address.0,
                    lng: p.address.1,
                    formatted: String::new(),
                    sealed: None,
                },
            },
            payment_method_id: "pm_card_visa".into(),
            // Sealed at placement under the customer's key, as the API's are.
            contact: cell::personal::Contact {
                formatted: format!("{:.5}, {:.5}", p.address.0, p.address.1),
                phone: None,
                notes: None,
            },
        }
    }
}

impl World {
    pub(crate) fn arrival(&mut self) {
        if self.now >= self.cfg.active_end_ms() {
            return;
        }
        self.customers.arrivals += 1;
        let customer = CustomerId(self.customers.arrivals);
        self.new_placement(customer, 0);
        let next = demand::next_arrival(
            &mut self.customers.arrival_rng,
            self.now,
            crate::config::DAY_START_MS,
            self.customers.base_rate,
        );
        self.queue.push(next, Ev::Arrival);
    }

    fn new_placement(&mut self, customer: CustomerId, choice: u32) {
        let mut rng = own_rng(self.cfg.seed, customer, u64::from(choice));
        let r = rng.random_range(0..self.restaurants.spots.len());
        let spot = &self.restaurants.spots[r];
        let (d, b) = (
            rng.random_range(200.0..(spot.radius_m * 0.9).clamp(300.0, 3_000.0)),
            rng.random_range(0.0..std::f64::consts::TAU),
        );
        let address = crate::actors::offset((spot.lat, spot.lng), d, b);
        let lines = (0..rng.random_range(1..=3))
            .map(|_| {
                let i = rng.random_range(0..spot.items.len());
                let (id, picks) = spot.items[i].clone();
                (id, rng.random_range(1..=2), picks)
            })
            .collect();
        let n = self.customers.book.len();
        self.customers.book.push(Placement {
            customer,
            key: format!("sim-{}-{n}", self.cfg.seed),
            restaurant: r,
            lines,
            address,
            choice,
        });
        self.log(|| format!("customer {customer} places #{n} at restaurant {r}"));
        self.send(Msg::Place(n));
    }

    pub(crate) fn placed(&mut self, n: usize, reply: Reply) {
        let p = self.customers.book[n].clone();
        match reply {
            Reply::Placed(order) => {
                if self.customers.acked.contains_key(&order.id) {
                    return;
                }
                self.customers.acked.insert(
                    order.id,
                    Acked {
                        customer: p.customer,
                        placed_ms: self.now,
                        promised_ms: order.estimated_delivery_max.0,
                    },
                );
                self.customers.seen.insert(order.id, order.status);
                self.subscribe(order.id);
                let mut whim = own_rng(self.cfg.seed, p.customer, WHIM);
                if whim.random_bool(0.05) {
                    self.customers.whims.insert(order.id);
                    let d = whim.random_range(MINUTE_MS..15 * MINUTE_MS);
                    self.at(d, Ev::MaybeCancel(order.id));
                }
                self.at(20 * MINUTE_MS, Ev::MaybeCancel(order.id));
            }
            Reply::NotPlaced(why) => {
                let retry =
                    p.choice < 2 && !why.contains("declined") && !why.contains("orders per");
                if retry && self.now < self.cfg.active_end_ms() {
                    self.new_placement(p.customer, p.choice + 1);
                }
            }
            Reply::Done(_) | Reply::Refused(_) | Reply::Later(_) => {}
        }
    }

    pub(crate) fn maybe_cancel(&mut self, o: OrderId) {
        let Some(a) = self.customers.acked.get(&o).cloned() else {
            return;
        };
        let seen = self.customers.seen.get(&o).copied();
        let whim = self.customers.whims.remove(&o);
        let waiting = matches!(
            seen,
            Some(OrderStatus::Pending | OrderStatus::PaymentPending)
        );
        if whim || waiting {
            self.log(|| format!("customer {} cancels {o} (whim={whim})", a.customer));
            self.send(Msg::Cancel(o, a.customer));
        }
    }

    /// Opens the order's tracking socket: subscribe, then the snapshot, as the endpoint does.
    fn subscribe(&mut self, o: OrderId) {
        let Some(node) = &self.node else {
            self.customers.lost.insert(o);
            return;
        };
        let topic = Topic::Order(o);
        let sub = node.tracker.hub.subscribe(topic);
        let kv = node.kv.clone();
        let snapshot = self.block(cell::orders::repo::get(&*kv, o));
        match snapshot {
            Ok(Some(order)) if order.status.is_terminal() => {
                self.customers.seen.insert(o, order.status);
                if let Some(n) = &self.node {
                    n.tracker.hub.unsubscribe(topic, sub);
                }
            }
            Ok(Some(order)) => {
                self.customers.seen.insert(o, order.status);
                self.customers.trackers.insert(o, sub);
            }
            // No snapshot: the socket closes and the app tries again after the next restart.
            _ => {
                if let Some(n) = &self.node {
                    n.tracker.hub.unsubscribe(topic, sub);
                }
                self.customers.lost.insert(o);
            }
        }
    }

    pub(crate) fn resubscribe_trackers(&mut self) {
        for o in std::mem::take(&mut self.customers.lost) {
            self.subscribe(o);
        }
    }

    /// Reads every open tracking socket; a finished order's socket closes.
    pub(crate) fn drain_trackers(&mut self) {
        let Some(node) = &self.node else {
            return;
        };
        let hub = &node.tracker.hub;
        let mut done = Vec::new();
        for (o, sub) in self.customers.trackers.iter_mut() {
            while let Ok(msg) = sub.rx.try_recv() {
                let v: serde_json::Value = serde_json::from_str(&msg).unwrap_or_default();
                if let Some(s) = v["status"]
                    .as_str()
                    .and_then(|s| s.parse::<OrderStatus>().ok())
                {
                    self.customers.seen.insert(*o, s);
                    if s.is_terminal() {
                        done.push(*o);
                    }
                }
            }
            if sub.rx.is_closed() && !done.contains(o) {
                // Dropped as too slow: the app reconnects.
                self.customers.lost.insert(*o);
                done.push(*o);
            }
        }
        for o in done {
            if let Some(sub) = self.customers.trackers.remove(&o) {
                hub.unsubscribe(Topic::Order(o), sub);
            }
        }
    }
}
