//! Tests only: the real [`Dispatch`] on the real store (redb in a temporary directory), on
//! virtual time, and a way to kill it: [`Rig::crash`] drops every in-memory piece of
//! dispatch (matcher, sessions, geostore) and rebuilds it from the store, as a restart after
//! `kill -9` does.

use crate::dispatch::{Dispatch, DispatchConfig, DriverUpdate, GpsFix};
use crate::orders::repo::{self, Created};
use crate::orders::{Orders, WriteOp};
use crate::tracking::{Tracker, TrackingConfig};
use domain::{
    CustomerId, DriverId, EventKind, Order, OrderEvent, OrderId, OrderStatus, RestaurantId, UnixMs,
};
use geostore::GeoStore;
use schemas::{CellBody, Offer};
use std::collections::HashMap;
use std::sync::Arc;
use store::{Kv, LogId, LogPos};
use tokio::sync::mpsc;

pub const NOW: UnixMs = UnixMs(1_784_109_600_000);
const LOG: LogId = LogId(1);

pub struct Rig {
    pub d: Dispatch,
    pub kv: Arc<dyn Kv>,
    pub cfg: DispatchConfig,
    orders: Arc<Orders>,
    tracker: Arc<Tracker>,
    /// Each connected driver's outbox (replaced on reconnect).
    pub outboxes: HashMap<DriverId, mpsc::Receiver<CellBody>>,
    /// Drivers [`Rig::tick`] keeps pinging (the geostore forgets a driver silent for 30 s),
    /// where they stand.
    pub here: HashMap<DriverId, (f64, f64)>,
    _dir: tempfile::TempDir,
}

impl Rig {
    pub async fn new(cfg: DispatchConfig) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn Kv> =
            Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
        let orders = crate::orders::test_stores::plain_orders(kv.clone(), LOG, NOW).await;
        orders.renew_ids(NOW).await.unwrap();
        let tracker = Arc::new(Tracker::new(TrackingConfig::default(), 25.0, 1.3));
        let geo = Arc::new(GeoStore::new(geostore::Config::default()));
        let d = Dispatch::new(cfg.clone(), geo, orders.clone(), tracker.clone());
        Rig {
            d,
            kv,
            cfg,
            orders,
            tracker,
            outboxes: HashMap::new(),
            here: HashMap::new(),
            _dir: dir,
        }
    }

    /// `kill -9` and restart: a new dispatch (empty matcher, sessions, geostore) recovered
    /// from the store. Drivers must reconnect.
    pub async fn crash(&mut self, now: UnixMs) {
        let geo = Arc::new(GeoStore::new(geostore::Config::default()));
        self.d = Dispatch::new(
            self.cfg.clone(),
            geo,
            self.orders.clone(),
            self.tracker.clone(),
        );
        self.outboxes.clear();
        self.d.recover(now).await.unwrap();
    }

    /// A driver connects over QUIC at `at`, pings and goes online.
    pub async fn driver(&mut self, id: u64, at: (f64, f64), now: UnixMs) {
        let id = DriverId(id);
        let (_, rx, _) = self.d.connect(id, now);
        self.outboxes.insert(id, rx);
        self.here.insert(id, at);
        let fix = GpsFix::still((at.0, at.1), now);
        self.d.ping(id, fix, now).unwrap();
        self.d.update(id, DriverUpdate::Online, now).await.unwrap();
    }

    /// The drivers ping where they stand, then matching ticks.
    pub async fn tick(&mut self, now: UnixMs) {
        let mut ids: Vec<_> = self.here.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let at = self.here[&id];
            let fix = GpsFix::still((at.0, at.1), now);
            // A second ping at the same instant is refused as stale: harmless here.
            let _ = self.d.ping(id, fix, now);
        }
        self.d.tick(now).await;
    }

    /// The driver goes offline and is no longer pinged.
    pub async fn leave(&mut self, id: DriverId, now: UnixMs) {
        self.here.remove(&id);
        self.d.update(id, DriverUpdate::Offline, now).await.unwrap();
    }

    /// A confirmed order whose restaurant is at `at`, and matching's reaction to its event.
    pub async fn order(&self, id: u64, at: (f64, f64), now: UnixMs) -> Order {
        let mut o = domain::testing::order(OrderId(id), CustomerId(id), RestaurantId(3), now);
        o.status = OrderStatus::Confirmed;
        (o.restaurant_lat, o.restaurant_lng) = at;
        (o.delivery_address.lat, o.delivery_address.lng) = (at.0 + 0.01, at.1);
        let op = WriteOp::new(now);
        let Created::New(o) = repo::create(&*self.kv, LOG, o, &op).await.unwrap() else {
            panic!("order {id} existed")
        };
        let ev = OrderEvent::for_order(&o, EventKind::OrderConfirmed, now);
        self.d.on_event(&ev, Some(o.clone()), now);
        o
    }

    /// The offers that reached drivers since the last call, by driver.
    pub fn new_offers(&mut self) -> Vec<(DriverId, Offer)> {
        let mut out = Vec::new();
        for (d, rx) in &mut self.outboxes {
            while let Ok(m) = rx.try_recv() {
                if let CellBody::Offer(o) = m {
                    out.push((*d, o));
                }
            }
        }
        out.sort_by_key(|(d, _)| *d);
        out
    }

    /// `driver_assigned` events of `order` in the log.
    pub async fn assignments(&self, order: OrderId) -> usize {
        self.kv
            .read_events(LOG, LogPos(1), 0)
            .await
            .unwrap()
            .iter()
            .filter_map(|e| serde_json::from_slice::<OrderEvent>(&e.payload).ok())
            .filter(|e| e.order_id == order && e.kind == EventKind::DriverAssigned)
            .count()
    }

    pub async fn active_orders(&self, driver: DriverId) -> usize {
        repo::active_for_driver(&*self.kv, driver)
            .await
            .unwrap()
            .len()
    }
}
