//! The router with real cells: two cities routed by place and id, orders tracked over a
//! proxied WebSocket, a region moving while orders flow, a drain that waits for the last
//! delivery, a killed cell answered with 503 until it returns, a follower router.

use domain::{OrderId, RegionId, RestaurantId};
use itest::fixtures::{self, PM_VISA, Pick, idem_key, order_body, valid_lines};
use itest::live::{Tracker, WsEvent, runtime};
use itest::router::{NO_LIMITS, Router};
use itest::{Cell, CellOpts, Resp, SHARED_CONFIG};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MUNICH: (f64, f64) = (48.1372, 11.5755);

fn munich_opts() -> CellOpts {
    CellOpts {
        cell_id: Some(2),
        config_toml: Some(format!(
            "[cell]\nname = \"munich\"\n[demo]\ncity_name = \"Munich\"\ncenter_lat = {}\n\
             center_lng = {}\nradius_km = 6.0\nrestaurants = 300\n",
            MUNICH.0, MUNICH.1
        )),
        ..CellOpts::default()
    }
}

/// An empty cell (a demo city of no restaurants) with id `id`: the target of moves and
/// drains. Demo mode, like every cell of these tests: outside it the shipped secret and the
/// payment sandbox are refused.
fn empty_cell(id: u32) -> Cell {
    Cell::start(CellOpts {
        cell_id: Some(id),
        config_toml: Some(format!(
            "{SHARED_CONFIG}[cell]\nname = \"spare{id}\"\n[demo]\nrestaurants = 0\n"
        )),
        ..CellOpts::default()
    })
}

/// Berlin (cell 1, demo data, all its regions) and an empty spare (cell 3, no region) behind
/// one router: the setting of the move, drain and handover tests. Both with the shared
/// cell's raised per-user limits: the move test places an order every 40 ms as one customer,
/// then reads each back from both cells.
fn berlin_and_spare() -> (Cell, Cell, Router) {
    let a = Cell::start(CellOpts {
        cell_id: Some(1),
        config_toml: Some(SHARED_CONFIG.into()),
        ..CellOpts::default()
    });
    let b = empty_cell(3);
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(a.addr(), None).expect_status(201);
    router.add_cell(b.addr(), Some(vec![])).expect_status(201);
    (a, b, router)
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

fn order_cell(id: &str) -> u16 {
    id.parse::<OrderId>().expect("order id").cell().get()
}

fn region_of(restaurant: &str) -> RegionId {
    restaurant
        .parse::<RestaurantId>()
        .expect("restaurant id")
        .region()
        .expect("region")
}

fn search(r: &Router, token: &str, at: (f64, f64)) -> Resp {
    r.get(&format!(
        "/api/v1/restaurants?lat={}&lng={}&radius=2km",
        at.0, at.1
    ))
    .token(token)
    .send()
}

fn place(r: &Router, token: &str, pick: &Pick, key: &str) -> Resp {
    let lines = valid_lines(&pick.menu, false);
    let rest = &pick.menu["restaurant"];
    let at = (
        rest["lat"].as_f64().expect("lat"),
        rest["lng"].as_f64().expect("lng"),
    );
    r.post("/api/v1/orders")
        .token(token)
        .header("Idempotency-Key", key)
        .json(&order_body(&pick.id, &[(&lines[0], 1)], at, PM_VISA))
        .send()
}

/// Carries `order` to delivered through the router: the restaurant prepares it, a REST
/// driver whose home is `home` takes the offer and delivers.
fn deliver(r: &Router, home: u32, order: &str, pick: &Pick, driver: u64) {
    let rest = r.token("restaurant", pick.id.parse().expect("id"), None);
    for s in ["accepted", "preparing", "ready_for_pickup"] {
        r.patch(&format!("/api/v1/restaurants/orders/{order}"))
            .token(&rest)
            .json(&json!({ "status": s }))
            .send()
            .expect_status(200);
    }
    let d = r.token("driver", driver, Some(home));
    let at = &pick.menu["restaurant"];
    let ping = json!({ "lat": at["lat"], "lng": at["lng"], "speed": 0.0, "heading": 0.0 });
    r.post("/api/v1/drivers/status")
        .token(&d)
        .json(&json!({ "status": "online" }))
        .send()
        .expect_status(200);
    let start = Instant::now();
    let delivery = loop {
        r.post("/api/v1/drivers/location")
            .token(&d)
            .json(&ping)
            .send()
            .expect_status(200);
        let cur = r.get("/api/v1/drivers/me/delivery").token(&d).send();
        if cur.status == 200 && cur.json["order_id"] == order {
            break cur.json["delivery_id"]
                .as_str()
                .expect("delivery_id")
                .to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "no offer for {order}: {}",
            cur.text
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    r.post(&format!("/api/v1/drivers/deliveries/{delivery}/accept"))
        .token(&d)
        .send()
        .expect_status(200);
    for s in ["arrived_at_restaurant", "picked_up", "delivered"] {
        r.post("/api/v1/drivers/status")
            .token(&d)
            .json(&json!({ "status": s, "delivery_id": delivery }))
            .send()
            .expect_status(200);
    }
}

fn order_status(r: &Router, token: &str, id: &str) -> String {
    let o = r
        .get(&format!("/api/v1/orders/{id}"))
        .token(token)
        .send()
        .expect_status(200);
    o.json["status"].as_str().expect("status").to_owned()
}

fn admin_state(cells: &Value, id: u64) -> Option<String> {
    cells["cells"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["state"].as_str().unwrap_or("").to_owned())
}

#[test]
fn two_cities_route_by_place_and_id_and_track_over_the_router() {
    let berlin = Cell::start(CellOpts {
        cell_id: Some(1),
        ..CellOpts::default()
    });
    let munich = Cell::start(munich_opts());
    let router = Router::start(NO_LIMITS, None);
    let follower = Router::start(NO_LIMITS, Some(&router));
    router.add_cell(berlin.addr(), None).expect_status(201);
    let added = Instant::now();
    router.add_cell(munich.addr(), None).expect_status(201);
    let cust = router.token("customer", 501, Some(1));

    // The follower picks the map up from the leader.
    loop {
        if search(&follower, &cust, MUNICH).status == 200 {
            eprintln!("follower routed after {:?}", added.elapsed());
            break;
        }
        assert!(
            added.elapsed() < Duration::from_secs(5),
            "follower never caught up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Discovery lands on the city's cell: same answer as asking the cell directly.
    let via = search(&router, &cust, fixtures::CENTRE).expect_status(200);
    let direct = berlin
        .get(&format!(
            "/api/v1/restaurants?lat={}&lng={}&radius=2km",
            fixtures::CENTRE.0,
            fixtures::CENTRE.1
        ))
        .token(&cust)
        .send()
        .expect_status(200);
    // The router's page is the cell's, marked complete and with a cursor for the next. The
    // router orders by (distance_m, id) (its cursor's order, the same whichever cells answer),
    // the cell by exact distance: restaurants at the same rounded metre may swap.
    for k in ["next_page", "total"] {
        assert_eq!(via.json[k], direct.json[k], "{k}");
    }
    let rows = |v: &Value| -> Vec<(u64, String)> {
        let row = |r: &Value| {
            let d = r["distance_m"].as_u64().unwrap();
            (d, r["id"].as_str().unwrap().to_owned())
        };
        v["restaurants"]
            .as_array()
            .expect("restaurants")
            .iter()
            .map(row)
            .collect()
    };
    let routed = rows(&via.json);
    let mut direct_rows = rows(&direct.json);
    direct_rows.sort();
    // A tie at the page's last metre may be cut differently; everything before it is equal.
    let last = direct_rows.last().map_or(0, |r| r.0);
    let before = |r: &[(u64, String)]| -> Vec<(u64, String)> {
        r.iter().filter(|x| x.0 < last).cloned().collect()
    };
    assert_eq!(routed.len(), direct_rows.len());
    assert_eq!(
        before(&routed),
        before(&direct_rows),
        "the cell's page, by metre then id"
    );
    assert_eq!(via.json["partial"], false);
    assert!(via.json["next_cursor"].is_string() == direct.json["next_page"].is_u64());
    let m = search(&router, &cust, MUNICH).expect_status(200);
    let mid = m.json["restaurants"][0]["id"]
        .as_str()
        .expect("a Munich restaurant");
    assert!(
        berlin
            .get(&format!("/api/v1/restaurants/{mid}/menu"))
            .token(&cust)
            .send()
            .status
            == 404,
        "Munich restaurants are not in Berlin"
    );
    let mmenu = router
        .get(&format!("/api/v1/restaurants/{mid}/menu"))
        .token(&cust)
        .send()
        .expect_status(200)
        .json;

    // Orders are created on the restaurant's cell and carry its id.
    let pick = &fixtures::pool(&berlin)[0];
    let placed = place(&router, &cust, pick, &idem_key("rt")).expect_status(201);
    let bid = placed.json["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned();
    assert_eq!(order_cell(&bid), 1);
    let mpick = Pick {
        id: mid.to_owned(),
        menu: mmenu,
        all_day: false,
    };
    let mplaced = place(&follower, &cust, &mpick, &idem_key("rt")).status;
    // A Munich restaurant may be closed at this hour; when open, the order is Munich's.
    if mplaced == 201 {
        let mine = router
            .get("/api/v1/orders?customer=me")
            .token(&cust)
            .send()
            .expect_status(200);
        assert!(mine.text.contains(&bid), "home cell lists the Berlin order");
    }

    // Tracking through the router reaches the order's cell.
    let rt = runtime();
    let mut t = Tracker::connect_at(follower.addr(), &rt, &bid, &cust).expect("ws upgrade");
    match t.next(Duration::from_secs(5)) {
        Some(WsEvent::Json(v)) => {
            assert_eq!(v["order"]["order_id"], bid.as_str(), "snapshot: {v}")
        }
        other => panic!("no snapshot through the router: {other:?}"),
    }
    // A restaurant action by order id reaches Berlin, and the tracker sees it.
    let rest = router.token("restaurant", pick.id.parse().unwrap(), None);
    router
        .patch(&format!("/api/v1/restaurants/orders/{bid}"))
        .token(&rest)
        .json(&json!({ "status": "accepted" }))
        .send()
        .expect_status(200);
    t.expect_status("confirmed");

    // Drivers learn where to stream.
    let drv = router.token("driver", 9, None);
    let cellinfo = router
        .get(&format!(
            "/api/v1/drivers/cell?lat={}&lng={}",
            MUNICH.0, MUNICH.1
        ))
        .token(&drv)
        .send()
        .expect_status(200);
    assert_eq!(
        cellinfo.json["quic_addr"],
        munich.ready().quic.expect("quic").to_string()
    );

    // Errors are the router's own, in the shared shape.
    router
        .get("/api/v1/restaurants?lat=40.7&lng=-74.0&radius=2km")
        .token(&cust)
        .send()
        .expect_error(404, "route.no_cell");
    router
        .get("/api/v1/orders/not-an-id")
        .token(&cust)
        .send()
        .expect_error(400, "request.invalid");
    // A customer's order list is merged from every cell: no home cell needed.
    let none = router
        .get("/api/v1/orders")
        .token(&router.token("customer", 502, None))
        .send()
        .expect_status(200);
    assert_eq!(none.json["orders"], json!([]));
    assert_eq!(none.json["partial"], false);
    router
        .post("/admin/v1/cells")
        .token(&cust)
        .json(&json!({ "http": "127.0.0.1:1" }))
        .send()
        .expect_error(403, "auth.forbidden");
    follower
        .post("/admin/v1/cells")
        .token(&follower.admin())
        .json(&json!({ "http": berlin.addr().to_string() }))
        .send()
        .expect_error(409, "router.follower");
}

#[test]
fn a_region_moves_while_orders_flow() {
    let (a, b, router) = berlin_and_spare();
    let router = Arc::new(router);

    // The region with the most open restaurants near the centre moves.
    let mut by_region: BTreeMap<RegionId, Vec<&Pick>> = BTreeMap::new();
    for p in fixtures::pool(&a) {
        by_region.entry(region_of(&p.id)).or_default().push(p);
    }
    let (region, picks) = by_region
        .into_iter()
        .max_by_key(|(_, v)| v.len())
        .expect("open restaurants");
    let picks: Vec<Pick> = picks.into_iter().take(5).cloned().collect();
    let cust = router.token("customer", 601, None);
    let before = place(&router, &cust, &picks[0], &idem_key("mv")).expect_status(201);
    let before = before.json["order_id"].as_str().unwrap().to_owned();

    // A loop keeps placing orders for the region through the router.
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let placer = {
        let (router, stop, picks, cust) =
            (router.clone(), stop.clone(), picks.clone(), cust.clone());
        std::thread::spawn(move || {
            let mut log = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let sent = epoch.elapsed();
                let r = place(&router, &cust, &picks[i % picks.len()], &idem_key("mv"));
                log.push((sent, epoch.elapsed(), r.status, r.json.clone()));
                i += 1;
                std::thread::sleep(Duration::from_millis(40));
            }
            log
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    let move_start = epoch.elapsed();
    let moved = router
        .post(&format!("/admin/v1/regions/{region}/move"))
        .token(&router.admin())
        .json(&json!({ "to": "3" }))
        .send()
        .expect_status(200);
    let move_end = epoch.elapsed();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let log = placer.join().expect("placer");
    assert!(moved.json["restaurants_copied"].as_u64().unwrap() >= picks.len() as u64);

    let mut acked = Vec::new();
    let (mut on_a, mut on_b) = (0, 0);
    for (sent, done, status, body) in &log {
        match status {
            201 => {
                let id = body["order_id"].as_str().expect("order_id").to_owned();
                let cell = order_cell(&id);
                if *done < move_start {
                    assert_eq!(cell, 1, "placed before the move: on A");
                }
                if *sent > move_end {
                    assert_eq!(cell, 3, "placed after the move: on B");
                }
                if cell == 1 {
                    on_a += 1
                } else {
                    on_b += 1
                }
                acked.push(id);
            }
            // Only an order racing the flip may be refused by A; it was never acknowledged.
            409 => assert_eq!(body["error"]["code"], "order.region_moved", "{body}"),
            other => panic!("placement answered {other}: {body}"),
        }
    }
    eprintln!("orders acknowledged: {} on A, {on_b} on B", on_a);
    assert!(
        on_a > 0 && on_b > 0,
        "orders flowed on both sides of the move"
    );
    // Every acknowledged order exists exactly once: on the cell its id names, and only there.
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len());
    for id in &acked {
        let (home, other) = if order_cell(id) == 1 {
            (&a, &b)
        } else {
            (&b, &a)
        };
        home.get(&format!("/api/v1/orders/{id}"))
            .token(&cust)
            .send()
            .expect_status(200);
        assert_eq!(
            other
                .get(&format!("/api/v1/orders/{id}"))
                .token(&cust)
                .send()
                .status,
            404
        );
        router
            .get(&format!("/api/v1/orders/{id}"))
            .token(&cust)
            .send()
            .expect_status(200);
    }
    // B serves the region's catalog now.
    for p in &picks {
        b.get(&format!("/api/v1/restaurants/{}/menu", p.id))
            .token(&cust)
            .send()
            .expect_status(200);
    }
    let at = &picks[0].menu["restaurant"];
    let found = search(
        &router,
        &cust,
        (at["lat"].as_f64().unwrap(), at["lng"].as_f64().unwrap()),
    )
    .expect_status(200);
    assert!(
        found.text.contains(&picks[0].id),
        "search through the router finds it on B"
    );
    // The order placed before the move completes on A, reached by its id.
    deliver(&router, 1, &before, &picks[0], 61);
    assert_eq!(order_status(&router, &cust, &before), "delivered");
}

#[test]
fn a_drain_ends_only_after_the_last_active_order() {
    let (a, _spare, router) = berlin_and_spare();
    let cust = router.token("customer", 701, None);
    let pick = fixtures::pool(&a)[0].clone();
    let order = place(&router, &cust, &pick, &idem_key("dr")).expect_status(201);
    let order = order.json["order_id"].as_str().unwrap().to_owned();

    let drain = router
        .post("/admin/v1/cells/1/drain")
        .token(&router.admin())
        .json(&json!({ "to": "3" }))
        .send()
        .expect_status(202);
    assert!(!drain.json["moves"].as_array().unwrap().is_empty());
    let cells = router.cells();
    assert_eq!(admin_state(&cells, 1).as_deref(), Some("draining"));
    // With an order still active, the cell stays draining.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(admin_state(&router.cells(), 1).as_deref(), Some("draining"));
    router
        .post("/admin/v1/cells/1/drain")
        .token(&router.admin())
        .json(&json!({ "to": "3" }))
        .send()
        .expect_status(202);
    // New orders for the region now go to B; the old one finishes on A.
    let fresh = place(&router, &cust, &pick, &idem_key("dr")).expect_status(201);
    assert_eq!(order_cell(fresh.json["order_id"].as_str().unwrap()), 3);
    router.delete_cell_expect(1, 409);
    deliver(&router, 1, &order, &pick, 71);
    router.wait_cells("cell 1 drained", Duration::from_secs(20), |c| {
        admin_state(c, 1).as_deref() == Some("drained")
    });
    router.delete_cell_expect(1, 200);
    assert_eq!(admin_state(&router.cells(), 1), None);
}

#[test]
fn a_killed_cell_is_503_for_its_region_until_it_returns() {
    let (http, quic) = (free_addr(), free_addr());
    let mut berlin = Cell::start(CellOpts {
        cell_id: Some(1),
        listen: Some((http, quic)),
        ..CellOpts::default()
    });
    let munich = Cell::start(munich_opts());
    // A short hold: a cell that does not come back is answered 503 once it has passed.
    let router = Router::start(
        "[http]\nhold_ms = 300\n[limits]\nper_token_rps = 2\nper_token_burst = 40\n",
        None,
    );
    router.add_cell(berlin.addr(), None).expect_status(201);
    router.add_cell(munich.addr(), None).expect_status(201);
    let cust = router.token("customer", 801, None);
    search(&router, &cust, fixtures::CENTRE).expect_status(200);

    berlin.kill9();
    let r = search(&router, &cust, fixtures::CENTRE).expect_error(503, "cell.unavailable");
    assert!(r.headers.contains_key("retry-after"));
    search(&router, &cust, MUNICH).expect_status(200);
    router.wait_cells("berlin down", Duration::from_secs(10), |c| {
        c["cells"][0]["up"] == false
    });

    berlin.restart();
    let back = Instant::now();
    while search(&router, &cust, fixtures::CENTRE).status != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "router never recovered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Oversized bodies stop at the edge.
    let big = json!({ "restaurant_id": "1", "pad": "x".repeat(100_000) });
    router
        .post("/api/v1/orders")
        .token(&cust)
        .header("Idempotency-Key", "big")
        .json(&big)
        .send()
        .expect_error(413, "request.too_large");

    // The edge limits each token: past its burst, 429 with Retry-After.
    let greedy = router.token("customer", 802, None);
    let statuses: Vec<u16> = (0..60)
        .map(|_| search(&router, &greedy, MUNICH).status)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    let limited = search(&router, &greedy, MUNICH).expect_error(429, "rate_limited");
    assert!(limited.headers.contains_key("retry-after"));
}
