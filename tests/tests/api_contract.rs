//! The API accepts what its OpenAPI document allows and refuses the rest, at a cell and
//! through the router: one regression check per mismatch Schemathesis found
//! (`tests/contract/schemathesis.sh` runs the whole contract).

use itest::fixtures::*;
use itest::router::{NO_LIMITS, Router};
use itest::{Cell, CellOpts};
use serde_json::json;

#[test]
fn a_cell_parses_exactly_what_its_document_says() {
    let cell = Cell::shared();
    let t = cell.token("customer", 2101);
    let search = |q: &str| {
        cell.get(&format!("/api/v1/restaurants?lat=52.52&lng=13.405&{q}"))
            .token(&t)
            .send()
    };
    // The radius grammar is the document's pattern: the float parser took these before.
    for ok in ["radius=5km", "radius=0.5km", "radius=800", "radius=20000m"] {
        search(ok).expect_status(200);
    }
    for bad in [
        "radius=%205km",
        "radius=1e3",
        "radius=%2B5km",
        "radius=05km",
        "radius=2.5",
    ] {
        search(bad).expect_error(400, "search.invalid_query");
    }
    // `maxLength` counts characters: 64 two-byte ones are allowed.
    search(&format!("cuisine={}", "%C3%A9".repeat(64))).expect_status(200);

    // An order list cursor is digits_digits: no sign; a time past i64 is just "newest".
    let list = |c: &str| {
        cell.get(&format!("/api/v1/orders?cursor={c}"))
            .token(&t)
            .send()
    };
    list("%2B5_1").expect_error(400, "request.invalid_cursor");
    list("-5_1").expect_error(400, "request.invalid_cursor");
    list("9999999999999999999_1").expect_status(200);

    // Ids are 1 to 19 digits; 20 fit a u64 but break the pattern.
    cell.get("/api/v1/orders/10000000000000000000")
        .token(&t)
        .send()
        .expect_error(400, "request.invalid_id");

    // JSON Schema's `integer` includes 2.0.
    let pick = restaurant(cell, 0);
    let lines = valid_lines(&pick.menu, false);
    let mut body = order_body(&pick.id, &[(&lines[0], 1)], CENTRE, PM_VISA);
    body["items"][0]["quantity"] = json!(2.0);
    let r = cell
        .post("/api/v1/orders/quote")
        .token(&t)
        .json(&body)
        .send()
        .expect_status(200);
    assert_eq!(r.json["items"][0]["quantity"], 2);
    body["items"][0]["quantity"] = json!(2.5);
    cell.post("/api/v1/orders/quote")
        .token(&t)
        .json(&body)
        .send()
        .expect_error(400, "request.invalid_json");

    // A driver's `delivery_id` is checked wherever it is given, even where optional.
    let d = cell.token("driver", 2102);
    cell.post("/api/v1/drivers/status")
        .token(&d)
        .json(&json!({ "status": "online", "delivery_id": "x" }))
        .send()
        .expect_error(400, "request.invalid_id");
    // A well-formed ping the clock refuses is 422, not a malformed request.
    cell.post("/api/v1/drivers/location")
        .token(&d)
        .json(&json!({ "lat": 52.52, "lng": 13.405, "timestamp": 1000 }))
        .send()
        .expect_error(422, "location.rejected");

    // A region path segment that is no H3 cell names nothing: 404.
    let admin = cell.token("admin", 0);
    cell.get("/api/v1/admin/regions/nonsense/export")
        .token(&admin)
        .send()
        .expect_error(404, "not_found");
}

#[test]
fn the_router_answers_auth_methods_and_unknown_ids_before_routing() {
    let cell = Cell::start(CellOpts::default());
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(cell.addr(), None).expect_status(201);
    let cust = router.token("customer", 2103, Some(1));

    // No token: 401 before routing, even where no cell would take the request.
    router
        .post("/api/v1/orders/quote")
        .json(&json!({ "restaurant_id": "1", "items": [] }))
        .send()
        .expect_error(401, "auth.unauthorized");
    // A bad token on a driver's ping: 401, not a ping routed by its position.
    router
        .post("/api/v1/drivers/location")
        .token("not-a-token")
        .json(&json!({ "lat": 0.0, "lng": 0.0 }))
        .send()
        .expect_error(401, "auth.unauthorized");
    // A method the API does not serve on a path: 405 naming the ones it does.
    let r = router
        .client()
        .req(reqwest::Method::DELETE, "/api/v1/orders/quote")
        .token(&cust)
        .send()
        .expect_error(405, "request.method_not_allowed");
    assert_eq!(r.headers["allow"], "POST");
    // Digits whose region bits are no H3 cell: a restaurant that does not exist.
    let forged = (127u64 << 15) << 41; // region bits with base cell 127: no H3 cell
    router
        .get(&format!("/api/v1/restaurants/{forged}/menu"))
        .token(&cust)
        .send()
        .expect_error(404, "not_found");
    // A home-routed call with a token that has no home cell: the token falls short (403).
    router
        .get("/api/v1/drivers/me/delivery")
        .token(&router.admin())
        .send()
        .expect_error(403, "route.no_home");
    // Placing needs an Idempotency-Key, whether or not a cell holds the restaurant.
    router
        .post("/api/v1/orders")
        .token(&cust)
        .json(&json!({ "restaurant_id": "1", "items": [] }))
        .send()
        .expect_error(400, "request.invalid");
}
