//! Dispatch's side of the driver's address window (`crate::personal::window`): when a
//! delivery whose address the driver could see ends (delivered, or cancelled after that
//! point), `address_revoked` falls due on their control stream at the end of the grace
//! (`[privacy] address_grace_ms`); every matching tick (`dispatch.tick_ms`, 250 ms) sends
//! what is due, so it arrives within a tick of the grace's end. Time is passed in.

use super::{Dispatch, State};
use crate::personal::PrivacyConfig;
use crate::personal::window::{self, Shown};
use domain::{DeliveryId, DriverId, Order, OrderId, UnixMs};
use schemas::{AddressRevoked, CellBody};

/// One `address_revoked` waiting for its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Due {
    at: UnixMs,
    driver: DriverId,
    delivery: DeliveryId,
    order: OrderId,
}

/// Most revocations waiting at once: a delivery's grace is minutes, so this is thousands of
/// deliveries ending within one grace; past it the oldest is dropped (the API revokes the
/// address anyway; only the push to the app is lost).
const MAX_DUE: usize = 100_000;

impl Dispatch {
    /// `[privacy]` for the address window (once, at startup; later calls are ignored).
    pub fn set_privacy(&self, cfg: PrivacyConfig) {
        let _ = self.privacy.set(cfg);
    }

    fn privacy(&self) -> PrivacyConfig {
        self.privacy.get().cloned().unwrap_or_default()
    }

    /// `before` (the order as the driver carried it) ended at `ended`: if the driver could
    /// see its address, `address_revoked` is due at the end of the grace.
    pub(super) fn schedule_revoke(&self, driver: DriverId, before: &Order, ended: UnixMs) {
        let cfg = self.privacy();
        let Some(delivery) = before.delivery_id else {
            return;
        };
        if window::shown(&cfg, before.status, false, None, ended) != Shown::Full {
            return;
        }
        let mut due = self.revocations.lock();
        if due.len() >= MAX_DUE {
            due.remove(0);
        }
        due.push(Due {
            at: window::revoke_at(&cfg, ended),
            driver,
            delivery,
            order: before.id,
        });
    }

    /// Sends every `address_revoked` due at `now` (to drivers connected now; the others see
    /// the approximate area when they ask the API). Returns how many were due.
    pub(super) fn send_due_revocations(&self, now: UnixMs) -> usize {
        let due: Vec<Due> = {
            let mut all = self.revocations.lock();
            if all.iter().all(|d| d.at > now) {
                return 0;
            }
            let (due, later) = all.drain(..).partition(|d| d.at <= now);
            *all = later;
            due
        };
        let st = self.state.lock();
        for d in &due {
            self.send_revoked(&st, d);
        }
        due.len()
    }

    fn send_revoked(&self, st: &State, d: &Due) {
        let msg = CellBody::AddressRevoked(AddressRevoked {
            delivery_id: d.delivery.0,
            order_id: d.order.0,
        });
        let sent = self.send(st, d.driver, msg);
        metrics::counter!("cell_address_revoked_total", "sent" => if sent { "yes" } else { "no" })
            .increment(1);
    }

    /// Revocations waiting (for tests).
    #[cfg(test)]
    pub(crate) fn revocations_due(&self) -> usize {
        self.revocations.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::{Orders, Pricing};
    use crate::tracking::{Tracker, TrackingConfig};
    use domain::{CellId, CustomerId, OrderStatus, RestaurantId, SnowflakeGen};
    use std::sync::Arc;

    const NOW: UnixMs = UnixMs(1_784_109_600_000);

    async fn dispatch(dir: &std::path::Path) -> Dispatch {
        let kv: Arc<dyn store::Kv> =
            Arc::new(store::RedbStore::open(dir, store::RedbOptions::default()).unwrap());
        let catalog = Arc::new(catalog::Catalog::load(kv.clone()).await.unwrap());
        let orders = Arc::new(Orders::new(
            kv,
            store::LogId(1),
            SnowflakeGen::new(CellId::new(1).unwrap()),
            Arc::new(payments::SandboxGateway::new(
                &payments::SandboxConfig::default(),
            )),
            "eur".into(),
            Pricing {
                catalog,
                config: Default::default(),
            },
            Arc::new(crate::ownership::Ownership::new(1)),
            crate::personal::test_vault(),
        ));
        let tracker = Arc::new(Tracker::new(TrackingConfig::default(), 25.0, 1.3));
        let geo = Arc::new(geostore::GeoStore::new(geostore::Config::default()));
        Dispatch::new(Default::default(), geo, orders, tracker)
    }

    fn carried(status: OrderStatus) -> Order {
        let mut o = domain::testing::order(OrderId(5), CustomerId(7), RestaurantId(3), NOW);
        (o.status, o.delivery_id) = (status, Some(DeliveryId(50)));
        o
    }

    #[tokio::test]
    async fn address_revoked_is_sent_when_the_grace_ends_and_only_for_a_shown_address() {
        let dir = tempfile::tempdir().unwrap();
        let d = dispatch(dir.path()).await;
        d.set_privacy(PrivacyConfig {
            address_grace_ms: 10_000,
            ..PrivacyConfig::default()
        });
        let driver = DriverId(9);
        let (_, mut rx, _) = d.connect(driver, NOW);
        // Cancelled before pickup: the driver never saw the address, nothing to revoke.
        d.schedule_revoke(driver, &carried(OrderStatus::DriverAssigned), NOW);
        assert_eq!(d.revocations_due(), 0);
        // Delivered (carried as delivering): due at the end of the grace, not before.
        d.schedule_revoke(driver, &carried(OrderStatus::Delivering), NOW);
        assert_eq!(d.send_due_revocations(UnixMs(NOW.0 + 9_999)), 0);
        assert!(rx.try_recv().is_err());
        assert_eq!(d.send_due_revocations(UnixMs(NOW.0 + 10_000)), 1);
        assert_eq!(
            rx.try_recv().unwrap(),
            CellBody::AddressRevoked(AddressRevoked {
                delivery_id: 50,
                order_id: 5
            })
        );
        assert_eq!(d.revocations_due(), 0, "sent once");
        assert_eq!(d.send_due_revocations(UnixMs(NOW.0 + 20_000)), 0);
    }

    #[tokio::test]
    async fn from_acceptance_an_assigned_delivery_s_address_is_revoked_too() {
        let dir = tempfile::tempdir().unwrap();
        let d = dispatch(dir.path()).await;
        d.set_privacy(PrivacyConfig {
            driver_address_from: crate::personal::config::RevealFrom::Acceptance,
            ..PrivacyConfig::default()
        });
        d.schedule_revoke(DriverId(9), &carried(OrderStatus::DriverAssigned), NOW);
        assert_eq!(d.revocations_due(), 1);
    }
}
