//! Matching scenarios on virtual time: the real [`Dispatch`] and matching task on the real
//! store (redb), geostore, tracker and metrics, driven by hand. Time is a number the test
//! advances (`tick(now)`, `respond(.., now)`), so expiries happen exactly when the offer's TTL
//! says and nothing sleeps. These are the scenarios the cross-process tests used to check on
//! the wall clock with short timeouts:
//!
//! - three rounds within 5 km (declined, expired, declined) with the expired offer withdrawn
//!   with its reason and a late accept refused, the fourth offer at 10 km after the radius
//!   widens (`cell_matching_widened_total`), then the delay flag, written once, and the
//!   customer's `order_delayed` update;
//! - accepts of one delivery racing (the QUIC session's and the REST endpoint's both end in
//!   [`Dispatch::respond`]) assign exactly one driver (the holder's second accept repeats the
//!   first), and a driver carrying an order is never
//!   offered, nor can take, a second;
//! - an order nobody within 5 km can take is offered at 10 km in the tick that widens it.

use crate::dispatch::{Dispatch, DispatchConfig, DispatchError, DriverUpdate, GpsFix};
use crate::orders::WriteOp;
use crate::orders::repo::{self, Created};
use crate::tracking::hub::Topic;
use crate::tracking::{Tracker, TrackingConfig};
use domain::{
    CustomerId, DeliveryId, DriverId, EventKind, Order, OrderEvent, OrderId, OrderStatus,
    RestaurantId, UnixMs,
};
use geostore::GeoStore;
use schemas::{CancelReason, CancelTarget, CellBody, Offer};
use std::sync::Arc;
use store::{Kv, LogId, LogPos};
use tokio::sync::mpsc;

const NOW: UnixMs = UnixMs(1_784_109_600_000);
const LOG: LogId = LogId(1);
/// Where `domain::testing::order` puts the restaurant.
const RESTAURANT: (f64, f64) = (52.5, 13.4);

/// The cell's pieces a scenario drives and looks at.
struct City {
    d: Dispatch,
    kv: Arc<dyn Kv>,
    tracker: Arc<Tracker>,
    recorder: metrics_exporter_prometheus::PrometheusRecorder,
    _dir: tempfile::TempDir,
}

/// The settings of the cross-process scenario: offers lapse after 0.8 s, an empty search
/// retries after 0.3 s, a delayed order is looked at again after a minute.
fn config() -> DispatchConfig {
    let mut c = DispatchConfig::default();
    c.matching.offer_ttl_ms = 800;
    c.matching.offer_display_margin_ms = 200;
    c.matching.empty_retry_ms = 300;
    c.matching.retry_delayed_ms = 60_000;
    c
}

async fn city() -> City {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    let orders = crate::orders::test_stores::plain_orders(kv.clone(), LOG, NOW).await;
    orders.renew_ids(NOW).await.unwrap();
    let tracker = Arc::new(Tracker::new(TrackingConfig::default(), 25.0, 1.3));
    let geo = Arc::new(GeoStore::new(geostore::Config::default()));
    let d = Dispatch::new(config(), geo, orders, tracker.clone());
    City {
        d,
        kv,
        tracker,
        recorder: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder(),
        _dir: dir,
    }
}

/// `m` metres north of `p` (south when negative).
fn north_of(p: (f64, f64), m: f64) -> (f64, f64) {
    (p.0 + m / 111_195.0, p.1)
}

/// A connected driver's outbox and everything read from it so far.
struct Driver {
    id: DriverId,
    rx: mpsc::Receiver<CellBody>,
    seen: Vec<CellBody>,
}

impl Driver {
    /// Reads what the cell sent since the last call; returns the new messages.
    fn drain(&mut self) -> Vec<CellBody> {
        let mut new = Vec::new();
        while let Ok(m) = self.rx.try_recv() {
            new.push(m);
        }
        self.seen.extend(new.iter().cloned());
        new
    }

    fn offers(&self) -> Vec<Offer> {
        self.seen
            .iter()
            .filter_map(|m| match m {
                CellBody::Offer(o) => Some(o.clone()),
                _ => None,
            })
            .collect()
    }

    fn assignments(&self) -> usize {
        self.seen
            .iter()
            .filter(|m| matches!(m, CellBody::Assignment(_)))
            .count()
    }
}

impl City {
    /// A driver connects over QUIC at `at`, pings once and goes online.
    async fn driver(&self, id: u64, at: (f64, f64), now: UnixMs) -> Driver {
        let id = DriverId(id);
        let (_, rx, _) = self.d.connect(id, now);
        let fix = GpsFix::still((at.0, at.1), now);
        self.d.ping(id, fix, now).unwrap();
        self.d.update(id, DriverUpdate::Online, now).await.unwrap();
        Driver {
            id,
            rx,
            seen: Vec::new(),
        }
    }

    /// A confirmed order (as after the restaurant accepted) in the store, and the matching
    /// consumer's reaction to its `order_confirmed` event.
    async fn confirmed_order(&self, id: u64, customer: u64, now: UnixMs) -> Order {
        let mut o = domain::testing::order(OrderId(id), CustomerId(customer), RestaurantId(3), now);
        o.status = OrderStatus::Confirmed;
        let op = WriteOp::new(now);
        let Created::New(o) = repo::create(&*self.kv, LOG, o, &op).await.unwrap() else {
            panic!("order {id} existed")
        };
        let ev = OrderEvent::for_order(&o, EventKind::OrderConfirmed, now);
        self.d.on_event(&ev, Some(o.clone()), now);
        o
    }

    async fn order(&self, id: OrderId) -> Order {
        repo::get(&*self.kv, id)
            .await
            .unwrap()
            .expect("stored order")
    }

    /// Every event in the log, in order.
    async fn events(&self) -> Vec<OrderEvent> {
        self.kv
            .read_events(LOG, LogPos(1), 0)
            .await
            .unwrap()
            .iter()
            .map(|e| serde_json::from_slice(&e.payload).unwrap())
            .collect()
    }

    async fn events_of(&self, order: OrderId, kind: EventKind) -> usize {
        self.events()
            .await
            .iter()
            .filter(|e| e.order_id == order && e.kind == kind)
            .count()
    }

    /// A counter as the cell's `/metrics` would show it (0 before it is first touched).
    fn metric(&self, name: &str) -> f64 {
        self.recorder
            .handle()
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

/// The one offer among `drivers` that arrived since their last drain: (index, offer).
fn the_new_offer(drivers: &mut [&mut Driver]) -> (usize, Offer) {
    let mut found = Vec::new();
    for (i, d) in drivers.iter_mut().enumerate() {
        for m in d.drain() {
            if let CellBody::Offer(o) = m {
                found.push((i, o));
            }
        }
    }
    assert_eq!(found.len(), 1, "exactly one new offer: {found:#?}");
    found.pop().unwrap()
}

fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}

#[tokio::test]
async fn declines_and_expiry_widen_the_radius_then_flag_delayed() {
    let c = city().await;
    let _metrics = metrics::set_default_local_recorder(&c.recorder);
    let mut t = NOW;
    // Three drivers within 5 km of the restaurant, one 7 km away (inside 10 km).
    let mut near1 = c.driver(101, north_of(RESTAURANT, 500.0), t).await;
    let mut near2 = c.driver(102, north_of(RESTAURANT, 1_500.0), t).await;
    let mut near3 = c.driver(103, north_of(RESTAURANT, -2_500.0), t).await;
    let mut far = c.driver(199, north_of(RESTAURANT, 7_000.0), t).await;
    let order = c.confirmed_order(1, 5101, t).await;
    let mut customer = c.tracker.hub.subscribe(Topic::Order(order.id));

    // Round 1: the best candidate (the nearest) is offered; it declines.
    c.d.tick(t).await;
    let (first, offer) = the_new_offer(&mut [&mut near1, &mut near2, &mut near3, &mut far]);
    assert_eq!(first, 0, "the nearest driver is asked first");
    assert_eq!(offer.order_id, order.id.0);
    // The shown deadline: 200 ms (`offer_display_margin_ms`) before the lease's end.
    assert_eq!(offer.expires_at_ms, t.plus(ms(600)).0 as u64);
    let delivery = DeliveryId(offer.delivery_id);
    t = t.plus(ms(100));
    let r = c.d.respond(near1.id, delivery, false, t).await.unwrap();
    assert!(r.is_none());

    // Round 2: the next driver; left unanswered, the offer lapses exactly at its expiry.
    c.d.tick(t).await;
    let (second, offer2) = the_new_offer(&mut [&mut near1, &mut near2, &mut near3, &mut far]);
    assert_eq!(second, 1, "a driver who declined is not asked again");
    assert_eq!(offer2.delivery_id, offer.delivery_id);
    let expiry = UnixMs(offer2.expires_at_ms as i64 + 200);
    assert_eq!(expiry, t.plus(ms(800)));
    c.d.tick(UnixMs(expiry.0 - 1)).await;
    assert!(near2.drain().is_empty(), "still open a millisecond before");
    // An accept at the expiry, before a tick withdrew the offer, is refused as expired
    // (REST: 409 `offer_expired`)...
    let late = c.d.respond(near2.id, delivery, true, expiry).await;
    assert!(
        matches!(
            late,
            Err(DispatchError::Refused(
                crate::dispatch::offers::Refusal::OfferExpired
            ))
        ),
        "{late:?}"
    );
    // ...and the tick withdraws it with its reason.
    t = expiry;
    c.d.tick(t).await;
    let withdrawn = near2.drain();
    assert_eq!(
        withdrawn.first(),
        Some(&CellBody::Cancellation(schemas::Cancellation {
            target: CancelTarget::Offer {
                offer_id: offer2.offer_id,
                delivery_id: offer2.delivery_id
            },
            reason: CancelReason::OfferExpired,
        })),
        "{withdrawn:#?}"
    );
    // Once withdrawn, the delivery is simply not theirs (QUIC `unknown_delivery`, REST 404).
    let late = c.d.respond(near2.id, delivery, true, t).await;
    assert!(
        matches!(late, Err(DispatchError::UnknownDelivery(_))),
        "{late:?}"
    );

    // Round 3, in the same tick: the last near driver; their decline ends the 5 km phase.
    let (third, offer3) = the_new_offer(&mut [&mut near1, &mut near2, &mut near3, &mut far]);
    assert_eq!(third, 2);
    assert_eq!(c.metric("cell_matching_widened_total"), 0.0);
    assert!(far.offers().is_empty(), "7 km is outside 5 km");
    assert_eq!(
        c.d.state.lock().matcher.phase(order.id),
        Some(super::machine::Phase::Near)
    );
    t = t.plus(ms(50));
    c.d.respond(near3.id, DeliveryId(offer3.delivery_id), false, t)
        .await
        .unwrap();
    assert_eq!(c.metric("cell_matching_widened_total"), 1.0);
    assert_eq!(
        c.d.state.lock().matcher.phase(order.id),
        Some(super::machine::Phase::Wide)
    );

    // Round 4, at 10 km: the far driver.
    c.d.tick(t).await;
    let (fourth, offer4) = the_new_offer(&mut [&mut near1, &mut near2, &mut near3, &mut far]);
    assert_eq!(fourth, 3);
    assert_eq!(offer4.delivery_id, offer.delivery_id);
    assert!(
        !c.order(order.id).await.delayed,
        "not delayed while offers are out"
    );
    t = t.plus(ms(50));
    c.d.respond(far.id, delivery, false, t).await.unwrap();

    // Nobody left within 10 km: the wide phase's three rounds are the far driver's decline
    // and two empty searches 0.3 s apart; the order is flagged delayed on the last.
    c.d.tick(t).await;
    assert!(!c.order(order.id).await.delayed, "the first empty round");
    c.d.tick(t.plus(ms(299))).await;
    assert!(!c.order(order.id).await.delayed, "not yet due again");
    t = t.plus(ms(300));
    c.d.tick(t).await;
    let o = c.order(order.id).await;
    assert!(o.delayed);
    assert_eq!(
        o.status,
        OrderStatus::Confirmed,
        "the status stays; the flag is new"
    );
    assert_eq!(o.driver_id, None);
    assert_eq!(c.metric("cell_matching_delayed_total"), 1.0);
    assert_eq!(
        c.d.state.lock().matcher.phase(order.id),
        Some(super::machine::Phase::Delayed)
    );

    // Later ticks before the delayed retry neither flag it again nor offer anything.
    for s in [1, 1_000, 59_000] {
        c.d.tick(t.plus(ms(s))).await;
    }
    assert_eq!(c.events_of(order.id, EventKind::OrderDelayed).await, 1);

    // The customer's update: what the tracking consumer makes of the log's events.
    for ev in c.events().await {
        c.tracker.event(&ev);
    }
    let mut updates = Vec::new();
    while let Ok(m) = customer.rx.try_recv() {
        updates.push(serde_json::from_str::<serde_json::Value>(&m).unwrap());
    }
    let delayed: Vec<_> = updates
        .iter()
        .filter(|v| v["type"] == "status_update" && v["event"] == "order_delayed")
        .collect();
    assert_eq!(delayed.len(), 1, "{updates:#?}");
    assert_eq!(delayed[0]["status"], "confirmed");
    assert_eq!(delayed[0]["order_id"], serde_json::json!(order.id));

    // Exactly four offers went out: one per driver.
    let mut all = Vec::new();
    for d in [&mut near1, &mut near2, &mut near3, &mut far] {
        d.drain();
        all.extend(d.offers().into_iter().map(|o| (d.id, o.offer_id)));
    }
    assert_eq!(all.len(), 4, "{all:?}");
}

#[tokio::test]
async fn racing_accepts_assign_exactly_one_driver() {
    let c = city().await;
    let t = NOW;
    // Both at the same spot near the restaurant, the higher id first in the geostore: equal
    // distance and score, so the lower id is offered first.
    let spot = north_of(RESTAURANT, 300.0);
    let mut other = c.driver(202, spot, t).await;
    let mut holder = c.driver(201, spot, t).await;
    let first = c.confirmed_order(1, 5201, t).await;
    c.d.tick(t).await;
    let (h, offer) = the_new_offer(&mut [&mut holder, &mut other]);
    assert_eq!(h, 0, "equal candidates: the lowest id wins");
    let delivery = DeliveryId(offer.delivery_id);

    // The holder accepts over QUIC and REST at once while the other driver tries to take the
    // same delivery over REST and QUIC; all four are in flight together.
    let (hq, hr, orr, oq) = tokio::join!(
        c.d.respond(holder.id, delivery, true, t),
        c.d.respond(holder.id, delivery, true, t),
        c.d.respond(other.id, delivery, true, t),
        c.d.respond(other.id, delivery, true, t),
    );
    // One of the holder's accepts assigns, the other repeats it (the same order back; one
    // assignment, checked below).
    let (hq, hr) = (hq.unwrap().unwrap(), hr.unwrap().unwrap());
    assert_eq!((hq.id, hr.id), (first.id, first.id));
    for r in [&orr, &oq] {
        assert!(
            matches!(r, Err(DispatchError::UnknownDelivery(_))),
            "not the other driver's offer: {r:?}"
        );
    }
    // An accept after the assignment finished repeats it too.
    let again = c.d.respond(holder.id, delivery, true, t).await;
    assert_eq!(again.unwrap().map(|o| o.id), Some(first.id));
    holder.drain();
    assert_eq!(holder.assignments(), 1);
    assert_eq!(c.d.carrying(holder.id).map(|o| o.id), Some(first.id));

    // The busy holder says "online" again (a REST app after a restart): still busy.
    c.d.update(holder.id, DriverUpdate::Online, t)
        .await
        .unwrap();

    // Order 2 from the same restaurant: the busy holder is never offered it; the other
    // driver gets it, and the holder cannot take it by naming its delivery.
    let t = t.plus(ms(10));
    let second = c.confirmed_order(2, 5201, t).await;
    c.d.tick(t).await;
    let (o, offer2) = the_new_offer(&mut [&mut holder, &mut other]);
    assert_eq!(o, 1);
    assert_eq!(offer2.order_id, second.id.0);
    let delivery2 = DeliveryId(offer2.delivery_id);
    let steal = c.d.respond(holder.id, delivery2, true, t).await;
    assert!(matches!(steal, Err(DispatchError::UnknownDelivery(_))));
    c.d.respond(other.id, delivery2, true, t).await.unwrap();
    other.drain();

    // Order 3: both drivers carry one; nobody is offered it however often matching looks.
    let third = c.confirmed_order(3, 5201, t).await;
    for s in [0, 300, 600, 900] {
        c.d.tick(t.plus(ms(s))).await;
    }
    assert!(holder.drain().is_empty() && other.drain().is_empty());
    assert_eq!(c.order(third.id).await.driver_id, None);

    // Each order has exactly one driver, in its record and in its history; each driver was
    // assigned once.
    for (id, d) in [(first.id, &holder), (second.id, &other)] {
        assert_eq!(c.order(id).await.driver_id, Some(d.id));
        assert_eq!(c.events_of(id, EventKind::DriverAssigned).await, 1);
        assert_eq!(d.assignments(), 1, "driver {} assigned once", d.id);
    }
    assert!(
        holder.offers().iter().all(|x| x.order_id == first.id.0),
        "a busy driver is not offered a second order"
    );
}

/// Nobody within 5 km: three empty searches 0.3 s apart end the near phase, and the order is
/// offered at 10 km in the very tick that widens it, not one wake-up later.
#[tokio::test]
async fn an_order_nobody_near_can_take_is_offered_wide_in_the_tick_that_widens() {
    let c = city().await;
    let _metrics = metrics::set_default_local_recorder(&c.recorder);
    let t = NOW;
    let mut far = c.driver(301, north_of(RESTAURANT, 7_000.0), t).await;
    let order = c.confirmed_order(1, 5301, t).await;
    c.d.tick(t).await;
    c.d.tick(t.plus(ms(300))).await;
    assert!(far.drain().is_empty(), "7 km is outside 5 km");
    assert_eq!(c.metric("cell_matching_widened_total"), 0.0);
    c.d.tick(t.plus(ms(600))).await;
    assert_eq!(c.metric("cell_matching_widened_total"), 1.0);
    far.drain();
    let offers = far.offers();
    assert_eq!(offers.len(), 1, "{:#?}", far.seen);
    assert_eq!(offers[0].order_id, order.id.0);
    assert_eq!(
        offers[0].expires_at_ms,
        t.plus(ms(600 + 800 - 200)).0 as u64,
        "sent at the widening tick"
    );
}
