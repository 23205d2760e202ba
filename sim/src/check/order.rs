//! Checks of one order as the store holds it: its status history against the domain's
//! transition table, one driver at a time, and its money as the provider's ledger shows it.

use super::{Violation, broken};
use crate::providers::PayLedger;
use domain::machine::{Actor, Command, decide};
use domain::order::HistoryEntry;
use domain::{DeliveryId, DriverId, EventKind, KitchenStage, Order, OrderStatus, PaymentState};
use std::collections::BTreeSet;

/// Every (from, to) status move some command may make, from the domain's table: each
/// command tried by an admin on an order in every status, kitchen stage, payment state and
/// with or without a driver.
pub fn legal_moves() -> BTreeSet<(OrderStatus, OrderStatus)> {
    let base = domain::testing::order(
        domain::OrderId(1),
        domain::CustomerId(1),
        domain::RestaurantId(1),
        domain::UnixMs(0),
    );
    let cmds = [
        Command::Accept,
        Command::Reject { reason: "r".into() },
        Command::StartPreparing,
        Command::MarkReady,
        Command::AssignDriver {
            driver: DriverId(1),
            delivery: DeliveryId(1),
        },
        Command::UnassignDriver,
        Command::ArriveAtRestaurant,
        Command::PickUp,
        Command::StartDelivering,
        Command::Deliver,
        Command::Cancel { reason: "r".into() },
        Command::FlagDelayed,
        Command::AuthorizePayment {
            payment_ref: "p".into(),
        },
    ];
    // The kitchen stages each status can be in (the domain asserts the kitchen never goes
    // back, so impossible pairs are not tried).
    let stages = |s: OrderStatus| -> &'static [KitchenStage] {
        use KitchenStage::*;
        match s {
            OrderStatus::PaymentPending | OrderStatus::Pending | OrderStatus::Cancelled => {
                &[Received]
            }
            OrderStatus::Confirmed => &[Accepted],
            OrderStatus::Preparing => &[Preparing],
            OrderStatus::DriverAssigned | OrderStatus::DriverAtRestaurant => {
                &[Accepted, Preparing, Ready]
            }
            OrderStatus::ReadyForPickup
            | OrderStatus::PickedUp
            | OrderStatus::Delivering
            | OrderStatus::Delivered => &[Ready],
        }
    };
    let pays = [
        PaymentState::Authorized,
        PaymentState::AuthorizationPending,
        PaymentState::CapturePending,
        PaymentState::Captured,
    ];
    let mut out = BTreeSet::new();
    for status in OrderStatus::ALL {
        for &kitchen in stages(status) {
            for payment_state in pays {
                for driver_id in [None, Some(DriverId(1))] {
                    let o = Order {
                        status,
                        kitchen,
                        payment_state,
                        driver_id,
                        ..base.clone()
                    };
                    for c in &cmds {
                        if let Ok(t) = decide(&o, c, &Actor::Admin) {
                            out.insert((t.from, t.to));
                        }
                    }
                }
            }
        }
    }
    out
}

pub fn check(
    legal: &BTreeSet<(OrderStatus, OrderStatus)>,
    o: &Order,
    h: &[HistoryEntry],
    ledger: Option<&PayLedger>,
) -> Result<(), Violation> {
    let id = o.id;
    let Some(first) = h.first() else {
        return broken(
            "every transition is legal",
            format!("order {id} has no history"),
        );
    };
    if !matches!(
        first.status,
        OrderStatus::Pending | OrderStatus::PaymentPending
    ) {
        return broken(
            "every transition is legal",
            format!("order {id} was created {}", first.status),
        );
    }
    for w in h.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.status.is_terminal() && b.status != a.status {
            return broken(
                "every transition is legal",
                format!(
                    "order {id} moved on from {} ({:?} by {:?})",
                    a.status, b.event, b.by
                ),
            );
        }
        if a.status != b.status && !legal.contains(&(a.status, b.status)) {
            return broken(
                "every transition is legal",
                format!("order {id}: {} -> {} ({:?})", a.status, b.status, b.event),
            );
        }
        if let (Some(x), Some(y)) = (a.driver_id, b.driver_id)
            && x != y
        {
            return broken(
                "an order has one driver",
                format!("order {id}: driver {x} then {y} without an unassignment"),
            );
        }
    }
    let last = h.last().map(|e| e.status);
    if last != Some(o.status) {
        return broken(
            "every transition is legal",
            format!("order {id} is {} but its history ends {last:?}", o.status),
        );
    }
    if let Some(l) = ledger {
        money(o, h, l)?;
    }
    Ok(())
}

/// Money per order, from the provider's ledger: nothing charged beyond the hold, one
/// capture, refunds within the charge, and no charge the restaurant never accepted.
fn money(o: &Order, h: &[HistoryEntry], l: &PayLedger) -> Result<(), Violation> {
    let id = o.id;
    if l.captures > 1 {
        return broken(
            "each capture happens once",
            format!(
                "order {id} captured {} times ({} cents)",
                l.captures, l.captured
            ),
        );
    }
    if l.captured + l.voided > l.authorized {
        return broken(
            "money is conserved",
            format!(
                "order {id}: captured {} + voided {} > authorized {}",
                l.captured, l.voided, l.authorized
            ),
        );
    }
    if l.refunded > l.captured {
        return broken(
            "money is conserved",
            format!(
                "order {id}: refunded {} > captured {}",
                l.refunded, l.captured
            ),
        );
    }
    let accepted = h.iter().any(|e| e.event == EventKind::OrderConfirmed);
    if l.captured > 0 && !accepted {
        return broken(
            "no capture without acceptance",
            format!("order {id} was charged {} but never accepted", l.captured),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_allows_the_headline_path_and_refuses_leaving_a_terminal_status() {
        let m = legal_moves();
        use OrderStatus::*;
        for mv in [
            (Pending, Confirmed),
            (Confirmed, DriverAssigned),
            (DriverAssigned, PickedUp),
            (PickedUp, Delivering),
            (Delivering, Delivered),
            (Pending, Cancelled),
            (PaymentPending, Pending),
        ] {
            assert!(m.contains(&mv), "{mv:?}");
        }
        for mv in [
            (Cancelled, Confirmed),
            (Delivered, Cancelled),
            (Pending, Delivered),
        ] {
            assert!(!m.contains(&mv), "{mv:?}");
        }
    }
}
