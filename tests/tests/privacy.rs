//! Personal data across the real `cell` process (issue 20): a canary address, phone and note
//! sent through the API reach the customer again but no store file, event log, log line,
//! webhook body or metric; the assigned driver sees exactly the fields each step allows and
//! other drivers get 403; the customer's export holds their data and, after an erase,
//! nothing personal.

use itest::fixtures::{self, PM_VISA};
use itest::{Cell, CellOpts};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CANARY_ADDRESS: &str = "Kanarienweg 4711, Vogelsang";
const CANARY_PHONE: &str = "+4915799887766";
const CANARY_NOTES: &str = "canary-note-q8z7";
const CANARIES: [&str; 3] = [CANARY_ADDRESS, CANARY_PHONE, CANARY_NOTES];
/// Short, so the test sees the address revoked without waiting ten minutes.
const GRACE_MS: u64 = 3_000;

/// A webhook receiver: every request's bytes (headers and body), answered 200.
fn webhook_receiver() -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let sink = sink.clone();
            std::thread::spawn(move || serve(conn, &sink));
        }
    });
    (url, seen)
}

fn serve(conn: std::net::TcpStream, sink: &Mutex<Vec<u8>>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut len = 0usize;
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            head.extend_from_slice(line.as_bytes());
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        {
            let mut s = sink.lock().unwrap();
            s.extend_from_slice(&head);
            s.extend_from_slice(&body);
        }
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if out.write_all(ok).is_err() {
            return;
        }
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Every file under `dir` (the store, the key store, the key file), read raw, and which
/// of `needles` each holds.
fn found_in_files(dir: &Path, needles: &[&str]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&p).unwrap();
            for c in needles {
                if contains(&bytes, c) {
                    hits.push(format!("{c} in {}", p.display()));
                }
            }
        }
    }
    assert!(files >= 2, "the store and the key store were read");
    hits
}

fn ping(cell: &Cell, token: &str, at: (f64, f64)) {
    cell.post("/api/v1/drivers/location")
        .token(token)
        .json(&json!({ "lat": at.0, "lng": at.1, "speed": 4.0, "heading": 90.0 }))
        .send()
        .expect_status(200);
}

fn order_as(cell: &Cell, token: &str, id: &str) -> Value {
    fixtures::get_order(cell, token, id)
}

/// The address fields of the driver's view: (formatted, notes, phone, location).
fn fields(a: &Value) -> (String, Value, Value, (f64, f64)) {
    (
        a["formatted"].as_str().unwrap_or("").to_owned(),
        a["notes"].clone(),
        a["phone"].clone(),
        (a["lat"].as_f64().unwrap(), a["lng"].as_f64().unwrap()),
    )
}

fn assert_approximate_delivery(d: &Value, exact: (f64, f64)) {
    assert_eq!(d["address_shown"], "approximate", "{d}");
    assert_eq!(d["customer_address"], "", "{d}");
    assert!(
        d["customer_name"].is_null() && d["delivery_notes"].is_null(),
        "{d}"
    );
    let at = (
        d["customer_location"][0].as_f64().unwrap(),
        d["customer_location"][1].as_f64().unwrap(),
    );
    assert_ne!(at, exact, "the area's centre, not the door: {d}");
    assert!(
        d["dropoff_distance_m"].as_u64().is_some_and(|m| m > 0),
        "{d}"
    );
}

fn assert_full_delivery(d: &Value, exact: (f64, f64)) {
    assert_eq!(d["address_shown"], "full", "{d}");
    assert_eq!(d["customer_address"], CANARY_ADDRESS, "{d}");
    assert_eq!(d["delivery_notes"], CANARY_NOTES, "{d}");
    assert_eq!(
        d["customer_name"], "Kanari V.",
        "first name, last initial: {d}"
    );
    assert!(d.get("customer_phone").is_none(), "never the phone: {d}");
    assert_eq!(d["customer_location"], json!([exact.0, exact.1]), "{d}");
}

#[test]
fn the_canary_reaches_its_customer_and_the_driver_in_the_window_and_nothing_else() {
    let (hook, webhooks) = webhook_receiver();
    let config = format!(
        "{}\n[notify]\nprovider = \"webhook\"\nwebhook_url = \"{hook}\"\n\n[privacy]\naddress_grace_ms = {GRACE_MS}\n",
        itest::SHARED_CONFIG
    );
    let mut cell = Cell::start(CellOpts {
        config_toml: Some(config),
        ..CellOpts::default()
    });
    let admin = cell.token("admin", 1);
    let customer_id = 7_701u64;
    cell.client()
        .req(
            reqwest::Method::PUT,
            &format!("/api/v1/admin/profiles/customer/{customer_id}"),
        )
        .token(&admin)
        .json(&json!({ "display_name": "Kanari Vogel", "phone": CANARY_PHONE }))
        .send()
        .expect_status(200);
    // Admins read the profile's phone (sealed at rest like the order's).
    let profile = cell
        .get(&format!("/api/v1/admin/profiles/customer/{customer_id}"))
        .token(&admin)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(profile["phone"], CANARY_PHONE, "{profile}");
    let cust = cell.token("customer", customer_id);
    let pick = fixtures::restaurant(&cell, 0).clone();
    let mut body = fixtures::simple_order(&cell, 0, PM_VISA);
    body["delivery_address"]["formatted"] = json!(CANARY_ADDRESS);
    body["delivery_address"]["phone"] = json!(CANARY_PHONE);
    body["delivery_address"]["notes"] = json!(CANARY_NOTES);
    let exact = (
        body["delivery_address"]["lat"].as_f64().unwrap(),
        body["delivery_address"]["lng"].as_f64().unwrap(),
    );
    let order = fixtures::place_new(&cell, &cust, &body);

    // The customer gets their own address back, as before.
    let mine = order_as(&cell, &cust, &order);
    assert_eq!(
        fields(&mine["delivery_address"]),
        (
            CANARY_ADDRESS.into(),
            json!(CANARY_NOTES),
            json!(CANARY_PHONE),
            exact
        ),
        "{mine}"
    );
    // And in the tracking socket's snapshot.
    {
        let rt = itest::live::runtime();
        let mut ws = itest::live::Tracker::connect(&cell, &rt, &order, &cust).expect("tracking");
        let snap = ws.expect("snapshot", Duration::from_secs(10), |v| {
            v["type"] == "snapshot"
        });
        assert_eq!(
            snap["order"]["delivery_address"]["formatted"],
            CANARY_ADDRESS
        );
    }
    let listed = fixtures::my_orders(&cell, &cust);
    assert_eq!(listed[0]["delivery_address"]["formatted"], CANARY_ADDRESS);
    // The restaurant sees the order, not the customer's personal fields.
    let rest = cell.token("restaurant", &pick.id);
    let seen = order_as(&cell, &rest, &order);
    assert_eq!(seen["delivery_address"]["formatted"], "", "{seen}");
    assert!(seen["delivery_address"]["phone"].is_null());

    for s in ["accepted", "preparing", "ready_for_pickup"] {
        fixtures::set_status(&cell, &rest, &order, s).expect_status(200);
    }
    let r = &pick.menu["restaurant"];
    let near = (
        r["lat"].as_f64().unwrap() + 0.004,
        r["lng"].as_f64().unwrap(),
    );
    let driver = cell.token("driver", 5_501);
    let other = cell.token("driver", 5_502);
    cell.post("/api/v1/drivers/status")
        .token(&driver)
        .json(&json!({ "status": "online" }))
        .send()
        .expect_status(200);
    // Offered: the approximate area and the distance.
    let start = Instant::now();
    let offer = loop {
        ping(&cell, &driver, near);
        let cur = cell
            .get("/api/v1/drivers/me/delivery")
            .token(&driver)
            .send();
        if cur.status == 200 && cur.json["order_id"] == order.as_str() {
            break cur.json;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no offer: {}",
            cur.text
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_approximate_delivery(&offer, exact);
    let delivery = offer["delivery_id"].as_str().unwrap().to_owned();
    // Accepted: still approximate (the address shows from pickup by default).
    let accepted = cell
        .post(&format!("/api/v1/drivers/deliveries/{delivery}/accept"))
        .token(&driver)
        .send()
        .expect_status(200)
        .json;
    assert_approximate_delivery(&accepted, exact);
    let view = order_as(&cell, &driver, &order);
    let (formatted, notes, phone, at) = fields(&view["delivery_address"]);
    assert!(
        formatted.is_empty() && notes.is_null() && phone.is_null(),
        "{view}"
    );
    assert_ne!(at, exact);
    // Another driver: 403 on the order.
    cell.get(&format!("/api/v1/orders/{order}"))
        .token(&other)
        .send()
        .expect_status(403);

    let step = |s: &str| {
        cell.post("/api/v1/drivers/status")
            .token(&driver)
            .json(&json!({ "status": s, "delivery_id": delivery }))
            .send()
            .expect_status(200);
    };
    step("arrived_at_restaurant");
    step("picked_up");
    // Picked up: the address, the notes, the customer's first name and last initial.
    let carrying = cell
        .get("/api/v1/drivers/me/delivery")
        .token(&driver)
        .send()
        .expect_status(200)
        .json;
    assert_full_delivery(&carrying, exact);
    let view = order_as(&cell, &driver, &order);
    assert_eq!(
        fields(&view["delivery_address"]),
        (
            CANARY_ADDRESS.into(),
            json!(CANARY_NOTES),
            Value::Null,
            exact
        ),
        "{view}"
    );
    // On the way: the path of the delivery is recorded (the erase deletes it below).
    std::thread::sleep(Duration::from_millis(1_100));
    ping(&cell, &driver, (near.0 - 0.0005, near.1));
    step("delivered");
    // Delivered, within the grace: still the address.
    let view = order_as(&cell, &driver, &order);
    assert_eq!(view["status"], "delivered");
    assert_eq!(
        view["delivery_address"]["formatted"], CANARY_ADDRESS,
        "{view}"
    );
    cell.get(&format!("/api/v1/orders/{order}"))
        .token(&other)
        .send()
        .expect_status(403);
    // After the grace: the approximate area again.
    std::thread::sleep(Duration::from_millis(GRACE_MS + 500));
    let view = order_as(&cell, &driver, &order);
    let (formatted, notes, phone, at) = fields(&view["delivery_address"]);
    assert!(
        formatted.is_empty() && notes.is_null() && phone.is_null(),
        "{view}"
    );
    assert_ne!(at, exact);

    // The customer's export has their data; never a driver's path.
    let export = cell
        .get("/api/v1/customers/me/export")
        .token(&cust)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(export["erased"], false);
    assert_eq!(export["profile"]["display_name"], "Kanari Vogel");
    assert_eq!(export["profile"]["phone"], CANARY_PHONE);
    let o = &export["orders"][0];
    assert_eq!(o["order_id"], order.as_str());
    assert_eq!(
        o["delivery_address"]["formatted"], CANARY_ADDRESS,
        "{export}"
    );
    assert_eq!(o["delivery_address"]["phone"], CANARY_PHONE);
    assert!(o["status_history"].as_array().unwrap().len() >= 5, "{o}");
    assert!(
        !export.to_string().contains("\"path\""),
        "no GPS path: {export}"
    );
    cell.get("/api/v1/customers/me/export")
        .token(&driver)
        .send()
        .expect_error(403, "auth.forbidden");

    // Webhooks went out (the delivered push included), without the canary.
    let start = Instant::now();
    while !contains(&webhooks.lock().unwrap(), "order_delivered") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no order_delivered webhook"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let support = cell.token("support", 1);
    let path = format!("/api/v1/admin/deliveries/{delivery}/path?reason=T-1");
    let start = Instant::now();
    while cell.get(&path).token(&support).send().status != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the path was never written"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let metrics = cell.get("/metrics").send().expect_status(200).text;
    let dir = cell.data_dir().to_path_buf();
    let log = cell.log_path().to_path_buf();
    cell.terminate(Duration::from_secs(10));
    for c in CANARIES {
        assert!(
            !contains(&webhooks.lock().unwrap(), c),
            "{c} in a webhook body"
        );
        assert!(!metrics.contains(c), "{c} in /metrics");
        assert!(
            !contains(&std::fs::read(&log).unwrap(), c),
            "{c} in the cell's log"
        );
    }
    assert_eq!(found_in_files(&dir, &CANARIES), Vec::<String>::new());
    // The search reaches the store's bytes: the profile's display name is stored plain.
    assert_eq!(
        found_in_files(&dir, &["Kanari Vogel"]).len(),
        1,
        "a positive control"
    );

    // Erase: the key goes; the export has nothing personal left; old reads fail shut.
    cell.restart();
    // Each path has its one method: a DELETE on the export path erases nothing, and the
    // erase path reads nothing.
    cell.client()
        .req(reqwest::Method::DELETE, "/api/v1/customers/me/export")
        .token(&cust)
        .send()
        .expect_status(405);
    cell.get("/api/v1/customers/me")
        .token(&cust)
        .send()
        .expect_status(405);
    cell.client()
        .req(reqwest::Method::DELETE, "/api/v1/customers/me")
        .token(&cust)
        .send()
        .expect_status(204);
    let export = cell
        .get("/api/v1/customers/me/export")
        .token(&cust)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(export["erased"], true, "{export}");
    // The path of their delivery is gone (no hold kept it).
    cell.get(&path).token(&support).send().expect_status(404);
    assert!(export["profile"].is_null(), "{export}");
    assert!(
        export["orders"][0]["delivery_address"].is_null(),
        "{export}"
    );
    assert_eq!(
        export["orders"][0]["order_id"],
        order.as_str(),
        "kept for accounting"
    );
    let text = export.to_string();
    for c in CANARIES.iter().chain(&["Kanari"]) {
        assert!(!text.contains(c), "{c} in the export after erase");
    }
    let mine = order_as(&cell, &cust, &order);
    assert_eq!(mine["delivery_address"]["formatted"], "", "{mine}");
    // A second erase is a no-op.
    cell.client()
        .req(reqwest::Method::DELETE, "/api/v1/customers/me")
        .token(&cust)
        .send()
        .expect_status(204);
    // Both exports and both erases were audited, in the chain staff reads are in.
    let verdict = cell
        .get("/api/v1/admin/audit/verify")
        .token(&admin)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(verdict["intact"], true, "{verdict}");
    assert!(verdict["records"].as_u64().unwrap() >= 4, "{verdict}");
    // An erased customer's new order is refused: their key is never made again.
    fixtures::place(&cell, &cust, &body, &fixtures::idem_key("after-erase"))
        .expect_error(409, "key_destroyed");
    cell.terminate(Duration::from_secs(10));
    assert_eq!(found_in_files(&dir, &CANARIES), Vec::<String>::new());
}

/// Over QUIC: the offer carries the dropoff's area, never the address; `address_revoked`
/// arrives on the control stream once the grace after `delivered` is over, not before.
#[test]
fn the_control_stream_offers_the_area_and_revokes_the_address_after_the_grace() {
    use itest::live::{LiveDriver, distance_m, runtime};
    use schemas::{CellBody, DriverStatus};
    let config = format!(
        "{}\n[privacy]\naddress_grace_ms = {GRACE_MS}\n",
        itest::SHARED_CONFIG
    );
    let cell = Cell::start(CellOpts {
        config_toml: Some(config),
        ..CellOpts::default()
    });
    let rt = runtime();
    let pick = fixtures::restaurant(&cell, 0).clone();
    let r = &pick.menu["restaurant"];
    let restaurant = (r["lat"].as_f64().unwrap(), r["lng"].as_f64().unwrap());
    let mut driver = LiveDriver::connect(&cell, &rt, 6_601, restaurant);
    let cust = cell.token("customer", 7_702);
    let mut body = fixtures::simple_order(&cell, 0, PM_VISA);
    body["delivery_address"]["formatted"] = json!(CANARY_ADDRESS);
    body["delivery_address"]["notes"] = json!(CANARY_NOTES);
    let door = (
        body["delivery_address"]["lat"].as_f64().unwrap(),
        body["delivery_address"]["lng"].as_f64().unwrap(),
    );
    let order = fixtures::place_new(&cell, &cust, &body);
    let rest = cell.token("restaurant", &pick.id);
    fixtures::set_status(&cell, &rest, &order, "accepted").expect_status(200);

    let offer = driver.expect_offer(Duration::from_secs(60));
    assert_eq!(offer.order_id.to_string(), order);
    let area = distance_m((offer.dropoff.lat, offer.dropoff.lng), door);
    assert!(
        area > 1.0 && area < 1_000.0,
        "the area's centre, {area} m from the door"
    );
    assert!(
        !offer.dropoff.address.contains("Kanarien"),
        "{:?}",
        offer.dropoff
    );
    driver.answer(&offer, true).expect("accepted");
    let delivery = offer.delivery_id;
    for s in [
        DriverStatus::ArrivedAtRestaurant {
            delivery_id: delivery,
        },
        DriverStatus::PickedUp {
            delivery_id: delivery,
        },
        DriverStatus::Delivered {
            delivery_id: delivery,
        },
    ] {
        driver.status(s).expect("step acknowledged");
    }
    let delivered = Instant::now();
    let revoked = |b: &CellBody| {
        matches!(b, CellBody::AddressRevoked(r) if r.delivery_id == delivery
            && r.order_id.to_string() == order)
    };
    // Not before the grace is over (the cell's grace started before its answer arrived).
    assert!(
        driver
            .try_expect(Duration::from_millis(GRACE_MS - 500), revoked)
            .is_none(),
        "address_revoked before the grace ended"
    );
    driver.expect("address_revoked", Duration::from_secs(30), revoked);
    // A figure, not an assertion: how long after `delivered` was acknowledged it came.
    eprintln!(
        "address_revoked {} ms after the delivered ack (grace {GRACE_MS} ms)",
        delivered.elapsed().as_millis()
    );
}
