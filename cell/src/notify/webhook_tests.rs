//! [`WebhookPush`] over real HTTP against the in-process [`Receiver`]: retries with the same
//! key, backoff, permanent rejections, timeouts, and dedupe of a replayed notification.
//! Real time (short delays): paused tokio time and real sockets do not mix.

use super::receiver::Receiver;
use super::{Notification, PushError, PushProvider, Recipient, WebhookPush, WebhookSettings};
use domain::{CustomerId, EventKind, OrderId, UnixMs};
use std::time::{Duration, Instant};

fn push(r: &Receiver, max_retries: u32, backoff_ms: u64) -> WebhookPush {
    WebhookPush::new(WebhookSettings {
        url: r.url(),
        timeout: Duration::from_millis(500),
        max_retries,
        backoff_base: Duration::from_millis(backoff_ms),
    })
    .unwrap()
}

fn note(key: &str) -> Notification {
    Notification {
        idempotency_key: key.into(),
        recipient: Recipient::Customer(CustomerId(5)),
        kind: EventKind::OrderDelivered,
        title: "Delivered".into(),
        body: "Your food has been delivered! Enjoy your meal.".into(),
        order_id: OrderId(777),
        at: UnixMs(1_700_000_000_000),
    }
}

#[tokio::test]
async fn retryable_failures_are_retried_with_the_same_key_and_backoff() {
    let r = Receiver::start().await;
    r.fail_next(2, 503);
    let p = push(&r, 3, 50);
    let t = Instant::now();
    p.send(&note("cell-1-evt-1-customer")).await.unwrap();
    // Two pauses: 50 ms, then 100 ms (doubled).
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(r.attempts(), vec!["cell-1-evt-1-customer"; 3]);
    assert_eq!(r.delivered(), vec![note("cell-1-evt-1-customer")]);
}

#[tokio::test]
async fn rate_limits_and_conflicts_are_retried_too() {
    let r = Receiver::start().await;
    let p = push(&r, 2, 1);
    r.fail_next(1, 429);
    p.send(&note("k-429")).await.unwrap();
    r.fail_next(1, 409);
    p.send(&note("k-409")).await.unwrap();
    assert_eq!(r.attempts().len(), 4);
    assert_eq!(r.delivered_keys(), ["k-429", "k-409"]);
}

#[tokio::test]
async fn it_gives_up_after_max_retries() {
    let r = Receiver::start().await;
    r.fail_next(10, 500);
    let p = push(&r, 2, 1);
    assert_eq!(p.send(&note("k")).await, Err(PushError::Unavailable));
    assert_eq!(r.attempts().len(), 3);
    assert!(r.delivered().is_empty());
}

#[tokio::test]
async fn a_permanent_rejection_is_not_retried() {
    let r = Receiver::start().await;
    r.fail_next(1, 400);
    let p = push(&r, 3, 1);
    assert!(matches!(
        p.send(&note("k")).await,
        Err(PushError::Rejected(_))
    ));
    assert_eq!(r.attempts().len(), 1);
}

#[tokio::test]
async fn a_timed_out_attempt_that_landed_anyway_is_not_delivered_twice() {
    let r = Receiver::start().await;
    // The first request is processed after 400 ms; the client gives up after 150 ms and
    // retries with the same key.
    r.stall_next(1, Duration::from_millis(400));
    let p = WebhookPush::new(WebhookSettings {
        url: r.url(),
        timeout: Duration::from_millis(150),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
    })
    .unwrap();
    p.send(&note("k-slow")).await.unwrap();
    // Let the stalled request finish on the receiver's side.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(r.attempts(), ["k-slow", "k-slow"]);
    assert_eq!(r.delivered_keys(), ["k-slow"]);
}

#[tokio::test]
async fn without_retries_a_timeout_is_reported_as_such() {
    let r = Receiver::start().await;
    r.stall_next(1, Duration::from_millis(300));
    let p = WebhookPush::new(WebhookSettings {
        url: r.url(),
        timeout: Duration::from_millis(100),
        max_retries: 0,
        backoff_base: Duration::from_millis(1),
    })
    .unwrap();
    assert_eq!(p.send(&note("k")).await, Err(PushError::Timeout));
}

#[tokio::test]
async fn replaying_the_same_notification_reaches_the_receiver_once() {
    let r = Receiver::start().await;
    let p = push(&r, 0, 1);
    for _ in 0..3 {
        p.send(&note("cell-1-evt-9-customer")).await.unwrap();
    }
    p.send(&note("cell-1-evt-10-customer")).await.unwrap();
    assert_eq!(r.attempts().len(), 4);
    assert_eq!(
        r.delivered_keys(),
        ["cell-1-evt-9-customer", "cell-1-evt-10-customer"]
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_unavailable() {
    // A port nobody listens on: bind, note it, close.
    let addr = {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let p = WebhookPush::new(WebhookSettings {
        url: format!("http://{addr}/hook"),
        timeout: Duration::from_millis(500),
        max_retries: 1,
        backoff_base: Duration::from_millis(1),
    })
    .unwrap();
    assert_eq!(p.send(&note("k")).await, Err(PushError::Unavailable));
}

#[tokio::test]
async fn a_notification_without_a_key_is_never_sent() {
    let r = Receiver::start().await;
    let p = push(&r, 0, 1);
    assert!(matches!(
        p.send(&note("")).await,
        Err(PushError::Rejected(_))
    ));
    assert!(r.attempts().is_empty());
}
