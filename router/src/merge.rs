//! Merging the answers of several cells into one page: search results by distance from the
//! centre, a customer's orders newest first. Pure: the fan-out in [`crate::fanout`] does the
//! I/O and hands over what each cell said; nothing here reads a clock or a socket.
//!
//! Search order is `(distance_m, id)`: total, so pages are stable. A cell sorts by the exact
//! distance, which can order two restaurants of the same rounded metre differently from ids;
//! [`enough`] therefore keeps reading a cell until it has passed the rounded distance of the
//! last wanted row, so every row the merged page needs has been fetched.

use domain::OrderId;
use serde_json::{Map, Value, json};
use std::cmp::Reverse;

/// The cells' own paging bounds (`catalog::search`), checked here because the fan-out
/// rewrites `page`/`page_size` before asking.
pub const MAX_PAGE: u32 = 500;
pub const MAX_PAGE_SIZE: u32 = 50;
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// The cells' bounds for an order list's `limit`.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// A request's `page` and `page_size`, validated like the cell does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u32,
    pub page_size: u32,
}

/// Why a query is refused: `(code, message)` in the cells' error vocabulary.
pub type Refusal = (&'static str, String);

impl Paging {
    pub fn from_query(query: Option<&str>) -> Result<Paging, Refusal> {
        let page = match query_param(query, "page") {
            None => 1,
            Some(v) => v.parse().unwrap_or(0),
        };
        let page_size = match query_param(query, "page_size") {
            None => DEFAULT_PAGE_SIZE,
            Some(v) => v.parse().unwrap_or(0),
        };
        if page == 0 || page > MAX_PAGE {
            return Err((
                "search.invalid_page",
                format!("page must be 1..={MAX_PAGE}"),
            ));
        }
        if page_size == 0 || page_size > MAX_PAGE_SIZE {
            return Err((
                "search.invalid_page_size",
                format!("page_size must be 1..={MAX_PAGE_SIZE}"),
            ));
        }
        Ok(Paging { page, page_size })
    }

    /// Rows of the merged list up to the end of this page.
    pub fn wanted(self) -> usize {
        self.page as usize * self.page_size as usize
    }

    /// The page size to ask each cell for: one more than wanted (to see past a tie in
    /// rounded distance), capped at the cell's maximum.
    pub fn fetch_size(self) -> u32 {
        (self.wanted() + 1).min(MAX_PAGE_SIZE as usize) as u32
    }
}

/// The first value of `name` in a query string, undecoded.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|p| p.split_once('=').or(Some((p, ""))))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The query with `page`/`page_size` (or `limit`/`cursor`) replaced by `set`.
pub fn rewrite_query(query: Option<&str>, set: &[(&str, String)]) -> String {
    let mut out: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let k = p.split_once('=').map_or(*p, |(k, _)| k);
            !set.iter().any(|(name, _)| *name == k)
        })
        .map(str::to_owned)
        .collect();
    out.extend(set.iter().map(|(k, v)| format!("{k}={v}")));
    out.join("&")
}

/// One search result as a cell sent it, with its merge key.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub distance_m: u64,
    pub id: String,
    pub body: Value,
}

impl Hit {
    /// `None` when the row lacks `distance_m` or `id` (then the cell's answer is unusable).
    pub fn from_json(v: Value) -> Option<Hit> {
        let distance_m = v.get("distance_m")?.as_u64()?;
        let id = v.get("id")?.as_str()?.to_owned();
        Some(Hit {
            distance_m,
            id,
            body: v,
        })
    }
}

/// One cell's search page (`{restaurants, next_page, total}`), parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPage {
    pub hits: Vec<Hit>,
    pub next_page: Option<u32>,
    pub total: u64,
}

impl CellPage {
    pub fn from_json(v: &Value) -> Option<CellPage> {
        let hits = v
            .get("restaurants")?
            .as_array()?
            .iter()
            .cloned()
            .map(Hit::from_json)
            .collect::<Option<Vec<_>>>()?;
        Some(CellPage {
            hits,
            next_page: v.get("next_page").and_then(Value::as_u64).map(|p| p as u32),
            total: v.get("total")?.as_u64()?,
        })
    }
}

/// What one cell said in all, its pages concatenated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellHits {
    pub hits: Vec<Hit>,
    pub total: u64,
}

/// Whether the rows read from one cell (its first pages, in its order) hold every row the
/// merged list needs up to `wanted`: past `wanted` rows, and past the rounded distance of
/// the `wanted`-th, since the cell may order rows of one rounded metre unlike `(distance,
/// id)`. Rows at a smaller rounded distance all come before in the cell's exact order.
pub fn enough(hits: &[Hit], wanted: usize) -> bool {
    match (hits.get(wanted.saturating_sub(1)), hits.last()) {
        (Some(boundary), Some(last)) => {
            hits.len() > wanted && last.distance_m > boundary.distance_m
        }
        _ => false,
    }
}

/// The merged page: every cell's rows sorted by `(distance_m, id)` (one row per id), the
/// slice of `paging`, `total` over the cells that answered, and `partial` with the names of
/// the cells that did not.
pub fn merge_search(cells: Vec<CellHits>, missing: &[String], paging: Paging) -> Value {
    let total: u64 = cells.iter().map(|c| c.total).sum();
    let mut all: Vec<Hit> = cells.into_iter().flat_map(|c| c.hits).collect();
    all.sort_by(|a, b| (a.distance_m, &a.id).cmp(&(b.distance_m, &b.id)));
    // A restaurant answered by two cells (mid-move) counts once.
    all.dedup_by(|a, b| a.id == b.id);
    let start = (paging.page as usize - 1) * paging.page_size as usize;
    let restaurants: Vec<Value> = all
        .into_iter()
        .skip(start)
        .take(paging.page_size as usize)
        .map(|h| h.body)
        .collect();
    let more = (paging.wanted() as u64) < total && paging.page < MAX_PAGE;
    let mut out = json!({
        "restaurants": restaurants,
        "next_page": more.then_some(paging.page + 1),
        "total": total,
    });
    mark_partial(&mut out, missing);
    out
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
