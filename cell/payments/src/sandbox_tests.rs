//! Tests of the sandbox provider: the payment state machine, idempotent replays, key reuse,
//! the special cards (declined, flaky, timeout) and outages, since the resilience tests and
//! the cell rely on it behaving like a real provider.

use super::*;
use crate::gateway::{AuthorizationStatus, Op, idempotency_key};
use domain::OrderId;

fn req(pm: &str, cents: i64, order: u64) -> AuthorizeRequest {
    AuthorizeRequest {
        amount: Cents(cents),
        currency: "usd".into(),
        payment_method_id: pm.into(),
        customer_ref: "cus_1".into(),
        idempotency_key: idempotency_key(OrderId(order), Op::Authorize),
    }
}

fn key(order: u64, op: Op) -> String {
    idempotency_key(OrderId(order), op)
}

fn sandbox() -> SandboxGateway {
    SandboxGateway::with_timeout_card_delay(Duration::from_secs(60))
}

#[tokio::test]
async fn happy_path_authorize_capture_refund() {
    let gw = sandbox();
    let auth = gw.authorize(&req(PM_VISA, 2850, 1)).await.unwrap();
    assert_eq!(auth.status, AuthorizationStatus::Authorized);
    assert_eq!(auth.amount, Cents(2850));

    let cap = gw
        .capture(&auth.id, Cents(2500), &key(1, Op::Capture))
        .await
        .unwrap();
    assert_eq!(
        (cap.status, cap.amount),
        (AuthorizationStatus::Captured, Cents(2500))
    );

    let re = gw
        .refund(&auth.id, Cents(2500), &key(1, Op::Refund))
        .await
        .unwrap();
    assert_eq!(
        (re.status, re.amount),
        (AuthorizationStatus::Refunded, Cents(2500))
    );

    let ledger = gw.ledger();
    assert_eq!(ledger.len(), 1);
    let e = &ledger[0];
    assert_eq!(
        (e.authorized, e.captured, e.refunded),
        (Cents(2850), Cents(2500), Cents(2500))
    );
    assert_eq!(
        e.effects,
        Effects {
            authorize: 1,
            capture: 1,
            void: 0,
            refund: 1
        }
    );
}

#[tokio::test]
async fn any_pm_token_succeeds_but_other_formats_are_invalid() {
    let gw = sandbox();
    assert!(
        gw.authorize(&req("pm_card_mastercard", 100, 1))
            .await
            .is_ok()
    );
    assert!(gw.authorize(&req("pm_1Nabc", 100, 2)).await.is_ok());
    for (i, bad) in ["tok_visa", "", "4242424242424242"].into_iter().enumerate() {
        let err = gw
            .authorize(&req(bad, 100, 10 + i as u64))
            .await
            .unwrap_err();
        assert!(matches!(err, PaymentError::Invalid(_)), "{bad:?}: {err:?}");
    }
}

#[tokio::test]
async fn replay_returns_the_first_answer_without_a_second_effect() {
    let gw = sandbox();
    let first = gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap();
    let again = gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap();
    assert_eq!(first, again);
    let k = key(1, Op::Capture);
    let c1 = gw.capture(&first.id, Cents(1000), &k).await.unwrap();
    let c2 = gw.capture(&first.id, Cents(1000), &k).await.unwrap();
    assert_eq!(c1, c2);

    let ledger = gw.ledger();
    assert_eq!(ledger.len(), 1, "one authorization, not two");
    assert_eq!(ledger[0].effects.authorize, 1);
    assert_eq!(ledger[0].effects.capture, 1, "captured exactly once");
    assert_eq!(gw.stats().replays, 2);
}

#[tokio::test]
async fn key_reuse_with_different_parameters_is_invalid() {
    let gw = sandbox();
    let auth = gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap();
    let err = gw.authorize(&req(PM_VISA, 999, 1)).await.unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(m) if m.contains("different parameters")));
    // The original record still answers.
    assert_eq!(gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap(), auth);
    // A key used for one operation cannot be used for another.
    let k = key(1, Op::Capture);
    gw.capture(&auth.id, Cents(500), &k).await.unwrap();
    assert!(gw.refund(&auth.id, Cents(500), &k).await.is_err());
    assert_eq!(gw.entry(&auth.id).unwrap().effects.refund, 0);
}

#[tokio::test]
async fn declines_carry_their_code_and_are_replayed() {
    let gw = sandbox();
    let err = gw.authorize(&req(PM_DECLINED, 1000, 1)).await.unwrap_err();
    assert!(matches!(&err, PaymentError::Declined { code, .. } if code == "card_declined"));
    assert!(!err.is_retryable());
    let again = gw.authorize(&req(PM_DECLINED, 1000, 1)).await.unwrap_err();
    assert_eq!(err, again);
    let err = gw
        .authorize(&req(PM_INSUFFICIENT_FUNDS, 1000, 2))
        .await
        .unwrap_err();
    assert!(matches!(&err, PaymentError::Declined { code, .. } if code == "insufficient_funds"));
    assert!(gw.ledger().is_empty(), "a decline holds no funds");
    assert_eq!(gw.stats().declines, 2);
}

#[tokio::test]
async fn flaky_fails_once_per_key_then_succeeds() {
    let gw = sandbox();
    let r = req(PM_FLAKY, 1000, 1);
    assert_eq!(
        gw.authorize(&r).await.unwrap_err(),
        PaymentError::Unavailable
    );
    let auth = gw.authorize(&r).await.unwrap();
    // Each new operation (new key) fails once too.
    let k = key(1, Op::Capture);
    assert_eq!(
        gw.capture(&auth.id, Cents(1000), &k).await.unwrap_err(),
        PaymentError::Unavailable
    );
    gw.capture(&auth.id, Cents(1000), &k).await.unwrap();
    let e = gw.entry(&auth.id).unwrap();
    assert_eq!((e.effects.authorize, e.effects.capture), (1, 1));
    assert_eq!(gw.stats().injected_failures, 2);
}

#[tokio::test(start_paused = true)]
async fn timeout_card_answers_only_after_the_delay() {
    let gw = SandboxGateway::with_timeout_card_delay(Duration::from_secs(9));
    let start = tokio::time::Instant::now();
    let auth = gw.authorize(&req(PM_TIMEOUT, 1000, 1)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(9));
    // Later calls on the same authorization are slow as well.
    gw.void(&auth.id, &key(1, Op::Void)).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(18));
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_slow_call_has_no_effect() {
    let gw = SandboxGateway::with_timeout_card_delay(Duration::from_secs(9));
    let r = req(PM_TIMEOUT, 1000, 1);
    let cut = tokio::time::timeout(Duration::from_secs(5), gw.authorize(&r)).await;
    assert!(cut.is_err());
    assert!(gw.ledger().is_empty());
}

#[tokio::test]
async fn state_machine_rejects_illegal_moves() {
    let gw = sandbox();
    let a = gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap();
    let over = gw.capture(&a.id, Cents(1001), &key(1, Op::Capture)).await;
    assert!(matches!(over, Err(PaymentError::Invalid(_))));
    let early_refund = gw.refund(&a.id, Cents(10), &key(1, Op::Refund)).await;
    assert!(matches!(early_refund, Err(PaymentError::Invalid(_))));
    gw.void(&a.id, &key(1, Op::Void)).await.unwrap();
    // New key: the first capture attempt's stored failure answers replays of its own key.
    let after_void = gw.capture(&a.id, Cents(1000), "other-capture-key").await;
    assert!(matches!(after_void, Err(PaymentError::Invalid(m)) if m.contains("Voided")));
    assert_eq!(gw.entry(&a.id).unwrap().status, AuthorizationStatus::Voided);

    let b = gw.authorize(&req(PM_VISA, 1000, 2)).await.unwrap();
    gw.capture(&b.id, Cents(1000), &key(2, Op::Capture))
        .await
        .unwrap();
    assert!(gw.void(&b.id, &key(2, Op::Void)).await.is_err());
    assert!(
        gw.refund(&b.id, Cents(1001), &key(2, Op::Refund))
            .await
            .is_err()
    );
    gw.refund(&b.id, Cents(400), "refund-1").await.unwrap();
    gw.refund(&b.id, Cents(600), "refund-2").await.unwrap();
    assert!(gw.refund(&b.id, Cents(1), "refund-3").await.is_err());
    let e = gw.entry(&b.id).unwrap();
    assert_eq!((e.refunded, e.effects.refund), (Cents(1000), 2));

    let unknown = gw.capture("pi_nope", Cents(1), "k").await;
    assert!(matches!(unknown, Err(PaymentError::Invalid(_))));
    assert!(gw.authorize(&req(PM_VISA, 0, 3)).await.is_err());
}

#[tokio::test]
async fn outage_fails_everything_without_effects() {
    let gw = sandbox();
    gw.set_outage(true);
    assert_eq!(
        gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap_err(),
        PaymentError::Unavailable
    );
    gw.set_outage(false);
    gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap();
    assert_eq!(gw.ledger().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_apply_once() {
    let gw = std::sync::Arc::new(sandbox());
    let auth = gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap();
    let k = key(1, Op::Capture);
    let calls = (0..16).map(|_| {
        let (gw, id, k) = (gw.clone(), auth.id.clone(), k.clone());
        tokio::spawn(async move { gw.capture(&id, Cents(1000), &k).await })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(
            call.await.unwrap().unwrap().status,
            AuthorizationStatus::Captured
        );
    }
    assert_eq!(gw.entry(&auth.id).unwrap().effects.capture, 1);
    assert_eq!(gw.stats().replays, 15);
}

#[tokio::test]
async fn retrieve_reads_the_ledger_and_knows_no_stranger() {
    let gw = sandbox();
    let auth = gw.authorize(&req(PM_BILLING_GB, 1500, 41)).await.unwrap();
    gw.capture(&auth.id, Cents(1200), &key(41, Op::Capture))
        .await
        .unwrap();
    let got = gw.retrieve(&auth.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.authorized, got.captured, got.refunded),
        (
            AuthorizationStatus::Captured,
            Cents(1500),
            Cents(1200),
            Cents::ZERO
        )
    );
    assert_eq!(got.billing_country.as_deref(), Some("GB"));
    assert_eq!(gw.retrieve("pi_sandbox_999").await.unwrap(), None);
    // A read changes nothing at the provider.
    assert_eq!(gw.entry(&auth.id).unwrap().effects.capture, 1);
    gw.set_outage(true);
    assert_eq!(gw.retrieve(&auth.id).await, Err(PaymentError::Unavailable));
}
