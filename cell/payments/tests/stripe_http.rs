//! Drives the real `StripeGateway` over HTTP against an in-process axum server that serves
//! the `SandboxGateway` behind Stripe-shaped routes, so requests, headers, form bodies,
//! error JSON and the retry path are all exercised for real. Real time (short delays):
//! paused tokio time and real sockets do not mix.

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use domain::{Cents, OrderId};
use payments::sandbox::{
    PM_BILLING_GB, PM_DECLINED, PM_FLAKY, PM_INSUFFICIENT_FUNDS, PM_TIMEOUT, PM_VISA,
};
use payments::{
    Authorization, AuthorizationStatus, AuthorizeRequest, Op, PaymentError, PaymentGateway,
    PaymentsConfig, ResilientGateway, SandboxGateway, StripeConfig, StripeGateway, idempotency_key,
};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "sk_test_123";

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    idempotency_key: String,
    form: HashMap<String, String>,
}

#[derive(Clone)]
struct AppState {
    sandbox: Arc<SandboxGateway>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

struct Server {
    addr: SocketAddr,
    state: AppState,
}

impl Server {
    async fn start(sandbox: SandboxGateway) -> Server {
        let state = AppState {
            sandbox: Arc::new(sandbox),
            seen: Arc::default(),
        };
        let app = Router::new()
            .route("/v1/payment_intents", post(create_intent))
            .route("/v1/payment_intents/{id}", get(retrieve_intent))
            .route("/v1/payment_intents/{id}/capture", post(capture_intent))
            .route("/v1/payment_intents/{id}/cancel", post(cancel_intent))
            .route("/v1/refunds", post(create_refund))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, state }
    }

    fn config(&self) -> StripeConfig {
        StripeConfig::new(format!("http://{}/", self.addr), SECRET)
    }

    fn client(&self) -> StripeGateway {
        StripeGateway::new(&self.config()).unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

/// Why a request failed, rendered as Stripe's error JSON.
enum HttpError {
    BadKey,
    Payment(PaymentError),
}

impl From<PaymentError> for HttpError {
    fn from(e: PaymentError) -> Self {
        HttpError::Payment(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        match self {
            HttpError::BadKey => {
                let body = json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}});
                (StatusCode::UNAUTHORIZED, Json(body)).into_response()
            }
            HttpError::Payment(e) => error_response(e),
        }
    }
}

type HttpResult = Result<Response, HttpError>;

/// Checks the credentials and records the request; returns the idempotency key.
fn admit(
    state: &AppState,
    headers: &HeaderMap,
    path: String,
    form: &HashMap<String, String>,
) -> Result<String, HttpError> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {SECRET}")) {
        return Err(HttpError::BadKey);
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    state.seen.lock().unwrap().push(Seen {
        path,
        idempotency_key: key.clone(),
        form: form.clone(),
    });
    Ok(key)
}

fn amount(form: &HashMap<String, String>, field: &str) -> Result<Cents, HttpError> {
    form.get(field)
        .and_then(|v| v.parse().ok())
        .map(Cents)
        .ok_or_else(|| PaymentError::Invalid(format!("missing {field}")).into())
}

/// Stripe's error JSON for a sandbox error.
fn error_response(e: PaymentError) -> Response {
    let (status, body) = match e {
        PaymentError::Declined { code, message } => (
            StatusCode::PAYMENT_REQUIRED,
            json!({"error": {"type": "card_error", "code": "card_declined",
                             "decline_code": code, "message": message}}),
        ),
        PaymentError::Invalid(m) => {
            let kind = if m.contains("idempotency") {
                "idempotency_error"
            } else {
                "invalid_request_error"
            };
            (
                StatusCode::BAD_REQUEST,
                json!({"error": {"type": kind, "message": m}}),
            )
        }
        PaymentError::Unavailable | PaymentError::Timeout | PaymentError::Provider(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}),
        ),
    };
    (status, Json(body)).into_response()
}

fn intent_response(state: &AppState, result: Result<Authorization, PaymentError>) -> HttpResult {
    let auth = result?;
    let entry = state
        .sandbox
        .entry(&auth.id)
        .expect("an answered id is in the ledger");
    let (status, received) = match auth.status {
        AuthorizationStatus::Authorized => ("requires_capture", 0),
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded => {
            ("succeeded", auth.amount.0)
        }
        AuthorizationStatus::Voided => ("canceled", 0),
    };
    Ok(Json(json!({
        "id": auth.id, "object": "payment_intent", "amount": entry.authorized.0,
        "amount_received": received, "currency": entry.currency, "status": status,
        "customer": entry.customer_ref, "payment_method": entry.payment_method_id,
        "capture_method": "manual",
    }))
    .into_response())
}

async fn create_intent(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> HttpResult {
    let key = admit(&state, &headers, "/v1/payment_intents".into(), &form)?;
    if form.get("capture_method").map(String::as_str) != Some("manual")
        || form.get("confirm").map(String::as_str) != Some("true")
    {
        let e = PaymentError::Invalid("expected manual capture, confirmed".into());
        return Err(e.into());
    }
    let amount = amount(&form, "amount")?;
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let req = AuthorizeRequest {
        amount,
        currency: field("currency"),
        payment_method_id: field("payment_method"),
        customer_ref: field("customer"),
        idempotency_key: key,
    };
    let result = state.sandbox.authorize(&req).await;
    intent_response(&state, result)
}

async fn capture_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> HttpResult {
    let path = format!("/v1/payment_intents/{id}/capture");
    let key = admit(&state, &headers, path, &form)?;
    let amount = amount(&form, "amount_to_capture")?;
    let result = state.sandbox.capture(&id, amount, &key).await;
    intent_response(&state, result)
}

async fn cancel_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> HttpResult {
    let path = format!("/v1/payment_intents/{id}/cancel");
    let key = admit(&state, &headers, path, &form)?;
    let result = state.sandbox.void(&id, &key).await;
    intent_response(&state, result)
}

/// `GET /v1/payment_intents/{id}` with `expand[]=payment_method` and `latest_charge`: the
/// intent as Stripe shows it, the billing address on the expanded payment method and the
/// refunded total on the expanded latest charge. 404 with Stripe's error JSON when unknown.
async fn retrieve_intent(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> HttpResult {
    let path = format!("/v1/payment_intents/{id}");
    let mut form = HashMap::new();
    form.insert("query".to_string(), query.unwrap_or_default());
    admit(&state, &headers, path, &form)?;
    let Some(record) = state.sandbox.retrieve(&id).await? else {
        let body = json!({"error": {"type": "invalid_request_error", "code": "resource_missing",
            "message": format!("No such payment_intent: '{id}'")}});
        return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
    };
    let entry = state
        .sandbox
        .entry(&id)
        .expect("a retrieved id is in the ledger");
    let status = match record.status {
        AuthorizationStatus::Authorized => "requires_capture",
        AuthorizationStatus::Captured | AuthorizationStatus::Refunded => "succeeded",
        AuthorizationStatus::Voided => "canceled",
    };
    Ok(Json(json!({
        "id": record.id, "object": "payment_intent", "amount": record.authorized.0,
        "amount_received": record.captured.0, "currency": record.currency, "status": status,
        "latest_charge": {"object": "charge", "amount_refunded": record.refunded.0},
        "payment_method": {"id": entry.payment_method_id, "object": "payment_method",
            "billing_details": {"address": {"country": record.billing_country}}},
        "capture_method": "manual",
    }))
    .into_response())
}

async fn create_refund(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> HttpResult {
    let key = admit(&state, &headers, "/v1/refunds".into(), &form)?;
    let amount = amount(&form, "amount")?;
    let pi = form.get("payment_intent").cloned().unwrap_or_default();
    let auth = state.sandbox.refund(&pi, amount, &key).await?;
    Ok(Json(json!({
        "id": format!("re_{}", auth.id), "object": "refund", "amount": auth.amount.0,
        "payment_intent": pi, "status": "succeeded",
    }))
    .into_response())
}

fn req(pm: &str, cents: i64, order: u64) -> AuthorizeRequest {
    AuthorizeRequest {
        amount: Cents(cents),
        currency: "usd".into(),
        payment_method_id: pm.into(),
        customer_ref: "cus_77".into(),
        idempotency_key: idempotency_key(OrderId(order), Op::Authorize),
    }
}

fn key(order: u64, op: Op) -> String {
    idempotency_key(OrderId(order), op)
}

fn sandbox() -> SandboxGateway {
    SandboxGateway::with_timeout_card_delay(Duration::from_secs(2))
}

/// Resilience settings that keep real-time tests quick.
fn quick_config() -> PaymentsConfig {
    PaymentsConfig {
        timeout_ms: 300,
        backoff_base_ms: 1,
        backoff_max_ms: 5,
        ..PaymentsConfig::default()
    }
}

#[tokio::test]
async fn authorize_capture_refund_over_http() {
    let server = Server::start(sandbox()).await;
    let gw = server.client();

    let auth = gw.authorize(&req(PM_VISA, 2850, 1)).await.unwrap();
    assert_eq!(
        (auth.amount, auth.status),
        (Cents(2850), AuthorizationStatus::Authorized)
    );
    let cap = gw
        .capture(&auth.id, Cents(2500), &key(1, Op::Capture))
        .await
        .unwrap();
    assert_eq!(
        (cap.amount, cap.status),
        (Cents(2500), AuthorizationStatus::Captured)
    );
    let re = gw
        .refund(&auth.id, Cents(2500), &key(1, Op::Refund))
        .await
        .unwrap();
    assert_eq!(
        (re.id.as_str(), re.amount, re.status),
        (auth.id.as_str(), Cents(2500), AuthorizationStatus::Refunded)
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let create = &seen[0];
    assert_eq!(create.idempotency_key, "order-1-authorize");
    for (field, value) in [
        ("amount", "2850"),
        ("currency", "usd"),
        ("payment_method", PM_VISA),
        ("customer", "cus_77"),
        ("capture_method", "manual"),
        ("confirm", "true"),
    ] {
        assert_eq!(
            create.form.get(field).map(String::as_str),
            Some(value),
            "{field}"
        );
    }
    assert_eq!(
        seen[1].path,
        format!("/v1/payment_intents/{}/capture", auth.id)
    );
    assert_eq!(seen[1].form["amount_to_capture"], "2500");
    assert_eq!(seen[1].idempotency_key, "order-1-capture");
    assert_eq!(seen[2].form["payment_intent"], auth.id);
    assert_eq!(seen[2].idempotency_key, "order-1-refund");

    let e = server.state.sandbox.entry(&auth.id).unwrap();
    assert_eq!(
        (e.effects.authorize, e.effects.capture, e.effects.refund),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn declines_arrive_as_declined_with_their_code() {
    let server = Server::start(sandbox()).await;
    let gw = server.client();
    for (pm, code, order) in [
        (PM_DECLINED, "card_declined", 1),
        (PM_INSUFFICIENT_FUNDS, "insufficient_funds", 2),
    ] {
        let err = gw.authorize(&req(pm, 1000, order)).await.unwrap_err();
        assert!(
            matches!(&err, PaymentError::Declined { code: c, .. } if c == code),
            "{err:?}"
        );
    }
    let err = gw.authorize(&req("tok_visa", 1000, 3)).await.unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn replay_with_the_same_key_returns_the_same_intent() {
    let server = Server::start(sandbox()).await;
    let gw = server.client();
    let first = gw.authorize(&req(PM_VISA, 1000, 5)).await.unwrap();
    let again = gw.authorize(&req(PM_VISA, 1000, 5)).await.unwrap();
    assert_eq!(first, again);
    let k = key(5, Op::Capture);
    gw.capture(&first.id, Cents(1000), &k).await.unwrap();
    gw.capture(&first.id, Cents(1000), &k).await.unwrap();

    let ledger = server.state.sandbox.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!(ledger[0].effects.capture, 1, "captured exactly once");

    let reuse = gw.authorize(&req(PM_VISA, 999, 5)).await.unwrap_err();
    assert!(matches!(reuse, PaymentError::Invalid(_)), "{reuse:?}");
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_key() {
    let server = Server::start(sandbox()).await;
    let gw = ResilientGateway::new(server.client(), &quick_config());
    let auth = gw.authorize(&req(PM_FLAKY, 1000, 8)).await.unwrap();
    gw.capture(&auth.id, Cents(1000), &key(8, Op::Capture))
        .await
        .unwrap();

    let keys: Vec<String> = server
        .seen()
        .into_iter()
        .map(|s| s.idempotency_key)
        .collect();
    assert_eq!(
        keys,
        [
            "order-8-authorize",
            "order-8-authorize",
            "order-8-capture",
            "order-8-capture"
        ]
    );
    let e = server.state.sandbox.entry(&auth.id).unwrap();
    assert_eq!((e.effects.authorize, e.effects.capture), (1, 1));
    assert_eq!(server.state.sandbox.stats().injected_failures, 2);
}

#[tokio::test]
async fn illegal_moves_are_invalid() {
    let server = Server::start(sandbox()).await;
    let gw = server.client();
    let auth = gw.authorize(&req(PM_VISA, 1000, 9)).await.unwrap();
    let voided = gw.void(&auth.id, &key(9, Op::Void)).await.unwrap();
    assert_eq!(
        (voided.amount, voided.status),
        (Cents(1000), AuthorizationStatus::Voided)
    );
    let err = gw
        .capture(&auth.id, Cents(1000), &key(9, Op::Capture))
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err:?}");
    let err = gw.capture("pi_unknown", Cents(1), "k").await.unwrap_err();
    assert!(matches!(err, PaymentError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_silent_provider_times_out() {
    let server = Server::start(sandbox()).await;
    // Through the wrapper: its timeout fires, and so does each retry's.
    let cfg = PaymentsConfig {
        timeout_ms: 100,
        max_retries: 1,
        ..quick_config()
    };
    let gw = ResilientGateway::new(server.client(), &cfg);
    assert_eq!(
        gw.authorize(&req(PM_TIMEOUT, 1000, 10)).await,
        Err(PaymentError::Timeout)
    );
    assert_eq!(server.seen().len(), 2);
    // Without the wrapper: reqwest's own timeout maps to Timeout too.
    let bare = StripeGateway::new(&StripeConfig {
        request_timeout_ms: 100,
        ..server.config()
    })
    .unwrap();
    assert_eq!(
        bare.authorize(&req(PM_TIMEOUT, 1000, 11)).await,
        Err(PaymentError::Timeout)
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable() {
    // A port that was free a moment ago: nothing listens, so the connection is refused.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw = StripeGateway::new(&StripeConfig::new(format!("http://{addr}"), SECRET)).unwrap();
    assert_eq!(
        gw.authorize(&req(PM_VISA, 1000, 1)).await,
        Err(PaymentError::Unavailable)
    );
}

#[tokio::test]
async fn wrong_credentials_are_a_provider_error() {
    let server = Server::start(sandbox()).await;
    let gw = StripeGateway::new(&StripeConfig::new(
        format!("http://{}", server.addr),
        "sk_wrong",
    ))
    .unwrap();
    let err = gw.authorize(&req(PM_VISA, 1000, 1)).await.unwrap_err();
    assert!(matches!(err, PaymentError::Provider(_)), "{err:?}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn retrieve_reads_the_intent_its_billing_country_and_refunds_and_404_is_none() {
    let server = Server::start(sandbox()).await;
    // Through the resilient wrapper: retrieve shares its timeout, retries and breaker.
    let gw = ResilientGateway::new(server.client(), &quick_config());

    let auth = gw.authorize(&req(PM_BILLING_GB, 4000, 31)).await.unwrap();
    let got = gw.retrieve(&auth.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.authorized, got.captured, got.refunded),
        (
            AuthorizationStatus::Authorized,
            Cents(4000),
            Cents(0),
            Cents(0)
        )
    );
    assert_eq!(got.billing_country.as_deref(), Some("GB"));
    assert_eq!(got.currency, "usd");

    gw.capture(&auth.id, Cents(3500), &key(31, Op::Capture))
        .await
        .unwrap();
    gw.refund(&auth.id, Cents(500), &key(31, Op::Refund))
        .await
        .unwrap();
    let got = gw.retrieve(&auth.id).await.unwrap().unwrap();
    assert_eq!(
        (got.status, got.captured, got.refunded),
        (AuthorizationStatus::Refunded, Cents(3500), Cents(500))
    );

    let visa = gw.authorize(&req(PM_VISA, 1000, 32)).await.unwrap();
    let got = gw.retrieve(&visa.id).await.unwrap().unwrap();
    assert_eq!(got.billing_country.as_deref(), Some("US"));

    assert_eq!(gw.retrieve("pi_nowhere").await.unwrap(), None);
    let last = server.seen().pop().unwrap();
    assert_eq!(last.path, "/v1/payment_intents/pi_nowhere");
    assert!(last.form["query"].contains("expand"), "{:?}", last.form);
    // An id that could leave its path segment is refused before any request.
    assert!(matches!(
        gw.retrieve("pi_1/cancel").await,
        Err(PaymentError::Invalid(_))
    ));
}
