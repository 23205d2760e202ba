//! A cell restarted behind the router, as a rolling restart does it (SIGTERM, then a new
//! process on the same data and ports), while customers read and place orders: requests
//! that are safe to retry see no error (the router holds them), and a tracker is told to
//! reconnect (close 1012) and gets its snapshot first from the restarted cell.

use itest::client::Client;
use itest::fixtures::{self, PM_VISA};
use itest::live::{Tracker, WsEvent, runtime};
use itest::router::{NO_LIMITS, Router};
use itest::{Cell, CellOpts, Resp};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// One request made during the test: what it was, its status, when it started and ended.
#[derive(Debug)]
struct Call {
    what: &'static str,
    status: u16,
    code: String,
    started: Instant,
    ended: Instant,
}

fn record(log: &Mutex<Vec<Call>>, what: &'static str, started: Instant, r: &Resp) {
    let code = if r.status >= 400 {
        r.error_code().to_owned()
    } else {
        String::new()
    };
    log.lock().unwrap().push(Call {
        what,
        status: r.status,
        code,
        started,
        ended: Instant::now(),
    });
}

#[test]
fn a_restarted_cell_is_invisible_to_retry_safe_requests() {
    let (http, quic) = (free_addr(), free_addr());
    // One customer places hundreds of orders: the per-user limits raised (tested elsewhere).
    let mut berlin = Cell::start(CellOpts {
        cell_id: Some(1),
        listen: Some((http, quic)),
        config_toml: Some(itest::SHARED_CONFIG.into()),
        ..CellOpts::default()
    });
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(berlin.addr(), None).expect_status(201);
    let cust = router.token("customer", 901, None);
    let body = fixtures::simple_order(&berlin, 0, PM_VISA);
    let placed = router
        .post("/api/v1/orders")
        .token(&cust)
        .header("Idempotency-Key", &fixtures::idem_key("restart"))
        .json(&body)
        .send()
        .expect_status(201);
    let order = placed.json["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();

    let rt = runtime();
    let mut tracker = Tracker::connect_at(router.addr(), &rt, &order, &cust).expect("ws upgrade");
    match tracker.next(Duration::from_secs(5)) {
        Some(WsEvent::Json(v)) => assert_eq!(v["order"]["order_id"], order.as_str(), "{v}"),
        other => panic!("no snapshot: {other:?}"),
    }

    // Customers reading (a search, their order) and placing orders with keys, throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (c, r) = (fixtures::CENTRE, router.addr());
    let readers = {
        let (stop, calls, cust, order) = (stop.clone(), calls.clone(), cust.clone(), order.clone());
        let client = Client::new(r, router.log_path().to_owned());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let path = format!("/api/v1/restaurants?lat={}&lng={}&radius=2km", c.0, c.1);
                let resp = client.req(reqwest::Method::GET, &path).token(&cust).send();
                record(&calls, "search", t, &resp);
                let t = Instant::now();
                let resp = client
                    .req(reqwest::Method::GET, &format!("/api/v1/orders/{order}"))
                    .token(&cust)
                    .send();
                record(&calls, "order", t, &resp);
            }
        })
    };
    let writers = {
        let (stop, calls, cust, body) = (stop.clone(), calls.clone(), cust.clone(), body.clone());
        let client = Client::new(r, router.log_path().to_owned());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let resp = client
                    .req(reqwest::Method::POST, "/api/v1/orders")
                    .token(&cust)
                    .header("Idempotency-Key", &fixtures::idem_key("held"))
                    .json(&body)
                    .send();
                record(&calls, "place", t, &resp);
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));

    let stopping = berlin.terminate(Duration::from_secs(20));
    let gone = Instant::now();
    berlin.restart();
    let back = Instant::now();
    // The socket was closed by the cell before it stopped, with the code that means
    // "reconnect"; reconnecting reaches the new process, snapshot first.
    let closed = loop {
        match tracker.next(Duration::from_secs(5)) {
            Some(WsEvent::Json(_)) => continue,
            other => break other,
        }
    };
    assert!(
        matches!(&closed, Some(WsEvent::Closed(Some((1012, _))))),
        "the tracker should be closed with 1012 (service restart): {closed:?}"
    );
    let mut tracker = Tracker::connect_at(router.addr(), &rt, &order, &cust).expect("reconnect");
    match tracker.next(Duration::from_secs(5)) {
        Some(WsEvent::Json(v)) => {
            assert_eq!(
                v["order"]["order_id"],
                order.as_str(),
                "snapshot first: {v}"
            )
        }
        other => panic!("no snapshot after the restart: {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    readers.join().unwrap();
    writers.join().unwrap();

    let calls = calls.lock().unwrap();
    let failed: Vec<&Call> = calls
        .iter()
        .filter(|c| !(200..300).contains(&c.status))
        .collect();
    // In flight while no process served the cell: each of these was held by the router.
    let held = calls
        .iter()
        .filter(|c| c.started < back && c.ended > gone)
        .count();
    eprintln!(
        "restart: SIGTERM took {stopping:?}; {} requests, {} failed, {held} held across the restart",
        calls.len(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "retry-safe requests failed: {:?}",
        failed
            .iter()
            .map(|c| (c.what, c.status, &c.code))
            .collect::<Vec<_>>()
    );
    assert!(held > 0, "no request was in flight while the cell was away");
    for what in ["search", "order", "place"] {
        assert!(
            calls.iter().any(|c| c.what == what && c.started > back),
            "no {what} after the restart"
        );
    }
}
