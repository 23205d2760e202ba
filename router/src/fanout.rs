//! Requests answered from several cells: a search whose disk crosses a cell border, and a
//! customer's order list. Each cell is asked concurrently under one deadline (passed in by
//! the caller); a cell that is down, fails or misses the deadline is left out and the answer
//! says so (`partial: true`, `missing_cells`). A cell's 4xx is the client's mistake and is
//! passed on as it is. The merging itself is pure: [`crate::pages`] for search pages,
//! [`crate::merge`] for order lists.

use crate::error::RouterError;
use crate::merge::{self, CellOrders};
use crate::pages::{self, CellHits, CellPage, CellReader, SearchRequest};
use crate::proxy::Upstream;
use crate::route::Hint;
use crate::table::{Table, Target};
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// Largest cell answer read whole (a page of 50 restaurants or 100 orders is far below).
const MAX_CELL_BODY: usize = 8 << 20;

/// What the fan-out needs of the incoming request.
pub struct Incoming<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub client: IpAddr,
    /// Ask cells marked down too: a held retry, when nobody answered the first time.
    pub probe_down: bool,
}

/// How asking one cell ended.
enum Outcome<T> {
    Got(T),
    /// Down, failed or late: left out.
    Missing,
    /// The cell refused the request (4xx): the client's answer.
    Refused(Response<Body>),
}

fn refusal(status: StatusCode, (code, message): merge::Refusal) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// GETs `path_and_query` from `target` before `deadline`, the client's bearer token passed on.
async fn get_json(
    up: &Upstream,
    target: &Target,
    inc: &Incoming<'_>,
    path_and_query: &str,
    deadline: Instant,
) -> Outcome<Value> {
    if !inc.probe_down && !target.health.is_up() {
        return Outcome::Missing;
    }
    let mut req = Request::get(path_and_query);
    if let Some(auth) = inc.headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let Ok(req) = req.body(Body::empty()) else {
        return Outcome::Missing;
    };
    let ask = async {
        let resp = up.forward(target, req, inc.client).await.ok()?;
        let status = resp.status();
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(Body::new(body), MAX_CELL_BODY)
            .await
            .ok()?;
        Some((status, parts, bytes))
    };
    match tokio::time::timeout_at(deadline, ask).await {
        Ok(Some((status, _, bytes))) if status.is_success() => {
            serde_json::from_slice(&bytes).map_or(Outcome::Missing, Outcome::Got)
        }
        Ok(Some((status, parts, bytes))) if status.is_client_error() => {
            Outcome::Refused(Response::from_parts(parts, Body::from(bytes)))
        }
        _ => {
            metrics::counter!("router_fanout_missing_total", "cell" => target.info.name.clone())
                .increment(1);
            Outcome::Missing
        }
    }
}

/// The distinct owners of `regions` (up or not: a down one is reported missing), by id.
fn owners(table: &Table, regions: &[domain::RegionId]) -> Vec<Arc<Target>> {
    let mut out = BTreeMap::new();
    for r in regions {
        if let Some(owner) = table.map.owner(*r)
            && let Some(t) = table.target(owner.id)
        {
            out.insert(owner.id, t.clone());
        }
    }
    out.into_values().collect()
}

/// `GET /api/v1/restaurants`: every cell whose regions the search disk touches (one, away
/// from borders), merged by distance. `deadline` bounds a fan-out; a search answered by one
/// cell alone waits for it until `alone_deadline` (the usual upstream timeout), since
/// nothing else could answer.
pub async fn search(
    up: &Upstream,
    table: &Table,
    inc: Incoming<'_>,
    deadline: Instant,
    alone_deadline: Instant,
) -> Result<Response<Body>, RouterError> {
    let q = inc.query;
    let centre = crate::route::query_position(q)?
        .ok_or_else(|| RouterError::BadRequest("lat and lng are required".into()))?;
    let lat = merge::query_param(q, "lat").and_then(|v| v.parse::<f64>().ok());
    let lng = merge::query_param(q, "lng").and_then(|v| v.parse::<f64>().ok());
    let radius = match merge::query_param(q, "radius") {
        None => Some(crate::disk::DEFAULT_RADIUS_M),
        Some(r) => crate::disk::parse_radius(r),
    };
    // A radius the cells refuse goes to the centre's cell alone, which says why.
    let regions = match (lat, lng, radius) {
        (Some(lat), Some(lng), Some(r)) => crate::disk::regions_in_disk(lat, lng, r),
        _ => None,
    }
    .unwrap_or_else(|| vec![centre]);
    let mut cells = owners(table, &regions);
    if cells.is_empty() {
        // Nobody owns the disk: the centre's answer (unowned, or its cell down) says so.
        cells.push(table.resolve(Hint::Region(centre), None)?.clone());
    }
    let req = match SearchRequest::from_query(q) {
        Ok(r) => r,
        Err(r) => return Ok(refusal(StatusCode::BAD_REQUEST, r)),
    };
    let deadline = if cells.len() == 1 {
        alone_deadline
    } else {
        metrics::counter!("router_search_fanout_total").increment(1);
        deadline
    };
    let asks = cells
        .iter()
        .map(|t| search_cell(up, t, &inc, &req, deadline));
    let results = futures::future::join_all(asks).await;
    let mut got = Vec::new();
    let mut missing = Vec::new();
    for (t, r) in cells.iter().zip(results) {
        match r {
            Outcome::Got(h) => got.push(h),
            Outcome::Missing => missing.push(t.info.name.clone()),
            Outcome::Refused(resp) => return Ok(resp),
        }
    }
    if got.is_empty() {
        return Err(RouterError::Upstream {
            cell: missing.join(", "),
            reason: "no cell answered before the search deadline".into(),
        });
    }
    Ok(axum::Json(pages::merge_search(got, &missing, &req)).into_response())
}

/// Reads one cell's pages until they hold every row the merged page needs.
async fn search_cell(
    up: &Upstream,
    target: &Target,
    inc: &Incoming<'_>,
    req: &SearchRequest,
    deadline: Instant,
) -> Outcome<CellHits> {
    let mut reader = CellReader::new(u32::from(target.info.id.get()), req);
    loop {
        let (page, size) = reader.request();
        let query = merge::rewrite_query(
            inc.query,
            &["cursor"],
            &[("page", page.to_string()), ("page_size", size.to_string())],
        );
        let pq = format!("/api/v1/restaurants?{query}");
        let v = match get_json(up, target, inc, &pq, deadline).await {
            Outcome::Got(v) => v,
            Outcome::Missing => return Outcome::Missing,
            Outcome::Refused(r) => return Outcome::Refused(r),
        };
        let Some(p) = CellPage::from_json(&v) else {
            return Outcome::Missing;
        };
        if !reader.feed(p) {
            return Outcome::Got(reader.finish());
        }
    }
}

/// `GET /api/v1/orders`: the caller's orders from every cell in the map, newest first.
pub async fn orders(
    up: &Upstream,
    table: &Table,
    inc: Incoming<'_>,
    deadline: Instant,
) -> Result<Response<Body>, RouterError> {
    let limit = match merge::list_limit(inc.query) {
        Ok(l) => l,
        Err(r) => return Ok(refusal(StatusCode::BAD_REQUEST, r)),
    };
    let mut cells: Vec<Arc<Target>> = table.targets().cloned().collect();
    cells.sort_by_key(|t| t.info.id);
    if cells.is_empty() {
        return Err(crate::table::Unroutable::NoCell.into());
    }
    let pq = format!("/api/v1/orders?{}", inc.query.unwrap_or(""));
    let asks = cells.iter().map(|t| get_json(up, t, &inc, &pq, deadline));
    let results = futures::future::join_all(asks).await;
    let mut got = Vec::new();
    let mut missing = Vec::new();
    for (t, r) in cells.iter().zip(results) {
        match r {
            Outcome::Got(v) => match CellOrders::from_json(&v) {
                Some(o) => got.push(o),
                None => missing.push(t.info.name.clone()),
            },
            Outcome::Missing => missing.push(t.info.name.clone()),
            Outcome::Refused(resp) => return Ok(resp),
        }
    }
    if got.is_empty() {
        return Err(RouterError::Upstream {
            cell: missing.join(", "),
            reason: "no cell answered before the deadline".into(),
        });
    }
    Ok(axum::Json(merge::merge_orders(got, &missing, limit)).into_response())
}
