//! Fraud flags in a running cell: an order paid with a card billed abroad (the sandbox's
//! `pm_card_gb`, in a cell delivering in the US) is flagged by the scorer the cell starts, the
//! flag is listed to support staff and reviewed, and after the cell process restarts on the
//! same data directory the flag and its review are still there. Also: reconciliation's drift
//! listing answers on a running cell.

use itest::fixtures::*;
use itest::{Cell, CellOpts};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The flags the cell lists for `rule`.
fn flags(cell: &Cell, token: &str, rule: &str) -> Vec<Value> {
    let r = cell
        .get(&format!("/api/v1/admin/flags?rule={rule}"))
        .token(token)
        .send()
        .expect_status(200);
    r.json["flags"].as_array().expect("flags").clone()
}

#[test]
fn a_card_billed_abroad_is_flagged_and_the_reviewed_flag_survives_a_restart() {
    let mut cell = Cell::start(CellOpts::default());
    let customer = cell.token("customer", 5101);
    let order_id = place_new(&cell, &customer, &simple_order(&cell, 0, "pm_card_gb"));
    let support = cell.token("support", 0);
    // The scorer runs after the fact: wait for it, bounded by how slow a debug build on a
    // loaded machine can be (a bound on liveness, not a timing assertion).
    let patience = Instant::now() + Duration::from_secs(60);
    let flag = loop {
        let listed = flags(&cell, &support, "billing_country");
        if let Some(f) = listed
            .into_iter()
            .find(|f| f["order_id"] == order_id.as_str())
        {
            break f;
        }
        assert!(
            Instant::now() < patience,
            "no billing_country flag for {order_id}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(flag["evidence"]["billing_country"], "GB");
    assert_eq!(flag["state"], "open");
    let id = flag["id"].as_str().expect("id").to_owned();
    let reviewed = cell
        .post(&format!("/api/v1/admin/flags/{id}/review"))
        .token(&support)
        .json(&json!({"decision": "confirm", "note": "chargeback history"}))
        .send()
        .expect_status(200);
    assert_eq!(reviewed.json["review"]["role"], "support");
    let metrics = cell.get("/metrics").send().expect_status(200).text;
    assert!(
        metrics.contains("cell_fraud_flags_total{rule=\"billing_country\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cell_fraud_flags_open 0"),
        "reviewed: none open"
    );

    cell.restart();
    let admin = cell.token("admin", 0);
    let after = flags(&cell, &admin, "billing_country");
    let again = after
        .iter()
        .find(|f| f["id"] == id.as_str())
        .expect("the flag after the restart");
    assert_eq!(again["state"], "confirmed");
    assert_eq!(again["review"]["note"], "chargeback history");
    assert_eq!(
        after.len(),
        1,
        "the restart replayed nothing into a second flag"
    );

    let drift = cell
        .get("/api/v1/admin/payments/drift")
        .token(&admin)
        .send()
        .expect_status(200);
    assert_eq!(drift.json["open"], 0);
}
