//! Failover to a standby behind the router: two instances of one cell share one
//! FoundationDB-semantics model store (in this process, as two processes of a cell would share
//! a cluster: no FoundationDB server can run here), each on its own runtime, with the real
//! router binary in front knowing the second as the cell's standby. The active instance is
//! killed (its runtime dropped: sockets close, nothing is released, as with SIGKILL); the
//! standby takes the lease once it lapses, the router's health check finds it in charge and
//! makes it the cell's endpoint, and meanwhile the router holds requests. Checked across
//! the takeover: every acknowledged order is there, reads see no error, a tracker resumes
//! with a snapshot. (That no order is assigned twice across a takeover is shown at the cell
//! level by `cell::server::tests`, on the same model store.)

use cell::app::{App, SystemClock};
use cell::config::Config;
use itest::fixtures::{PM_VISA, order_body, valid_lines};
use itest::live::{Tracker, WsEvent, runtime};
use itest::router::{NO_LIMITS, Router};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Kv;

const LEASE_MS: u64 = 1_000;
/// Bounds for what takes as long as the machine is slow (a debug build of a whole cell).
const PATIENCE: Duration = Duration::from_secs(120);

/// One cell instance on its own runtime: dropping the runtime is the kill.
struct Instance {
    rt: Option<tokio::runtime::Runtime>,
    http: SocketAddr,
    app: std::sync::mpsc::Receiver<App>,
}

fn config() -> Config {
    let mut c = Config::load(None).expect("default config");
    c.demo.enabled = true;
    c.demo.restaurants = 60;
    c.store.lease_ms = LEASE_MS;
    c
}

fn start(kv: &Arc<dyn Kv>) -> Instance {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt.block_on(async { service::http::bind("127.0.0.1:0".parse().unwrap()) });
    let listener = listener.unwrap();
    let http = listener.local_addr().unwrap();
    let (tx, app) = std::sync::mpsc::channel();
    let kv = kv.clone();
    rt.spawn(async move {
        let r = cell::server::run(
            config(),
            kv,
            Arc::new(SystemClock),
            None,
            cell::server::Listeners {
                http: listener,
                tls: None,
                gateway: None,
            },
            move |app: &App| {
                let _ = tx.send(app.clone());
            },
            std::future::pending::<()>(),
        )
        .await;
        eprintln!("failover: an instance ended: {:?}", r.err());
    });
    Instance {
        rt: Some(rt),
        http,
        app,
    }
}

/// Places an order through the router at some open restaurant near the demo centre.
fn place_one(router: &Router, token: &str, n: u64) -> String {
    let (lat, lng) = (52.52, 13.405);
    let found = router
        .get(&format!(
            "/api/v1/restaurants?lat={lat}&lng={lng}&radius=5km&page_size=50"
        ))
        .token(token)
        .send()
        .expect_status(200)
        .json;
    let mut last = String::new();
    for r in found["restaurants"].as_array().expect("restaurants") {
        let id = r["id"].as_str().expect("id");
        let menu = router
            .get(&format!("/api/v1/restaurants/{id}/menu"))
            .token(token)
            .send()
            .expect_status(200)
            .json;
        let lines = valid_lines(&menu, false);
        let Some(line) = lines.first() else { continue };
        let rest = &menu["restaurant"];
        let at = (rest["lat"].as_f64().unwrap(), rest["lng"].as_f64().unwrap());
        let r = router
            .post("/api/v1/orders")
            .token(token)
            .header("Idempotency-Key", &format!("failover-{n}"))
            .json(&order_body(id, &[(line, 1)], at, PM_VISA))
            .send();
        if r.status == 201 {
            return r.json["order_id"].as_str().unwrap().to_owned();
        }
        last = format!("{} {}", r.status, r.text);
    }
    panic!("no restaurant took an order (last answer: {last})");
}

fn get(router: &Router, token: &str, path: &str) -> (u16, Value) {
    let r = router.get(path).token(token).send();
    (r.status, r.json)
}

#[test]
fn a_standby_takes_over_and_the_router_follows_it() {
    let db = store::model::ModelDb::new(store::model::ModelFaults::none());
    let kv = db.kv();
    let mut a = start(&kv);
    a.app
        .recv_timeout(PATIENCE)
        .expect("the first instance serves");
    let b = start(&kv);

    let router = Router::start(NO_LIMITS, None);
    router
        .post("/admin/v1/cells")
        .token(&router.admin())
        .json(&json!({ "http": a.http.to_string(), "standby": [b.http.to_string()] }))
        .send()
        .expect_status(201);
    let cust = router.token("customer", 2401, None);
    let acknowledged: Vec<String> = (0..5).map(|n| place_one(&router, &cust, n)).collect();
    let rt = runtime();
    let mut tracker =
        Tracker::connect_at(router.addr(), &rt, &acknowledged[0], &cust).expect("ws upgrade");
    assert!(matches!(
        tracker.next(Duration::from_secs(5)),
        Some(WsEvent::Json(_))
    ));

    // The kill.
    let killed = Instant::now();
    a.rt.take().unwrap().shutdown_background();
    // Reads through the router are held until the standby serves: no error.
    let (status, body) = get(
        &router,
        &cust,
        &format!("/api/v1/orders/{}", acknowledged[1]),
    );
    assert_eq!(status, 200, "held across the takeover: {body}");
    let served_after = killed.elapsed();
    b.app.recv_timeout(PATIENCE).expect("the standby took over");

    // The router made the standby the cell's endpoint, the old one its standby.
    let cells = router.wait_cells("the standby promoted", PATIENCE, |c| {
        c["cells"][0]["http"] == b.http.to_string().as_str()
    });
    assert_eq!(
        cells["cells"][0]["up"], true,
        "the promoted instance is up: {cells:#}"
    );
    let map = router
        .get("/admin/v1/map")
        .token(&router.admin())
        .send()
        .expect_status(200)
        .json;
    assert_eq!(
        map["cells"]["1"]["standby_http"],
        json!([a.http.to_string()]),
        "{map:#}"
    );
    for id in &acknowledged {
        let (status, o) = get(&router, &cust, &format!("/api/v1/orders/{id}"));
        assert_eq!(
            status, 200,
            "acknowledged order {id} after the takeover: {o}"
        );
        assert_eq!(o["order_id"], id.as_str());
    }
    // The tracker's connection died with the instance; reconnecting reaches the new one.
    let mut tracker =
        Tracker::connect_at(router.addr(), &rt, &acknowledged[0], &cust).expect("reconnect");
    match tracker.next(Duration::from_secs(5)) {
        Some(WsEvent::Json(v)) => assert_eq!(v["order"]["order_id"], acknowledged[0].as_str()),
        other => panic!("no snapshot from the standby: {other:?}"),
    }
    // New orders go to the standby, now in charge (another customer: five an hour each).
    let other = router.token("customer", 2402, None);
    place_one(&router, &other, 99);
    eprintln!("failover: lease {LEASE_MS} ms; first read answered {served_after:?} after the kill");
}
