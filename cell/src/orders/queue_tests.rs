//! The authorization queue against the real store (redb, and the FoundationDB-semantics model
//! with conflicts and unknown commit results) and the sandbox provider with its outage
//! switch: queued while down, authorized oldest first once up, cancelled past the queue age
//! (with `now` passed in) or on a decline, idempotent retries while queued, and a customer's
//! cancellation taking the order out of the queue.

use super::*;
use crate::orders::place_tests::{Cell, cell, request};
use crate::orders::test_stores;
use catalog::testing::NOON;
use domain::{EventKind, OrderEvent, PaymentState};
use payments::sandbox::PM_DECLINED;

const MINUTE_MS: i64 = 60_000;

fn one_at_a_time() -> QueueConfig {
    QueueConfig {
        concurrency: 1,
        ..QueueConfig::default()
    }
}

fn at(minutes: i64) -> UnixMs {
    UnixMs(NOON.0 + minutes * MINUTE_MS)
}

async fn order(c: &Cell, id: OrderId) -> domain::Order {
    repo::get(&*c.store.kv, id).await.unwrap().unwrap()
}

async fn queued_ids(c: &Cell) -> Vec<OrderId> {
    list(&*c.store.kv, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test]
async fn orders_placed_during_an_outage_are_authorized_oldest_first_once_it_ends() {
    for s in test_stores::both() {
        authorized_oldest_first(cell(s).await).await;
    }
}

async fn authorized_oldest_first(c: Cell) {
    c.payments.set_outage(true);
    let mut ids = Vec::new();
    for (i, key) in ["a", "b", "c"].into_iter().enumerate() {
        let placed = c.orders.place(request(key, 1), at(i as i64)).await.unwrap();
        assert!(placed.created);
        assert_eq!(placed.order.status, OrderStatus::PaymentPending);
        assert_eq!(
            placed.order.payment_state,
            PaymentState::AuthorizationPending
        );
        ids.push(placed.order.id);
    }
    assert_eq!(
        queued_ids(&c).await,
        ids,
        "the queue lists them oldest first"
    );

    // Still down: a pass authorizes nothing and stops asking after the first failure.
    let before = c.payments.stats().attempts;
    let pass = c
        .orders
        .drain_payment_queue(&one_at_a_time(), at(4))
        .await
        .unwrap();
    assert_eq!((pass.authorized, pass.waiting), (0, 3));
    assert_eq!(c.payments.stats().attempts - before, 1);

    c.payments.set_outage(false);
    let pass = c
        .orders
        .drain_payment_queue(&one_at_a_time(), at(5))
        .await
        .unwrap();
    assert_eq!((pass.authorized, pass.waiting), (3, 0));
    assert!(queued_ids(&c).await.is_empty());
    // The provider saw them in placement order.
    let ledger = c.payments.ledger();
    let mut refs = Vec::new();
    for id in &ids {
        let o = order(&c, *id).await;
        assert_eq!(
            (o.status, o.payment_state),
            (OrderStatus::Pending, PaymentState::Authorized)
        );
        refs.push(o.payment_ref);
    }
    let ledger_ids: Vec<String> = ledger.iter().map(|e| e.id.clone()).collect();
    assert_eq!(ledger_ids, refs);

    // The restaurant hears of each order as after a normal placement: `order_created`.
    let events = c
        .store
        .kv
        .read_events(store::LogId(1), store::LogPos::default(), 100)
        .await
        .unwrap();
    let kinds: Vec<(OrderId, EventKind)> = events
        .iter()
        .map(|e| serde_json::from_slice::<OrderEvent>(&e.payload).unwrap())
        .map(|e| (e.order_id, e.kind))
        .collect();
    for id in &ids {
        let mine: Vec<EventKind> = kinds
            .iter()
            .filter(|(o, _)| o == id)
            .map(|(_, k)| *k)
            .collect();
        assert_eq!(
            mine,
            [EventKind::OrderPaymentPending, EventKind::OrderCreated]
        );
    }
    // And it goes on as usual: the restaurant accepts, the capture is committed as pending
    // for the payment worker.
    let (o, _) = c
        .orders
        .transition(
            ids[0],
            Command::Accept,
            Actor::Restaurant(o_restaurant(&c, ids[0]).await),
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(o.payment_state, PaymentState::CapturePending);
}

async fn o_restaurant(c: &Cell, id: OrderId) -> domain::RestaurantId {
    order(c, id).await.restaurant_id
}

#[tokio::test]
async fn a_queued_order_past_the_queue_age_is_cancelled_with_a_reason() {
    for s in test_stores::both() {
        expires(cell(s).await).await;
    }
}

async fn expires(c: Cell) {
    c.payments.set_outage(true);
    let old = c
        .orders
        .place(request("old", 1), at(0))
        .await
        .unwrap()
        .order;
    let young = c
        .orders
        .place(request("young", 1), at(5))
        .await
        .unwrap()
        .order;
    let cfg = one_at_a_time();
    // At 10 minutes exactly the first is not yet too old.
    let pass = c.orders.drain_payment_queue(&cfg, at(10)).await.unwrap();
    assert_eq!((pass.expired, pass.waiting), (0, 2));
    // Past it, it is cancelled even though the provider is still down; the younger one waits.
    let pass = c
        .orders
        .drain_payment_queue(&cfg, UnixMs(at(10).0 + 1))
        .await
        .unwrap();
    assert_eq!((pass.expired, pass.waiting), (1, 1));
    let o = order(&c, old.id).await;
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert_eq!(o.cancel_reason.as_deref(), Some(REASON_EXPIRED));
    assert_eq!(o.payment_state, PaymentState::AuthorizationPending);
    assert_eq!(queued_ids(&c).await, vec![young.id]);
    c.payments.set_outage(false);
    let pass = c.orders.drain_payment_queue(&cfg, at(12)).await.unwrap();
    assert_eq!(pass.authorized, 1);
    assert!(
        c.payments.ledger().len() == 1,
        "the expired one was never authorized"
    );
}

#[tokio::test]
async fn a_decline_while_queued_cancels_with_payment_declined() {
    for s in test_stores::both() {
        declined(cell(s).await).await;
    }
}

async fn declined(c: Cell) {
    c.payments.set_outage(true);
    let mut req = request("declined", 1);
    req.payment_method_id = PM_DECLINED.into();
    let o = c.orders.place(req, at(0)).await.unwrap().order;
    assert_eq!(o.status, OrderStatus::PaymentPending);
    c.payments.set_outage(false);
    let pass = c
        .orders
        .drain_payment_queue(&one_at_a_time(), at(1))
        .await
        .unwrap();
    assert_eq!(pass.declined, 1);
    let o = order(&c, o.id).await;
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert_eq!(o.cancel_reason.as_deref(), Some(REASON_DECLINED));
    assert!(queued_ids(&c).await.is_empty());
}

#[tokio::test]
async fn a_retry_with_the_same_key_gets_the_same_order_queued_or_not() {
    for s in test_stores::both() {
        idempotent_across_the_queue(cell(s).await).await;
    }
}

async fn idempotent_across_the_queue(c: Cell) {
    c.payments.set_outage(true);
    let first = c.orders.place(request("same", 9), at(0)).await.unwrap();
    let again = c.orders.place(request("same", 9), at(1)).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.order, first.order, "still queued: the same order");
    assert_eq!(queued_ids(&c).await.len(), 1, "queued once");

    c.payments.set_outage(false);
    c.orders
        .drain_payment_queue(&one_at_a_time(), at(2))
        .await
        .unwrap();
    let after = c.orders.place(request("same", 9), at(3)).await.unwrap();
    assert!(!after.created);
    assert_eq!(after.order.id, first.order.id);
    assert_eq!(after.order.status, OrderStatus::Pending);
    let ledger = c.payments.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].effects.authorize, 1, "held once");
}

#[tokio::test]
async fn a_customer_cancelling_a_queued_order_takes_it_out_of_the_queue() {
    for s in test_stores::both() {
        cancelled_by_customer(cell(s).await).await;
    }
}

async fn cancelled_by_customer(c: Cell) {
    c.payments.set_outage(true);
    let o = c
        .orders
        .place(request("mine", 1), at(0))
        .await
        .unwrap()
        .order;
    let cancel = Command::Cancel {
        reason: "changed my mind".into(),
    };
    let (o, t) = c
        .orders
        .transition(o.id, cancel, Actor::Customer(o.customer_id), at(1))
        .await
        .unwrap();
    assert_eq!((o.status, t.payment), (OrderStatus::Cancelled, None));
    assert!(queued_ids(&c).await.is_empty());
    c.payments.set_outage(false);
    let pass = c
        .orders
        .drain_payment_queue(&one_at_a_time(), at(2))
        .await
        .unwrap();
    assert_eq!(pass, QueuePass::default());
    assert!(c.payments.ledger().is_empty(), "never authorized");
}

#[test]
fn only_an_unreachable_provider_queues() {
    assert!(queues(&PaymentError::Timeout));
    assert!(queues(&PaymentError::Unavailable));
    assert!(queues(&PaymentError::Provider("garbled".into())));
    assert!(!queues(&PaymentError::Invalid("bad".into())));
    assert!(!queues(&PaymentError::Declined {
        code: "card_declined".into(),
        message: "no".into()
    }));
}

/// A provider that hangs (the sandbox's slow card answers after a minute) is given up on
/// after the placement wait: the order is queued, so placement never outlives the HTTP
/// request timeout. The wait is shortened to 50 ms so the test does not sit out the default.
#[tokio::test]
async fn a_provider_that_hangs_queues_the_order_after_the_placement_wait() {
    let mut c = cell(test_stores::redb()).await;
    c.orders = c.orders.with_placement_wait(Duration::from_millis(50));
    let mut req = request("slow", 1);
    req.payment_method_id = payments::sandbox::PM_TIMEOUT.into();
    let placed = c.orders.place(req, at(0)).await.unwrap();
    assert_eq!(placed.order.status, OrderStatus::PaymentPending);
    assert_eq!(queued_ids(&c).await, vec![placed.order.id]);
}
