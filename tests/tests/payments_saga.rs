//! The payment saga through the real `cell` binary (issue 15): orders accepted, rejected and
//! cancelled, the cell SIGKILLed right after each round (captures, voids and refunds may be in
//! flight) and restarted, three times; then, once every order's payment settled, the cell's
//! own checker (`cell check-payments`) reads the whole store: no order captured twice, none
//! with a pending effect, authorized = captured + voided and refunded ≤ captured per order.
//! The scaled-down form of `loadgen/bench/payments-kill.sh` (20 kills under load). Also: a
//! capture the sandbox declines (its fault endpoint) cancels the order with `payment_failed`.

use itest::fixtures::*;
use itest::harness::cell_bin;
use itest::{Cell, CellOpts};
use serde_json::{Value, json};

/// One round: places six orders on restaurants `slot..slot + 6` and works them: four accepted
/// (one then cancelled by the customer), one rejected, one left to the restaurant. Returns the
/// order ids.
fn round(cell: &Cell, cust: &str, slot: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..6 {
        let s = slot + i;
        let id = place_new(cell, cust, &simple_order(cell, s, PM_VISA));
        let rest = cell.token("restaurant", &restaurant(cell, s).id);
        match i {
            0..=3 => {
                set_status(cell, &rest, &id, "accepted").expect_status(200);
                if i == 3 {
                    cell.post(&format!("/api/v1/orders/{id}/cancel"))
                        .token(cust)
                        .json(&json!({ "reason": "changed my mind" }))
                        .send()
                        .expect_status(200);
                }
            }
            4 => {
                cell.patch(&format!("/api/v1/restaurants/orders/{id}"))
                    .token(&rest)
                    .json(&json!({ "status": "rejected", "reason": "closing" }))
                    .send()
                    .expect_status(200);
            }
            _ => {}
        }
        ids.push(id);
    }
    ids
}

/// Runs `cell check-payments` on the (stopped) cell's store.
fn check(cell: &Cell) -> (bool, Value) {
    let out = std::process::Command::new(cell_bin().expect("cell binary"))
        .args(["check-payments", "--demo", "--data-dir"])
        .arg(cell.data_dir())
        .output()
        .expect("running cell check-payments");
    let text = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "check-payments printed no report ({e}): {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), report)
}

#[test]
fn no_order_is_charged_twice_or_left_pending_across_sigkills() {
    // One customer places 18 orders: the order limit raised (it has tests of its own).
    let mut cell = Cell::start(CellOpts {
        config_toml: Some(itest::SHARED_CONFIG.into()),
        ..CellOpts::default()
    });
    let cust = cell.token("customer", 1501);
    let mut ids = Vec::new();
    for k in 0..3 {
        ids.extend(round(&cell, &cust, k * 6));
        // Right after the transitions answered: the worker is mid-saga.
        cell.kill9();
        cell.restart();
    }
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        let o = settled_order(&cell, &cust, id);
        *states
            .entry(o["payment_status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    // Per round: 3 captured, 1 refunded, 1 voided (rejected), 1 still authorized.
    let want: std::collections::BTreeMap<String, usize> = [
        ("authorized", 3),
        ("captured", 9),
        ("refunded", 3),
        ("voided", 3),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(states, want);
    cell.kill9();
    let (ok, report) = check(&cell);
    assert!(ok, "violations: {report:#}");
    assert_eq!(report["orders"], 18);
    assert_eq!(report["pending_effects"], 0);
    assert_eq!(report["retry_records"], 0);
    assert_eq!(report["awaiting_restaurant"], 3);
    // Captures per order: 0 for the voided and the waiting ones, 1 for all others.
    assert_eq!(report["captures_per_order"], json!({ "0": 6, "1": 12 }));
    assert_eq!(report["violations"], json!([]));
}

#[test]
fn a_capture_declined_for_good_cancels_the_order_with_payment_failed() {
    let cell = Cell::start(CellOpts::default());
    let admin = cell.token("admin", 0);
    let cust = cell.token("customer", 1502);
    let faults = "/api/v1/admin/payments/sandbox/faults";
    // Only admins; the shape the other scripts use.
    cell.get(faults).token(&cust).send().expect_status(403);
    let state = cell
        .client()
        .req(reqwest::Method::PUT, faults)
        .token(&admin)
        .json(&json!({ "decline_after_authorize": true }))
        .send()
        .expect_status(200)
        .json;
    assert_eq!(
        state,
        json!({ "fail_percent": 0, "timeout": false, "down_for_ms": 0, "decline_after_authorize": true })
    );
    cell.client()
        .req(reqwest::Method::PUT, faults)
        .token(&admin)
        .json(&json!({ "fail_percent": 101 }))
        .send()
        .expect_error(400, "payments.invalid_faults");
    let id = place_new(&cell, &cust, &simple_order(&cell, 0, PM_VISA));
    let rest = cell.token("restaurant", &restaurant(&cell, 0).id);
    // Accepting answers at once, whatever the provider will say.
    set_status(&cell, &rest, &id, "accepted").expect_status(200);
    let o = settled_order(&cell, &cust, &id);
    assert_eq!(
        (
            o["status"].as_str(),
            o["payment_status"].as_str(),
            o["cancel_reason"].as_str()
        ),
        (Some("cancelled"), Some("voided"), Some("payment_failed"))
    );
}
