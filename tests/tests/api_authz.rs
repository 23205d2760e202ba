//! The authorization matrix: for every endpoint of the OpenAPI document, 401 without a
//! token, 403 for each wrong party, and success for the right one. The table's
//! (method, path) set must equal the document's, so a new endpoint without a row fails.

use itest::fixtures::*;
use itest::{Cell, Resp};
use serde_json::{Value, json};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    Nobody,
    CustomerA,
    CustomerB,
    RestaurantA,
    RestaurantB,
    Driver,
    Admin,
    /// Support staff: fraud flags only.
    Support,
}
use Party::*;

#[path = "api_authz/admin.rs"]
mod admin;

/// Restaurant A (with customer A's orders) and restaurant B, tokens for every party.
struct Ctx {
    cell: &'static Cell,
    rest_a: String,
    item_a: String,
    tokens: Vec<(Party, String)>,
}

impl Ctx {
    fn new() -> Ctx {
        let cell = Cell::shared();
        let (rest_a, rest_b) = (
            restaurant(cell, 0).id.clone(),
            restaurant(cell, 1).id.clone(),
        );
        let item_a = valid_lines(&restaurant(cell, 0).menu, false)[0]
            .item_id
            .clone();
        let tokens = vec![
            (CustomerA, cell.token("customer", 3001)),
            (CustomerB, cell.token("customer", 3002)),
            (RestaurantA, cell.token("restaurant", &rest_a)),
            (RestaurantB, cell.token("restaurant", &rest_b)),
            (Driver, cell.token("driver", 4001)),
            (Admin, cell.token("admin", 0)),
            (Support, cell.token("support", 0)),
        ];
        Ctx {
            cell,
            rest_a,
            item_a,
            tokens,
        }
    }

    fn token(&self, p: Party) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, t)| t.as_str())
    }

    fn send(&self, p: Party, method: &str, path: &str, body: Option<&Value>) -> Resp {
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut req = self.cell.client().req(method, path);
        if let Some(t) = self.token(p) {
            req = req.token(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        if path == "/api/v1/orders" {
            req = req.header("Idempotency-Key", &idem_key("authz"));
        }
        req.send()
    }

    /// Sends the request as each party in turn and checks the status (and, for 401/403,
    /// the error code).
    #[track_caller]
    fn check(&self, method: &str, path: &str, body: Option<&Value>, cases: &[(Party, u16)]) {
        for &(p, want) in cases {
            let r = self.send(p, method, path, body);
            assert_eq!(r.status, want, "{method} {path} as {p:?}: {}", r.text);
            match want {
                401 => assert_eq!(r.error_code(), "auth.unauthorized", "{p:?}: {}", r.text),
                403 => assert_eq!(r.error_code(), "auth.forbidden", "{p:?}: {}", r.text),
                _ => {}
            }
        }
    }

    /// A new pending order of customer A at restaurant A.
    fn order(&self) -> String {
        let body = simple_order(self.cell, 0, PM_VISA);
        place_new(self.cell, self.token(CustomerA).expect("token"), &body)
    }
}

const NOT_CUSTOMERS: [Party; 5] = [Nobody, RestaurantA, Driver, Admin, Support];

/// The cases of an endpoint only `party` may call: 401 without a token, 403 for each of the
/// other parties with a token (customer A, restaurant A, the driver, the admin, support),
/// `ok` for it.
fn only(party: Party, ok: u16) -> Vec<(Party, u16)> {
    let others = [CustomerA, RestaurantA, Driver, Admin, Support]
        .into_iter()
        .filter(|&p| p != party)
        .map(|p| (p, 403));
    std::iter::once((Nobody, 401))
        .chain(others)
        .chain([(party, ok)])
        .collect()
}

/// (method, path as in the OpenAPI document, the checks).
type Row = (&'static str, &'static str, fn(&Ctx));

/// One row per endpoint of the OpenAPI document.
fn table() -> Vec<Row> {
    let mut rows = public_rows();
    rows.extend(admin::rows());
    rows
}

/// The rows of the endpoints customers, restaurants and drivers use.
fn public_rows() -> Vec<Row> {
    vec![
        ("get", "/api/v1/restaurants", |c| {
            let path = format!(
                "/api/v1/restaurants?lat={}&lng={}&radius=3km",
                CENTRE.0, CENTRE.1
            );
            c.check(
                "get",
                &path,
                None,
                &[
                    (Nobody, 401),
                    (CustomerA, 200),
                    (RestaurantA, 200),
                    (Driver, 200),
                    (Admin, 200),
                ],
            );
        }),
        ("get", "/api/v1/restaurants/{id}/menu", |c| {
            let path = format!("/api/v1/restaurants/{}/menu", c.rest_a);
            c.check(
                "get",
                &path,
                None,
                &[
                    (Nobody, 401),
                    (CustomerA, 200),
                    (RestaurantB, 200),
                    (Driver, 200),
                    (Admin, 200),
                ],
            );
        }),
        ("patch", "/api/v1/restaurants/{id}", |c| {
            let path = format!("/api/v1/restaurants/{}", c.rest_a);
            let body = json!({ "open": true });
            c.check(
                "patch",
                &path,
                Some(&body),
                &[
                    (Nobody, 401),
                    (CustomerA, 403),
                    (RestaurantB, 403),
                    (Driver, 403),
                    (Support, 403),
                    (RestaurantA, 204),
                    (Admin, 204),
                ],
            );
        }),
        (
            "patch",
            "/api/v1/restaurants/{id}/menu/items/{item_id}",
            |c| {
                let path = format!("/api/v1/restaurants/{}/menu/items/{}", c.rest_a, c.item_a);
                let body = json!({ "available": true });
                c.check(
                    "patch",
                    &path,
                    Some(&body),
                    &[
                        (Nobody, 401),
                        (CustomerA, 403),
                        (RestaurantB, 403),
                        (Driver, 403),
                        (Support, 403),
                        (RestaurantA, 204),
                        (Admin, 204),
                    ],
                );
            },
        ),
        ("get", "/api/v1/restaurants/{id}/orders", |c| {
            let id = c.order();
            let path = format!("/api/v1/restaurants/{}/orders", c.rest_a);
            c.check(
                "get",
                &path,
                None,
                &[
                    (Nobody, 401),
                    (CustomerA, 403),
                    (RestaurantB, 403),
                    (Driver, 403),
                    (Support, 403),
                    (RestaurantA, 200),
                    (Admin, 200),
                ],
            );
            let listed = c.send(RestaurantA, "get", &path, None).json;
            assert!(
                listed["orders"]
                    .as_array()
                    .expect("orders")
                    .iter()
                    .any(|o| o["order_id"] == id.as_str())
            );
        }),
        ("patch", "/api/v1/restaurants/orders/{order_id}", |c| {
            let id = c.order();
            let path = format!("/api/v1/restaurants/orders/{id}");
            let accept = json!({ "status": "accepted" });
            c.check(
                "patch",
                &path,
                Some(&accept),
                &[
                    (Nobody, 401),
                    (CustomerA, 403),
                    (CustomerB, 403),
                    (RestaurantB, 403),
                    (Driver, 403),
                    (Support, 403),
                    (RestaurantA, 200),
                ],
            );
            // The wrong restaurant is refused whatever the order's state (no 409 that
            // would tell it the status of another restaurant's order).
            c.check("patch", &path, Some(&accept), &[(RestaurantB, 403)]);
            c.check(
                "patch",
                &path,
                Some(&json!({ "status": "preparing" })),
                &[(RestaurantB, 403), (Admin, 200)],
            );
        }),
        ("post", "/api/v1/orders", |c| {
            let body = simple_order(c.cell, 0, PM_VISA);
            c.check("post", "/api/v1/orders", Some(&body), &only(CustomerA, 201));
        }),
        ("get", "/api/v1/orders", |c| {
            let id = c.order();
            let mut cases: Vec<(Party, u16)> = NOT_CUSTOMERS
                .iter()
                .map(|&p| (p, if p == Nobody { 401 } else { 403 }))
                .collect();
            cases.extend([(CustomerA, 200), (CustomerB, 200)]);
            c.check("get", "/api/v1/orders?customer=me", None, &cases);
            let of = |p| {
                ids_of(
                    &c.send(p, "get", "/api/v1/orders?customer=me&limit=100", None)
                        .json,
                )
            };
            assert!(of(CustomerA).contains(&id), "A sees their order");
            assert!(!of(CustomerB).contains(&id), "B must not see A's order");
        }),
        ("post", "/api/v1/orders/quote", |c| {
            let body = simple_order(c.cell, 0, PM_VISA);
            c.check(
                "post",
                "/api/v1/orders/quote",
                Some(&body),
                &only(CustomerA, 200),
            );
        }),
        ("get", "/api/v1/orders/{id}", |c| {
            let path = format!("/api/v1/orders/{}", c.order());
            c.check(
                "get",
                &path,
                None,
                &[
                    (Nobody, 401),
                    (CustomerB, 403),
                    (RestaurantB, 403),
                    (Driver, 403),
                    (CustomerA, 200),
                    (RestaurantA, 200),
                    (Admin, 200),
                ],
            );
        }),
        ("post", "/api/v1/orders/{id}/cancel", |c| {
            let body = json!({});
            let path = format!("/api/v1/orders/{}/cancel", c.order());
            c.check(
                "post",
                &path,
                Some(&body),
                &[
                    (Nobody, 401),
                    (CustomerB, 403),
                    (RestaurantB, 403),
                    (Driver, 403),
                    (CustomerA, 200),
                ],
            );
            // Still 403 (not a 409 revealing the status) once the order is cancelled.
            c.check(
                "post",
                &path,
                Some(&body),
                &[(CustomerB, 403), (RestaurantB, 403)],
            );
            for p in [RestaurantA, Admin] {
                let path = format!("/api/v1/orders/{}/cancel", c.order());
                c.check("post", &path, Some(&body), &[(p, 200)]);
            }
        }),
        ("post", "/api/v1/drivers/status", |c| {
            let body = json!({ "status": "offline" });
            c.check(
                "post",
                "/api/v1/drivers/status",
                Some(&body),
                &only(Driver, 200),
            );
        }),
        ("post", "/api/v1/drivers/location", |c| {
            let body = json!({ "lat": 52.5, "lng": 13.4 });
            c.check(
                "post",
                "/api/v1/drivers/location",
                Some(&body),
                &only(Driver, 200),
            );
        }),
        ("get", "/api/v1/customers/me/export", |c| {
            c.check(
                "get",
                "/api/v1/customers/me/export",
                None,
                &only(CustomerA, 200),
            );
        }),
        ("delete", "/api/v1/customers/me", |c| {
            // Everyone but a customer is refused; a customer of its own (erasing customer A
            // would break the rows that place its orders) erases itself.
            let not_customers: Vec<(Party, u16)> = NOT_CUSTOMERS
                .into_iter()
                .map(|p| (p, if p == Nobody { 401 } else { 403 }))
                .collect();
            c.check("delete", "/api/v1/customers/me", None, &not_customers);
            c.cell
                .client()
                .req(reqwest::Method::DELETE, "/api/v1/customers/me")
                .token(&c.cell.token("customer", 3099))
                .send()
                .expect_status(204);
        }),
        ("get", "/api/v1/drivers/me/delivery", |c| {
            // The right party with nothing offered: 404, not 401/403.
            c.check(
                "get",
                "/api/v1/drivers/me/delivery",
                None,
                &only(Driver, 404),
            );
        }),
        (
            "post",
            "/api/v1/drivers/deliveries/{delivery_id}/accept",
            |c| {
                c.check(
                    "post",
                    "/api/v1/drivers/deliveries/4242/accept",
                    None,
                    &only(Driver, 404),
                );
            },
        ),
        (
            "post",
            "/api/v1/drivers/deliveries/{delivery_id}/decline",
            |c| {
                c.check(
                    "post",
                    "/api/v1/drivers/deliveries/4242/decline",
                    None,
                    &only(Driver, 404),
                );
            },
        ),
        ("get", "/api/v1/drivers/me/earnings", |c| {
            c.check(
                "get",
                "/api/v1/drivers/me/earnings",
                None,
                &only(Driver, 200),
            );
        }),
        // Staff endpoints: `admin.rs`.
        // The WebSockets, over plain HTTP: the token is read first (401), then a request that
        // is no upgrade is a 426 for everyone; who may open them is checked on real upgrades
        // (tests/realtime.rs).
        ("get", "/ws/orders/{id}/track", |c| {
            c.check(
                "get",
                "/ws/orders/4242/track",
                None,
                &[
                    (Nobody, 401),
                    (CustomerA, 426),
                    (RestaurantA, 426),
                    (Driver, 426),
                    (Admin, 426),
                ],
            );
        }),
        ("get", "/ws/restaurants/{id}/orders", |c| {
            let path = format!("/ws/restaurants/{}/orders", c.rest_a);
            c.check(
                "get",
                &path,
                None,
                &[
                    (Nobody, 401),
                    (CustomerA, 426),
                    (RestaurantA, 426),
                    (Driver, 426),
                    (Admin, 426),
                ],
            );
        }),
    ]
}

fn ids_of(list: &Value) -> Vec<String> {
    list["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["order_id"].as_str().expect("order_id").to_owned())
        .collect()
}

#[test]
fn the_table_covers_every_endpoint_of_the_openapi_document() {
    let doc = Cell::shared()
        .get("/api/v1/openapi.json")
        .send()
        .expect_status(200)
        .json;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .expect("operations")
                .keys()
                .filter(|m| !matches!(m.as_str(), "parameters" | "summary" | "description"))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let covered: BTreeSet<(String, String)> = table()
        .into_iter()
        .map(|(m, p, _)| (m.to_owned(), p.to_owned()))
        .collect();
    let untested: Vec<_> = documented.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        untested.is_empty() && stale.is_empty(),
        "endpoints without a row: {untested:?}; rows without an endpoint: {stale:?}"
    );
}

#[test]
fn every_endpoint_checks_who_is_calling() {
    let ctx = Ctx::new();
    let mut failures = Vec::new();
    for (method, path, row) in table() {
        // Run every row, then report all failures at once.
        if let Err(e) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| row(&ctx))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{} {path}: {msg}", method.to_uppercase()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The operational endpoints outside the API document need no token.
#[test]
fn operational_endpoints_are_public() {
    let cell = Cell::shared();
    for path in ["/live", "/ready", "/metrics", "/api/v1/openapi.json"] {
        cell.get(path).send().expect_status(200);
    }
}
