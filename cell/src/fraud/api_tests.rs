//! The staff API of fraud flags on a whole cell app built the way startup builds it (demo
//! catalog, real store), through its HTTP router: who may list and review, the filters and
//! the cursor, the audit a review leaves, and the error answers.

use super::flags;
use super::rules::RuleKind;
use super::signals::{self, Signal};
use crate::app::{App, Clock, SystemClock};
use crate::auth::Principal;
use crate::config::Config;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::{CustomerId, DriverId, UnixMs};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// A cell app as startup builds it (demo catalog) on a fresh store in `dir`.
pub(crate) async fn app(dir: &tempfile::TempDir) -> App {
    let mut cfg = Config::load(None).unwrap();
    cfg.demo.enabled = true;
    cfg.demo.restaurants = 3;
    // The history key store and key file go to the data directory.
    cfg.store.data_dir = dir.path().to_path_buf();
    let kv: Arc<dyn store::Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    let lease = crate::lease::CellLease::new(kv, &cfg);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    lease.acquire(&*clock, |_| {}).await;
    crate::server::build(cfg, lease, clock, None).await.unwrap()
}

pub(crate) fn token(app: &App, who: Principal, name: Option<&str>) -> String {
    app.jwt().issue(
        who,
        name.map(str::to_owned),
        Duration::from_secs(600),
        app.now(),
    )
}

pub(crate) async fn call(
    app: &App,
    method: &str,
    uri: &str,
    tok: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {tok}"))
        .header("content-type", "application/json");
    let req = req
        .body(body.map_or(Body::empty(), |b| Body::from(b.to_string())))
        .unwrap();
    let resp = crate::http::router(app.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Stores a spoof flag for `driver` at `at` and a delivered-far one for order 9.
async fn plant(app: &App, at: i64) {
    let cfg = &app.config().fraud;
    let spoof = Signal::Spoofed {
        driver: DriverId(4),
        lat: 52.5,
        lng: 13.4,
        implied_mps: 800.0,
        ts_ms: at as u64,
        at: UnixMs(at),
    };
    let far = Signal::DeliveredTap {
        driver: DriverId(4),
        order: domain::OrderId(9),
        tap: Some((52.6, 13.4)),
        dropoff: (52.5, 13.4),
        at: UnixMs(at + 1),
    };
    for s in [spoof, far] {
        let f = signals::flag_for(&s, cfg).unwrap();
        signals::store_flag(&**app.kv(), f).await.unwrap();
    }
}

#[tokio::test]
async fn staff_list_filter_page_and_review_flags_once_with_an_audit() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    plant(&app, 1_000).await;
    let admin = token(&app, Principal::Admin, Some("Ada"));
    let support = token(&app, Principal::Support, Some("Sam"));
    let customer = token(&app, Principal::Customer(CustomerId(1)), None);

    let (s, body) = call(&app, "GET", "/api/v1/admin/flags", &customer, None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.forbidden"))
    );

    let (s, body) = call(&app, "GET", "/api/v1/admin/flags", &support, None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let rules: Vec<&str> = body["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["delivered_far", "gps_spoof"], "newest first");

    let (_, body) = call(
        &app,
        "GET",
        "/api/v1/admin/flags?kind=gps_spoof&state=open",
        &admin,
        None,
    )
    .await;
    let listed = body["flags"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["subject"], "driver:4");

    let (_, body) = call(&app, "GET", "/api/v1/admin/flags?limit=1", &admin, None).await;
    let cursor = body["next_cursor"].as_str().unwrap().to_owned();
    let (_, body) = call(
        &app,
        "GET",
        &format!("/api/v1/admin/flags?limit=1&cursor={cursor}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(body["flags"][0]["id"], id.as_str());
    assert_eq!(body["next_cursor"], Value::Null);

    let uri = format!("/api/v1/admin/flags/{id}/review");
    let (s, _) = call(
        &app,
        "POST",
        &uri,
        &customer,
        Some(json!({"decision": "clear"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, body) = call(
        &app,
        "POST",
        &uri,
        &support,
        Some(json!({"decision": "confirm", "note": "teleporting"})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "confirmed");
    assert_eq!(body["review"]["role"], "support");
    assert_eq!(body["review"]["name"], "Sam");
    assert_eq!(body["review"]["note"], "teleporting");
    assert!(body["review"]["at"].as_i64().unwrap() > 0);
    let stored = flags::get(&**app.kv(), &id).await.unwrap().unwrap();
    assert_eq!(stored.review.unwrap().decision, super::Decision::Confirm);

    let (s, body) = call(
        &app,
        "POST",
        &uri,
        &admin,
        Some(json!({"decision": "clear"})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("flags.already_reviewed"))
    );
    let (_, body) = call(&app, "GET", "/api/v1/admin/flags?state=open", &admin, None).await;
    assert_eq!(body["flags"].as_array().unwrap().len(), 1);
    assert_eq!(body["flags"][0]["rule"], RuleKind::DeliveredFar.as_str());
}

#[tokio::test]
async fn bad_input_gets_400_and_an_unknown_flag_404() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir).await;
    let admin = token(&app, Principal::Admin, None);
    for (uri, code) in [
        ("/api/v1/admin/flags?state=maybe", "flags.invalid_state"),
        ("/api/v1/admin/flags?rule=astrology", "flags.invalid_rule"),
        ("/api/v1/admin/flags?cursor=x", "flags.invalid_cursor"),
        ("/api/v1/admin/flags?limit=0", "flags.invalid_limit"),
        ("/api/v1/admin/flags?limit=201", "flags.invalid_limit"),
        ("/api/v1/admin/flags?colour=red", "request.invalid_query"),
    ] {
        let (s, body) = call(&app, "GET", uri, &admin, None).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{uri}"
        );
    }
    let review = Some(json!({"decision": "clear"}));
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1/admin/flags/1-nothing/review",
        &admin,
        review.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, body) = call(
        &app,
        "POST",
        "/api/v1/admin/flags/NOPE/review",
        &admin,
        review,
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("request.invalid_id"))
    );
    let (s, _) = call(
        &app,
        "POST",
        "/api/v1/admin/flags/1-x/review",
        &admin,
        Some(json!({"decision": "shrug"})),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let long = "n".repeat(2_001);
    let (s, body) = call(
        &app,
        "POST",
        "/api/v1/admin/flags/1-x/review",
        &admin,
        Some(json!({"decision": "clear", "note": long})),
    )
    .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("flags.note_too_long"))
    );
    let (s, _) = call(&app, "GET", "/api/v1/admin/flags", "not-a-token", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
