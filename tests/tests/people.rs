//! The people behind the ids, as the seed's screens show them: the customer's order view names
//! the driver and shows where they are while the order is active (and nowhere afterwards),
//! the restaurant's list shows who is coming and when, the driver's accept answer has the
//! restaurant's address, and after delivery the payout shows in the driver's earnings.

use itest::fixtures::{self, PM_VISA};
use itest::{Cell, CellOpts};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn ping(cell: &Cell, token: &str, at: (f64, f64)) {
    cell.post("/api/v1/drivers/location")
        .token(token)
        .json(&json!({ "lat": at.0, "lng": at.1, "speed": 4.0, "heading": 90.0 }))
        .send()
        .expect_status(200);
}

/// The geostore keeps positions to about a centimetre.
fn close_to(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-6)
}

fn order_view(cell: &Cell, token: &str, id: &str) -> Value {
    cell.get(&format!("/api/v1/orders/{id}"))
        .token(token)
        .send()
        .expect_status(200)
        .json
}

#[test]
fn customers_and_restaurants_see_the_driver_and_drivers_see_addresses_and_earnings() {
    let cell = Cell::start(CellOpts::default());
    let admin = cell.token("admin", 1);
    let driver_id = 4242u64;
    // An admin gives the driver a profile; customers see only the first name.
    cell.client()
        .req(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/profiles/driver/{driver_id}"),
        )
        .token(&admin)
        .json(&json!({ "display_name": "Jonas Weber", "phone": "+4930123456" }))
        .send()
        .expect_status(200);
    cell.client()
        .req(reqwest::Method::PUT, "/api/v1/admin/profiles/driver/1")
        .token(&admin)
        .json(&json!({ "display_name": "Jonas", "phone": "030 123" }))
        .send()
        .expect_error(400, "profile.invalid");
    let stored = cell
        .get(&format!("/api/v1/admin/profiles/driver/{driver_id}"))
        .token(&admin)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(stored["phone"], "+4930123456", "admins read the phone");

    let cust = cell.token("customer", 880);
    let pick = fixtures::restaurant(&cell, 0);
    let body = fixtures::simple_order(&cell, 0, PM_VISA);
    let order = fixtures::place_new(&cell, &cust, &body);
    let rest = cell.token("restaurant", &pick.id);
    for s in ["accepted", "preparing", "ready_for_pickup"] {
        cell.patch(&format!("/api/v1/restaurants/orders/{order}"))
            .token(&rest)
            .json(&json!({ "status": s }))
            .send()
            .expect_status(200);
    }
    let r = &pick.menu["restaurant"];
    let at_restaurant = (r["lat"].as_f64().unwrap(), r["lng"].as_f64().unwrap());
    let near = (at_restaurant.0 + 0.004, at_restaurant.1);

    let d = cell.token("driver", driver_id);
    cell.post("/api/v1/drivers/status")
        .token(&d)
        .json(&json!({ "status": "online" }))
        .send()
        .expect_status(200);
    let start = Instant::now();
    let delivery = loop {
        ping(&cell, &d, near);
        let cur = cell.get("/api/v1/drivers/me/delivery").token(&d).send();
        if cur.status == 200 && cur.json["order_id"] == order.as_str() {
            break cur.json["delivery_id"].as_str().unwrap().to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no offer: {}",
            cur.text
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let accepted = cell
        .post(&format!("/api/v1/drivers/deliveries/{delivery}/accept"))
        .token(&d)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(
        accepted["restaurant_address"], r["address"],
        "the accept answer names the restaurant's address: {accepted}"
    );
    let payout = accepted["payout_cents"].as_i64().expect("payout_cents");
    assert!(payout > 0);

    // The customer sees the driver by first name, where they are.
    let v = order_view(&cell, &cust, &order);
    assert_eq!(v["driver"]["name"], "Jonas", "{v}");
    assert!(close_to(&v["driver"]["lat"], near.0), "{v}");
    assert!(
        v["eta_minutes"].as_u64().is_some(),
        "a live ETA while a driver is on it: {v}"
    );
    // A ping moves them (22 m in 2 s: a plausible speed for the spoofing check).
    let closer = (near.0 - 0.0002, near.1);
    std::thread::sleep(Duration::from_secs(2));
    ping(&cell, &d, closer);
    let v = order_view(&cell, &cust, &order);
    assert!(close_to(&v["driver"]["lat"], closer.0), "{v}");
    // The restaurant sees who is coming and in how many minutes.
    let list = cell
        .get(&format!("/api/v1/restaurants/{}/orders", pick.id))
        .token(&rest)
        .send()
        .expect_status(200)
        .json;
    let mine = list["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["order_id"] == order.as_str())
        .expect("the order in the restaurant's list")
        .clone();
    assert_eq!(mine["driver"]["name"], "Jonas", "{mine}");
    assert!(
        mine["driver"]["pickup_eta_minutes"].as_u64().is_some(),
        "{mine}"
    );

    let mut told = None;
    for s in ["arrived_at_restaurant", "picked_up", "delivered"] {
        let ack = cell
            .post("/api/v1/drivers/status")
            .token(&d)
            .json(&json!({ "status": s, "delivery_id": delivery }))
            .send()
            .expect_status(200)
            .json;
        told = ack["payout_cents"].as_i64();
    }
    assert_eq!(told, Some(payout), "delivered tells the payout");
    // After delivery, the position is gone; the name stays in the record of who delivered.
    let v = order_view(&cell, &cust, &order);
    assert_eq!(v["status"], "delivered");
    assert!(
        v["driver"]["lat"].is_null(),
        "no position after delivery: {v}"
    );
    assert_eq!(v["driver"]["name"], "Jonas");

    // The payout shows in today's and this week's earnings (recorded from the event log).
    let start = Instant::now();
    let e = loop {
        let e = cell
            .get("/api/v1/drivers/me/earnings")
            .token(&d)
            .send()
            .expect_status(200)
            .json;
        if e["today"]["deliveries"] == 1 {
            break e;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "earnings never showed: {e}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(e["today"]["payout_cents"].as_i64(), Some(payout), "{e}");
    assert_eq!(e["week"]["payout_cents"].as_i64(), Some(payout), "{e}");
    // Only drivers have earnings.
    cell.get("/api/v1/drivers/me/earnings")
        .token(&cust)
        .send()
        .expect_error(403, "auth.forbidden");
}

#[test]
fn a_tokens_name_claim_becomes_the_profile() {
    let cell = Cell::start(CellOpts::default());
    let admin = cell.token("admin", 1);
    let named = |role: &str, sub: u64, name: &str| {
        cell.post("/api/v1/dev/token")
            .json(&json!({ "role": role, "sub": sub.to_string(), "name": name }))
            .send()
            .expect_status(200)
            .json["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    let profile = |kind: &str, id: u64| {
        cell.get(&format!("/api/v1/admin/profiles/{kind}/{id}"))
            .token(&admin)
            .send()
    };
    profile("customer", 991).expect_error(404, "not_found");

    // Any authenticated call carries the claims in.
    let cust = named("customer", 991, "Ada Lovelace");
    cell.get("/api/v1/orders?customer=me")
        .token(&cust)
        .send()
        .expect_status(200);
    assert_eq!(
        profile("customer", 991).expect_status(200).json["display_name"],
        "Ada Lovelace"
    );
    let driver = named("driver", 992, "Zed Quinn");
    cell.get("/api/v1/drivers/me/earnings")
        .token(&driver)
        .send()
        .expect_status(200);
    assert_eq!(
        profile("driver", 992).expect_status(200).json["display_name"],
        "Zed Quinn"
    );
    // A new name in a later token replaces it; a restaurant token names staff, not the
    // restaurant, so it writes nothing.
    let renamed = named("customer", 991, "Ada King");
    cell.get("/api/v1/orders?customer=me")
        .token(&renamed)
        .send()
        .expect_status(200);
    assert_eq!(
        profile("customer", 991).expect_status(200).json["display_name"],
        "Ada King"
    );
}
