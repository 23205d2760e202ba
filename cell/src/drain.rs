//! A draining cell finishing its own orders. Orders never move between cells (an order id
//! names its cell), so after its regions moved away a draining cell still serves every order
//! it holds until each ends. Two things make that end come:
//!
//! - **Drivers stay while they are needed.** Dispatch's handover keeps an idle driver on a
//!   draining cell while an order waiting for a driver is within matching range of them
//!   (`dispatch::handover`); only then are they sent to the region's new owner. We chose
//!   this over letting the new owner's drivers take the old cell's offers because it needs
//!   no cross-cell protocol: the driver is already connected here, and matching, offers and
//!   the assignment transaction stay in the one cell that holds the order.
//! - **A deadline for the rest.** An order that still has no driver `[drain]
//!   unassigned_deadline_ms` after this cell first saw itself draining with no region left
//!   (the moves done) is cancelled with
//!   reason `cell_drained`, through the ordinary cancel transition, so its payment is voided
//!   or refunded and the customer is told like any cancellation. Orders with a driver are
//!   left to finish.
//!
//! [`plan`] decides (pure, `now` passed in); [`spawn`] runs it every `tick_ms` and keeps the
//! [`DrainProgress`] the status endpoint reports (the router's `cells list` shows it).
//! The moment the drain was first seen lives in memory: a restarted draining cell starts the
//! deadline again, which only ever gives orders more time.

use crate::app::App;
use cellapi::DrainProgress;
use cellmap::CellState;
use domain::{Actor, Command, Order, OrderId, OrderStatus, UnixMs};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The reason a drain's deadline cancels an order with; customers and support see it.
pub const CANCEL_REASON: &str = "cell_drained";

/// `[drain]`: how a draining cell ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DrainConfig {
    /// How long after the drain began an order may still wait for a driver before it is
    /// cancelled (and refunded).
    pub unassigned_deadline_ms: u64,
    /// How often the drain is looked at.
    pub tick_ms: u64,
}

impl Default for DrainConfig {
    fn default() -> Self {
        DrainConfig {
            unassigned_deadline_ms: 10 * 60_000,
            tick_ms: 2_000,
        }
    }
}

impl service::config::Validate for DrainConfig {
    fn validate(&self, s: &mut service::config::Section<'_>) {
        s.ensure(self.tick_ms > 0, "tick_ms", || {
            "must be greater than 0 (got 0)".into()
        });
        s.ensure(
            self.unassigned_deadline_ms <= 24 * 3_600_000,
            "unassigned_deadline_ms",
            || {
                format!(
                    "must be at most 24 h (got {} ms)",
                    self.unassigned_deadline_ms
                )
            },
        );
    }
}

/// What [`plan`] decided: the orders to cancel now, and the progress to report.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub cancel: Vec<OrderId>,
    pub progress: DrainProgress,
}

/// Whether `o` is still waiting for a driver (and may be cancelled by the deadline).
fn unassigned(o: &Order) -> bool {
    o.driver_id.is_none()
        && matches!(
            o.status,
            OrderStatus::Pending
                | OrderStatus::Confirmed
                | OrderStatus::Preparing
                | OrderStatus::ReadyForPickup
        )
}

/// The drain's next step, given this cell's `active` orders, when the drain began and how
/// many drivers are still connected.
pub fn plan(
    active: &[Order],
    since: UnixMs,
    now: UnixMs,
    drivers_online: u64,
    cfg: &DrainConfig,
) -> Plan {
    debug_assert!(active.iter().all(|o| o.status.is_active()));
    let deadline = UnixMs(since.0.saturating_add(cfg.unassigned_deadline_ms as i64));
    let past = now >= deadline;
    let cancel: Vec<OrderId> = if past {
        active
            .iter()
            .filter(|o| unassigned(o))
            .map(|o| o.id)
            .collect()
    } else {
        Vec::new()
    };
    let waiting = active.iter().filter(|o| unassigned(o)).count() as u64;
    let oldest = active.iter().map(|o| o.created_at).min();
    // The end: the latest promised delivery of an order that keeps going, and the deadline
    // while some order still waits for a driver (it ends by then, one way or the other).
    let kept = active.iter().filter(|o| !(past && unassigned(o)));
    let mut done = kept
        .map(|o| o.estimated_delivery_max)
        .max()
        .unwrap_or(now)
        .max(now);
    if waiting > 0 && !past {
        done = done.max(deadline);
    }
    Plan {
        progress: DrainProgress {
            since_ms: since.0,
            orders_left: active.len() as u64,
            waiting_for_driver: waiting,
            oldest_order_age_ms: oldest.map_or(0, |t| now.0.saturating_sub(t.0).max(0) as u64),
            drivers_online,
            expected_done_ms: if active.is_empty() { now.0 } else { done.0 },
            deadline_ms: deadline.0,
        },
        cancel,
    }
}

/// The drain as this process sees it: when it began and the latest progress.
#[derive(Debug, Default)]
pub struct DrainState {
    since: Mutex<Option<UnixMs>>,
    progress: Mutex<Option<DrainProgress>>,
}

impl DrainState {
    /// The last progress computed, while draining.
    pub fn progress(&self) -> Option<DrainProgress> {
        self.progress.lock().clone()
    }

    /// Whether orders near idle drivers should keep them here (see `dispatch::handover`).
    pub fn draining(&self) -> bool {
        self.since.lock().is_some()
    }
}

/// Runs the drain check every `tick_ms` until `shutdown`.
pub fn spawn(app: &App, mut shutdown: watch::Receiver<bool>) {
    let app = app.clone();
    tokio::spawn(async move {
        let tick = std::time::Duration::from_millis(app.config().drain.tick_ms);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(tick) => {
                    if let Err(e) = step(&app).await {
                        tracing::warn!(error = %e, "drain check failed; trying again");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    });
}

async fn step(app: &App) -> Result<(), crate::orders::repo::RepoError> {
    let me = app.config().cell.id;
    let map = app.cell_map();
    let me = domain::CellId::new(me).expect("validated at load");
    // The deadline runs from when the last region has moved away: an order placed during
    // the moves gets the whole of it too.
    let draining =
        map.cell(me).is_some_and(|c| c.state != CellState::Active) && map.regions_of(me).is_empty();
    let state = app.drain();
    if !draining {
        *state.since.lock() = None;
        *state.progress.lock() = None;
        return Ok(());
    }
    let now = app.now();
    let since = *state.since.lock().get_or_insert(now);
    let mut active = Vec::new();
    for s in OrderStatus::ALL.into_iter().filter(|s| s.is_active()) {
        crate::orders::repo::for_each_in_status(
            &**app.kv(),
            s,
            crate::orders::repo::RECOVERY_PAGE,
            |o| active.push(o),
        )
        .await?;
    }
    let drivers = app.dispatch().geo().len() as u64;
    let plan = plan(&active, since, now, drivers, &app.config().drain);
    metrics::gauge!("cell_drain_orders_left").set(plan.progress.orders_left as f64);
    for id in &plan.cancel {
        let cmd = Command::Cancel {
            reason: CANCEL_REASON.into(),
        };
        match app.orders().transition(*id, cmd, Actor::System, now).await {
            Ok(_) => {
                metrics::counter!("cell_drain_cancelled_total").increment(1);
                tracing::info!(order = %id, "drain deadline: cancelled an order no driver took");
            }
            // A driver took it meanwhile, or the customer cancelled: nothing to do.
            Err(e) => tracing::debug!(order = %id, error = %e, "drain: not cancelled"),
        }
    }
    *state.progress.lock() = Some(plan.progress);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerId, DeliveryId, DriverId, RestaurantId};

    const MIN: i64 = 60_000;

    fn order(id: u64, status: OrderStatus, driver: bool, created: i64, eta_max: i64) -> Order {
        let mut o = domain::testing::order(OrderId(id), CustomerId(1), RestaurantId(1), UnixMs(0));
        o.status = status;
        o.driver_id = driver.then_some(DriverId(id));
        o.delivery_id = driver.then_some(DeliveryId(id));
        o.created_at = UnixMs(created);
        o.estimated_delivery_max = UnixMs(eta_max);
        o
    }

    fn cfg() -> DrainConfig {
        DrainConfig {
            unassigned_deadline_ms: 10 * MIN as u64,
            tick_ms: 1_000,
        }
    }

    #[test]
    fn before_the_deadline_nothing_is_cancelled_and_the_end_is_the_deadline() {
        let since = UnixMs(100 * MIN);
        let active = [
            order(1, OrderStatus::ReadyForPickup, false, 95 * MIN, 130 * MIN),
            order(2, OrderStatus::PickedUp, true, 90 * MIN, 105 * MIN),
        ];
        let p = plan(&active, since, UnixMs(101 * MIN), 3, &cfg());
        assert!(p.cancel.is_empty());
        let g = &p.progress;
        assert_eq!(
            (g.orders_left, g.waiting_for_driver, g.drivers_online),
            (2, 1, 3)
        );
        assert_eq!(g.oldest_order_age_ms, 11 * MIN as u64);
        assert_eq!(g.deadline_ms, 110 * MIN);
        assert_eq!(
            g.expected_done_ms,
            130 * MIN,
            "the waiting order's promise is later"
        );
    }

    #[test]
    fn past_the_deadline_only_orders_without_a_driver_are_cancelled() {
        let since = UnixMs(100 * MIN);
        let active = [
            order(1, OrderStatus::Pending, false, 95 * MIN, 140 * MIN),
            order(2, OrderStatus::Confirmed, false, 96 * MIN, 140 * MIN),
            order(3, OrderStatus::Preparing, false, 97 * MIN, 140 * MIN),
            order(4, OrderStatus::ReadyForPickup, false, 98 * MIN, 140 * MIN),
            order(5, OrderStatus::DriverAssigned, true, 98 * MIN, 115 * MIN),
            order(6, OrderStatus::Delivering, true, 90 * MIN, 112 * MIN),
        ];
        let now = UnixMs(110 * MIN);
        let p = plan(&active, since, now, 2, &cfg());
        assert_eq!(
            p.cancel,
            vec![OrderId(1), OrderId(2), OrderId(3), OrderId(4)]
        );
        assert_eq!(
            p.progress.expected_done_ms,
            115 * MIN,
            "the end is the latest delivery that goes on"
        );
        // One millisecond earlier, nothing yet.
        assert!(
            plan(&active, since, UnixMs(now.0 - 1), 2, &cfg())
                .cancel
                .is_empty()
        );
    }

    #[test]
    fn an_empty_cell_is_done_now() {
        let p = plan(&[], UnixMs(0), UnixMs(5 * MIN), 0, &cfg());
        assert!(p.cancel.is_empty());
        assert_eq!(
            (p.progress.orders_left, p.progress.expected_done_ms),
            (0, 5 * MIN)
        );
    }

    #[test]
    fn a_late_delivery_is_never_reported_as_done_in_the_past() {
        let active = [order(1, OrderStatus::Delivering, true, 0, 20 * MIN)];
        let p = plan(&active, UnixMs(0), UnixMs(30 * MIN), 1, &cfg());
        assert_eq!(p.progress.expected_done_ms, 30 * MIN);
    }
}
