//! Reconciliation on the real store with the sandbox provider: each kind of drift is planted
//! (through the sandbox's public API, or by writing the order in the store behind the order
//! flows' back) and a pass finds it, repairing what the provider is the authority on and
//! reporting the rest; the batch is bounded and resumes from its durable cursor; a provider
//! that cannot be read stops the pass without losing its place; the drift listing is
//! admin-only.

use super::{DriftKind, ReconcileConfig, drift, pass};
use crate::auth::Principal;
use crate::fraud::api_tests::{app, call, token};
use crate::fraud::tests::{Fx, fx};
use axum::http::StatusCode;
use catalog::testing::NOON;
use domain::{Cents, Order, OrderId, PaymentState, UnixMs};
use payments::{Op, PaymentGateway, idempotency_key};

const MIN: i64 = 60_000;

fn cfg(batch: usize) -> ReconcileConfig {
    ReconcileConfig {
        batch,
        ..ReconcileConfig::default()
    }
}

/// Ten minutes after the orders were placed: past `min_age_ms` (5 min).
fn later() -> UnixMs {
    UnixMs(NOON.0 + 10 * MIN)
}

/// Writes `o` over the stored order, as a bug or a lost write would leave it.
async fn overwrite(fx: &Fx, o: Order) {
    let key = crate::orders::keys::order(o.id);
    store::transact(&*fx.kv, move |txn| {
        let (key, o) = (key.clone(), o.clone());
        Box::pin(async move {
            txn.set(&key, &serde_json::to_vec(&o).unwrap());
            Ok::<_, store::TxnError<()>>(())
        })
    })
    .await
    .unwrap();
}

async fn stored(fx: &Fx, id: OrderId) -> Order {
    crate::orders::repo::get(&*fx.kv, id)
        .await
        .unwrap()
        .unwrap()
}

async fn plain() -> Fx {
    let cfg = crate::fraud::FraudConfig {
        enabled: false,
        ..Default::default()
    };
    fx(cfg, 1000).await
}

#[tokio::test]
async fn each_planted_drift_is_found_and_repaired_or_reported() {
    let mut fx = plain().await;
    let clean = fx.order(1).await;
    // Captured at the provider, not recorded: the sandbox charged through its public API.
    let captured = fx.order(2).await;
    fx.payments
        .capture(
            &captured.payment_ref,
            captured.total,
            &idempotency_key(captured.id, Op::Capture),
        )
        .await
        .unwrap();
    // Voided at the provider, not recorded.
    let voided = fx.order(3).await;
    fx.payments
        .void(&voided.payment_ref, &idempotency_key(voided.id, Op::Void))
        .await
        .unwrap();
    // Recorded, missing at the provider: an authorization id the provider never issued.
    let mut missing = fx.order(4).await;
    missing.payment_ref = "pi_sandbox_9999".into();
    overwrite(&fx, missing.clone()).await;
    // Amounts that differ.
    let mut amount = fx.order(5).await;
    amount.total = Cents(amount.total.0 + 150);
    overwrite(&fx, amount.clone()).await;
    // Recorded as captured, never captured at the provider.
    let mut ahead = fx.order(6).await;
    ahead.payment_state = PaymentState::Captured;
    overwrite(&fx, ahead.clone()).await;

    let r = pass(&*fx.kv, &*fx.payments, &cfg(100), later())
        .await
        .unwrap();
    assert_eq!(r.compared, 6);
    assert!(!r.provider_unavailable);
    let mut found = r.new_drift.clone();
    found.sort_by_key(|(o, k)| (*o, k.as_str()));
    let mut want = vec![
        (captured.id, DriftKind::CapturedNotRecorded),
        (voided.id, DriftKind::ReleasedNotRecorded),
        (missing.id, DriftKind::MissingAtProvider),
        (amount.id, DriftKind::AmountMismatch),
        (ahead.id, DriftKind::RecordedNotAtProvider),
    ];
    want.sort_by_key(|(o, k)| (*o, k.as_str()));
    assert_eq!(found, want);
    assert_eq!(r.repaired, vec![captured.id, voided.id]);

    // Repaired in the store; reported ones untouched; the clean order untouched.
    assert_eq!(
        stored(&fx, captured.id).await.payment_state,
        PaymentState::Captured
    );
    assert_eq!(
        stored(&fx, voided.id).await.payment_state,
        PaymentState::Voided
    );
    assert_eq!(
        stored(&fx, ahead.id).await.payment_state,
        PaymentState::Captured
    );
    assert_eq!(stored(&fx, clean.id).await, clean);
    // The provider was only read.
    let entry = fx.payments.entry(&captured.payment_ref).unwrap();
    assert_eq!(entry.effects.capture, 1);

    let page = drift::list(&*fx.kv, None, false, 100).await.unwrap();
    assert_eq!(page.drift.len(), 5);
    let open = drift::list(&*fx.kv, None, true, 100).await.unwrap();
    let mut open_kinds: Vec<&str> = open.drift.iter().map(|d| d.kind.as_str()).collect();
    open_kinds.sort_unstable();
    assert_eq!(
        open_kinds,
        [
            "amount_mismatch",
            "missing_at_provider",
            "recorded_not_at_provider"
        ]
    );
    assert_eq!(drift::open_count(&*fx.kv).await.unwrap(), 3);
    let m = open
        .drift
        .iter()
        .find(|d| d.kind == DriftKind::AmountMismatch)
        .unwrap();
    assert_eq!(m.order.total_cents, amount.total.0);
    assert_eq!(
        m.provider.as_ref().unwrap().authorized_cents,
        amount.total.0 - 150
    );

    // The next pass (after the wrap) finds the same drift again, records nothing new, and
    // sees the repaired orders clean. An operator fixes the amount: it is resolved.
    overwrite(
        &fx,
        Order {
            total: Cents(amount.total.0 - 150),
            ..amount.clone()
        },
    )
    .await;
    // Later than min_age_ms after the repairs (they updated the orders).
    let r = pass(
        &*fx.kv,
        &*fx.payments,
        &cfg(100),
        UnixMs(later().0 + 10 * MIN),
    )
    .await
    .unwrap();
    assert_eq!((r.compared, r.new_drift.len(), r.repaired.len()), (6, 0, 0));
    assert_eq!(drift::open_count(&*fx.kv).await.unwrap(), 2);
    let all = drift::list(&*fx.kv, None, false, 100).await.unwrap().drift;
    let m = all
        .iter()
        .find(|d| d.kind == DriftKind::AmountMismatch)
        .unwrap();
    assert!(m.resolved && !m.repaired);
    let missing_again = all
        .iter()
        .find(|d| d.kind == DriftKind::MissingAtProvider)
        .unwrap();
    assert_eq!(missing_again.seen, 2);

    // Paged, newest orders first.
    let p1 = drift::list(&*fx.kv, None, false, 2).await.unwrap();
    let p2 = drift::list(&*fx.kv, p1.next.as_deref(), false, 2)
        .await
        .unwrap();
    let p3 = drift::list(&*fx.kv, p2.next.as_deref(), false, 2)
        .await
        .unwrap();
    assert_eq!(p3.next, None);
    let paged: Vec<String> = [p1.drift, p2.drift, p3.drift]
        .concat()
        .iter()
        .map(|d| d.order_id.clone())
        .collect();
    let mut newest_first: Vec<String> = all.iter().map(|d| d.order_id.clone()).collect();
    assert_eq!(paged, newest_first);
    newest_first.sort_by_key(|id| std::cmp::Reverse(id.parse::<u64>().unwrap()));
    assert_eq!(paged, newest_first);
}

#[tokio::test]
async fn batches_resume_from_the_cursor_and_fresh_or_old_orders_are_skipped() {
    let mut fx = plain().await;
    let mut ids = Vec::new();
    for c in 0..5 {
        ids.push(fx.order(c).await.id);
    }
    // Two per pass: 2, 2, 1 (then wrap).
    let mut seen = 0;
    for want in [2, 2, 1] {
        let r = pass(&*fx.kv, &*fx.payments, &cfg(2), later())
            .await
            .unwrap();
        assert_eq!(r.compared, want);
        seen += r.compared;
    }
    assert_eq!(seen, 5);
    let r = pass(&*fx.kv, &*fx.payments, &cfg(2), later())
        .await
        .unwrap();
    assert_eq!(r.compared, 2, "wrapped to the window's start");

    // Too fresh: updated less than min_age_ms ago.
    let fresh = UnixMs(NOON.0 + MIN);
    let r = pass(&*fx.kv, &*fx.payments, &cfg(100), fresh)
        .await
        .unwrap();
    assert_eq!(r.compared, 0);
    // Too old: outside the window.
    let next_week = UnixMs(NOON.0 + 7 * 24 * 60 * MIN);
    let r = pass(&*fx.kv, &*fx.payments, &cfg(100), next_week)
        .await
        .unwrap();
    assert_eq!(r.compared, 0);
}

#[tokio::test]
async fn a_provider_outage_stops_the_pass_where_it_was() {
    let mut fx = plain().await;
    let first = fx.order(1).await;
    fx.order(2).await;
    fx.payments.set_outage(true);
    let r = pass(&*fx.kv, &*fx.payments, &cfg(100), later())
        .await
        .unwrap();
    assert!(r.provider_unavailable);
    assert_eq!(r.compared, 0);
    fx.payments.set_outage(false);
    let r = pass(&*fx.kv, &*fx.payments, &cfg(100), later())
        .await
        .unwrap();
    assert_eq!(r.compared, 2, "nothing was skipped");
    assert_eq!(stored(&fx, first.id).await, first);
}

#[tokio::test]
async fn the_drift_listing_is_admin_only_and_paged() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let admin = token(&app, Principal::Admin, None);
    let support = token(&app, Principal::Support, None);
    let (s, _) = call(&app, "GET", "/api/v1/admin/payments/drift", &support, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = call(&app, "GET", "/api/v1/admin/payments/drift", &admin, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["drift"], serde_json::json!([]));
    assert_eq!(body["open"], 0);
    for (uri, code) in [
        (
            "/api/v1/admin/payments/drift?cursor=x",
            "drift.invalid_cursor",
        ),
        (
            "/api/v1/admin/payments/drift?limit=0",
            "drift.invalid_limit",
        ),
    ] {
        let (s, body) = call(&app, "GET", uri, &admin, None).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code))
        );
    }
}
