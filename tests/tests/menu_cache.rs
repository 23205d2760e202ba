//! Menus are served from a bounded cache and read from the store on a miss (issue 25): a menu
//! edited through the API is in the very next read, whether it was cached or not, and the
//! cache's hits and misses are in `/metrics`.

use itest::fixtures::*;
use itest::{Cell, CellOpts};
use serde_json::{Value, json};

/// The `available` flag of item `item_id` in a menu body.
fn available(menu: &Value, item_id: &str) -> bool {
    items(menu)
        .into_iter()
        .find(|i| i["id"] == item_id)
        .unwrap_or_else(|| panic!("item {item_id} in the menu"))["available"]
        .as_bool()
        .expect("available")
}

/// The value of an un-labelled series in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn an_edited_menu_is_served_fresh_whether_cached_or_not() {
    // Room for one menu: reading another evicts it.
    let cell = Cell::start(CellOpts {
        config_toml: Some("[catalog]\nmenu_cache_menus = 1\n".into()),
        ..CellOpts::default()
    });
    let cust = cell.token("customer", 2501);
    let (a, b) = (
        restaurant(&cell, 0).id.clone(),
        restaurant(&cell, 1).id.clone(),
    );
    let owner = cell.token("restaurant", &a);
    let item = items(&menu(&cell, &cust, &a))[0]["id"]
        .as_str()
        .expect("item id")
        .to_owned();
    let set = |on: bool| {
        cell.patch(&format!("/api/v1/restaurants/{a}/menu/items/{item}"))
            .token(&owner)
            .json(&json!({ "available": on }))
            .send()
            .expect_status(204);
    };

    // Cached: `a` was just read, and is read again (a hit) before the edit.
    assert!(available(&menu(&cell, &cust, &a), &item));
    set(false);
    assert!(!available(&menu(&cell, &cust, &a), &item));

    // Not cached: reading `b` evicted `a`.
    menu(&cell, &cust, &b);
    set(true);
    assert!(available(&menu(&cell, &cust, &a), &item));

    // The open/closed toggle is in the menu's header, cached or not.
    for cached in [true, false] {
        if !cached {
            menu(&cell, &cust, &b);
        }
        cell.patch(&format!("/api/v1/restaurants/{a}"))
            .token(&owner)
            .json(&json!({ "open": !cached }))
            .send()
            .expect_status(204);
        let m = menu(&cell, &cust, &a);
        assert_eq!(
            m["restaurant"]["manually_closed"], cached,
            "cached: {cached}"
        );
    }

    let text = cell.get("/metrics").send().expect_status(200).text;
    let hits = metric(&text, "catalog_menu_cache_hits_total");
    let misses = metric(&text, "catalog_menu_cache_misses_total");
    assert!(hits >= 1.0 && misses >= 4.0, "hits {hits}, misses {misses}");
    assert!(metric(&text, "catalog_menu_cache_entries") <= 1.0, "{text}");
}
