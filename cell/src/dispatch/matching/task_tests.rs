//! The async side of matching against the real store and geostore: an order whose matching
//! cannot start for want of a delivery id (the id lease ran out while the store refused
//! writes) is not stranded; the first tick after the lease is renewed starts it, and a
//! cancellation in between drops it.

use crate::dispatch::{Dispatch, DispatchConfig};
use crate::orders::Orders;
use crate::tracking::{Tracker, TrackingConfig};
use domain::{CustomerId, OrderId, RestaurantId, UnixMs};
use geostore::GeoStore;
use std::sync::Arc;
use store::{Kv, LogId};

const NOW: UnixMs = UnixMs(1_784_109_600_000);

/// A dispatch whose id generator's lease ended a second before `NOW` (as after a store fault
/// longer than the renewal margin).
async fn dispatch(dir: &std::path::Path) -> (Dispatch, Arc<Orders>) {
    let kv: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir, store::RedbOptions::default()).unwrap());
    let orders = crate::orders::test_stores::plain_orders(kv, LogId(1), NOW).await;
    let tracker = Arc::new(Tracker::new(TrackingConfig::default(), 25.0, 1.3));
    let geo = Arc::new(GeoStore::new(geostore::Config::default()));
    let d = Dispatch::new(DispatchConfig::default(), geo, orders.clone(), tracker);
    (d, orders)
}

fn confirmed(id: u64) -> domain::Order {
    let mut o = domain::testing::order(OrderId(id), CustomerId(7), RestaurantId(3), NOW);
    o.status = domain::OrderStatus::Confirmed;
    o
}

fn waiting(d: &Dispatch) -> usize {
    d.state.lock().matcher.waiting()
}

#[tokio::test]
async fn an_order_without_a_delivery_id_starts_on_a_later_tick() {
    let dir = tempfile::tempdir().unwrap();
    let (d, orders) = dispatch(dir.path()).await;
    d.start_matching(confirmed(1), NOW);
    d.start_matching(confirmed(2), NOW);
    assert_eq!(waiting(&d), 0, "no delivery id past the lease");
    d.tick(NOW).await;
    assert_eq!(waiting(&d), 0, "still no lease: still waiting to start");
    d.order_cancelled(OrderId(2), None, None, NOW);
    orders.renew_ids(NOW).await.unwrap();
    d.tick(NOW).await;
    assert_eq!(
        waiting(&d),
        1,
        "the lease is back: order 1 is matched, order 2 cancelled"
    );
    assert!(d.state.lock().unstarted.is_empty());
}
