//! Tests of the payment worker on the embedded store with a store-kept sandbox: accepting
//! leaves the capture pending and touches no provider; settling captures once; a restart in
//! the middle of an effect repeats nothing at the provider; a retryable failure is scheduled
//! by the backoff schedule from `now`; a capture refused for good is compensated (cancelled
//! with `payment_failed`, hold voided, both parties told); cancelling while the capture is
//! pending refunds; the running worker settles what the log says.

use super::*;
use crate::app::Clock;
use crate::orders::place_tests::{Cell, cell_with, request, restaurant};
use crate::orders::test_stores::{self, TestStore};
use domain::{Actor, Command, EventKind, OrderEvent, OrderId, OrderStatus, PaymentState, UnixMs};
use payments::{FaultPatch, Op, PaymentGateway, SandboxConfig, SandboxGateway, idempotency_key};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use store::{Kv, LogId, LogPos};

use catalog::testing::NOON;

/// A clock the test moves.
struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now(&self) -> UnixMs {
        UnixMs(self.0.load(Ordering::SeqCst))
    }
}

struct Setup {
    c: Cell,
    sandbox: Arc<SandboxGateway>,
    clock: Arc<TestClock>,
    worker: PaymentWorker,
}

fn config() -> PaymentWorkerConfig {
    PaymentWorkerConfig {
        scan_interval_ms: 10,
        ..PaymentWorkerConfig::default()
    }
}

async fn sandbox_on(kv: &Arc<dyn Kv>) -> Arc<SandboxGateway> {
    Arc::new(
        SandboxGateway::open(&SandboxConfig::default(), kv.clone())
            .await
            .unwrap(),
    )
}

fn worker(kv: Arc<dyn Kv>, sandbox: Arc<SandboxGateway>, clock: Arc<TestClock>) -> PaymentWorker {
    PaymentWorker::new(kv, LogId(1), sandbox, config(), clock)
}

async fn setup(store: TestStore) -> Setup {
    let kv: Arc<dyn Kv> = store.kv.clone();
    let sandbox = sandbox_on(&kv).await;
    let c = cell_with(store, sandbox.clone()).await;
    let clock = Arc::new(TestClock(AtomicI64::new(NOON.0)));
    let worker = worker(kv, sandbox.clone(), clock.clone());
    Setup {
        c,
        sandbox,
        clock,
        worker,
    }
}

/// Places an order and has the restaurant accept it.
async fn accepted(s: &Setup, key: &str) -> OrderId {
    let placed = s.c.orders.place(request(key, 1), NOON).await.unwrap();
    let id = placed.order.id;
    let (o, _) =
        s.c.orders
            .transition(
                id,
                Command::Accept,
                Actor::Restaurant(restaurant().id),
                NOON,
            )
            .await
            .unwrap();
    assert_eq!(o.payment_state, PaymentState::CapturePending);
    id
}

async fn order(s: &Setup, id: OrderId) -> domain::Order {
    crate::orders::repo::get(&**s.c.orders.kv(), id)
        .await
        .unwrap()
        .unwrap()
}

fn captures(sandbox: &SandboxGateway) -> u32 {
    sandbox.ledger().iter().map(|e| e.effects.capture).sum()
}

async fn events(kv: &dyn Kv) -> Vec<OrderEvent> {
    kv.read_events(LogId(1), LogPos(0), 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).unwrap())
        .collect()
}

#[tokio::test]
async fn accepting_commits_a_pending_capture_and_settling_captures_once() {
    for store in test_stores::both() {
        let s = setup(store).await;
        let id = accepted(&s, "k1").await;
        assert_eq!(captures(&s.sandbox), 0, "accepting calls no provider");
        let done = s.worker.settle_order(id).await.unwrap();
        // On the model a commit may be reported unknown and rerun: the rerun finds its own
        // write and reports the order moved on.
        assert!(
            matches!(
                done,
                Some(
                    Settled::Recorded(PaymentState::Captured)
                        | Settled::Moved(PaymentState::Captured)
                )
            ),
            "{done:?}"
        );
        assert_eq!(order(&s, id).await.payment_state, PaymentState::Captured);
        // Settling again (a replayed event) does nothing.
        s.worker.settle_order(id).await.unwrap();
        assert_eq!(captures(&s.sandbox), 1);
        assert_eq!(s.sandbox.stats().replays, 0);
    }
}

#[tokio::test]
async fn a_restart_in_the_middle_of_an_effect_repeats_nothing_at_the_provider() {
    let s = setup(test_stores::redb()).await;
    let id = accepted(&s, "k1").await;
    let o = order(&s, id).await;
    // The worker's capture reached the provider, then the process died before recording it.
    s.sandbox
        .capture(&o.payment_ref, o.total, &idempotency_key(id, Op::Capture))
        .await
        .unwrap();
    // A new process: a sandbox and a worker opened on the same store.
    let kv = s.c.orders.kv().clone();
    let sandbox = sandbox_on(&kv).await;
    let again = worker(kv, sandbox.clone(), s.clock.clone());
    assert_eq!(
        again.settle_order(id).await.unwrap(),
        Some(Settled::Recorded(PaymentState::Captured))
    );
    assert_eq!(captures(&sandbox), 1, "captured once");
    assert_eq!(sandbox.stats().replays, 1, "the retry was a replay");
}

#[tokio::test]
async fn a_retryable_failure_is_retried_on_the_schedule_then_succeeds() {
    let s = setup(test_stores::redb()).await;
    let id = accepted(&s, "k1").await;
    s.sandbox
        .set_faults(FaultPatch {
            fail_percent: Some(100),
            ..FaultPatch::default()
        })
        .unwrap();
    let Some(Settled::RetryAt(at)) = s.worker.settle_order(id).await.unwrap() else {
        panic!("expected a retry")
    };
    let want = config().schedule().after_failure(id, None, NOON);
    assert_eq!(
        want,
        schedule::Next::RetryAt(list_due(&**s.c.orders.kv(), at, 10).await.unwrap()[0].1)
    );
    // Not due before its time.
    assert!(
        list_due(&**s.c.orders.kv(), UnixMs(at.0 - 1), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A second failure doubles the wait, counted from the first failure.
    s.clock.0.store(at.0, Ordering::SeqCst);
    let Some(Settled::RetryAt(second)) = s.worker.settle_order(id).await.unwrap() else {
        panic!("expected a second retry")
    };
    let due = list_due(&**s.c.orders.kv(), second, 10).await.unwrap()[0].1;
    assert_eq!((due.failures, due.first_failed_at), (2, NOON));
    assert!(
        second.0 - at.0 >= 1_000,
        "second wait is at least half of 2 s"
    );
    // The provider recovers: the next try captures and clears the record.
    s.sandbox
        .set_faults(FaultPatch {
            fail_percent: Some(0),
            ..FaultPatch::default()
        })
        .unwrap();
    s.clock.0.store(second.0, Ordering::SeqCst);
    assert_eq!(
        s.worker.settle_order(id).await.unwrap(),
        Some(Settled::Recorded(PaymentState::Captured))
    );
    assert_eq!(count_due(&**s.c.orders.kv()).await.unwrap(), 0);
}

#[tokio::test]
async fn retries_past_the_period_count_as_failed_for_good() {
    let s = setup(test_stores::redb()).await;
    let id = accepted(&s, "k1").await;
    s.sandbox
        .set_faults(FaultPatch {
            fail_percent: Some(100),
            ..FaultPatch::default()
        })
        .unwrap();
    assert!(matches!(
        s.worker.settle_order(id).await.unwrap(),
        Some(Settled::RetryAt(_))
    ));
    s.clock.0.store(NOON.0 + 24 * 3600 * 1000, Ordering::SeqCst);
    s.sandbox
        .set_faults(FaultPatch {
            fail_percent: Some(0),
            decline_after_authorize: Some(true),
            ..FaultPatch::default()
        })
        .unwrap();
    // Failing again after 24 h gives up; a decline would too: either way compensated.
    s.worker.settle_order(id).await.unwrap();
    let o = order(&s, id).await;
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert_eq!(o.cancel_reason.as_deref(), Some(PAYMENT_FAILED));
}

#[tokio::test]
async fn a_capture_refused_for_good_is_compensated() {
    for store in test_stores::both() {
        let s = setup(store).await;
        let id = accepted(&s, "k1").await;
        s.sandbox
            .set_faults(FaultPatch {
                decline_after_authorize: Some(true),
                ..FaultPatch::default()
            })
            .unwrap();
        // Compensated, then the void it left pending is performed in the same call.
        let done = s.worker.settle_order(id).await.unwrap();
        assert!(
            matches!(
                done,
                Some(
                    Settled::Recorded(PaymentState::Voided) | Settled::Moved(PaymentState::Voided)
                )
            ),
            "{done:?}"
        );
        let o = order(&s, id).await;
        assert_eq!(o.status, OrderStatus::Cancelled);
        assert_eq!(o.cancel_reason.as_deref(), Some(PAYMENT_FAILED));
        let e = &s.sandbox.ledger()[0];
        assert_eq!((e.effects.capture, e.effects.void), (0, 1));
        // The cancellation and the payment failure are in the log, for the notification
        // consumer (customer and restaurant) and the tracking fan-out.
        let kinds: Vec<EventKind> = events(&**s.c.orders.kv())
            .await
            .into_iter()
            .filter(|e| e.order_id == id)
            .map(|e| e.kind)
            .collect();
        assert!(
            kinds.ends_with(&[EventKind::OrderCancelled, EventKind::PaymentFailed]),
            "{kinds:?}"
        );
    }
}

#[tokio::test]
async fn hold_marks_the_payment_failed_and_keeps_the_order() {
    let store = test_stores::redb();
    let kv: Arc<dyn Kv> = store.kv.clone();
    let sandbox = sandbox_on(&kv).await;
    let c = cell_with(store, sandbox.clone()).await;
    let clock = Arc::new(TestClock(AtomicI64::new(NOON.0)));
    let cfg = PaymentWorkerConfig {
        on_capture_failure: OnCaptureFailure::Hold,
        ..config()
    };
    let worker = PaymentWorker::new(kv.clone(), LogId(1), sandbox.clone(), cfg, clock.clone());
    let s = Setup {
        c,
        sandbox,
        clock,
        worker,
    };
    let id = accepted(&s, "k1").await;
    s.sandbox
        .set_faults(FaultPatch {
            decline_after_authorize: Some(true),
            ..FaultPatch::default()
        })
        .unwrap();
    assert_eq!(
        s.worker.settle_order(id).await.unwrap(),
        Some(Settled::Compensated)
    );
    let o = order(&s, id).await;
    assert_eq!(
        (o.status, o.payment_state),
        (OrderStatus::Confirmed, PaymentState::Failed)
    );
}

#[tokio::test]
async fn cancelling_while_the_capture_is_pending_captures_then_refunds() {
    let s = setup(test_stores::redb()).await;
    let id = accepted(&s, "k1").await;
    let cancel = Command::Cancel {
        reason: "changed mind".into(),
    };
    let (o, _) =
        s.c.orders
            .transition(id, cancel, Actor::Admin, NOON)
            .await
            .unwrap();
    assert_eq!(o.payment_state, PaymentState::RefundPending);
    assert_eq!(
        s.worker.settle_order(id).await.unwrap(),
        Some(Settled::Recorded(PaymentState::Refunded))
    );
    let e = &s.sandbox.ledger()[0];
    assert_eq!((e.effects.capture, e.effects.refund), (1, 1));
    assert!(e.refunded <= e.captured);
}

/// Recording captures together writes each only over the snapshot it was performed from: an
/// order that moved on since (cancelled while the capture was in flight) is left as the cancel
/// wrote it, and the guarded settle then records the capture and refunds.
#[tokio::test]
async fn a_fast_record_over_a_stale_snapshot_writes_nothing() {
    let s = setup(test_stores::redb()).await;
    let id = accepted(&s, "k1").await;
    let fresh = accepted(&s, "k2").await;
    let snapshot_of = |id: OrderId| {
        let key = crate::orders::keys::order(id);
        store::read(&*s.c.store.kv, move |txn| {
            let key = key.clone();
            Box::pin(async move { txn.get(&key).await.map_err(store::TxnError::<()>::Store) })
        })
    };
    let snapshot = snapshot_of(id).await.unwrap().unwrap();
    let before = order(&s, id).await;
    // Recorded in the same transaction: an unchanged order is written, a changed one is not.
    let fresh_done = Done {
        snapshot: snapshot_of(fresh).await.unwrap().unwrap(),
        order: order(&s, fresh).await,
        to: PaymentState::Captured,
    };
    let cancel = Command::Cancel {
        reason: "changed mind".into(),
    };
    s.c.orders
        .transition(id, cancel, Actor::Admin, NOON)
        .await
        .unwrap();
    let done = Done {
        snapshot,
        order: before,
        to: PaymentState::Captured,
    };
    let stale = record_done(&*s.c.store.kv, vec![done, fresh_done], NOON)
        .await
        .unwrap();
    assert_eq!(stale.iter().map(|d| d.order.id).collect::<Vec<_>>(), [id]);
    assert_eq!(order(&s, fresh).await.payment_state, PaymentState::Captured);
    assert_eq!(
        order(&s, id).await.payment_state,
        PaymentState::RefundPending
    );
    assert_eq!(
        s.worker.settle_order(id).await.unwrap(),
        Some(Settled::Recorded(PaymentState::Refunded))
    );
}

#[tokio::test]
async fn the_running_worker_settles_what_the_log_says() {
    let s = setup(test_stores::redb()).await;
    let accepted_id = accepted(&s, "k1").await;
    let placed = s.c.orders.place(request("k2", 2), NOON).await.unwrap();
    let rejected_id = placed.order.id;
    s.c.orders
        .transition(
            rejected_id,
            Command::Reject {
                reason: "closed".into(),
            },
            Actor::Restaurant(restaurant().id),
            NOON,
        )
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let worker = Arc::new(s.worker);
    let task = tokio::spawn(worker.clone().run(rx));
    let kv = s.c.orders.kv().clone();
    let settled = |id| {
        let kv = kv.clone();
        async move {
            loop {
                let o = crate::orders::repo::get(&*kv, id).await.unwrap().unwrap();
                if !o.payment_state.is_pending() {
                    return o.payment_state;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        }
    };
    assert_eq!(settled(accepted_id).await, PaymentState::Captured);
    assert_eq!(settled(rejected_id).await, PaymentState::Voided);
    stop.send(true).unwrap();
    task.await.unwrap();
    // The cursor is saved: a restarted worker starts after these events.
    assert!(crate::events::load_cursor(&*kv, CURSOR).await.unwrap() > LogPos(0));
}

#[tokio::test]
async fn the_checker_passes_a_settled_store_and_reports_a_pending_effect() {
    let s = setup(test_stores::redb()).await;
    let a = accepted(&s, "k1").await;
    let b = accepted(&s, "k2").await;
    s.c.orders.place(request("k3", 3), NOON).await.unwrap();
    s.worker.settle_order(a).await.unwrap();
    let kv = s.c.orders.kv().clone();
    // `b` is still capture_pending: reported.
    let r = check::check_payments(&*kv).await.unwrap();
    assert_eq!(
        (r.orders, r.pending_effects, r.awaiting_restaurant),
        (3, 1, 1)
    );
    assert!(!r.ok());
    assert!(
        r.violations[0].contains("capture_pending"),
        "{:?}",
        r.violations
    );
    s.worker.settle_order(b).await.unwrap();
    let r = check::check_payments(&*kv).await.unwrap();
    assert!(r.ok(), "{:?}", r.violations);
    assert_eq!(r.captures_per_order.get(&1), Some(&2));
    assert_eq!(r.by_payment_state.get("captured"), Some(&2));
}
