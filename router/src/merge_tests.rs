//! Merged order lists: two cells' orders page newest first by one cursor.

use super::*;
use domain::{CellId, SnowflakeGen};

#[test]
fn queries_are_checked_and_rewritten() {
    assert_eq!(
        rewrite_query(
            Some("lat=1&page=2&cursor=x&lng=3&page_size=9"),
            &["cursor"],
            &[("page", "1".into()), ("page_size", "50".into())]
        ),
        "lat=1&lng=3&page=1&page_size=50"
    );
    assert_eq!(query_param(Some("a=1&b=2&b=3"), "b"), Some("2"));
    assert_eq!(query_param(Some("a"), "a"), Some(""));
    assert_eq!(query_param(None, "a"), None);
    assert_eq!(list_limit(None), Ok(DEFAULT_LIMIT));
    assert_eq!(list_limit(Some("limit=100")), Ok(100));
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
