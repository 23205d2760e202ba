//! Merging the answers of several cells: a customer's orders newest first, and what every
//! merged answer shares (the query helpers, `partial`). Search pages are [`crate::pages`].
//! Pure: the fan-out in [`crate::fanout`] does the I/O and hands over what each cell said;
//! nothing here reads a clock or a socket.
//!
//! Orders page by the cells' own cursor, `(created_at, id)` of the last order: one cursor
//! pages every cell, since each answers the orders strictly older than it.

use domain::OrderId;
use serde_json::{Map, Value, json};
use std::cmp::Reverse;

/// The cells' bounds for an order list's `limit`.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// Why a query is refused: `(code, message)` in the cells' error vocabulary.
pub type Refusal = (&'static str, String);

/// The first value of `name` in a query string, undecoded.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The query without the parameters named in `drop` and with those of `set` replaced.
pub fn rewrite_query(query: Option<&str>, drop: &[&str], set: &[(&str, String)]) -> String {
    let mut out: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split_once('=').map_or(*p, |(k, _)| k);
            !set.iter().any(|(name, _)| *name == k) && !drop.contains(&k)
        })
        .map(str::to_owned)
        .collect();
    out.extend(set.iter().map(|(k, v)| format!("{k}={v}")));
    out.join("&")
}

/// Adds `partial` (and, when true, `missing_cells`) to an answer object.
pub fn mark_partial(answer: &mut Value, missing: &[String]) {
    if let Some(o) = answer.as_object_mut() {
        o.insert("partial".into(), Value::Bool(!missing.is_empty()));
        if !missing.is_empty() {
            o.insert("missing_cells".into(), json!(missing));
        }
    }
}

/// One order of a cell's list with its merge key, newest first by `(created_at, id)`: the
/// same key the cells' `cursor` names, so one cursor pages every cell.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedOrder {
    pub created_at: i64,
    pub id: OrderId,
    pub body: Value,
}

/// One cell's order list (`{orders, next_cursor}`), parsed; `more` when it had a next page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellOrders {
    pub orders: Vec<ListedOrder>,
    pub more: bool,
}

impl CellOrders {
    pub fn from_json(v: &Value) -> Option<CellOrders> {
        let orders = v
            .get("orders")?
            .as_array()?
            .iter()
            .map(|o| {
                Some(ListedOrder {
                    created_at: o.get("created_at")?.as_i64()?,
                    id: o.get("order_id")?.as_str()?.parse().ok()?,
                    body: o.clone(),
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(CellOrders {
            orders,
            more: v.get("next_cursor").is_some_and(|c| !c.is_null()),
        })
    }
}

/// `limit` from an order-list query, validated like the cell does.
pub fn list_limit(query: Option<&str>) -> Result<usize, Refusal> {
    let limit = match query_param(query, "limit") {
        None => DEFAULT_LIMIT,
        Some(v) => v.parse().unwrap_or(0),
    };
    if limit == 0 || limit > MAX_LIMIT {
        return Err((
            "request.invalid_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    Ok(limit)
}

/// The merged order list: newest first, `limit` orders, and a cursor after the last one
/// when any cell has older orders left.
pub fn merge_orders(cells: Vec<CellOrders>, missing: &[String], limit: usize) -> Value {
    let any_more = cells.iter().any(|c| c.more);
    let mut all: Vec<ListedOrder> = cells.into_iter().flat_map(|c| c.orders).collect();
    all.sort_by_key(|o| Reverse((o.created_at, o.id)));
    all.dedup_by(|a, b| a.id == b.id);
    let more = any_more || all.len() > limit;
    all.truncate(limit);
    let next_cursor = more
        .then(|| all.last().map(|o| format!("{}_{}", o.created_at, o.id)))
        .flatten();
    let mut out = Map::new();
    out.insert(
        "orders".into(),
        Value::Array(all.into_iter().map(|o| o.body).collect()),
    );
    out.insert("next_cursor".into(), json!(next_cursor));
    let mut out = Value::Object(out);
    mark_partial(&mut out, missing);
    out
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
