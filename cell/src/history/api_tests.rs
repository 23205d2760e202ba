//! A delivery's path from the real ping path to the dispute view, on a cell app built as
//! startup builds it, on virtual time: the assigned driver's accepted pings are recorded
//! (another driver's and refused ones are not), and the staff endpoints answer the role
//! table: customers, drivers and restaurants 403; admin and support 200 with a reason, 400
//! without; exactly one audit record per read; an audit write that fails (the cell lost its
//! lease, so every write is fenced) is a 503 with no data; an edited record is caught.

use crate::auth::Principal;
use crate::dispatch::port::DispatchPort;
use crate::dispatch::{DriverUpdate, GpsFix};
use crate::fraud::api_tests::call;
use crate::gateway::DriverPort;
use crate::history::audit::Record;
use crate::history::{keys, view};
use crate::orders::WriteOp;
use crate::orders::repo::{self, Created};
use axum::http::StatusCode;
use domain::{
    CustomerId, DeliveryId, DriverId, EventKind, OrderEvent, OrderId, OrderStatus, RestaurantId,
};
use schemas::CellBody;
use serde_json::{Value, json};
use std::time::Duration;
use store::{RangeRequest, TxnError};

use crate::test_app::TestApp as Cell;

async fn cell() -> Cell {
    Cell::start(|_| {}).await
}

impl Cell {
    fn ping(&self, driver: u64, lat: f64, lng: f64) -> bool {
        let fix = GpsFix {
            lat,
            lng,
            heading: 90.0,
            speed: 8.0,
            ts_ms: self.now().0 as u64,
        };
        self.app
            .dispatch()
            .ping(DriverId(driver), fix, self.now())
            .is_ok()
    }

    fn token(&self, who: Principal, name: Option<&str>) -> String {
        self.app.jwt().issue(
            who,
            name.map(str::to_owned),
            Duration::from_secs(3600),
            self.now(),
        )
    }

    async fn audit_records(&self) -> Vec<Record> {
        store::read(&**self.app.kv(), |txn| {
            Box::pin(async move {
                Ok::<_, TxnError<()>>(
                    txn.get_range(RangeRequest::prefix(&keys::audit_prefix()))
                        .await?,
                )
            })
        })
        .await
        .unwrap()
        .iter()
        .map(|kv| serde_json::from_slice(&kv.value).unwrap())
        .collect()
    }
}

/// Driver 201 takes order 1 and drives it to the dropoff, pinging every 5 s; driver 202 pings
/// nearby all along. Returns the delivery and the accepted pings of 201 while assigned.
async fn deliver(c: &Cell) -> (DeliveryId, Vec<(f64, f64)>) {
    let d = DriverId(201);
    let mut outbox = DispatchPort(c.app.clone()).connected(d, None).outbox;
    let (lat0, lng0) = (52.5 + 300.0 / 111_195.0, 13.4);
    assert!(c.ping(201, lat0, lng0));
    assert!(c.ping(202, 52.49, 13.39));
    c.app
        .dispatch()
        .update(d, DriverUpdate::Online, c.now())
        .await
        .unwrap();
    let mut o = domain::testing::order(OrderId(1), CustomerId(5), RestaurantId(3), c.now());
    o.status = OrderStatus::Confirmed;
    let Created::New(o) = repo::create(
        &**c.app.kv(),
        c.app.orders().log(),
        o,
        &WriteOp::new(c.now()),
    )
    .await
    .unwrap() else {
        panic!("order existed")
    };
    let ev = OrderEvent::for_order(&o, EventKind::OrderConfirmed, c.now());
    c.app.dispatch().on_event(&ev, Some(o.clone()), c.now());
    c.app.dispatch().tick(c.now()).await;
    let offer = std::iter::from_fn(|| outbox.try_recv().ok())
        .find_map(|m| match m {
            CellBody::Offer(o) => Some(o),
            _ => None,
        })
        .expect("an offer");
    let delivery = DeliveryId(offer.delivery_id);
    c.app
        .dispatch()
        .respond(d, delivery, true, c.now())
        .await
        .unwrap();

    let (dlat, dlng) = (o.delivery_address.lat, o.delivery_address.lng);
    let steps = 40;
    let mut sent = Vec::new();
    for i in 1..=steps {
        c.advance(5_000);
        let f = f64::from(i) / f64::from(steps);
        let p = (lat0 + (dlat - lat0) * f, lng0 + (dlng - lng0) * f);
        assert!(c.ping(201, p.0, p.1), "ping {i}");
        sent.push(p);
        assert!(c.ping(202, 52.49, 13.39 + f64::from(i) * 1e-4));
        if i == 10 {
            c.app
                .dispatch()
                .update(d, DriverUpdate::PickedUp(delivery), c.now())
                .await
                .unwrap();
            // A jump no car makes: refused by the checks, so not recorded.
            c.advance(1_000);
            assert!(!c.ping(201, 48.0, 2.0));
        }
    }
    c.app
        .dispatch()
        .update(d, DriverUpdate::Delivered(delivery), c.now())
        .await
        .unwrap();
    c.advance(5_000);
    assert!(
        c.ping(201, dlat, dlng),
        "after delivery: accepted, not recorded"
    );
    (delivery, sent)
}

#[tokio::test]
async fn the_assigned_drivers_path_reaches_the_dispute_view_and_only_staff_read_it_audited() {
    let c = cell().await;
    let (delivery, sent) = deliver(&c).await;
    let h = c.app.history().expect("history is on by default").clone();
    let s = h.flush(true, c.now()).await.unwrap();
    assert_eq!(
        (s.segments, s.compacted),
        (1, 1),
        "the delivered path, compacted"
    );
    let uri = |reason: &str| format!("/api/v1/admin/deliveries/{}/path{reason}", delivery.0);

    for who in [
        Principal::Customer(CustomerId(5)),
        Principal::Driver(DriverId(201)),
        Principal::Restaurant(RestaurantId(3)),
    ] {
        let (st, body) = call(
            &c.app,
            "GET",
            &uri("?reason=T-1"),
            &c.token(who, None),
            None,
        )
        .await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{who:?}: {body}");
        assert_eq!(body["error"]["code"], "auth.forbidden");
    }
    let admin = c.token(Principal::Admin, Some("root"));
    let support = c.token(Principal::Support, Some("ana"));
    for q in ["", "?reason=", "?reason=%20%20"] {
        let (st, body) = call(&c.app, "GET", &uri(q), &support, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {body}");
        assert_eq!(body["error"]["code"], "history.reason_required");
        assert!(body["error"]["message"].is_string());
    }
    assert!(
        c.audit_records().await.is_empty(),
        "refused requests read nothing"
    );

    let mut bodies = Vec::new();
    for (tok, reason) in [(&admin, "T-100"), (&support, "T-101")] {
        let (st, body) = call(&c.app, "GET", &uri(&format!("?reason={reason}")), tok, None).await;
        assert_eq!(st, StatusCode::OK, "{body}");
        bodies.push(body);
    }
    let audit = c.audit_records().await;
    assert_eq!(audit.len(), 2, "one record per read");
    assert_eq!(
        audit
            .iter()
            .map(|r| (
                r.entry.actor.as_str(),
                r.entry.role.as_str(),
                r.entry.reason.as_str()
            ))
            .collect::<Vec<_>>(),
        [("root", "admin", "T-100"), ("ana", "support", "T-101")]
    );
    assert!(
        audit.iter().all(|r| r.entry.action == "path.read"
            && r.entry.delivery_id == Some(delivery.0.to_string()))
    );

    // The view: exactly the assigned driver's accepted pings while assigned.
    let v: view::DisputeView = serde_json::from_value(bodies[0].clone()).unwrap();
    assert_eq!(v.points, sent.len());
    let line = v.path.geometry.as_ref().unwrap();
    for (p, s) in line.coordinates.iter().zip(&sent) {
        assert!((p[1] - s.0).abs() <= 0.5e-5 && (p[0] - s.1).abs() <= 0.5e-5);
    }
    let decoded = view::decode_polyline(&v.polyline).unwrap();
    assert_eq!(decoded.len(), line.coordinates.len());
    for (d, p) in decoded.iter().zip(&line.coordinates) {
        assert!(
            (d.0 - p[1]).abs() < 1e-9 && (d.1 - p[0]).abs() < 1e-9,
            "the polyline is the GeoJSON's points"
        );
    }
    let statuses: Vec<&str> = v.timeline.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(statuses.last(), Some(&"delivered"), "{statuses:?}");
    assert!(
        v.delivered_distance_m.unwrap() < 1.0,
        "the last fix was at the door"
    );
    assert_eq!(bodies[0]["pin_verified"], Value::Null);
    assert_eq!(
        v.not_recorded,
        ["geofence_events", "pin_verified", "dispatch_rounds"]
    );

    // A hold (support may place one), then the chain check (admins only).
    let until = c.now().0 + 90 * crate::history::DAY_MS;
    let (st, body) = call(
        &c.app,
        "POST",
        &format!("/api/v1/admin/deliveries/{}/hold", delivery.0),
        &support,
        Some(json!({"reason": "dispute 9", "expires_at": until})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["placed_by"], "ana");
    let (st, _) = call(
        &c.app,
        "POST",
        &format!("/api/v1/admin/deliveries/{}/hold", delivery.0),
        &support,
        Some(json!({"reason": "x", "expires_at": c.now().0})),
    )
    .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    let (st, _) = call(&c.app, "GET", "/api/v1/admin/audit/verify", &support, None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, body) = call(&c.app, "GET", "/api/v1/admin/audit/verify", &admin, None).await;
    assert_eq!(
        (st, body["intact"].clone(), body["records"].clone()),
        (StatusCode::OK, json!(true), json!(4)),
        "{body}"
    );

    // Someone edits the first read's reason in the store: the verifier names that record.
    store::transact(&**c.app.kv(), |txn| {
        Box::pin(async move {
            let mut r: Record =
                serde_json::from_slice(&txn.get(&keys::audit(1)).await?.unwrap()).unwrap();
            r.entry.reason = "routine".into();
            txn.set(&keys::audit(1), &serde_json::to_vec(&r).unwrap());
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .unwrap();
    let (_, body) = call(&c.app, "GET", "/api/v1/admin/audit/verify", &admin, None).await;
    assert_eq!(
        (body["intact"].clone(), body["broken_at"].clone()),
        (json!(false), json!(1)),
        "{body}"
    );

    // The cell loses its lease: the audit write is refused, so no data goes out.
    let before = c.audit_records().await.len();
    c.app.lease().release().await;
    let (st, body) = call(&c.app, "GET", &uri("?reason=T-102"), &admin, None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "audit.unavailable");
    assert_eq!(
        body.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["error"],
        "no data: {body}"
    );
    assert_eq!(c.audit_records().await.len(), before);
}

#[tokio::test]
async fn unknown_deliveries_and_bad_ids_are_answered_with_the_error_schema() {
    let c = cell().await;
    let admin = c.token(Principal::Admin, None);
    let (st, body) = call(
        &c.app,
        "GET",
        "/api/v1/admin/deliveries/12345/path?reason=T",
        &admin,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        c.audit_records().await.len(),
        1,
        "the attempt itself is audited"
    );
    assert_eq!(
        c.audit_records().await[0].entry.actor,
        "admin",
        "no name: the role stands in"
    );
    let (st, body) = call(
        &c.app,
        "GET",
        "/api/v1/admin/deliveries/x1/path?reason=T",
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (st, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("request.invalid_id"))
    );
    let long = "r".repeat(501);
    let (st, body) = call(
        &c.app,
        "GET",
        &format!("/api/v1/admin/deliveries/1/path?reason={long}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(
        (st, body["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("history.reason_too_long"))
    );
    let (st, _) = call(
        &c.app,
        "GET",
        "/api/v1/admin/deliveries/1/path?reason=T",
        "not-a-token",
        None,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}
