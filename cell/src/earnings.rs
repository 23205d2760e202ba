//! A driver's earnings. Each delivery's payout is computed by [`payout`] (the one formula:
//! the offer shows the same amount) and recorded when the order is delivered, by an
//! event-log consumer (durable cursor `earnings`) under `("earn", driver, delivered_ms,
//! order)` → payout cents. Recording is idempotent (the same key and value on a replay), so
//! the cursor saved per batch repeats nothing visible. [`summary`] sums a time window with
//! one range read.

use crate::dispatch::DispatchConfig;
use domain::{Cents, DriverId, EventKind, Order, OrderId, UnixMs};
use std::sync::Arc;
use store::{Kv, RangeRequest};
use tokio::sync::watch;

/// The durable cursor's name.
pub const CONSUMER: &str = "earnings";

/// What a driver earns for carrying `o`: a base plus a rate per km from restaurant to door.
pub fn payout(cfg: &DispatchConfig, o: &Order) -> Cents {
    let km = geostore::haversine_m(
        o.restaurant_lat,
        o.restaurant_lng,
        o.delivery_address.lat,
        o.delivery_address.lng,
    ) / 1000.0;
    Cents(cfg.payout_base_cents + (km * cfg.payout_per_km_cents as f64).round() as i64)
}

fn key(d: DriverId, at: UnixMs, o: OrderId) -> Vec<u8> {
    store::keys::pack(&("earn", d.0, at.0, o.0))
}

/// Deliveries and payouts in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    pub deliveries: u64,
    pub payout: Cents,
}

/// Records the payout of `o`, delivered by `d` at `at`.
pub async fn record(
    kv: &dyn Kv,
    d: DriverId,
    at: UnixMs,
    o: OrderId,
    amount: Cents,
) -> Result<(), store::StoreError> {
    let r = store::transact(kv, move |txn| {
        Box::pin(async move {
            txn.set(&key(d, at, o), &amount.0.to_be_bytes());
            Ok::<_, store::TxnError<()>>(())
        })
    })
    .await;
    r.map_err(crate::people::flatten)
}

/// The deliveries of `d` with `from <= delivered < to`.
pub async fn summary(
    kv: &dyn Kv,
    d: DriverId,
    from: UnixMs,
    to: UnixMs,
) -> Result<Totals, store::StoreError> {
    let r = store::read(kv, move |txn| {
        Box::pin(async move {
            let mut totals = Totals::default();
            let mut range = RangeRequest::prefix(&store::keys::pack(&("earn", d.0)));
            range.begin = store::keys::pack(&("earn", d.0, from.0));
            range.end = store::keys::pack(&("earn", d.0, to.0));
            for kv in txn.get_range(range).await? {
                let cents = <[u8; 8]>::try_from(kv.value.as_slice()).map_or(0, i64::from_be_bytes);
                totals.deliveries += 1;
                totals.payout = Cents(totals.payout.0 + cents);
            }
            Ok::<_, store::TxnError<()>>(totals)
        })
    })
    .await;
    r.map_err(crate::people::flatten)
}

/// Records every delivery's payout as the log shows it, until `shutdown`.
pub fn spawn(
    kv: Arc<dyn Kv>,
    log: store::LogId,
    cfg: DispatchConfig,
    shutdown: watch::Receiver<bool>,
) {
    let reader = kv.clone();
    tokio::spawn(crate::events::consume(
        kv,
        log,
        crate::events::Start::Durable(CONSUMER),
        move |_pos, ev| {
            let (kv, cfg) = (reader.clone(), cfg.clone());
            async move {
                let (EventKind::OrderDelivered, Some(d)) = (ev.kind, ev.driver_id) else {
                    return Ok(());
                };
                let order = crate::orders::repo::get(&*kv, ev.order_id)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("delivered order {} not found", ev.order_id))?;
                record(&*kv, d, ev.at, ev.order_id, payout(&cfg, &order))
                    .await
                    .map_err(|e| e.to_string())
            }
        },
        shutdown,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerId, RestaurantId};

    #[test]
    fn the_payout_is_a_base_plus_a_rate_per_km() {
        let cfg = DispatchConfig::default();
        let mut o = domain::testing::order(OrderId(1), CustomerId(1), RestaurantId(1), UnixMs(0));
        o.delivery_address.lat = o.restaurant_lat;
        o.delivery_address.lng = o.restaurant_lng;
        assert_eq!(payout(&cfg, &o), Cents(cfg.payout_base_cents));
        // About 1.11 km north.
        o.delivery_address.lat = o.restaurant_lat + 0.01;
        let p = payout(&cfg, &o).0 - cfg.payout_base_cents;
        assert!(
            (cfg.payout_per_km_cents..=cfg.payout_per_km_cents * 12 / 10).contains(&p),
            "{p}"
        );
    }

    #[tokio::test]
    async fn a_window_sums_what_was_delivered_in_it_and_a_replay_counts_once() {
        let db = store::model::ModelDb::new(store::model::ModelFaults::none());
        let kv = db.kv();
        let (d, other) = (DriverId(5), DriverId(6));
        record(&*kv, d, UnixMs(1_000), OrderId(1), Cents(400))
            .await
            .unwrap();
        record(&*kv, d, UnixMs(2_000), OrderId(2), Cents(500))
            .await
            .unwrap();
        record(&*kv, d, UnixMs(2_000), OrderId(2), Cents(500))
            .await
            .unwrap();
        record(&*kv, d, UnixMs(9_000), OrderId(3), Cents(700))
            .await
            .unwrap();
        record(&*kv, other, UnixMs(1_500), OrderId(4), Cents(900))
            .await
            .unwrap();
        let t = summary(&*kv, d, UnixMs(1_000), UnixMs(9_000))
            .await
            .unwrap();
        assert_eq!(
            t,
            Totals {
                deliveries: 2,
                payout: Cents(900)
            }
        );
        let all = summary(&*kv, d, UnixMs(0), UnixMs(i64::MAX)).await.unwrap();
        assert_eq!(all.deliveries, 3);
    }
}
