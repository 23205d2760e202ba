//! Answers across a cell border, through the router: two cells own two neighbouring regions;
//! a search centred on their shared edge returns the restaurants of both by distance, pages
//! stably, and says `partial: true` while one cell hangs or is gone; a customer's orders in
//! both cells come back as one history, newest first.

use domain::{RegionId, RestaurantId};
use itest::fixtures::{PM_VISA, idem_key, order_body, valid_lines};
use itest::router::{NO_LIMITS, Router};
use itest::{Cell, CellOpts, Resp};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

type LatLng = (f64, f64);

/// The geometry of the test: the region around the fixtures' centre, the neighbour across
/// one of its edges, that edge's midpoint, and a demo centre 1.5 km inside each region.
struct Border {
    a: RegionId,
    b: RegionId,
    edge_mid: LatLng,
    a_centre: LatLng,
    b_centre: LatLng,
}

fn border() -> Border {
    let a = RegionId::from_latlng(52.52, 13.405).expect("region");
    let verts: Vec<LatLng> = a
        .cell()
        .boundary()
        .iter()
        .map(|v| (v.lat(), v.lng()))
        .collect();
    let n = verts.len() as f64;
    let mid_a = (
        verts.iter().map(|v| v.0).sum::<f64>() / n,
        verts.iter().map(|v| v.1).sum::<f64>() / n,
    );
    let edge_mid = (
        (verts[0].0 + verts[1].0) / 2.0,
        (verts[0].1 + verts[1].1) / 2.0,
    );
    // The neighbour's centre mirrors this one's across the edge.
    let mid_b = (2.0 * edge_mid.0 - mid_a.0, 2.0 * edge_mid.1 - mid_a.1);
    let b = RegionId::from_latlng(mid_b.0, mid_b.1).expect("region");
    assert_ne!(a, b);
    // Centres to edge midpoint are ~7.4 km apart at resolution 5: 0.2 of it is ~1.5 km.
    let toward = |c: LatLng| {
        (
            edge_mid.0 + 0.2 * (c.0 - edge_mid.0),
            edge_mid.1 + 0.2 * (c.1 - edge_mid.1),
        )
    };
    eprintln!(
        "border: regions {a} (centre {mid_a:?}) and {b} (centre {mid_b:?}), edge midpoint \
         {edge_mid:?}"
    );
    Border {
        a,
        b,
        edge_mid,
        a_centre: toward(mid_a),
        b_centre: toward(mid_b),
    }
}

/// A demo cell of 40 restaurants within 1 km of `centre` (all inside its region).
fn demo_cell(id: u32, name: &str, centre: LatLng) -> Cell {
    Cell::start(CellOpts {
        cell_id: Some(id),
        config_toml: Some(format!(
            "[cell]\nname = \"{name}\"\n[demo]\ncity_name = \"{name}\"\ncenter_lat = {}\n\
             center_lng = {}\nradius_km = 1.0\nrestaurants = 40\n",
            centre.0, centre.1
        )),
        ..CellOpts::default()
    })
}

fn both_up(cells: &Value) -> bool {
    cells["cells"]
        .as_array()
        .is_some_and(|c| c.len() == 2 && c.iter().all(|c| c["up"] == true))
}

fn region_of(id: &str) -> RegionId {
    id.parse::<RestaurantId>()
        .expect("restaurant id")
        .region()
        .expect("region")
}

fn search_page(r: &Router, token: &str, at: LatLng, page: u64, size: u32) -> Resp {
    r.get(&format!(
        "/api/v1/restaurants?lat={}&lng={}&radius=3km&page={page}&page_size={size}",
        at.0, at.1
    ))
    .token(token)
    .send()
    .expect_status(200)
}

/// Every page of a search at `size` rows a page, concatenated: followed by `next_page`, or
/// by `next_cursor` when `by_cursor`.
fn all_pages(r: &Router, token: &str, at: LatLng, size: u32, by_cursor: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut v = search_page(r, token, at, 1, size).json;
    loop {
        assert_eq!(v["partial"], false, "{v}");
        let got = v["restaurants"].as_array().expect("restaurants");
        assert!(got.len() <= size as usize);
        rows.extend(got.iter().cloned());
        v = match (
            by_cursor,
            v["next_page"].as_u64(),
            v["next_cursor"].as_str(),
        ) {
            (false, Some(n), _) => search_page(r, token, at, n, size).json,
            (true, _, Some(c)) => {
                r.get(&format!(
                    "/api/v1/restaurants?lat={}&lng={}&radius=3km&page_size={size}&cursor={c}",
                    at.0, at.1
                ))
                .token(token)
                .send()
                .expect_status(200)
                .json
            }
            _ => return rows,
        };
    }
}

/// The ids a cell itself finds around `at`.
fn direct_ids(cell: &Cell, token: &str, at: LatLng) -> BTreeSet<String> {
    let v = cell
        .get(&format!(
            "/api/v1/restaurants?lat={}&lng={}&radius=3km&page_size=50",
            at.0, at.1
        ))
        .token(token)
        .send()
        .expect_status(200)
        .json;
    assert!(v["next_page"].is_null(), "40 restaurants fit one page");
    ids(v["restaurants"].as_array().expect("restaurants"))
}

fn ids(rows: &[Value]) -> BTreeSet<String> {
    rows.iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

fn distances(rows: &[Value]) -> Vec<u64> {
    rows.iter()
        .map(|r| r["distance_m"].as_u64().expect("distance_m"))
        .collect()
}

fn place(r: &Router, token: &str, restaurant: &str) -> String {
    let menu = r
        .get(&format!("/api/v1/restaurants/{restaurant}/menu"))
        .token(token)
        .send()
        .expect_status(200)
        .json;
    let lines = valid_lines(&menu, false);
    let at = (
        menu["restaurant"]["lat"].as_f64().expect("lat"),
        menu["restaurant"]["lng"].as_f64().expect("lng"),
    );
    let placed = r
        .post("/api/v1/orders")
        .token(token)
        .header("Idempotency-Key", &idem_key("xcell"))
        .json(&order_body(restaurant, &[(&lines[0], 1)], at, PM_VISA))
        .send()
        .expect_status(201);
    placed.json["order_id"]
        .as_str()
        .expect("order_id")
        .to_owned()
}

#[test]
fn a_search_on_the_border_merges_both_cells_and_says_partial_when_one_is_gone() {
    let g = border();
    let mut a = demo_cell(1, "west", g.a_centre);
    let b = demo_cell(2, "east", g.b_centre);
    let router = Router::start(
        &format!("{NO_LIMITS}\n[fanout]\nsearch_deadline_ms = 300\norders_deadline_ms = 300\n"),
        None,
    );
    router
        .add_cell(a.addr(), Some(vec![g.a.to_string()]))
        .expect_status(201);
    router
        .add_cell(b.addr(), Some(vec![g.b.to_string()]))
        .expect_status(201);
    router.wait_cells("both cells up", Duration::from_secs(10), both_up);
    let cust = router.token("customer", 7001, Some(1));
    router
        .get(&format!(
            "/api/v1/restaurants?lat={}&lng={}&radius=3km",
            g.edge_mid.0, g.edge_mid.1
        ))
        .send()
        .expect_error(401, "auth.unauthorized");
    router
        .get(&format!(
            "/api/v1/restaurants?lat={}&lng={}&radius=3km&page=2&cursor=5_1_",
            g.edge_mid.0, g.edge_mid.1
        ))
        .token(&cust)
        .send()
        .expect_error(400, "search.invalid_cursor");

    // Both cells' restaurants, by distance from the border, the same rows at any page size.
    // A restaurant opening or closing at a minute boundary between the calls changes the
    // set; a second round then agrees.
    let mut round = 0;
    let merged = loop {
        round += 1;
        let want: BTreeSet<String> = direct_ids(&a, &a.token("customer", 7001), g.edge_mid)
            .union(&direct_ids(&b, &b.token("customer", 7001), g.edge_mid))
            .cloned()
            .collect();
        let big = all_pages(&router, &cust, g.edge_mid, 50, false);
        let small = all_pages(&router, &cust, g.edge_mid, 7, false);
        let cursored = all_pages(&router, &cust, g.edge_mid, 7, true);
        if (ids(&big) == want && big == small && big == cursored) || round == 3 {
            assert_eq!(ids(&big), want, "the merged search is both cells' answers");
            assert_eq!(big, small, "pages of 7 concatenate to pages of 50");
            assert_eq!(big, cursored, "so do pages of 7 by cursor");
            break big;
        }
    };
    let regions: BTreeSet<RegionId> = merged
        .iter()
        .map(|r| region_of(r["id"].as_str().expect("id")))
        .collect();
    assert_eq!(
        regions,
        BTreeSet::from([g.a, g.b]),
        "restaurants of both cells"
    );
    eprintln!(
        "merged search: {} restaurants, {} from the west cell",
        merged.len(),
        merged
            .iter()
            .filter(|r| region_of(r["id"].as_str().expect("id")) == g.a)
            .count()
    );
    let d = distances(&merged);
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "by distance: {d:?}");
    let first = search_page(&router, &cust, g.edge_mid, 1, 7).json;
    assert_eq!(
        first["total"].as_u64(),
        Some(merged.len() as u64),
        "total counts both cells"
    );

    // A customer's orders in both cells: one history, newest first, paged by one cursor.
    let west = merged
        .iter()
        .find(|r| region_of(r["id"].as_str().expect("id")) == g.a)
        .expect("a west restaurant");
    let east = merged
        .iter()
        .find(|r| region_of(r["id"].as_str().expect("id")) == g.b)
        .expect("an east restaurant");
    let older = place(&router, &cust, west["id"].as_str().expect("id"));
    let newer = place(&router, &cust, east["id"].as_str().expect("id"));
    let history = router
        .get("/api/v1/orders?customer=me")
        .token(&cust)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(history["partial"], false, "{history}");
    let listed: Vec<&str> = history["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["order_id"].as_str().expect("order_id"))
        .collect();
    assert_eq!(listed, [newer.as_str(), older.as_str()]);
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let v = router
            .get(&format!("/api/v1/orders?customer=me&limit=1{cursor}"))
            .token(&cust)
            .send()
            .expect_status(200)
            .json;
        paged.extend(
            v["orders"]
                .as_array()
                .expect("orders")
                .iter()
                .map(|o| o["order_id"].as_str().expect("order_id").to_owned()),
        );
        match v["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
        assert!(paged.len() <= 2, "paging ran past both orders: {paged:?}");
    }
    assert_eq!(paged, [newer.clone(), older.clone()]);

    // One cell hangs: the answer comes at the deadline with the other's restaurants.
    b.pause(true);
    let asked = Instant::now();
    let v = search_page(&router, &cust, g.edge_mid, 1, 50).json;
    eprintln!(
        "partial answer after {:?} (deadline 300 ms)",
        asked.elapsed()
    );
    b.pause(false);
    assert_eq!(v["partial"], true, "{v}");
    assert_eq!(v["missing_cells"], serde_json::json!(["east"]));
    let rows = v["restaurants"].as_array().expect("restaurants");
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| region_of(r["id"].as_str().expect("id")) == g.a),
        "only the west cell's restaurants: {v}"
    );

    router.wait_cells("both cells up again", Duration::from_secs(10), both_up);

    // One cell gone: the search and the history say so, with what the other holds.
    a.kill9();
    let v = search_page(&router, &cust, g.edge_mid, 1, 50).json;
    assert_eq!(v["partial"], true, "{v}");
    assert_eq!(v["missing_cells"], serde_json::json!(["west"]));
    assert!(
        v["restaurants"]
            .as_array()
            .expect("restaurants")
            .iter()
            .all(|r| region_of(r["id"].as_str().expect("id")) == g.b)
    );
    let h = router
        .get("/api/v1/orders?customer=me")
        .token(&cust)
        .send()
        .expect_status(200)
        .json;
    assert_eq!(h["partial"], true, "{h}");
    assert_eq!(h["orders"][0]["order_id"], newer.as_str());
    assert_eq!(h["orders"].as_array().map(Vec::len), Some(1));
}
