//! Test data taken from a running demo cell: open restaurants near the centre, valid carts
//! built from their real menus, and short-hands for the order endpoints.
//!
//! Tests sharing one cell run in parallel, so each takes its own restaurant (`slot`) and its
//! own customer id: closing a restaurant or selling out an item in one test never changes
//! what another test sees.

use crate::client::Resp;
use crate::harness::Cell;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};

/// The demo city's centre (Berlin).
pub const CENTRE: (f64, f64) = (52.52, 13.405);
/// The cell's default tax rate (`pricing.tax_basis_points`).
pub const TAX_BASIS_POINTS: i64 = 875;
/// Sandbox payment method ids (cell/payments/src/sandbox.rs).
pub const PM_VISA: &str = "pm_card_visa";
pub const PM_DECLINED: &str = "pm_card_chargeDeclined";
pub const PM_INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";
pub const PM_TIMEOUT: &str = "pm_card_timeout";

/// An open restaurant and its menu as read when the pool was built.
#[derive(Debug, Clone)]
pub struct Pick {
    pub id: String,
    pub menu: Value,
    /// Open 00:00–24:00 every day: cannot close while a test runs.
    pub all_day: bool,
}

/// One cart line that passes validation, with the price the cell must compute for it.
#[derive(Debug, Clone)]
pub struct Line {
    pub item_id: String,
    pub name: String,
    /// The menu price, without options.
    pub price: i64,
    pub customizations: Vec<String>,
    /// price + Σ chosen option deltas.
    pub unit_with_options: i64,
}

/// Up to 100 restaurants open now within 3 km of the centre, those open around the clock
/// first (then by distance), each with its menu. Built once per cell.
pub fn pool(cell: &Cell) -> &[Pick] {
    cell.pool.get_or_init(|| {
        let token = cell.token("customer", 1);
        let mut picks = Vec::new();
        for page in 1..=2 {
            let r = cell
                .get(&format!(
                    "/api/v1/restaurants?lat={}&lng={}&radius=3km&page_size=50&page={page}",
                    CENTRE.0, CENTRE.1
                ))
                .token(&token)
                .send()
                .expect_status(200);
            for s in r.json["restaurants"].as_array().expect("restaurants array") {
                let id = s["id"].as_str().expect("id").to_owned();
                let menu = menu(cell, &token, &id);
                let all_day = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                    .iter()
                    .all(|d| {
                        menu["restaurant"]["hours"][d].as_array().is_some_and(|iv| {
                            iv.iter()
                                .any(|i| i["open"] == "00:00" && i["close"] == "24:00")
                        })
                    });
                picks.push(Pick { id, menu, all_day });
            }
            if r.json["next_page"].is_null() {
                break;
            }
        }
        // Stable: keeps distance order within each group.
        picks.sort_by_key(|p| !p.all_day);
        picks
    })
}

/// The restaurant in `slot` of the pool; each test of a file uses its own slots.
pub fn restaurant(cell: &Cell, slot: usize) -> &Pick {
    let pool = pool(cell);
    pool.get(slot).unwrap_or_else(|| {
        panic!(
            "only {} restaurants are open within 3 km now; slot {slot} wanted",
            pool.len()
        )
    })
}

pub fn menu(cell: &Cell, token: &str, restaurant_id: &str) -> Value {
    cell.get(&format!("/api/v1/restaurants/{restaurant_id}/menu"))
        .token(token)
        .send()
        .expect_status(200)
        .json
}

/// Every item of a menu, across categories.
pub fn items(menu: &Value) -> Vec<&Value> {
    menu["categories"]
        .as_array()
        .expect("categories")
        .iter()
        .flat_map(|c| c["items"].as_array().expect("items").iter())
        .collect()
}

/// A valid line for `item`: the first `min` options of each group (at least one when the
/// group is required), plus, with `extra`, one more priced option where a group allows it.
pub fn line_for(item: &Value, extra: bool) -> Line {
    let price = item["price"].as_i64().expect("price");
    let mut chosen = Vec::new();
    let mut unit = price;
    let mut extra_left = extra;
    for g in item["customizations"].as_array().expect("customizations") {
        let opts = g["options"].as_array().expect("options");
        let min = g["min"].as_u64().unwrap_or(0) as usize;
        let max = g["max"].as_u64().unwrap_or(opts.len() as u64) as usize;
        let required = g["required"].as_bool().unwrap_or(false);
        let take = min.max(usize::from(required)).min(opts.len());
        let mut picked: Vec<&Value> = opts[..take].iter().collect();
        if extra_left
            && take < max
            && let Some(o) = opts[take..]
                .iter()
                .find(|o| o["price_delta"].as_i64() > Some(0))
        {
            picked.push(o);
            extra_left = false;
        }
        for o in picked {
            chosen.push(o["name"].as_str().expect("option name").to_owned());
            unit += o["price_delta"].as_i64().expect("price_delta");
        }
    }
    Line {
        item_id: item["id"].as_str().expect("item id").to_owned(),
        name: item["name"].as_str().expect("item name").to_owned(),
        price,
        customizations: chosen,
        unit_with_options: unit,
    }
}

/// Valid lines for the available items of a menu; with `extra`, lines with a priced option
/// come first.
pub fn valid_lines(menu: &Value, extra: bool) -> Vec<Line> {
    let mut lines: Vec<Line> = items(menu)
        .into_iter()
        .filter(|i| i["available"] == true)
        .map(|i| line_for(i, extra))
        .collect();
    if extra {
        lines.sort_by_key(|l| l.unit_with_options == l.price);
    }
    assert!(!lines.is_empty(), "no available item on the menu");
    lines
}

/// The body of `POST /api/v1/orders` (and of the quote).
pub fn order_body(restaurant_id: &str, lines: &[(&Line, u32)], at: (f64, f64), pm: &str) -> Value {
    json!({
        "restaurant_id": restaurant_id,
        "items": lines.iter().map(|(l, q)| json!({
            "item_id": l.item_id,
            "quantity": q,
            "customizations": l.customizations,
        })).collect::<Vec<_>>(),
        "delivery_address": { "lat": at.0, "lng": at.1, "formatted": "Alexanderplatz 1, Berlin" },
        "payment_method_id": pm,
    })
}

/// A one-line order from `slot`'s restaurant to the centre, paid with `pm`.
pub fn simple_order(cell: &Cell, slot: usize, pm: &str) -> Value {
    let r = restaurant(cell, slot);
    let lines = valid_lines(&r.menu, false);
    order_body(&r.id, &[(&lines[0], 1)], CENTRE, pm)
}

/// A fresh idempotency key.
pub fn idem_key(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn place(cell: &Cell, token: &str, body: &Value, key: &str) -> Resp {
    cell.post("/api/v1/orders")
        .token(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
}

/// Places `body` and returns the new order's id (asserting 201).
pub fn place_new(cell: &Cell, token: &str, body: &Value) -> String {
    let r = place(cell, token, body, &idem_key("order")).expect_status(201);
    r.json["order_id"].as_str().expect("order_id").to_owned()
}

pub fn get_order(cell: &Cell, token: &str, id: &str) -> Value {
    cell.get(&format!("/api/v1/orders/{id}"))
        .token(token)
        .send()
        .expect_status(200)
        .json
}

/// The order once its payment effect, if any, is done: the payment worker performs captures,
/// voids and refunds after the transition answered, so `payment_status` passes through
/// `*_pending`. Polls (every 20 ms, at most 30 s) until it does not end in `_pending`.
pub fn settled_order(cell: &Cell, token: &str, id: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = get_order(cell, token, id);
        let pending = o["payment_status"]
            .as_str()
            .is_some_and(|s| s.ends_with("_pending"));
        if !pending {
            return o;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "order {id}: payment still {} after 30 s",
            o["payment_status"]
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The caller's orders (`GET /api/v1/orders?customer=me`), newest first.
pub fn my_orders(cell: &Cell, token: &str) -> Vec<Value> {
    cell.get("/api/v1/orders?customer=me&limit=100")
        .token(token)
        .send()
        .expect_status(200)
        .json["orders"]
        .as_array()
        .expect("orders")
        .clone()
}

/// `PATCH /api/v1/restaurants/orders/{id}` with `{"status": status}`.
pub fn set_status(cell: &Cell, token: &str, order_id: &str, status: &str) -> Resp {
    cell.patch(&format!("/api/v1/restaurants/orders/{order_id}"))
        .token(token)
        .json(&json!({ "status": status }))
        .send()
}

/// The delivery tariff of the default config: 1.99 up to 2 km, +0.50 per started km, ≤ 7.99.
pub fn expected_delivery_fee(distance_m: u64) -> i64 {
    let beyond = distance_m.saturating_sub(2_000);
    (199 + 50 * beyond.div_ceil(1_000) as i64).min(799)
}

/// Tax on the subtotal at [`TAX_BASIS_POINTS`], rounded half up.
pub fn expected_tax(subtotal: i64) -> i64 {
    (subtotal * TAX_BASIS_POINTS + 5_000) / 10_000
}
