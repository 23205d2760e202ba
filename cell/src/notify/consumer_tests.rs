//! The consumer against a real [`store::RedbStore`] in a tempdir and the webhook receiver
//! over HTTP: every event notified once; a crash (the task dropped mid-batch) and restart
//! (the store reopened) replays, but the receiver dedupes and nothing is missing; overload
//! holds everything (nothing sent, cursor still) and clearing it catches up; a provider
//! outage loses nothing; a rejection is skipped.

use super::receiver::Receiver;
use super::{CONSUMER, Overload, PushProvider, WebhookPush, WebhookSettings, run};
use crate::events::load_cursor;
use domain::{
    CustomerId, DriverId, EventKind, Order, OrderEvent, OrderId, OrderStatus, RestaurantId, UnixMs,
};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Kv, LogId, LogPos};
use tokio::sync::watch;
use tokio::task::JoinHandle;

const LOG: LogId = LogId(1);

fn open(dir: &Path) -> Arc<dyn Kv> {
    Arc::new(store::RedbStore::open(dir, store::RedbOptions::default()).unwrap())
}

fn ev(kind: EventKind, order: u64) -> OrderEvent {
    OrderEvent {
        kind,
        order_id: OrderId(order),
        customer_id: CustomerId(100 + order),
        restaurant_id: RestaurantId(9),
        status: OrderStatus::Confirmed,
        driver_id: Some(DriverId(3)),
        at: UnixMs(1_700_000_000_000),
    }
}

/// Appends `events` in one transaction, as the order repository does.
async fn append(kv: &dyn Kv, events: Vec<OrderEvent>) {
    let payloads: Arc<Vec<Vec<u8>>> = Arc::new(
        events
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap())
            .collect(),
    );
    store::transact(kv, move |txn| {
        let payloads = payloads.clone();
        Box::pin(async move {
            for p in payloads.iter() {
                txn.append_event(LOG, p);
            }
            Ok::<_, store::TxnError<()>>(())
        })
    })
    .await
    .unwrap();
}

fn webhook(r: &Receiver, max_retries: u32) -> Arc<dyn PushProvider> {
    Arc::new(
        WebhookPush::new(WebhookSettings {
            url: r.url(),
            timeout: Duration::from_millis(1_000),
            max_retries,
            backoff_base: Duration::from_millis(5),
        })
        .unwrap(),
    )
}

struct Running {
    task: JoinHandle<()>,
    stop: watch::Sender<bool>,
}

fn start(kv: &Arc<dyn Kv>, provider: Arc<dyn PushProvider>, overload: &Arc<Overload>) -> Running {
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(run(kv.clone(), LOG, provider, overload.clone(), rx));
    Running { task, stop }
}

impl Running {
    async fn shutdown(self) {
        self.stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("consumer stops promptly")
            .unwrap();
    }
}

async fn eventually(what: &str, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn cursor(kv: &Arc<dyn Kv>) -> LogPos {
    load_cursor(&**kv, CONSUMER).await.unwrap()
}

async fn head(kv: &Arc<dyn Kv>) -> LogPos {
    kv.log_head(LOG).await.unwrap()
}

fn order_record(id: u64) -> Order {
    Order {
        // The notification texts name the restaurant; the test below asserts one.
        restaurant_name: "Pizza Roma".into(),
        ..domain::testing::order(
            OrderId(id),
            CustomerId(100 + id),
            RestaurantId(9),
            UnixMs(1_000),
        )
    }
}

#[tokio::test]
async fn every_notifying_event_reaches_the_receiver_once_with_the_restaurant_name() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path());
    let r = Receiver::start().await;
    let overload = Arc::new(Overload::new());
    // A real order (its creation appends order_created at position 1), then its life.
    crate::orders::repo::create(
        &*kv,
        LOG,
        order_record(1),
        &crate::orders::WriteOp::new(UnixMs(1_000)),
    )
    .await
    .unwrap();
    let c = start(&kv, webhook(&r, 2), &overload);
    use EventKind::*;
    let life = [
        OrderConfirmed,
        OrderPreparing,
        OrderReady,
        DriverAssigned,
        DriverAtRestaurant,
        OrderPickedUp,
        OrderDelivering,
        OrderDelivered,
    ];
    append(&*kv, life.iter().map(|k| ev(*k, 1)).collect()).await;
    eventually("5 deliveries", async || r.delivered().len() == 5).await;
    eventually("the cursor at the head", async || {
        cursor(&kv).await == head(&kv).await
    })
    .await;
    c.shutdown().await;

    let got = r.delivered();
    let kinds: Vec<_> = got.iter().map(|n| n.kind).collect();
    assert_eq!(
        kinds,
        [
            OrderCreated,
            OrderConfirmed,
            DriverAssigned,
            OrderPickedUp,
            OrderDelivered
        ]
    );
    assert_eq!(
        r.delivered_keys(),
        [
            "cell-1-evt-1-restaurant",
            "cell-1-evt-2-customer",
            "cell-1-evt-5-customer",
            "cell-1-evt-7-customer",
            "cell-1-evt-9-customer"
        ]
    );
    assert_eq!(
        got[1].body,
        "Order confirmed! Pizza Roma is preparing your food."
    );
    assert_eq!(r.attempts().len(), 5, "nothing was sent twice");
}

#[tokio::test]
async fn a_crash_mid_batch_replays_but_the_receiver_sees_each_notification_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut kv = open(dir.path());
    let r = Receiver::start().await;
    r.set_delay(Duration::from_millis(20));
    let overload = Arc::new(Overload::new());
    const N: u64 = 30;
    // One transaction, so the consumer reads them as one batch and saves its cursor only at
    // the end of it: a crash in the middle must replay.
    append(
        &*kv,
        (1..=N).map(|o| ev(EventKind::OrderDelivered, o)).collect(),
    )
    .await;
    let c = start(&kv, webhook(&r, 2), &overload);
    eventually("some deliveries", async || r.delivered().len() >= 5).await;
    // The crash: the task is dropped wherever it is, without saving anything.
    c.task.abort();
    assert!(c.task.await.unwrap_err().is_cancelled());
    let before = r.delivered().len();
    assert!(before < N as usize, "crashed mid-way ({before} of {N})");
    assert!(
        cursor(&kv).await < head(&kv).await,
        "so there is something to replay"
    );

    // The restart: the store reopened from disk, a fresh consumer on the same cursor.
    drop(kv);
    kv = open(dir.path());
    let c = start(&kv, webhook(&r, 2), &overload);
    eventually("all deliveries", async || r.delivered().len() == N as usize).await;
    eventually("the cursor at the head", async || {
        cursor(&kv).await == head(&kv).await
    })
    .await;
    c.shutdown().await;

    let mut keys = r.delivered_keys();
    let expected: Vec<String> = (1..=N)
        .map(|p| format!("cell-1-evt-{p}-customer"))
        .collect();
    assert_eq!(keys, expected, "none missing, in log order");
    keys.dedup();
    assert_eq!(keys.len(), N as usize, "none twice");
    let attempts = r.attempts().len();
    assert!(
        attempts > N as usize,
        "the replay did resend ({attempts} attempts), and the receiver deduped it"
    );
}

#[tokio::test]
async fn overload_holds_everything_and_clearing_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path());
    let r = Receiver::start().await;
    let overload = Arc::new(Overload::new());
    overload.set(true);
    let c = start(&kv, webhook(&r, 2), &overload);
    append(
        &*kv,
        (1..=5).map(|o| ev(EventKind::OrderPickedUp, o)).collect(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(r.attempts().is_empty(), "nothing sent while overloaded");
    assert_eq!(cursor(&kv).await, LogPos(0), "the cursor did not move");

    overload.set(false);
    eventually("the backlog delivered", async || r.delivered().len() == 5).await;
    eventually("the cursor at the head", async || {
        cursor(&kv).await == LogPos(5)
    })
    .await;

    // Shed again, and shut down while held: the held events survive the restart.
    overload.set(true);
    append(
        &*kv,
        (6..=7).map(|o| ev(EventKind::OrderDelivered, o)).collect(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(r.delivered().len(), 5);
    c.shutdown().await;
    assert_eq!(cursor(&kv).await, LogPos(5), "held events were not skipped");

    overload.set(false);
    let c = start(&kv, webhook(&r, 2), &overload);
    eventually("the rest delivered", async || r.delivered().len() == 7).await;
    eventually("the cursor at the head", async || {
        cursor(&kv).await == LogPos(7)
    })
    .await;
    c.shutdown().await;
    assert_eq!(r.attempts().len(), 7);
}

#[tokio::test]
async fn a_provider_outage_delays_but_loses_nothing_and_a_rejection_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path());
    let r = Receiver::start().await;
    let overload = Arc::new(Overload::new());
    // Event 1 is refused for good; then the provider is down for two attempts, which the
    // provider (no retries of its own here) gives up on, so the consumer retries the event.
    r.fail_next(1, 400);
    let c = start(&kv, webhook(&r, 0), &overload);
    append(&*kv, vec![ev(EventKind::OrderDelivered, 1)]).await;
    eventually("the rejection", async || r.attempts().len() == 1).await;
    eventually("the cursor past it", async || {
        cursor(&kv).await == LogPos(1)
    })
    .await;
    r.fail_next(2, 503);
    append(
        &*kv,
        (2..=4).map(|o| ev(EventKind::OrderDelivered, o)).collect(),
    )
    .await;
    eventually("the rest delivered", async || r.delivered().len() == 3).await;
    eventually("the cursor at the head", async || {
        cursor(&kv).await == LogPos(4)
    })
    .await;
    c.shutdown().await;
    assert_eq!(
        r.delivered_keys(),
        [
            "cell-1-evt-2-customer",
            "cell-1-evt-3-customer",
            "cell-1-evt-4-customer"
        ]
    );
    assert_eq!(r.attempts().len(), 1 + 2 + 3);
}
