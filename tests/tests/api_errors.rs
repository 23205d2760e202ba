//! Every error status the API documents, produced against a real cell and checked for the
//! JSON shape `{"error": {"code", "message"}}`. The last test reads the OpenAPI document and
//! fails when it lists an error status that no test here produces.

use itest::fixtures::*;
use itest::{Cell, CellOpts};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::OnceLock;

/// Error statuses this file produces and checks.
const COVERED: [u16; 11] = [400, 401, 402, 403, 404, 409, 413, 422, 426, 429, 503];

/// A small second city with another JWT secret and a payment timeout of 200 ms, no retries:
/// for tokens signed with another secret (401) and an unavailable provider (202, queued); drivers
/// may ping once a second with no burst (429).
fn other_cell() -> &'static Cell {
    static OTHER: OnceLock<Cell> = OnceLock::new();
    OTHER.get_or_init(|| {
        Cell::start(CellOpts {
            config_toml: Some(
                "[auth]\njwt_secret = \"another-secret-for-itest\"\n\
                 [demo]\nrestaurants = 300\nradius_km = 3.0\n\
                 [payments]\ntimeout_ms = 200\nmax_retries = 0\n\
                 [dispatch.pings]\nmax_pings_per_s = 1.0\nping_burst = 1\n"
                    .into(),
            ),
            ..CellOpts::default()
        })
    })
}

fn quote(cell: &Cell, token: &str, body: &Value) -> itest::Resp {
    cell.post("/api/v1/orders/quote")
        .token(token)
        .json(body)
        .send()
}

#[test]
fn bad_search_queries_are_400() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2001);
    let cases = [
        ("lat=52.52", "search.missing_location"),
        ("lng=13.4", "search.missing_location"),
        ("lat=52.52&lng=13.4&radius=50km", "search.invalid_query"),
        ("lat=52.52&lng=13.4&radius=far", "search.invalid_query"),
        ("lat=52.52&lng=13.4&page=0", "search.invalid_query"),
        ("lat=52.52&lng=13.4&page=-1", "request.invalid_query"),
        ("lat=95&lng=13.4", "search.invalid_query"),
        ("lat=abc&lng=13.4", "request.invalid_query"),
    ];
    for (q, code) in cases {
        let r = cell
            .get(&format!("/api/v1/restaurants?{q}"))
            .token(&t)
            .send();
        r.expect_error(400, code);
    }
}

#[test]
fn bad_carts_are_400_naming_the_item() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2002);
    let pick = restaurant(cell, 0);
    let lines = valid_lines(&pick.menu, false);
    let good = order_body(&pick.id, &[(&lines[0], 1)], CENTRE, PM_VISA);
    quote(cell, &t, &good).expect_status(200);
    let item = &lines[0].item_id;

    let mut empty = good.clone();
    empty["items"] = json!([]);
    quote(cell, &t, &empty).expect_error(400, "cart.empty");

    let mut unknown = good.clone();
    unknown["items"][0]["item_id"] = json!("4242424242");
    let r = quote(cell, &t, &unknown).expect_error(400, "cart.unknown_item");
    assert!(
        r.error_message().contains("4242424242"),
        "names the item: {}",
        r.text
    );
    unknown["items"][0]["item_id"] = json!("not-an-id");
    let r = quote(cell, &t, &unknown).expect_error(400, "cart.unknown_item");
    assert!(
        r.error_message().contains("not-an-id"),
        "names the item: {}",
        r.text
    );

    for q in [0, 51] {
        let mut bad = good.clone();
        bad["items"][0]["quantity"] = json!(q);
        let r = quote(cell, &t, &bad).expect_error(400, "cart.invalid_quantity");
        assert!(
            r.error_message().contains(item.as_str()),
            "names the item: {}",
            r.text
        );
    }
    let mut bad = good.clone();
    bad["items"][0]["customizations"] = json!(["Extra unicorn"]);
    let r = quote(cell, &t, &bad).expect_error(400, "cart.invalid_customization");
    assert!(r.error_message().contains("Extra unicorn"), "{}", r.text);
    // An item with a required group, ordered without a choice from it.
    let required = items(&pick.menu).into_iter().find(|i| {
        i["available"] == true
            && i["customizations"]
                .as_array()
                .is_some_and(|g| g.iter().any(|g| g["required"] == true))
    });
    if let Some(i) = required {
        let mut bare = good.clone();
        bare["items"][0] = json!({ "item_id": i["id"], "quantity": 1, "customizations": [] });
        quote(cell, &t, &bare).expect_error(400, "cart.invalid_customization");
    }

    // Sold out: the restaurant marks the item unavailable; the menu shows it; ordering it
    // is a 400 naming it; marking it available again makes the cart valid again.
    let rest = cell.token("restaurant", &pick.id);
    let avail = |on: bool| {
        cell.patch(&format!(
            "/api/v1/restaurants/{}/menu/items/{item}",
            pick.id
        ))
        .token(&rest)
        .json(&json!({ "available": on }))
        .send()
        .expect_status(204)
    };
    avail(false);
    let m = menu(cell, &t, &pick.id);
    let shown = items(&m)
        .into_iter()
        .find(|i| i["id"] == item.as_str())
        .cloned();
    assert_eq!(shown.map(|i| i["available"].clone()), Some(json!(false)));
    let r = place(cell, &t, &good, &idem_key("soldout")).expect_error(400, "cart.item_unavailable");
    assert!(
        r.error_message().contains(&lines[0].name) || r.error_message().contains(item.as_str()),
        "{}",
        r.text
    );
    avail(true);
    quote(cell, &t, &good).expect_status(200);

    // Placement needs an Idempotency-Key and a payment method.
    cell.post("/api/v1/orders")
        .token(&t)
        .json(&good)
        .send()
        .expect_error(400, "request.missing_idempotency_key");
    let mut no_pm = good.clone();
    no_pm["payment_method_id"] = Value::Null;
    place(cell, &t, &no_pm, &idem_key("nopm")).expect_error(400, "payment.missing_method");
    assert!(my_orders(cell, &t).is_empty(), "a 400 wrote an order");
}

#[test]
fn malformed_bodies_and_ids_are_400() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2003);
    let raw = |body: &str, ct: Option<&str>| {
        cell.post("/api/v1/orders/quote")
            .token(&t)
            .raw(ct, body.to_owned())
            .send()
    };
    raw("{\"restaurant_id\":", Some("application/json")).expect_error(400, "request.invalid_json");
    raw("{\"unknown\":1}", Some("application/json")).expect_error(400, "request.invalid_json");
    raw("{}", Some("text/plain")).expect_error(400, "request.content_type");
    let rest = cell.token("restaurant", 1);
    for (r, code) in [
        (
            cell.get("/api/v1/restaurants/abc/menu").token(&t).send(),
            "request.invalid_id",
        ),
        (
            cell.get("/api/v1/orders/abc").token(&t).send(),
            "request.invalid_id",
        ),
        (
            cell.get("/api/v1/orders/-1").token(&t).send(),
            "request.invalid_id",
        ),
        (
            cell.post("/api/v1/orders/xyz/cancel")
                .token(&t)
                .json(&json!({}))
                .send(),
            "request.invalid_id",
        ),
        (
            set_status(cell, &rest, "1.5", "accepted"),
            "request.invalid_id",
        ),
        (
            cell.patch("/api/v1/restaurants/x/menu/items/1")
                .token(&rest)
                .json(&json!({ "available": true }))
                .send(),
            "request.invalid_id",
        ),
    ] {
        r.expect_error(400, code);
    }
}

#[test]
fn missing_or_bad_tokens_are_401() {
    let cell = Cell::shared();
    let path = "/api/v1/orders?customer=me";
    cell.get(path).send().expect_error(401, "auth.unauthorized");
    cell.get(path)
        .token("garbage")
        .send()
        .expect_error(401, "auth.unauthorized");
    cell.get(path)
        .header("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
        .send()
        .expect_error(401, "auth.unauthorized");
    // Well-formed, but signed with another secret.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let sign = |secret: &[u8], claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .expect("signing")
    };
    let claims = json!({ "sub": "2004", "role": "customer", "iat": now, "exp": now + 3600 });
    let forged = sign(b"not-the-cell-secret", claims.clone());
    cell.get(path)
        .token(&forged)
        .send()
        .expect_error(401, "auth.unauthorized");
    // Signed with the cell's (default, demo) secret: accepted, unless expired.
    let good = sign(b"dev-only-secret-change-me", claims);
    cell.get(path).token(&good).send().expect_status(200);
    let expired = sign(
        b"dev-only-secret-change-me",
        json!({ "sub": "2004", "role": "customer", "iat": now - 7200, "exp": now - 3600 }),
    );
    cell.get(path)
        .token(&expired)
        .send()
        .expect_error(401, "auth.unauthorized");
    // A token of this cell is foreign to a cell with another secret.
    let other = other_cell();
    let mine = cell.token("customer", 2004);
    other
        .get(path)
        .token(&mine)
        .send()
        .expect_error(401, "auth.unauthorized");
    other
        .get(path)
        .token(&other.token("customer", 2004))
        .send()
        .expect_status(200);
}

#[test]
fn wrong_party_is_403_unknown_things_404_illegal_moves_409() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 2005);
    let driver = cell.token("driver", 77);
    let body = simple_order(cell, 1, PM_VISA);
    place(cell, &driver, &body, &idem_key("drv")).expect_error(403, "auth.forbidden");
    let id = place_new(cell, &cust, &body);
    cell.get(&format!("/api/v1/orders/{id}"))
        .token(&cell.token("customer", 2006))
        .send()
        .expect_error(403, "auth.forbidden");

    cell.get("/api/v1/restaurants/4242/menu")
        .token(&cust)
        .send()
        .expect_error(404, "not_found");
    cell.get("/api/v1/orders/4242")
        .token(&cust)
        .send()
        .expect_error(404, "not_found");
    cell.get("/api/v1/no/such/route")
        .token(&cust)
        .send()
        .expect_error(404, "not_found");
    cell.get("/nope").send().expect_error(404, "not_found");
    let mut elsewhere = body.clone();
    elsewhere["restaurant_id"] = json!("4242");
    quote(cell, &cust, &elsewhere).expect_error(404, "not_found");

    let rest = cell.token("restaurant", &restaurant(cell, 1).id);
    let r = set_status(cell, &rest, &id, "ready_for_pickup")
        .expect_error(409, "order.invalid_transition");
    assert_eq!(r.json["error"]["status"], "pending");
}

#[test]
fn body_over_64_kib_is_413() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2007);
    let pick = restaurant(cell, 0);
    let mut big = simple_order(cell, 0, PM_VISA);
    big["delivery_address"]["formatted"] = json!("x".repeat(70 * 1024));
    quote(cell, &t, &big).expect_error(413, "request.too_large");
    place(cell, &t, &big, &idem_key("big")).expect_error(413, "request.too_large");
    cell.patch(&format!("/api/v1/restaurants/{}", pick.id))
        .token(&cell.token("restaurant", &pick.id))
        .raw(Some("application/json"), vec![b' '; 65 * 1024])
        .send()
        .expect_error(413, "request.too_large");
}

#[test]
fn closed_restaurant_and_far_address_are_422() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2008);
    let pick = restaurant(cell, 2);
    let body = simple_order(cell, 2, PM_VISA);
    // 25 km north of the centre: outside every demo restaurant's delivery radius.
    let mut far = body.clone();
    far["delivery_address"]["lat"] = json!(CENTRE.0 + 0.225);
    quote(cell, &t, &far).expect_error(422, "address.out_of_range");
    place(cell, &t, &far, &idem_key("far")).expect_error(422, "address.out_of_range");

    let rest = cell.token("restaurant", &pick.id);
    let set_open = |open: bool| {
        cell.patch(&format!("/api/v1/restaurants/{}", pick.id))
            .token(&rest)
            .json(&json!({ "open": open }))
            .send()
            .expect_status(204)
    };
    set_open(false);
    assert_eq!(
        menu(cell, &t, &pick.id)["restaurant"]["manually_closed"],
        true
    );
    quote(cell, &t, &body).expect_error(422, "restaurant.closed");
    place(cell, &t, &body, &idem_key("closed")).expect_error(422, "restaurant.closed");
    assert!(my_orders(cell, &t).is_empty());
    set_open(true);
    quote(cell, &t, &body).expect_status(200);
}

#[test]
fn declined_card_is_402_and_a_provider_timeout_queues_the_order_202() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2009);
    place(
        cell,
        &t,
        &simple_order(cell, 3, PM_DECLINED),
        &idem_key("402"),
    )
    .expect_error(402, "payment.card_declined");
    // A provider that does not answer no longer fails placement (it was 503 before the
    // authorization queue): the order is written as payment_pending and answered 202.
    let other = other_cell();
    let t = other.token("customer", 2009);
    let r = place(
        other,
        &t,
        &simple_order(other, 0, PM_TIMEOUT),
        &idem_key("202"),
    )
    .expect_status(202);
    assert_eq!(r.json["status"], "payment_pending", "{}", r.text);
    assert_eq!(r.json["message"], "Order is being processed");
    let mine = my_orders(other, &t);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["status"], "payment_pending");
}

/// Fails when the OpenAPI document lists an error status that no test above produces.
#[test]
fn pings_over_the_drivers_rate_limit_are_429() {
    let cell = other_cell();
    let t = cell.token("driver", 6001);
    let ping = || {
        cell.post("/api/v1/drivers/location")
            .token(&t)
            .json(&json!({"lat": CENTRE.0, "lng": CENTRE.1}))
            .send()
    };
    ping().expect_status(200);
    // The same second: over 1/s with no burst.
    let r = ping().expect_error(429, "location.rate_limited");
    assert!(r.error_message().contains("rate limit"), "{}", r.text);
    // Another driver has its own allowance.
    cell.post("/api/v1/drivers/location")
        .token(&cell.token("driver", 6002))
        .json(&json!({"lat": CENTRE.0, "lng": CENTRE.1}))
        .send()
        .expect_status(200);
}

#[test]
fn a_plain_get_on_a_websocket_is_426() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2010);
    cell.get("/ws/orders/4242/track")
        .token(&t)
        .send()
        .expect_error(426, "request.upgrade_required");
}

#[test]
fn every_documented_error_status_is_covered() {
    let doc = Cell::shared()
        .get("/api/v1/openapi.json")
        .send()
        .expect_status(200)
        .json;
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            for status in op["responses"].as_object().expect("responses").keys() {
                let s: u16 = status
                    .parse()
                    .unwrap_or_else(|_| panic!("{method} {path}: {status}"));
                if s >= 400 {
                    documented.insert(s);
                }
            }
        }
    }
    let covered: BTreeSet<u16> = COVERED.into_iter().collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "documented but never tested: {missing:?}"
    );
}
