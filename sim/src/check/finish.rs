//! The checks that hold once faults have stopped and the city has settled: no acknowledged
//! order lost, every order ended, every hold settled, every customer-facing event notified
//! exactly once, no tracker left on a finished order.

use super::{Violation, broken};
use crate::providers::{Shown, SimPayments};
use cell::notify::Recipient;
use cell::orders::repo;
use domain::{EventKind, OrderId, OrderStatus, PaymentState};
use std::collections::{BTreeMap, BTreeSet};
use store::{Kv, LogId};

fn store_err(e: impl std::fmt::Display) -> Violation {
    Violation {
        invariant: "the store answers once faults stop",
        detail: e.to_string(),
    }
}

/// Whether the city has settled: no active order, no payment effect pending, and the
/// notification consumer at the log's head.
pub async fn quiescent(kv: &dyn Kv, pay_pending: &BTreeSet<OrderId>) -> Result<bool, String> {
    for s in OrderStatus::ALL.into_iter().filter(|s| s.is_active()) {
        if !repo::list_by_status(kv, s, None, 1)
            .await
            .map_err(|e| e.to_string())?
            .is_empty()
        {
            return Ok(false);
        }
    }
    for id in pay_pending {
        if let Some(o) = repo::get(kv, *id).await.map_err(|e| e.to_string())?
            && o.payment_state.is_pending()
        {
            return Ok(false);
        }
    }
    let head = kv
        .log_head(LogId(crate::node::CELL))
        .await
        .map_err(|e| e.to_string())?;
    let notified = cell::events::load_cursor(kv, cell::notify::CONSUMER)
        .await
        .map_err(|e| e.to_string())?;
    Ok(notified >= head)
}

pub async fn check(
    kv: &dyn Kv,
    pay: &SimPayments,
    shown: &[Shown],
    acked: &[OrderId],
    trackers_open: &[OrderId],
) -> Result<(), Violation> {
    for id in acked {
        if repo::get(kv, *id).await.map_err(store_err)?.is_none() {
            return broken("no acknowledged order is lost", format!("order {id}"));
        }
    }
    for s in OrderStatus::ALL.into_iter().filter(|s| s.is_active()) {
        let left = repo::list_by_status(kv, s, None, 5)
            .await
            .map_err(store_err)?;
        if let Some(o) = left.first() {
            return broken(
                "every order ends within the bound",
                format!("order {} still {} ({} such shown)", o.id, s, left.len()),
            );
        }
    }
    for (id, l) in pay.ledger() {
        match repo::get(kv, id).await.map_err(store_err)? {
            Some(o) => {
                let settled = !o.payment_state.is_pending()
                    && o.payment_state != PaymentState::AuthorizationPending;
                if settled && l.authorized != l.captured + l.voided {
                    return broken(
                        "money is conserved",
                        format!(
                            "order {id} ({}, payment {}): authorized {} != captured {} + voided {}",
                            o.status,
                            o.payment_state.as_str(),
                            l.authorized,
                            l.captured,
                            l.voided
                        ),
                    );
                }
                if o.status == OrderStatus::Delivered
                    && (l.captured != l.authorized || l.refunded > 0)
                {
                    return broken(
                        "money is conserved",
                        format!(
                            "delivered order {id}: captured {} of {}, refunded {}",
                            l.captured, l.authorized, l.refunded
                        ),
                    );
                }
            }
            None if l.authorized > l.captured + l.voided => {
                return broken(
                    "money is conserved",
                    format!(
                        "a hold of {} for order {id}, which was never created",
                        l.authorized
                    ),
                );
            }
            None => {}
        }
    }
    notifications(kv, shown, acked).await?;
    if let Some(o) = trackers_open.first() {
        return broken(
            "no tracker is left on a finished order",
            format!("order {o} ({} such)", trackers_open.len()),
        );
    }
    Ok(())
}

/// Each event's notification is shown at most once per recipient (by distinct keys), and
/// every finished order told its customer.
async fn notifications(kv: &dyn Kv, shown: &[Shown], acked: &[OrderId]) -> Result<(), Violation> {
    let mut per: BTreeMap<(OrderId, String, &str), (u32, EventKind)> = BTreeMap::new();
    for s in shown {
        per.entry((s.order, format!("{:?}", s.kind), s.recipient.role()))
            .or_insert((0, s.kind))
            .0 += 1;
    }
    let orders: BTreeSet<OrderId> = per
        .keys()
        .map(|k| k.0)
        .chain(acked.iter().copied())
        .collect();
    for id in orders {
        let Some((o, h)) = repo::get_with_history(kv, id).await.map_err(store_err)? else {
            continue;
        };
        let happened = |k: EventKind| h.iter().filter(|e| e.event == k).count() as u32;
        let mine = per
            .range((id, String::new(), "")..)
            .take_while(|(k, _)| k.0 == id);
        for (_, (n, kind)) in mine {
            if *n > happened(*kind).max(1) {
                return broken(
                    "each event's effect happens once",
                    format!(
                        "order {id}: {n} {kind:?} notifications for {} such events",
                        happened(*kind)
                    ),
                );
            }
        }
        let told = |kinds: &[EventKind]| {
            shown.iter().any(|s| {
                s.order == id
                    && kinds.contains(&s.kind)
                    && matches!(s.recipient, Recipient::Customer(_))
            })
        };
        let missing = match o.status {
            OrderStatus::Delivered => !told(&[EventKind::OrderDelivered]),
            OrderStatus::Cancelled => !told(&[
                EventKind::OrderCancelled,
                EventKind::OrderRejected,
                EventKind::PaymentFailed,
            ]),
            _ => false,
        };
        if missing {
            return broken(
                "each event's effect happens once",
                format!(
                    "order {id} ended {} and its customer was never told",
                    o.status
                ),
            );
        }
    }
    Ok(())
}
