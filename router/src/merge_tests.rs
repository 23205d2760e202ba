//! Merge and paging of fanned-out answers: the merged pages of two cells equal one sorted
//! list sliced, whatever page size the client asks for.

use super::*;
use domain::{CellId, SnowflakeGen};

fn hit(d: u64, id: &str) -> Hit {
    Hit {
        distance_m: d,
        id: id.into(),
        body: json!({"id": id, "distance_m": d}),
    }
}

/// A cell as the router reads it: rows in the cell's order (exact distance, which may order
/// two rows of one rounded metre against their ids), read page by page until [`enough`].
fn read_cell(rows: &[Hit], paging: Paging) -> CellHits {
    let size = paging.fetch_size() as usize;
    let mut acc = CellHits {
        hits: Vec::new(),
        total: rows.len() as u64,
    };
    for chunk in rows.chunks(size) {
        acc.hits.extend(chunk.iter().cloned());
        if enough(&acc.hits, paging.wanted()) {
            break;
        }
    }
    acc
}

fn ids(v: &Value, key: &str, field: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_str().unwrap().to_owned())
        .collect()
}

/// Two cells; in cell A, "a9" precedes "a1" at the same rounded metre (its exact distance
/// is smaller), the case that breaks a naive top-N merge.
fn two_cells() -> (Vec<Hit>, Vec<Hit>) {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for i in 0..40u64 {
        a.push(hit(100 + i * 7, &format!("a{i:02}")));
        b.push(hit(103 + i * 5, &format!("b{i:02}")));
    }
    a.insert(3, hit(120, "a99"));
    a.insert(4, hit(120, "a00x"));
    (a, b)
}

#[test]
fn pages_concatenate_to_the_single_big_page_with_no_gap_or_duplicate() {
    let (a, b) = two_cells();
    let mut expected: Vec<Hit> = a.iter().chain(b.iter()).cloned().collect();
    expected.sort_by(|x, y| (x.distance_m, &x.id).cmp(&(y.distance_m, &y.id)));
    let expected: Vec<String> = expected.into_iter().map(|h| h.id).collect();
    for size in [1u32, 3, 7, 20, 50] {
        let mut seen = Vec::new();
        let mut page = 1;
        loop {
            let p = Paging {
                page,
                page_size: size,
            };
            let v = merge_search(vec![read_cell(&a, p), read_cell(&b, p)], &[], p);
            assert_eq!(v["total"], 82);
            assert_eq!(v["partial"], false);
            assert!(v.get("missing_cells").is_none());
            seen.extend(ids(&v, "restaurants", "id"));
            match v["next_page"].as_u64() {
                Some(n) => page = n as u32,
                None => break,
            }
        }
        assert_eq!(seen, expected, "page size {size}");
    }
}

#[test]
fn a_missing_cell_makes_the_page_partial_and_is_named() {
    let (a, _) = two_cells();
    let p = Paging {
        page: 1,
        page_size: 5,
    };
    let v = merge_search(vec![read_cell(&a, p)], &["munich".into()], p);
    assert_eq!(v["partial"], true);
    assert_eq!(v["missing_cells"], json!(["munich"]));
    assert_eq!(
        ids(&v, "restaurants", "id"),
        ["a00", "a01", "a02", "a00x", "a99"]
    );
}

#[test]
fn a_cell_is_read_past_ties_at_the_boundary() {
    let rows = [hit(1, "x"), hit(2, "y"), hit(2, "a"), hit(3, "z")];
    assert!(!enough(&rows[..2], 2), "the next row may tie at 2 m");
    assert!(!enough(&rows[..3], 2));
    assert!(enough(&rows, 2));
    assert!(!enough(&rows[..1], 2));
}

#[test]
fn paging_and_queries_are_checked_and_rewritten() {
    assert_eq!(
        Paging::from_query(Some("lat=1&lng=2")),
        Ok(Paging {
            page: 1,
            page_size: 20
        })
    );
    assert_eq!(
        Paging::from_query(Some("page=3&page_size=50"))
            .unwrap()
            .wanted(),
        150
    );
    assert_eq!(
        Paging::from_query(Some("page=3&page_size=50"))
            .unwrap()
            .fetch_size(),
        50
    );
    assert_eq!(
        Paging::from_query(Some("page=1&page_size=5"))
            .unwrap()
            .fetch_size(),
        6
    );
    for bad in [
        "page=0",
        "page=501",
        "page=x",
        "page_size=51",
        "page_size=0",
    ] {
        assert!(Paging::from_query(Some(bad)).is_err(), "{bad}");
    }
    assert_eq!(
        rewrite_query(
            Some("lat=1&page=2&lng=3&page_size=9"),
            &[("page", "1".into()), ("page_size", "50".into())]
        ),
        "lat=1&lng=3&page=1&page_size=50"
    );
    assert_eq!(list_limit(None), Ok(DEFAULT_LIMIT));
    assert!(list_limit(Some("limit=101")).is_err());
    assert!(list_limit(Some("limit=0")).is_err());
}

fn order(id: domain::OrderId, at: i64) -> Value {
    json!({"order_id": id.to_string(), "created_at": at})
}

#[test]
fn order_lists_merge_newest_first_and_page_by_one_cursor() {
    let mut g1 = SnowflakeGen::new(CellId::new(1).unwrap());
    let mut g2 = SnowflakeGen::new(CellId::new(2).unwrap());
    let mut one: Vec<(i64, Value)> = (0..5)
        .map(|i| {
            (
                1_000 + i * 10,
                order(g1.next_order(1_000 + i * 10), 1_000 + i * 10),
            )
        })
        .collect();
    let mut two: Vec<(i64, Value)> = (0..4)
        .map(|i| {
            (
                1_005 + i * 10,
                order(g2.next_order(1_005 + i * 10), 1_005 + i * 10),
            )
        })
        .collect();
    one.reverse();
    two.reverse();
    // A cell's page: its orders older than the cursor, newest first, `limit` of them.
    let cell_page = |rows: &[(i64, Value)], before: Option<i64>, limit: usize| {
        let rows: Vec<Value> = rows
            .iter()
            .filter(|(at, _)| before.is_none_or(|b| *at < b))
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect();
        let more = rows.len() == limit;
        CellOrders::from_json(&json!({"orders": rows, "next_cursor": more.then_some("c")})).unwrap()
    };
    let mut before = None;
    let mut seen = Vec::new();
    loop {
        let v = merge_orders(
            vec![cell_page(&one, before, 4), cell_page(&two, before, 4)],
            &[],
            4,
        );
        assert_eq!(v["partial"], false);
        let page: Vec<i64> = v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["created_at"].as_i64().unwrap())
            .collect();
        seen.extend(page);
        match v["next_cursor"].as_str() {
            Some(c) => before = Some(c.split_once('_').unwrap().0.parse().unwrap()),
            None => break,
        }
    }
    let mut expected: Vec<i64> = one.iter().chain(two.iter()).map(|(at, _)| *at).collect();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, expected);
    let v = merge_orders(vec![cell_page(&one, None, 4)], &["b".into()], 4);
    assert_eq!(v["partial"], true);
    assert_eq!(v["missing_cells"], json!(["b"]));
}
