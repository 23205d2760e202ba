//! The rules fed by dispatch signals: a spoofed ping goes through [`Dispatch`] itself and is
//! stored as a flag by the signal task; a `delivered` tap far from the drop-off is flagged and
//! a near one is not.

use super::rules::RuleKind;
use super::signals::{self, Signal};
use super::tests::{Fx, fx, only, rule, rules_of};
use super::{Flag, FraudConfig};
use crate::dispatch::{Dispatch, GpsFix};
use crate::tracking::Tracker;
use catalog::testing::{LAT, LNG, NOON};
use domain::{DriverId, OrderId, UnixMs};
use std::sync::Arc;

/// A dispatch on `fx`'s orders whose fraud signals are written by the signal task.
fn dispatch(fx: &Fx, cfg: &FraudConfig) -> (Arc<Dispatch>, tokio::sync::watch::Sender<bool>) {
    let dispatch = Arc::new(Dispatch::new(
        Default::default(),
        Arc::new(geostore::GeoStore::new(geostore::Config::default())),
        fx.orders.clone(),
        Arc::new(Tracker::new(Default::default(), 25.0, 1.3)),
    ));
    let (sink, rx) = signals::channel(16);
    dispatch.set_fraud_signals(sink);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(signals::run(fx.kv.clone(), cfg.clone(), rx, stopped));
    (dispatch, stop)
}

fn fix(lat: f64, ts_ms: u64) -> GpsFix {
    GpsFix {
        lat,
        lng: LNG,
        heading: 0.0,
        speed: 10.0,
        ts_ms,
    }
}

/// Waits until the signal task stored `n` flags (it runs concurrently; no time bound: the
/// test runner's own timeout is the bound).
async fn flags_stored(fx: &Fx, n: usize) -> Vec<Flag> {
    loop {
        let all = fx.all().await;
        if all.len() >= n {
            return all;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_spoofed_ping_is_stored_as_a_flag_and_a_plausible_one_is_not() {
    let cfg = only(RuleKind::GpsSpoof, rule(0.0, 0, 0));
    let fx = fx(cfg.clone(), 1000).await;
    let (dispatch, _stop) = dispatch(&fx, &cfg);
    let t = NOON.0 as u64;
    let d = DriverId(5);
    dispatch.ping(d, fix(LAT, t), UnixMs(t as i64)).unwrap();
    // 100 m in 10 s: a scooter.
    dispatch
        .ping(d, fix(LAT + 0.0009, t + 10_000), UnixMs(t as i64 + 10_000))
        .unwrap();
    // 11 km in 10 s: no car does that.
    assert!(
        dispatch
            .ping(d, fix(LAT + 0.1, t + 20_000), UnixMs(t as i64 + 20_000))
            .is_err()
    );
    let flags = flags_stored(&fx, 1).await;
    assert_eq!(rules_of(&flags), [RuleKind::GpsSpoof]);
    assert_eq!(flags[0].subject, "driver:5");
    assert!(flags[0].evidence["implied_mps"].as_f64().unwrap() > 500.0);
    // The counter in memory is still kept.
    assert_eq!(dispatch.spoof_flags(d), 1);
}

#[tokio::test]
async fn a_delivered_tap_far_from_the_drop_off_is_flagged_and_a_near_one_is_not() {
    let cfg = only(RuleKind::DeliveredFar, rule(300.0, 0, 0));
    let fx = fx(cfg.clone(), 1000).await;
    let tap = |order: u64, north: f64| Signal::DeliveredTap {
        driver: DriverId(3),
        order: OrderId(order),
        tap: Some((LAT + north, LNG)),
        dropoff: (LAT, LNG),
        at: NOON,
    };
    assert_eq!(signals::flag_for(&tap(1, 0.001), &cfg), None, "~110 m");
    let (sink, rx) = signals::channel(4);
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(signals::run(fx.kv.clone(), cfg.clone(), rx, stopped));
    sink.send(tap(1, 0.001));
    sink.send(tap(2, 0.01));
    let flags = flags_stored(&fx, 1).await;
    assert_eq!(rules_of(&flags), [RuleKind::DeliveredFar]);
    assert_eq!(flags[0].order_id.as_deref(), Some("2"));
    let m = flags[0].evidence["distance_m"].as_f64().unwrap();
    assert!((1_000.0..1_200.0).contains(&m), "{m}");
}

#[tokio::test]
async fn dispatch_reports_each_delivered_tap_with_where_the_driver_was() {
    use crate::dispatch::DriverUpdate;
    use domain::{Actor, Command, DeliveryId};
    let cfg = only(RuleKind::DeliveredFar, rule(300.0, 0, 0));
    let mut fx = fx(cfg.clone(), 1000).await;
    let (dispatch, _stop) = dispatch(&fx, &cfg);
    let r = Actor::Restaurant(catalog::testing::rid(1));
    // Driver 1 taps at the door, driver 2 about 1.1 km short of it; both drop-offs are
    // 0.01° north of the restaurant.
    let mut orders = Vec::new();
    for driver in [1u64, 2] {
        let o = fx
            .place(driver, 1, 1, 0.01, payments::sandbox::PM_VISA)
            .await;
        let d = Actor::Driver(DriverId(driver));
        fx.go(&o, Command::Accept, r, 0).await;
        let op = crate::orders::WriteOp::new(NOON);
        crate::orders::repo::assign_driver(
            &*fx.kv,
            store::LogId(1),
            o.id,
            DriverId(driver),
            DeliveryId(o.id.0),
            &op,
        )
        .await
        .unwrap();
        fx.go(&o, Command::ArriveAtRestaurant, d, 0).await;
        fx.go(&o, Command::PickUp, d, 0).await;
        orders.push(o);
    }
    dispatch.recover(NOON).await.unwrap();
    let now = UnixMs(NOON.0 + 60_000);
    for (driver, north) in [(1u64, 0.01), (2, 0.0)] {
        let d = DriverId(driver);
        dispatch
            .ping(d, fix(LAT + north, now.0 as u64), now)
            .unwrap();
        let o = &orders[driver as usize - 1];
        let delivered = dispatch
            .update(d, DriverUpdate::Delivered(DeliveryId(o.id.0)), now)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(delivered.status, domain::OrderStatus::Delivered);
    }
    // Signals are written in order: once driver 2's flag is there, driver 1's tap was seen.
    let flags = flags_stored(&fx, 1).await;
    assert_eq!(rules_of(&flags), [RuleKind::DeliveredFar]);
    assert_eq!(flags[0].subject, "driver:2");
    assert_eq!(flags[0].order_id, Some(orders[1].id.to_string()));
}
