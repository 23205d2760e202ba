//! Driver answers through both real entry points, on virtual time: the REST endpoints
//! (`http::router`, in process) and the QUIC gateway's port ([`DispatchPort`], what a session
//! calls for an `OfferResponse`), on a cell app built as startup builds it, whose clock is a
//! number the test sets. No background task runs: the test ticks matching itself.
//!
//! - accepts of one delivery racing over QUIC and REST, by its holder and by another driver:
//!   one assigns, the holder's other one repeats it (the leased offer's replay), the other
//!   driver's are refused as the transports say it (404, `unknown_delivery`);
//! - an accept arriving after the offer's lease ended, before a tick withdrew it: REST 409
//!   `offer_expired`, QUIC `offer_expired`; one at the shown deadline (2 s, here 200 ms,
//!   before the lease's end) lands;
//! - a repeated REST accept returns the identical body, with the offer id and fencing number
//!   or without.

use crate::auth::Principal;
use crate::dispatch::port::DispatchPort;
use crate::dispatch::{DriverUpdate, GpsFix};
use crate::gateway::DriverPort;
use crate::orders::WriteOp;
use crate::orders::repo::{self, Created};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use domain::{
    CustomerId, DriverId, EventKind, OrderEvent, OrderId, OrderStatus, RestaurantId, UnixMs,
};
use schemas::{CellBody, CloseReason, Offer, OfferDecision, OfferResponse};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::mpsc;
use tower::ServiceExt;

use crate::test_app::TestApp as Cell;

async fn cell() -> Cell {
    Cell::start(|cfg| {
        cfg.dispatch.matching.offer_ttl_ms = 800;
        cfg.dispatch.matching.offer_display_margin_ms = 200;
    })
    .await
}

impl Cell {
    /// A driver connected over QUIC (through the port, as the gateway does), pinging at the
    /// restaurant and online. Returns the session's outbox.
    async fn driver(&self, id: u64) -> mpsc::Receiver<CellBody> {
        let d = DriverId(id);
        let session = DispatchPort(self.app.clone()).connected(d, None);
        let fix = GpsFix::still((52.5 + 300.0 / 111_195.0, 13.4), self.now());
        self.app.dispatch().ping(d, fix, self.now()).unwrap();
        self.app
            .dispatch()
            .update(d, DriverUpdate::Online, self.now())
            .await
            .unwrap();
        session.outbox
    }

    /// A confirmed order at `domain::testing::order`'s restaurant, started by its event.
    async fn order(&self, id: u64) -> OrderId {
        let mut o = domain::testing::order(OrderId(id), CustomerId(5), RestaurantId(3), self.now());
        o.status = OrderStatus::Confirmed;
        let op = WriteOp::new(self.now());
        let Created::New(o) = repo::create(&**self.app.kv(), self.app.orders().log(), o, &op)
            .await
            .unwrap()
        else {
            panic!("order {id} existed")
        };
        let ev = OrderEvent::for_order(&o, EventKind::OrderConfirmed, self.now());
        self.app
            .dispatch()
            .on_event(&ev, Some(o.clone()), self.now());
        o.id
    }

    /// `POST /api/v1/drivers/deliveries/{delivery}/accept` as `driver`: status and body.
    async fn rest_accept(&self, driver: u64, delivery: u64) -> (StatusCode, Value) {
        let (status, bytes) = self.rest_accept_with(driver, delivery, "").await;
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// The same with a request body; the raw response body.
    async fn rest_accept_with(
        &self,
        driver: u64,
        delivery: u64,
        body: &str,
    ) -> (StatusCode, Vec<u8>) {
        let token = self.app.jwt().issue(
            Principal::Driver(DriverId(driver)),
            None,
            Duration::from_secs(600),
            self.now(),
        );
        let req = Request::builder()
            .method("POST")
            .uri(format!("/api/v1/drivers/deliveries/{delivery}/accept"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let resp = crate::http::router(self.app.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, bytes.to_vec())
    }

    /// An accept over the QUIC session's port.
    async fn quic_accept(&self, driver: u64, offer: &Offer) -> Result<(), CloseReason> {
        let resp = OfferResponse {
            offer_id: offer.offer_id,
            delivery_id: offer.delivery_id,
            decision: OfferDecision::Accept,
        };
        DispatchPort(self.app.clone())
            .respond(DriverId(driver), resp)
            .await
    }
}

/// The offers in an outbox so far.
fn offers(rx: &mut mpsc::Receiver<CellBody>) -> Vec<Offer> {
    let mut out = Vec::new();
    while let Ok(m) = rx.try_recv() {
        if let CellBody::Offer(o) = m {
            out.push(o);
        }
    }
    out
}

#[tokio::test]
async fn accepts_racing_over_rest_and_quic_assign_exactly_one_driver() {
    let c = cell().await;
    let mut holder = c.driver(201).await;
    let mut other = c.driver(202).await;
    let order = c.order(1).await;
    c.app.dispatch().tick(c.now()).await;
    let offer = offers(&mut holder)
        .pop()
        .expect("the lower id is offered first");
    assert!(offers(&mut other).is_empty());
    let delivery = offer.delivery_id;

    let (hq, (hr, _), (or, _), oq) = tokio::join!(
        c.quic_accept(201, &offer),
        c.rest_accept(201, delivery),
        c.rest_accept(202, delivery),
        c.quic_accept(202, &offer),
    );
    // One of the holder's accepts assigns, the other repeats it (one assignment, below).
    assert_eq!(hq, Ok(()), "the holder's QUIC accept");
    assert_eq!(hr, StatusCode::OK, "the holder's REST accept");
    assert_eq!(or, StatusCode::NOT_FOUND, "not the other driver's offer");
    assert_eq!(oq, Err(CloseReason::UnknownDelivery));

    let stored = repo::get(&**c.app.kv(), order).await.unwrap().unwrap();
    assert_eq!(stored.driver_id, Some(DriverId(201)));
    let assigned = c
        .app
        .kv()
        .read_events(c.app.orders().log(), store::LogPos(1), 0)
        .await
        .unwrap()
        .iter()
        .filter_map(|e| serde_json::from_slice::<OrderEvent>(&e.payload).ok())
        .filter(|e| e.order_id == order && e.kind == EventKind::DriverAssigned)
        .count();
    assert_eq!(assigned, 1);
    let mut assignments = 0;
    while let Ok(m) = holder.try_recv() {
        assignments += usize::from(matches!(m, CellBody::Assignment(_)));
    }
    assert_eq!(assignments, 1);
}

#[tokio::test]
async fn an_accept_after_the_expiry_is_refused_on_both_transports() {
    let c = cell().await;
    let mut rest_driver = c.driver(301).await;
    c.order(1).await;
    c.app.dispatch().tick(c.now()).await;
    let offer = offers(&mut rest_driver).pop().expect("offered");
    // The lease ends 200 ms after the shown deadline; no tick has run to withdraw it yet.
    c.set(UnixMs(offer.expires_at_ms as i64 + 200));
    let (status, body) = c.rest_accept(301, offer.delivery_id).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "offer_expired");
    assert_eq!(
        c.quic_accept(301, &offer).await,
        Err(CloseReason::OfferExpired)
    );
    // A millisecond earlier it would have been taken: the expiry is exact.
    let c = cell().await;
    let mut quic_driver = c.driver(302).await;
    c.order(2).await;
    c.app.dispatch().tick(c.now()).await;
    let offer = offers(&mut quic_driver).pop().expect("offered");
    c.set(UnixMs(offer.expires_at_ms as i64 + 200 - 1));
    assert_eq!(c.quic_accept(302, &offer).await, Ok(()));
}

#[tokio::test]
async fn a_repeated_rest_accept_returns_the_identical_body() {
    let c = cell().await;
    let mut rx = c.driver(401).await;
    c.order(1).await;
    c.app.dispatch().tick(c.now()).await;
    let offer = offers(&mut rx).pop().expect("offered");
    let lease = crate::dispatch::offers::store::get_lease(
        &**c.app.kv(),
        crate::dispatch::offers::OfferId(offer.offer_id),
    )
    .await
    .unwrap()
    .unwrap();
    let named = format!(
        r#"{{"offer_id":"{}","fence":{}}}"#,
        offer.offer_id, lease.fence
    );
    let wrong = format!(
        r#"{{"offer_id":"{}","fence":{}}}"#,
        offer.offer_id,
        lease.fence + 1
    );
    let (status, body) = c.rest_accept_with(401, offer.delivery_id, &wrong).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        v["error"]["code"], "offer_superseded",
        "a fencing number it never carried"
    );
    let (status, first) = c.rest_accept_with(401, offer.delivery_id, &named).await;
    assert_eq!(status, StatusCode::OK);
    // The driver moves (the body's pickup ETA would change) and time passes the lease's end:
    // the repeats still get the first reply, byte for byte.
    c.advance(60_000);
    let fix = GpsFix::still((52.5 + 1_300.0 / 111_195.0, 13.4), c.now());
    c.app.dispatch().ping(DriverId(401), fix, c.now()).unwrap();
    for body in [named.as_str(), ""] {
        let (status, again) = c.rest_accept_with(401, offer.delivery_id, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(again, first);
    }
    let (status, _) = c
        .rest_accept_with(401, offer.delivery_id, "{\"offer_id\":1}")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
