//! Requests answered from several cells: a search whose disk crosses a cell border, and a
//! customer's order list. Each cell is asked concurrently under one deadline (passed in by
//! the caller); a cell that is down, fails or misses the deadline is left out and the answer
//! says so (`partial: true`, `missing_cells`). A cell's 4xx is the client's mistake and is
//! passed on as it is. The merging itself is [`crate::merge`].

use crate::error::RouterError;
use crate::merge::{self, CellHits, CellOrders, CellPage, Paging};
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
    if !target.health.is_up() {
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

/// The distinct live owners of `regions`, in map order.
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

/// `GET /api/v1/restaurants`: one cell when the disk stays inside one, else every cell it
/// touches, merged by distance.
pub async fn search(
    up: &Upstream,
    table: &Table,
    inc: Incoming<'_>,
    deadline: Instant,
) -> Result<Response<Body>, RouterError> {
    let q = inc.query;
    let lat = merge::query_param(q, "lat").and_then(|v| v.parse::<f64>().ok());
    let lng = merge::query_param(q, "lng").and_then(|v| v.parse::<f64>().ok());
    let (Some(lat), Some(lng)) = (lat, lng) else {
        return Err(RouterError::BadRequest("lat and lng are required".into()));
    };
    let radius = match merge::query_param(q, "radius") {
        None => Some(crate::disk::DEFAULT_RADIUS_M),
        Some(r) => crate::disk::parse_radius(r),
    };
    let centre = crate::route::query_position(q)?
        .ok_or_else(|| RouterError::BadRequest("lat and lng are required".into()))?;
    // A radius the cells refuse goes to the centre's cell alone, which says why.
    let regions = radius
        .and_then(|r| crate::disk::regions_in_disk(lat, lng, r))
        .unwrap_or_else(|| vec![centre]);
    let cells = owners(table, &regions);
    let paging = match Paging::from_query(q) {
        Ok(p) => p,
        Err(r) => return Ok(refusal(StatusCode::BAD_REQUEST, r)),
    };
    if cells.len() <= 1 {
        // Today's path: the one cell's own answer, under the usual upstream timeout, a page
        // marked complete.
        let target = table.resolve(Hint::Region(centre), None)?;
        return single(up, target, &inc, "/api/v1/restaurants").await;
    }
    metrics::counter!("router_search_fanout_total").increment(1);
    let asks = cells
        .iter()
        .map(|t| search_cell(up, t, &inc, paging, deadline));
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
    Ok(axum::Json(merge::merge_search(got, &missing, paging)).into_response())
}

/// One cell asked alone: its answer passed on, with `partial: false` added to a success.
async fn single(
    up: &Upstream,
    target: &Target,
    inc: &Incoming<'_>,
    path: &str,
) -> Result<Response<Body>, RouterError> {
    let mut req = Request::get(format!("{path}?{}", inc.query.unwrap_or("")));
    if let Some(auth) = inc.headers.get(header::AUTHORIZATION) {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req
        .body(Body::empty())
        .map_err(|e| RouterError::Internal(e.to_string()))?;
    let resp = up.forward(target, req, inc.client).await?;
    if resp.status() != StatusCode::OK {
        return Ok(resp);
    }
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_CELL_BODY)
        .await
        .map_err(|e| RouterError::Upstream {
            cell: target.info.name.clone(),
            reason: e.to_string(),
        })?;
    let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) else {
        return Ok(Response::from_parts(parts, Body::from(bytes)));
    };
    merge::mark_partial(&mut v, &[]);
    Ok(axum::Json(v).into_response())
}

/// Reads one cell's pages until they hold every row the merged page needs.
async fn search_cell(
    up: &Upstream,
    target: &Target,
    inc: &Incoming<'_>,
    paging: Paging,
    deadline: Instant,
) -> Outcome<CellHits> {
    let size = paging.fetch_size();
    let mut acc = CellHits::default();
    for page in 1..=merge::MAX_PAGE {
        let query = merge::rewrite_query(
            inc.query,
            &[("page", page.to_string()), ("page_size", size.to_string())],
        );
        let v = match get_json(
            up,
            target,
            inc,
            &format!("/api/v1/restaurants?{query}"),
            deadline,
        )
        .await
        {
            Outcome::Got(v) => v,
            Outcome::Missing => return Outcome::Missing,
            Outcome::Refused(r) => return Outcome::Refused(r),
        };
        let Some(p) = CellPage::from_json(&v) else {
            return Outcome::Missing;
        };
        acc.total = p.total;
        acc.hits.extend(p.hits);
        if p.next_page.is_none() || merge::enough(&acc.hits, paging.wanted()) {
            break;
        }
    }
    Outcome::Got(acc)
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
