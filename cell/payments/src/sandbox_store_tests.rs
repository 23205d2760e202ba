//! Tests of the sandbox's store-kept state (a restart loses nothing) and of each fault mode
//! through the gateway.

use super::*;
use crate::gateway::{AuthorizationStatus, Op, idempotency_key};
use domain::OrderId;
use store::{RedbOptions, RedbStore};

fn req(cents: i64, order: u64) -> AuthorizeRequest {
    AuthorizeRequest {
        amount: Cents(cents),
        currency: "usd".into(),
        payment_method_id: PM_VISA.into(),
        customer_ref: "cus_1".into(),
        idempotency_key: idempotency_key(OrderId(order), Op::Authorize),
    }
}

fn key(order: u64, op: Op) -> String {
    idempotency_key(OrderId(order), op)
}

fn open_store(dir: &std::path::Path) -> Arc<dyn Kv> {
    Arc::new(RedbStore::open(dir, RedbOptions::default()).unwrap())
}

#[tokio::test]
async fn a_restart_keeps_authorizations_idempotency_records_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let gw = SandboxGateway::open(&SandboxConfig::default(), open_store(dir.path()))
            .await
            .unwrap();
        let a = gw.authorize(&req(1000, 1)).await.unwrap();
        gw.capture(&a.id, Cents(1000), &key(1, Op::Capture))
            .await
            .unwrap();
        let b = gw.authorize(&req(500, 2)).await.unwrap();
        (a, b)
    };
    // A new process on the same store: the state is all there.
    let gw = SandboxGateway::open(&SandboxConfig::default(), open_store(dir.path()))
        .await
        .unwrap();
    assert_eq!(gw.ledger().len(), 2);
    assert_eq!(
        gw.entry(&a.id).unwrap().status,
        AuthorizationStatus::Captured
    );
    // The capture's record answers a retry without a second charge.
    let again = gw
        .capture(&a.id, Cents(1000), &key(1, Op::Capture))
        .await
        .unwrap();
    assert_eq!(again.status, AuthorizationStatus::Captured);
    assert_eq!(gw.stats().replays, 1);
    assert_eq!(gw.entry(&a.id).unwrap().effects.capture, 1);
    // An authorization made before the restart can still be voided.
    gw.void(&b.id, &key(2, Op::Void)).await.unwrap();
    let stored = load_ledger(&*open_store_shared(&gw)).await.unwrap();
    let b_stored = stored.iter().find(|e| e.id == b.id).unwrap();
    assert_eq!(
        (b_stored.status, b_stored.effects.void),
        (AuthorizationStatus::Voided, 1)
    );
}

/// The store behind a sandbox, to read it as the checker does.
fn open_store_shared(gw: &SandboxGateway) -> Arc<dyn Kv> {
    gw.store.clone().expect("a store-backed sandbox")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_on_the_store_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Arc::new(
        SandboxGateway::open(&SandboxConfig::default(), open_store(dir.path()))
            .await
            .unwrap(),
    );
    let auth = gw.authorize(&req(1000, 1)).await.unwrap();
    let calls = (0..16).map(|_| {
        let (gw, id) = (gw.clone(), auth.id.clone());
        tokio::spawn(async move { gw.capture(&id, Cents(1000), &key(1, Op::Capture)).await })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
    let stored = load_ledger(&*open_store_shared(&gw)).await.unwrap();
    assert_eq!(stored[0].effects.capture, 1);
    assert_eq!(gw.stats().replays, 15);
}

#[tokio::test]
async fn fail_percent_fails_that_share_without_effects() {
    let gw = SandboxGateway::default();
    let all = FaultPatch {
        fail_percent: Some(100),
        ..FaultPatch::default()
    };
    assert_eq!(gw.set_faults(all).unwrap().fail_percent, 100);
    assert_eq!(
        gw.authorize(&req(1000, 1)).await.unwrap_err(),
        PaymentError::Unavailable
    );
    assert!(gw.ledger().is_empty());
    gw.set_faults(FaultPatch {
        fail_percent: Some(50),
        ..FaultPatch::default()
    })
    .unwrap();
    let mut failed = 0;
    for order in 0..200 {
        if gw.authorize(&req(1000, order)).await.is_err() {
            failed += 1;
        }
    }
    // The roll is a hash of the call count: about half, never all or none.
    assert!((60..140).contains(&failed), "{failed} of 200 failed");
    assert_eq!(gw.ledger().len(), 200 - failed);
}

#[tokio::test(start_paused = true)]
async fn timeout_mode_answers_nothing_after_the_delay() {
    let gw = SandboxGateway::with_timeout_card_delay(Duration::from_secs(9));
    gw.set_faults(FaultPatch {
        timeout: Some(true),
        ..FaultPatch::default()
    })
    .unwrap();
    let start = tokio::time::Instant::now();
    assert_eq!(
        gw.authorize(&req(1000, 1)).await.unwrap_err(),
        PaymentError::Timeout
    );
    assert_eq!(start.elapsed(), Duration::from_secs(9));
    assert!(gw.ledger().is_empty());
}

#[tokio::test(start_paused = true)]
async fn down_for_a_period_then_up_again() {
    let gw = SandboxGateway::default();
    let state = gw
        .set_faults(FaultPatch {
            down_for_ms: Some(60_000),
            ..FaultPatch::default()
        })
        .unwrap();
    assert_eq!(state.down_for_ms, 60_000);
    assert_eq!(
        gw.authorize(&req(1000, 1)).await.unwrap_err(),
        PaymentError::Unavailable
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(gw.faults().down_for_ms, 0);
    gw.authorize(&req(1000, 1)).await.unwrap();
}

#[tokio::test]
async fn decline_after_authorize_refuses_captures_but_not_voids() {
    let gw = SandboxGateway::new(&SandboxConfig {
        decline_after_authorize: true,
        ..SandboxConfig::default()
    });
    let a = gw.authorize(&req(1000, 1)).await.unwrap();
    let err = gw
        .capture(&a.id, Cents(1000), &key(1, Op::Capture))
        .await
        .unwrap_err();
    assert!(matches!(&err, PaymentError::Declined { code, .. } if code == "authorization_expired"));
    assert!(!err.is_retryable());
    // The hold can still be released, which is what the compensation does.
    gw.void(&a.id, &key(1, Op::Void)).await.unwrap();
    let e = gw.entry(&a.id).unwrap();
    assert_eq!(
        (e.status, e.effects.capture),
        (AuthorizationStatus::Voided, 0)
    );
}
