//! The customer/restaurant flow over HTTP against a real cell (issue 4, "Done when"):
//! search → menu → quote → idempotent order → accept (captured) → preparing → ready, plus
//! declined cards, rejection, cancellation with refund, illegal moves, and durability
//! across SIGKILL. Tests share one cell; each uses its own restaurant slot and customer.

use itest::fixtures::*;
use itest::{Cell, CellOpts};
use serde_json::{Value, json};

/// The steps of the status history: its statuses with repeats folded (the system may add
/// entries that keep the status, e.g. `order_delayed` when no driver is online).
fn statuses(order: &Value) -> Vec<&str> {
    let mut steps: Vec<&str> = order["status_history"]
        .as_array()
        .expect("status_history")
        .iter()
        .map(|h| h["status"].as_str().expect("status"))
        .collect();
    steps.dedup();
    steps
}

fn ids(orders: &[Value]) -> Vec<&str> {
    orders
        .iter()
        .map(|o| o["order_id"].as_str().expect("order_id"))
        .collect()
}

#[test]
fn search_menu_quote_order_accept_prepare_ready() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 1001);

    // Search: open restaurants within 3 km, nearest first, with the seed's fields.
    let r = cell
        .get(&format!(
            "/api/v1/restaurants?lat={}&lng={}&radius=3km",
            CENTRE.0, CENTRE.1
        ))
        .token(&cust)
        .send()
        .expect_status(200);
    let found = r.json["restaurants"].as_array().expect("restaurants");
    assert!(
        !found.is_empty() && found.len() <= 20,
        "{} results",
        found.len()
    );
    let dist: Vec<u64> = found
        .iter()
        .map(|s| s["distance_m"].as_u64().expect("distance_m"))
        .collect();
    assert!(
        dist.windows(2).all(|w| w[0] <= w[1]),
        "not sorted by distance: {dist:?}"
    );
    assert!(dist.iter().all(|&d| d <= 3_000), "outside 3 km: {dist:?}");
    for s in found {
        for key in [
            "id",
            "name",
            "cuisine_type",
            "estimated_time",
            "thumbnail_url",
        ] {
            assert!(
                s[key].as_str().is_some_and(|v| !v.is_empty()),
                "{key} in {s}"
            );
        }
        assert!(s["rating"].is_number(), "rating in {s}");
        let d = s["distance_m"].as_u64().expect("distance");
        assert_eq!(
            s["delivery_fee"].as_i64(),
            Some(expected_delivery_fee(d)),
            "fee for {d} m"
        );
    }
    let total = r.json["total"].as_u64().expect("total");
    assert_eq!(
        r.json["next_page"].as_u64(),
        (total > 20).then_some(2),
        "next_page of {total}"
    );

    // Menu of an open result (slot 0 of the pool comes from the same search).
    let pick = restaurant(cell, 0);
    let menu = menu(cell, &cust, &pick.id);
    assert_eq!(menu["restaurant"]["id"], pick.id.as_str());
    for key in ["name", "address"] {
        assert!(
            menu["restaurant"][key]
                .as_str()
                .is_some_and(|v| !v.is_empty()),
            "{key}"
        );
    }
    assert!(
        menu["restaurant"]["hours"].is_object(),
        "hours: {}",
        menu["restaurant"]
    );
    let lines = valid_lines(&menu, true);
    let mut cart: Vec<(&Line, u32)> = vec![(&lines[0], 2)];
    if let Some(second) = lines.get(1) {
        cart.push((second, 1));
    }
    let body = order_body(&pick.id, &cart, CENTRE, PM_VISA);

    // Quote: prices from the menu, integer cents, totals add up.
    let q = cell
        .post("/api/v1/orders/quote")
        .token(&cust)
        .json(&body)
        .send()
        .expect_status(200)
        .json;
    let qitems = q["items"].as_array().expect("quote items");
    assert_eq!(qitems.len(), cart.len());
    let mut sum = 0;
    for (qi, (line, qty)) in qitems.iter().zip(&cart) {
        assert_eq!(qi["item_id"], line.item_id.as_str());
        assert_eq!(qi["quantity"].as_u64(), Some(u64::from(*qty)));
        assert_eq!(qi["unit_price"].as_i64(), Some(line.price), "{qi}");
        assert_eq!(qi["customizations"], json!(line.customizations));
        let lt = qi["line_total"].as_i64().expect("integer line_total");
        assert_eq!(
            lt,
            line.unit_with_options * i64::from(*qty),
            "line total of {qi}"
        );
        sum += lt;
    }
    let int = |k: &str| {
        q[k].as_i64()
            .unwrap_or_else(|| panic!("{k} is not an integer: {q}"))
    };
    let (subtotal, fee, tax) = (int("subtotal"), int("delivery_fee"), int("tax"));
    assert_eq!(subtotal, sum, "subtotal = Σ line totals");
    assert_eq!(
        fee,
        expected_delivery_fee(q["distance_m"].as_u64().expect("distance_m"))
    );
    assert_eq!(tax, expected_tax(subtotal));
    assert_eq!(int("total"), subtotal + fee + tax);
    assert!(
        q["eta_min_minutes"].as_u64() < q["eta_max_minutes"].as_u64(),
        "{q}"
    );

    // Place with an Idempotency-Key: 201, the quoted totals.
    let key = idem_key("flow");
    let placed = place(cell, &cust, &body, &key).expect_status(201).json;
    let id = placed["order_id"].as_str().expect("order_id").to_owned();
    assert_eq!(placed["status"], "pending");
    for k in ["subtotal", "delivery_fee", "tax", "total"] {
        assert_eq!(placed[k], q[k], "{k}: placed vs quoted");
    }

    // The same request again: 200, the same order, nothing new.
    let again = place(cell, &cust, &body, &key).expect_status(200).json;
    assert_eq!(again["order_id"], id.as_str());
    assert_eq!(ids(&my_orders(cell, &cust)), [id.as_str()]);

    // The same key with another body: 422, still one order.
    let mut other = body.clone();
    other["items"][0]["quantity"] = json!(3);
    place(cell, &cust, &other, &key).expect_error(422, "idempotency.mismatch");
    assert_eq!(ids(&my_orders(cell, &cust)), [id.as_str()]);

    let o = settled_order(cell, &cust, &id);
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("pending"), Some("authorized"))
    );
    assert_eq!(o["restaurant"]["id"], pick.id.as_str());
    assert_eq!(o["items"], q["items"], "order items = quoted items");
    assert_eq!(statuses(&o), ["pending"]);

    // The restaurant's tablet lists it; the restaurant accepts: payment captured.
    let rest = cell.token("restaurant", &pick.id);
    let active = cell
        .get(&format!(
            "/api/v1/restaurants/{}/orders?status=active",
            pick.id
        ))
        .token(&rest)
        .send()
        .expect_status(200)
        .json;
    assert!(ids(active["orders"].as_array().expect("orders")).contains(&id.as_str()));
    let acc = set_status(cell, &rest, &id, "accepted")
        .expect_status(200)
        .json;
    assert_eq!(
        (acc["order_id"].as_str(), acc["status"].as_str()),
        (Some(id.as_str()), Some("confirmed"))
    );
    let o = settled_order(cell, &cust, &id);
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("confirmed"), Some("captured"))
    );

    assert_eq!(
        set_status(cell, &rest, &id, "preparing")
            .expect_status(200)
            .json["status"],
        "preparing"
    );
    assert_eq!(
        set_status(cell, &rest, &id, "ready_for_pickup")
            .expect_status(200)
            .json["status"],
        "ready_for_pickup"
    );
    let o = settled_order(cell, &cust, &id);
    assert_eq!(o["status"], "ready_for_pickup");
    assert_eq!(o["payment_status"], "captured");
    assert_eq!(
        statuses(&o),
        ["pending", "confirmed", "preparing", "ready_for_pickup"]
    );
    let hist = o["status_history"].as_array().expect("history");
    let by: Vec<(&str, &str)> = hist
        .iter()
        .filter(|h| h["by"] != "system")
        .map(|h| {
            (
                h["event"].as_str().expect("event"),
                h["by"].as_str().expect("by"),
            )
        })
        .collect();
    assert_eq!(
        by,
        [
            ("order_created", "customer"),
            ("order_confirmed", "restaurant"),
            ("order_preparing", "restaurant"),
            ("order_ready", "restaurant")
        ]
    );
    let at: Vec<i64> = hist.iter().map(|h| h["at"].as_i64().expect("at")).collect();
    assert!(
        at.windows(2).all(|w| w[0] <= w[1]),
        "history times go forward: {at:?}"
    );
}

#[test]
fn declined_card_gives_402_and_no_order() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 1002);
    let body = simple_order(cell, 1, PM_DECLINED);
    let key = idem_key("declined");
    let r = place(cell, &cust, &body, &key).expect_error(402, "payment.card_declined");
    assert!(!r.error_message().is_empty());
    assert!(
        my_orders(cell, &cust).is_empty(),
        "a declined card wrote an order"
    );
    // Retrying the declined request declines again and still writes nothing.
    place(cell, &cust, &body, &key).expect_error(402, "payment.card_declined");
    let poor = simple_order(cell, 1, PM_INSUFFICIENT_FUNDS);
    place(cell, &cust, &poor, &idem_key("poor")).expect_error(402, "payment.insufficient_funds");
    assert!(my_orders(cell, &cust).is_empty());
    // A good card then works, and the list has exactly that order.
    let id = place_new(cell, &cust, &simple_order(cell, 1, PM_VISA));
    assert_eq!(ids(&my_orders(cell, &cust)), [id.as_str()]);
}

#[test]
fn rejected_order_is_cancelled_and_hold_released() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 1003);
    let pick = restaurant(cell, 2);
    let rest = cell.token("restaurant", &pick.id);
    let id = place_new(cell, &cust, &simple_order(cell, 2, PM_VISA));
    let r = cell
        .patch(&format!("/api/v1/restaurants/orders/{id}"))
        .token(&rest)
        .json(&json!({ "status": "rejected", "reason": "out of dough" }))
        .send()
        .expect_status(200);
    assert_eq!(r.json["status"], "cancelled");
    let o = settled_order(cell, &cust, &id);
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("cancelled"), Some("voided"))
    );
    assert_eq!(o["cancel_reason"], "out of dough");
    assert_eq!(statuses(&o), ["pending", "cancelled"]);
    let active = cell
        .get(&format!("/api/v1/restaurants/{}/orders", pick.id))
        .token(&rest)
        .send()
        .expect_status(200)
        .json;
    assert!(!ids(active["orders"].as_array().expect("orders")).contains(&id.as_str()));

    // A customer's cancellation before acceptance also only releases the hold.
    let id2 = place_new(cell, &cust, &simple_order(cell, 2, PM_VISA));
    cell.post(&format!("/api/v1/orders/{id2}/cancel"))
        .token(&cust)
        .json(&json!({}))
        .send()
        .expect_status(200);
    let o2 = settled_order(cell, &cust, &id2);
    assert_eq!(
        (o2["status"].as_str(), o2["payment_status"].as_str()),
        (Some("cancelled"), Some("voided"))
    );
}

#[test]
fn customer_cancel_after_acceptance_refunds() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 1004);
    let rest = cell.token("restaurant", &restaurant(cell, 3).id);
    let id = place_new(cell, &cust, &simple_order(cell, 3, PM_VISA));
    set_status(cell, &rest, &id, "accepted").expect_status(200);
    set_status(cell, &rest, &id, "preparing").expect_status(200);
    let r = cell
        .post(&format!("/api/v1/orders/{id}/cancel"))
        .token(&cust)
        .json(&json!({ "reason": "changed my mind" }))
        .send()
        .expect_status(200);
    assert_eq!(r.json["status"], "cancelled");
    let o = settled_order(cell, &cust, &id);
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("cancelled"), Some("refunded"))
    );
    assert_eq!(o["cancel_reason"], "changed my mind");
    assert_eq!(
        statuses(&o),
        ["pending", "confirmed", "preparing", "cancelled"]
    );
    // A second cancellation is an illegal move.
    let again = cell
        .post(&format!("/api/v1/orders/{id}/cancel"))
        .token(&cust)
        .json(&json!({}))
        .send()
        .expect_error(409, "order.invalid_transition");
    assert_eq!(again.json["error"]["status"], "cancelled");
}

#[test]
fn illegal_moves_are_409_with_the_current_status() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 1005);
    let rest = cell.token("restaurant", &restaurant(cell, 4).id);
    let id = place_new(cell, &cust, &simple_order(cell, 4, PM_VISA));
    for status in ["ready_for_pickup", "preparing"] {
        let r = set_status(cell, &rest, &id, status).expect_error(409, "order.invalid_transition");
        assert_eq!(
            r.json["error"]["status"], "pending",
            "{status} on a pending order"
        );
    }
    set_status(cell, &rest, &id, "accepted").expect_status(200);
    for status in ["accepted", "rejected"] {
        let r = set_status(cell, &rest, &id, status).expect_error(409, "order.invalid_transition");
        assert_eq!(
            r.json["error"]["status"], "confirmed",
            "{status} on a confirmed order"
        );
    }
    set_status(cell, &rest, &id, "delivered").expect_error(400, "order.invalid_status");
    // The refused moves changed nothing.
    let o = settled_order(cell, &cust, &id);
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("confirmed"), Some("captured"))
    );
    assert_eq!(statuses(&o), ["pending", "confirmed"]);
}

/// A retry of a placed order must return that order even if the menu or the restaurant
/// changed since: the client cannot tell a lost response from a failed order otherwise.
#[test]
fn idempotent_retry_returns_the_order_after_the_restaurant_closed() {
    let cell = Cell::shared();
    let cust = cell.token("customer", 1006);
    let pick = restaurant(cell, 5);
    let rest = cell.token("restaurant", &pick.id);
    let body = simple_order(cell, 5, PM_VISA);
    let key = idem_key("retry");
    let id = place(cell, &cust, &body, &key).expect_status(201).json["order_id"].clone();
    cell.patch(&format!("/api/v1/restaurants/{}", pick.id))
        .token(&rest)
        .json(&json!({ "open": false }))
        .send()
        .expect_status(204);
    let again = place(cell, &cust, &body, &key);
    assert_eq!(
        (again.status, &again.json["order_id"]),
        (200, &id),
        "the retry of a placed order got {} {}",
        again.status,
        again.text
    );
}

#[test]
fn order_survives_sigkill_and_restart() {
    let mut cell = Cell::start(CellOpts::default());
    let cust = cell.token("customer", 1007);
    let body = simple_order(&cell, 0, PM_VISA);
    let pick_id = restaurant(&cell, 0).id.clone();
    let key = idem_key("durable");
    let id = place(&cell, &cust, &body, &key).expect_status(201).json["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();
    let rest = cell.token("restaurant", &pick_id);
    set_status(&cell, &rest, &id, "accepted").expect_status(200);
    let before = settled_order(&cell, &cust, &id);

    cell.kill9();
    cell.restart();

    // Tokens are signed with the config's secret, so the old ones still verify.
    let after = settled_order(&cell, &cust, &id);
    for k in [
        "status",
        "payment_status",
        "items",
        "total",
        "status_history",
        "created_at",
    ] {
        assert_eq!(after[k], before[k], "{k} after restart");
    }
    assert_eq!(statuses(&after), ["pending", "confirmed"]);
    assert_eq!(ids(&my_orders(&cell, &cust)), [id.as_str()]);
    // The idempotency record survived too: the retry finds the order.
    let again = place(&cell, &cust, &body, &key).expect_status(200);
    assert_eq!(again.json["order_id"], id.as_str());
    // The order moves on from where it was; a new order gets a new id.
    set_status(&cell, &rest, &id, "preparing").expect_status(200);
    let id2 = place_new(&cell, &cust, &body);
    assert_ne!(id2, id);
    assert_eq!(ids(&my_orders(&cell, &cust)), [id2.as_str(), id.as_str()]);
}
