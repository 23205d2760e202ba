//! Drivers leaving a cell, and a drain that finishes: orders no driver takes are cancelled with a reason and refunded at
//! the drain's deadline, `cells list` shows the drain's progress meanwhile, and the cell
//! reaches `drained` on its own (scaled down: a 5 s deadline instead of 10 minutes).

use itest::fixtures::{self, PM_VISA, Pick, idem_key, order_body, valid_lines};
use itest::router::{NO_LIMITS, Router};
use itest::{Cell, CellOpts};
use serde_json::{Value, json};
use std::time::Duration;

fn place(r: &Router, token: &str, pick: &Pick) -> String {
    let lines = valid_lines(&pick.menu, false);
    let rest = &pick.menu["restaurant"];
    let at = (rest["lat"].as_f64().unwrap(), rest["lng"].as_f64().unwrap());
    r.post("/api/v1/orders")
        .token(token)
        .header("Idempotency-Key", &idem_key("drain"))
        .json(&order_body(&pick.id, &[(&lines[0], 1)], at, PM_VISA))
        .send()
        .expect_status(201)
        .json["order_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn cell_view(cells: &Value, id: u64) -> Value {
    cells["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn orders_nobody_takes_are_cancelled_and_refunded_at_the_deadline_and_the_drain_ends() {
    let berlin = Cell::start(CellOpts {
        cell_id: Some(1),
        config_toml: Some("[drain]\nunassigned_deadline_ms = 5000\ntick_ms = 200\n".into()),
        ..CellOpts::default()
    });
    let spare = Cell::start(CellOpts {
        cell_id: Some(3),
        config_toml: Some("[cell]\nname = \"spare3\"\n[demo]\nrestaurants = 0\n".into()),
        ..CellOpts::default()
    });
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(berlin.addr(), None).expect_status(201);
    router
        .add_cell(spare.addr(), Some(vec![]))
        .expect_status(201);

    let cust = router.token("customer", 1701, None);
    let pick = fixtures::pool(&berlin)[0].clone();
    // An idle driver at the restaurant, connected to Berlin: the accepted order is offered to
    // them as soon as the restaurant accepts, and they decline.
    let rt = itest::live::runtime();
    let at = (
        pick.menu["restaurant"]["lat"].as_f64().unwrap(),
        pick.menu["restaurant"]["lng"].as_f64().unwrap(),
    );
    let mut driver = itest::live::LiveDriver::connect(&berlin, &rt, 9101, at);
    // One the restaurant accepted (captured: refunded at the deadline), one it never saw
    // (authorized: voided).
    let accepted = place(&router, &cust, &pick);
    let rest = router.token("restaurant", pick.id.parse().unwrap(), None);
    router
        .patch(&format!("/api/v1/restaurants/orders/{accepted}"))
        .token(&rest)
        .json(&json!({ "status": "accepted" }))
        .send()
        .expect_status(200);
    let pending = place(&router, &cust, &pick);
    // Declined: the driver is idle again while the order waits for the next round.
    let offer = driver.expect_offer(Duration::from_secs(10));
    driver.answer(&offer, false).expect("decline");

    router
        .post("/admin/v1/cells/1/drain")
        .token(&router.admin())
        .json(&json!({ "to": "3" }))
        .send()
        .expect_status(202);
    // The drain's progress, as `router cells list` prints it.
    let seen = router.wait_cells("drain progress", Duration::from_secs(10), |c| {
        cell_view(c, 1)["drain"]["orders_left"] == 2
    });
    let d = &cell_view(&seen, 1)["drain"];
    assert_eq!(d["waiting_for_driver"], 2, "{d}");
    assert!(
        d["expected_done_ms"].as_i64() >= d["deadline_ms"].as_i64(),
        "{d}"
    );
    assert!(d["oldest_order_age_ms"].as_u64().is_some(), "{d}");

    // The driver stays while the order near them waits, and is sent to the new owner once
    // the deadline cancelled it: an earlier handover would find it still active.
    let handover = driver.expect("handover", Duration::from_secs(30), |b| {
        matches!(b, schemas::CellBody::Handover(_))
    });
    let schemas::CellBody::Handover(h) = handover.body else {
        unreachable!()
    };
    assert_eq!(h.reason, schemas::HandoverReason::CellDraining);
    let o = router
        .get(&format!("/api/v1/orders/{accepted}"))
        .token(&cust)
        .send()
        .json;
    assert_eq!(
        o["status"], "cancelled",
        "handed over before the order ended: {o}"
    );

    router.wait_cells("cell 1 drained", Duration::from_secs(30), |c| {
        cell_view(c, 1)["state"] == "drained"
    });
    for (id, payment) in [(&accepted, "refunded"), (&pending, "voided")] {
        let o = router
            .get(&format!("/api/v1/orders/{id}"))
            .token(&cust)
            .send()
            .expect_status(200)
            .json;
        assert_eq!(o["status"], "cancelled", "{o}");
        assert_eq!(o["cancel_reason"], "cell_drained", "{o}");
        assert_eq!(o["payment_status"], payment, "{o}");
    }
    router.delete_cell_expect(1, 200);
}

/// Not a drain, its sibling: idle drivers in a region that moved are sent to its new owner.
#[test]
fn idle_drivers_in_a_moved_region_are_handed_over() {
    use itest::live::LiveDriver;
    use schemas::{CellBody, HandoverReason};
    let a = Cell::start(CellOpts {
        cell_id: Some(1),
        ..CellOpts::default()
    });
    let b = Cell::start(CellOpts {
        cell_id: Some(3),
        config_toml: Some("[cell]\nname = \"spare3\"\n[demo]\nrestaurants = 0\n".into()),
        ..CellOpts::default()
    });
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(a.addr(), None).expect_status(201);
    router.add_cell(b.addr(), Some(vec![])).expect_status(201);
    let pick = &fixtures::pool(&a)[0];
    let at = (
        pick.menu["restaurant"]["lat"].as_f64().unwrap(),
        pick.menu["restaurant"]["lng"].as_f64().unwrap(),
    );
    let rt = itest::live::runtime();
    let mut driver = LiveDriver::connect(&a, &rt, 9001, at);
    router
        .post(&format!(
            "/admin/v1/regions/{}/move",
            pick.id
                .parse::<domain::RestaurantId>()
                .expect("restaurant id")
                .region()
                .expect("region")
        ))
        .token(&router.admin())
        .json(&json!({ "to": "3" }))
        .send()
        .expect_status(200);
    let msg = driver.expect("handover", Duration::from_secs(10), |b| {
        matches!(b, CellBody::Handover(_))
    });
    let CellBody::Handover(h) = msg.body else {
        unreachable!()
    };
    assert_eq!(
        Some(h.addr),
        b.ready().quic,
        "points at the new owner's gateway"
    );
    assert_eq!(h.reason, HandoverReason::RegionMoved);
}
