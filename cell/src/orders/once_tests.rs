//! Retried commits apply once: on the FoundationDB-semantics model with 30 % of commits applied
//! but reported `commit_unknown_result` (which the store layer retries by rerunning the
//! transaction) and 10 % conflicts, many orders run concurrently through placement, accept,
//! preparing, ready, driver assignment, pickup and delivery (every fourth is cancelled after
//! acceptance, with a refund). Every step must succeed (no spurious 409, `Changed` or
//! `DriverBusy`) and be applied exactly once (one history row and one event each). The control
//! runs the same steps through the transaction bodies without ids and sees the spurious
//! failures, so the faults do fire.

use super::place_tests::{Cell, cell, request};
use super::repo::{self, RepoError};
use super::test_stores::{both, faults, model};
use super::{OrderError, WriteOp};
use domain::{
    Actor, Command, DeliveryId, DriverId, EventKind, Order, OrderEvent, OrderId, OrderStatus,
    UnixMs,
};
use std::collections::HashMap;
use std::sync::Arc;
use store::{Kv, LogId, LogPos, TxnError};

use catalog::testing::NOON;

const LOG: LogId = LogId(1);
const ORDERS: u64 = 32;
/// Unknown results (and conflicts, at a third of it) per commit.
const UNKNOWN: f64 = 0.3;

fn later(step: i64) -> UnixMs {
    UnixMs(NOON.0 + step * 1_000)
}

fn driver_of(i: u64) -> DriverId {
    DriverId(100 + i)
}

/// The commands an order goes through after placement, with who issues them.
fn life(i: u64, o: &Order) -> Vec<(Command, Actor)> {
    let r = Actor::Restaurant(o.restaurant_id);
    let d = Actor::Driver(driver_of(i));
    if i % 4 == 3 {
        let cancel = Command::Cancel {
            reason: "changed my mind".into(),
        };
        return vec![
            (Command::Accept, r),
            (cancel, Actor::Customer(o.customer_id)),
        ];
    }
    let assign = Command::AssignDriver {
        driver: driver_of(i),
        delivery: DeliveryId(i),
    };
    vec![
        (Command::Accept, r),
        (Command::StartPreparing, r),
        (Command::MarkReady, r),
        (assign, Actor::System),
        (Command::ArriveAtRestaurant, d),
        (Command::PickUp, d),
        (Command::StartDelivering, d),
        (Command::Deliver, d),
    ]
}

/// Order `i`'s request, placed by a customer of its own: 32 orders of one customer at noon
/// would meet the order limit.
fn own_customer(i: u64) -> super::PlaceOrder {
    super::PlaceOrder {
        customer: domain::CustomerId(1_000 + i),
        ..request(&format!("k{i}"), i)
    }
}

/// One order's whole life through the cell's own write paths: `Orders::place`,
/// `Orders::transition` and, for the assignment, the dispatch's `repo::assign_driver`.
async fn run_order(c: &Cell, i: u64) -> Result<Order, OrderError> {
    let placed = c
        .orders
        .place(own_customer(i), NOON)
        .await
        .map_err(|e| match e {
            super::PlaceError::Repo(r) => OrderError::Repo(r),
            other => panic!("placement failed: {other}"),
        })?;
    assert!(placed.created, "order {i} reported as a replay");
    let mut order = placed.order;
    for (step, (cmd, actor)) in life(i, &order).into_iter().enumerate() {
        let now = later(step as i64 + 1);
        order = match cmd {
            Command::AssignDriver { driver, delivery } => {
                let op = WriteOp::new(now);
                repo::assign_driver(&*c.store.kv, LOG, order.id, driver, delivery, &op).await?
            }
            cmd => c.orders.transition(order.id, cmd, actor, now).await?,
        }
        .0;
    }
    Ok(order)
}

/// Per order: (history rows, events). Reads with faults off.
async fn applied(kv: &dyn Kv) -> HashMap<OrderId, (usize, Vec<EventKind>)> {
    let mut out: HashMap<OrderId, (usize, Vec<EventKind>)> = HashMap::new();
    for e in kv.read_events(LOG, LogPos(1), 0).await.unwrap() {
        let ev: OrderEvent = serde_json::from_slice(&e.payload).unwrap();
        out.entry(ev.order_id).or_default().1.push(ev.kind);
    }
    for (id, entry) in out.iter_mut() {
        let (_, history) = repo::get_with_history(kv, *id).await.unwrap().unwrap();
        entry.0 = history.len();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_commits_give_no_spurious_409_or_driver_busy_and_apply_once() {
    let c = cell(model(faults(7, 0.0))).await;
    let db = c.store.model.clone().unwrap();
    db.set_faults(store::model::ModelFaults {
        unknown_result: UNKNOWN,
        ..faults(7, UNKNOWN / 3.0)
    });
    let runs = (0..ORDERS).map(|i| {
        let c = &c;
        async move { (i, run_order(c, i).await) }
    });
    let results = futures::future::join_all(runs).await;
    let fired = db.stats();
    db.set_faults(faults(0, 0.0));

    let mut ids = HashMap::new();
    for (i, r) in results {
        let o = r.unwrap_or_else(|e| panic!("order {i}: spurious failure {e}"));
        let want = if i % 4 == 3 {
            OrderStatus::Cancelled
        } else {
            OrderStatus::Delivered
        };
        assert_eq!(o.status, want, "order {i}");
        ids.insert(o.id, i);
    }
    let seen = applied(&*c.store.kv).await;
    assert_eq!(seen.len(), ORDERS as usize);
    for (id, (history, events)) in &seen {
        let i = ids[id];
        // Placement plus each step of its life, each exactly once.
        let steps = 1 + life(i, &repo::get(&*c.store.kv, *id).await.unwrap().unwrap()).len();
        assert_eq!(
            (*history, events.len()),
            (steps, steps),
            "order {i}: {events:?}"
        );
        let mut unique = events.clone();
        unique.dedup();
        assert_eq!(&unique, events, "order {i}: an event repeated");
    }
    // Transitions leave their payment effects pending (changed with the payment saga): the
    // payment worker performs them, here once per order after the store faults stopped.
    let clock: Arc<dyn crate::app::Clock> = Arc::new(crate::app::OffsetClock { offset_ms: 0 });
    let worker = crate::saga::PaymentWorker::new(
        c.store.kv.clone(),
        store::LogId(1),
        c.payments.clone(),
        crate::saga::PaymentWorkerConfig::default(),
        clock,
    );
    for id in seen.keys() {
        worker.settle_order(*id).await.unwrap();
    }
    // One authorization per order, captured (and for cancelled ones refunded) in full, each
    // payment call made once: store retries never reach the provider.
    assert_eq!(c.payments.ledger().len() as u64, ORDERS);
    for e in c.payments.ledger() {
        assert_eq!(e.captured, e.authorized, "{e:?}");
    }
    let refunded = c
        .payments
        .ledger()
        .iter()
        .filter(|e| e.refunded == e.authorized)
        .count();
    assert_eq!(refunded as u64, ORDERS / 4);
    assert_eq!(c.payments.stats().replays, 0);
    assert!(
        fired.injected_unknown_results >= 20,
        "the fault must fire: {fired:?}"
    );
}

/// The same life through the transaction bodies without transaction ids, as the cell wrote
/// before: a retried unknown result reruns the body, which finds its own first effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_ids_the_retried_commits_fail_spuriously() {
    let c = cell(model(faults(7, 0.0))).await;
    let kv = c.store.kv.clone();
    let db = c.store.model.clone().unwrap();
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        orders.push((
            i,
            c.orders.place(own_customer(i), NOON).await.unwrap().order,
        ));
    }
    db.set_faults(store::model::ModelFaults {
        unknown_result: UNKNOWN,
        ..faults(7, UNKNOWN / 3.0)
    });
    let (mut spurious_409, mut driver_busy) = (0, 0);
    for (i, o) in orders {
        for (step, (cmd, actor)) in life(i, &o).into_iter().enumerate() {
            let now = later(step as i64 + 1);
            let id = o.id;
            let r = store::transact(&*kv, move |txn| {
                let cmd = cmd.clone();
                Box::pin(async move {
                    match cmd {
                        Command::AssignDriver { driver, delivery } => {
                            repo::assign_in(txn, LOG, id, driver, delivery, now).await
                        }
                        cmd => repo::transition_in(txn, LOG, id, &cmd, actor, None, now).await,
                    }
                })
            })
            .await;
            match r {
                Ok(_) => {}
                Err(TxnError::Abort(RepoError::Transition(_))) => spurious_409 += 1,
                Err(TxnError::Abort(RepoError::DriverBusy { order, .. })) => {
                    assert_eq!(order, id, "busy with its own order");
                    driver_busy += 1;
                }
                Err(e) => panic!("order {i}: {e:?}"),
            }
        }
    }
    let fired = db.stats().injected_unknown_results;
    assert!(fired >= 20, "{fired}");
    assert!(
        spurious_409 > 0 && driver_busy > 0,
        "without ids a retried commit fails spuriously: {spurious_409} 409s, {driver_busy} DriverBusy of {fired} unknown results"
    );
}

/// The purge drops ids past their horizon and keeps the others: a retry of a kept operation
/// still returns its outcome, one of a purged operation runs again (and is refused).
#[tokio::test]
async fn old_transaction_ids_are_purged_and_recent_ones_kept() {
    for s in both() {
        let c = cell(s).await;
        let kv = &*c.store.kv;
        let o = c.orders.place(request("k", 1), NOON).await.unwrap().order;
        let kitchen = Actor::Restaurant(o.restaurant_id);
        let old = WriteOp::with_id([1; 16], UnixMs(NOON.0 - 2 * 3_600_000));
        let recent = WriteOp::with_id([2; 16], UnixMs(NOON.0 - 60_000));
        repo::transition(kv, LOG, o.id, Command::Accept, kitchen, None, &old)
            .await
            .unwrap();
        let prepared = repo::transition(
            kv,
            LOG,
            o.id,
            Command::StartPreparing,
            kitchen,
            None,
            &recent,
        )
        .await
        .unwrap();
        super::once::purge_txn_ids(kv, NOON).await.unwrap();
        let again = repo::transition(
            kv,
            LOG,
            o.id,
            Command::StartPreparing,
            kitchen,
            None,
            &recent,
        )
        .await
        .unwrap();
        assert_eq!(
            again, prepared,
            "{}: a kept id returns its outcome",
            c.store.name
        );
        let purged = repo::transition(kv, LOG, o.id, Command::Accept, kitchen, None, &old).await;
        assert!(
            matches!(purged, Err(RepoError::Transition(_))),
            "{}: a purged id runs again: {purged:?}",
            c.store.name
        );
    }
}
