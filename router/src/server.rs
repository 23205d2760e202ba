//! The router's HTTP service: the public entry point (everything under `/api/v1` and `/ws`
//! is proxied to its cell, after rate limits), the driver cell lookup, ops endpoints and the
//! admin API (`admin.rs`).

use crate::config::Config;
use crate::error::RouterError;
use crate::fanout;
use crate::hold;
use crate::limit::Limiter;
use crate::ops::Control;
use crate::proxy::{Upstream, is_upgrade};
use crate::route::{self, Hint, Local};
use crate::table::Target;
use auth::{Principal, Verified, Verifier};
use axum::Router;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{CellId, UnixMs};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct RouterApp(pub(crate) Arc<Inner>);

pub(crate) struct Inner {
    pub cfg: Config,
    pub control: Arc<Control>,
    pub upstream: Upstream,
    pub jwt: Verifier,
    pub per_ip: Limiter<IpAddr>,
    pub per_token: Limiter<u64>,
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl RouterApp {
    pub fn new(
        cfg: Config,
        control: Arc<Control>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        jwt: Verifier,
        upstream_tls: Option<rustls::ClientConfig>,
    ) -> Self {
        let l = cfg.limits;
        RouterApp(Arc::new(Inner {
            upstream: Upstream::new(
                Duration::from_millis(cfg.http.upstream_timeout_ms),
                cfg.http.pool_max_idle_per_cell,
                upstream_tls,
                cfg.upstream.source_addrs.clone(),
            ),
            jwt,
            per_ip: Limiter::new(l.per_ip_rps, l.per_ip_burst),
            per_token: Limiter::new(l.per_token_rps, l.per_token_burst),
            control,
            metrics,
            cfg,
        }))
    }

    pub fn control(&self) -> &Arc<Control> {
        &self.0.control
    }

    /// The whole service.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/live", axum::routing::get(|| async { "ok" }))
            .route("/ready", axum::routing::get(ready))
            .route("/metrics", axum::routing::get(metrics))
            .merge(crate::admin::routes())
            .merge(crate::web::routes(self.0.cfg.demo.enabled))
            .fallback(proxy)
            .with_state(self.clone())
    }
}

async fn ready(State(app): State<RouterApp>) -> Response {
    let table = app.0.control.live.load();
    if table.map.version == 0 {
        // Serving, but with no cell to send anything to.
        return (
            StatusCode::OK,
            "ready (empty map: add cells with `router cells add`)",
        )
            .into_response();
    }
    format!("ready (map version {})", table.map.version).into_response()
}

async fn metrics(State(app): State<RouterApp>) -> Response {
    match &app.0.metrics {
        Some(h) => h.render().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The bearer token from the `Authorization` header, or `?token=` on a WebSocket upgrade
/// only (browsers cannot set headers there; elsewhere a token in a URL would end up in logs).
fn bearer<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    if !is_upgrade(headers) {
        return None;
    }
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

pub(crate) fn verify(app: &RouterApp, token: Option<&str>) -> Result<Verified, RouterError> {
    let t = token.ok_or(RouterError::Unauthorized("missing bearer token"))?;
    app.0.jwt.verify(t, UnixMs::now()).map_err(|e| match e {
        auth::AuthError::Expired => RouterError::Unauthorized("token expired"),
        _ => RouterError::Unauthorized("invalid token"),
    })
}

pub(crate) fn require_admin(app: &RouterApp, headers: &HeaderMap) -> Result<String, RouterError> {
    let v = verify(app, bearer(headers, None))?;
    match v.principal {
        Principal::Admin => Ok(v.name.unwrap_or_else(|| "admin".into())),
        _ => Err(RouterError::Forbidden),
    }
}

fn now_ms() -> u64 {
    UnixMs::now().0.max(0) as u64
}

fn token_key(t: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(t)
}

/// A route label with bounded cardinality: ids replaced by `{id}`.
fn route_label(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()) && s.len() > 6 {
                "{id}"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Everything not answered by the router itself.
async fn proxy(
    State(app): State<RouterApp>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let (result, cell) = route_and_forward(&app, peer.ip(), req).await;
    let resp = result.unwrap_or_else(IntoResponse::into_response);
    let route = if resp.status() == StatusCode::NOT_FOUND && cell.is_none() {
        "unmatched".to_string()
    } else {
        route_label(&path)
    };
    metrics::counter!("router_requests_total",
        "route" => route.clone(),
        "cell" => cell.unwrap_or_else(|| "-".into()),
        "status" => resp.status().as_u16().to_string())
    .increment(1);
    metrics::histogram!("router_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    resp
}

async fn route_and_forward(
    app: &RouterApp,
    ip: IpAddr,
    req: Request,
) -> (Result<Response, RouterError>, Option<String>) {
    let mut cell = None;
    let r = async {
        let now = now_ms();
        if let Err(s) = app.0.per_ip.check(&ip, now) {
            metrics::counter!("router_rate_limited_total", "scope" => "ip").increment(1);
            return Err(RouterError::RateLimited { retry_after_s: s });
        }
        let query = req.uri().query().map(str::to_string);
        let token = bearer(req.headers(), query.as_deref()).map(str::to_string);
        if let Some(t) = &token
            && let Err(s) = app.0.per_token.check(&token_key(t), now)
        {
            metrics::counter!("router_rate_limited_total", "scope" => "token").increment(1);
            return Err(RouterError::RateLimited { retry_after_s: s });
        }
        let limit = app.0.cfg.http.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(RouterError::TooLarge { limit });
        }
        // Every API call needs a token: refuse its absence once, before routing, rather than
        // answer "no cell here" (404) to a caller who sent none. The token itself is the
        // cells' to verify, as for every proxied request.
        let path = req.uri().path();
        if token.is_none() && (path.starts_with("/api/v1/") || path.starts_with("/ws/")) {
            return Err(RouterError::Unauthorized("missing bearer token"));
        }
        route::check_method(req.method().as_str(), path)?;
        // Placing an order without an Idempotency-Key is refused by the cell before it reads
        // the cart; refusing it here too keeps that answer when no cell holds the restaurant.
        if req.method() == Method::POST
            && path.trim_end_matches('/') == "/api/v1/orders"
            && req
                .headers()
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .is_none_or(|v| v.trim().is_empty())
        {
            return Err(RouterError::BadRequest(
                "the Idempotency-Key header is required".into(),
            ));
        }
        let mut hint = route::classify(req.method().as_str(), req.uri().path(), query.as_deref())?;
        let mut req = req;
        // The home cell is read from the token only where a route may need it (the cell
        // verifies every token itself), and at most once per request.
        let mut home: Option<Option<CellId>> = None;
        // A driver's REST pings go to the cell they stream to (their home), so a driver
        // finishing a delivery across a region border stays with the cell holding the order.
        if hint == Hint::Body(route::BodyRoute::Position) && token.is_some() {
            // Verified here anyway: a bad token is a 401 now, not a ping routed by position
            // to wherever (or to no cell at all).
            let h = verify(app, token.as_deref())?.home;
            home = Some(h);
            if h.is_some() {
                hint = Hint::Home;
            }
        }
        if let Hint::Body(kind) = hint {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, limit)
                .await
                .map_err(|_| RouterError::TooLarge { limit })?;
            hint = route::from_body(kind, &bytes)?;
            req = Request::from_parts(parts, Body::from(bytes));
        }
        if let Hint::Local(l @ (Local::Search | Local::Orders)) = hint {
            cell = Some("fanout".to_string());
            return fan_out_held(app, l, req.headers(), query.as_deref(), ip).await;
        }
        if let Hint::Local(l) = hint {
            return local(app, l, token.as_deref(), query.as_deref());
        }
        let home = match (hint, home) {
            (Hint::Home, Some(Some(h))) => Some(h),
            (Hint::Home, _) => verify(app, token.as_deref())?.home,
            _ => None,
        };
        forward_held(app, hint, home, req, ip, &mut cell).await
    }
    .await;
    (r, cell)
}

/// A search or order list from every cell concerned. When no cell answered (the only one
/// is restarting), the read is held and asked again like any GET (see [`crate::hold`]),
/// then also of cells marked down, since a restarted cell answers before the checker
/// notices.
async fn fan_out_held(
    app: &RouterApp,
    l: Local,
    headers: &HeaderMap,
    query: Option<&str>,
    ip: IpAddr,
) -> Result<Response, RouterError> {
    let cfg = &app.0.cfg;
    let mut hold = hold::Hold::new(
        Instant::now(),
        Duration::from_millis(cfg.http.hold_ms),
        HELD_SEED.fetch_add(1, Ordering::Relaxed),
    );
    let mut probe_down = false;
    let mut held = false;
    loop {
        // The fan-out's deadlines, from one clock read per attempt.
        let now = tokio::time::Instant::now();
        let alone = now + Duration::from_millis(cfg.http.upstream_timeout_ms);
        let table = app.0.control.live.load_full();
        let inc = fanout::Incoming {
            headers,
            query,
            client: ip,
            probe_down,
        };
        let r = if l == Local::Search {
            let deadline = now + Duration::from_millis(cfg.fanout.search_deadline_ms);
            fanout::search(&app.0.upstream, &table, inc, deadline, alone).await
        } else {
            let deadline = now + Duration::from_millis(cfg.fanout.orders_deadline_ms);
            fanout::orders(&app.0.upstream, &table, inc, deadline).await
        };
        let e = match r {
            Err(e @ RouterError::Upstream { .. }) => e,
            other => return finish_hold(held, other),
        };
        let Some(pause) = hold.next(Instant::now(), hold::Reach::NotSent, true) else {
            return finish_hold(held, Err(e));
        };
        if !held {
            held = true;
            metrics::gauge!("router_requests_held").increment(1.0);
        }
        probe_down = true;
        tokio::time::sleep(pause).await;
    }
}

/// Sends `req` to the cell for `hint`, holding it while that cell restarts (see
/// [`crate::hold`]): each attempt resolves the cell again, so a map change made meanwhile
/// (a standby's new endpoint, a moved region) is followed.
async fn forward_held(
    app: &RouterApp,
    hint: Hint,
    home: Option<CellId>,
    req: Request,
    ip: IpAddr,
    cell: &mut Option<String>,
) -> Result<Response, RouterError> {
    let started = Instant::now();
    let safe = hold::retry_safe(req.method(), req.headers());
    let budget = Duration::from_millis(app.0.cfg.http.hold_ms);
    let mut hold = hold::Hold::new(started, budget, HELD_SEED.fetch_add(1, Ordering::Relaxed));
    let upgrade = is_upgrade(req.headers()) && req.method() == Method::GET;
    // The body is kept, so the request can be sent again: bounded by `max_body_bytes`.
    let limit = app.0.cfg.http.max_body_bytes;
    let (parts, body) = req.into_parts();
    let bytes = if upgrade {
        Bytes::new()
    } else {
        axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| RouterError::TooLarge { limit })?
    };
    let mut held = false;
    loop {
        let table = app.0.control.live.load_full();
        let target: Arc<Target> = match table.owner(hint, home) {
            Ok(t) => t.clone(),
            Err(e) => return Err(e.into()),
        };
        *cell = Some(target.info.name.clone());
        let attempt = if upgrade {
            match app.0.upstream.connect_for_upgrade(&target).await {
                Ok(stream) => {
                    let req = Request::from_parts(parts, Body::empty());
                    return finish_hold(
                        held,
                        app.0.upstream.upgrade(&target, stream, req, ip).await,
                    );
                }
                Err(e) => Err(e),
            }
        } else {
            let req = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
            app.0.upstream.forward(&target, req, ip).await
        };
        let (error, reach) = match attempt {
            Ok(resp) => return finish_hold(held, Ok(resp)),
            Err(failed) => failed,
        };
        let Some(pause) = hold.next(Instant::now(), reach, safe) else {
            return finish_hold(held, Err(error));
        };
        if !held {
            held = true;
            metrics::gauge!("router_requests_held").increment(1.0);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Counts a held request's outcome once it has one.
fn finish_hold(held: bool, r: Result<Response, RouterError>) -> Result<Response, RouterError> {
    if held {
        metrics::gauge!("router_requests_held").decrement(1.0);
        let outcome = if r.is_ok() { "answered" } else { "gave_up" };
        metrics::counter!("router_held_requests_total", "outcome" => outcome).increment(1);
    }
    r
}

/// Seeds each held request's jitter differently.
static HELD_SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);

/// `GET /api/v1/drivers/cell?lat&lng`: the cell a driver at that position streams to.
fn local(
    app: &RouterApp,
    l: Local,
    token: Option<&str>,
    query: Option<&str>,
) -> Result<Response, RouterError> {
    match l {
        Local::Search | Local::Orders => unreachable!("fanned out by the caller"),
        Local::DriverCell => {
            verify(app, token)?;
            let region = route::query_position(query)?
                .ok_or_else(|| RouterError::BadRequest("lat and lng are required".into()))?;
            let table = app.0.control.live.load_full();
            let t = table.resolve(Hint::Region(region), None)?;
            let i = &t.info;
            let (Some(addr), Some(server_name)) = (&i.quic, &i.quic_server_name) else {
                return Err(RouterError::Unroutable(crate::table::Unroutable::Down {
                    name: format!("{} (no QUIC gateway)", i.name),
                }));
            };
            Ok(axum::Json(serde_json::json!({
                "cell_id": i.id,
                "name": i.name,
                "quic_addr": addr,
                "server_name": server_name,
                "ca_pem": i.quic_ca_pem,
                "fingerprint": i.quic_fingerprint,
                "map_version": table.map.version,
            }))
            .into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_hide_ids() {
        assert_eq!(
            route_label("/api/v1/orders/7345891234567/cancel"),
            "/api/v1/orders/{id}/cancel"
        );
        assert_eq!(route_label("/api/v1/restaurants"), "/api/v1/restaurants");
        assert_eq!(
            route_label("/ws/restaurants/851f1d4bfffffff/orders"),
            "/ws/restaurants/{id}/orders"
        );
    }

    #[test]
    fn bearer_from_header_or_from_query_on_upgrades_only() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h, Some("a=1&token=abc")), None);
        h.insert(header::CONNECTION, "Upgrade".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert_eq!(bearer(&h, Some("a=1&token=abc")), Some("abc"));
        assert_eq!(bearer(&h, Some("token=")), None);
        h.insert(header::AUTHORIZATION, "Bearer xyz".parse().unwrap());
        assert_eq!(bearer(&h, Some("token=abc")), Some("xyz"));
    }
}
