//! The admin API (admin role): cells with health and load, the map and its audit log, and
//! the operations — add a cell, move a region, drain, remove. The `router` CLI calls these.

use crate::error::RouterError;
use crate::server::{RouterApp, require_admin};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use cellmap::{CellState, RegionKey};
use domain::CellId;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

pub fn routes() -> Router<RouterApp> {
    Router::new()
        .route("/admin/v1/cells", get(list_cells).post(add_cell))
        .route("/admin/v1/cells/{id}", delete(remove_cell))
        .route("/admin/v1/cells/{id}/drain", post(drain_cell))
        .route("/admin/v1/regions/{region}/move", post(move_region))
        .route("/admin/v1/map", get(get_map))
        .route("/admin/v1/audit", get(audit))
}

fn parse_cell(s: &str) -> Result<CellId, RouterError> {
    s.parse::<u32>()
        .ok()
        .and_then(|n| CellId::new(n).ok())
        .ok_or_else(|| RouterError::BadRequest(format!("{s:?} is not a cell id (0..=1023)")))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, RouterError> {
    serde_json::from_slice(body).map_err(|e| RouterError::BadRequest(format!("request body: {e}")))
}

#[derive(Serialize)]
pub struct CellView {
    id: CellId,
    name: String,
    http: String,
    quic: Option<String>,
    state: CellState,
    up: bool,
    active_orders: u64,
    drivers_online: u64,
    restaurants: u64,
    map_version: u64,
    regions: Vec<RegionKey>,
    /// While draining: orders left, the oldest's age, drivers still serving, expected end.
    #[serde(skip_serializing_if = "Option::is_none")]
    drain: Option<cellapi::DrainProgress>,
    /// A sample of live driver positions from the cell's last health check.
    drivers_sample: Vec<cellapi::DriverDot>,
}

async fn list_cells(
    State(app): State<RouterApp>,
    headers: HeaderMap,
) -> Result<Response, RouterError> {
    require_admin(&app, &headers)?;
    let table = app.control().live.load_full();
    let mut cells: Vec<CellView> = table
        .targets()
        .map(|t| {
            let h = &t.health;
            CellView {
                id: t.info.id,
                name: t.info.name.clone(),
                http: t.info.http.clone(),
                quic: t.info.quic.clone(),
                state: t.info.state,
                up: h.is_up(),
                active_orders: h.active_orders.load(Ordering::Relaxed),
                drivers_online: h.drivers_online.load(Ordering::Relaxed),
                restaurants: h.restaurants.load(Ordering::Relaxed),
                map_version: h.map_version.load(Ordering::Relaxed),
                regions: table.map.regions_of(t.info.id),
                drain: h.drain.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                drivers_sample: h
                    .drivers_sample
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone(),
            }
        })
        .collect();
    cells.sort_by_key(|c| c.id);
    Ok(Json(serde_json::json!({"version": table.map.version, "cells": cells})).into_response())
}

#[derive(Deserialize)]
struct AddCell {
    /// `host:port` of the cell's HTTP listener.
    http: String,
    /// H3 regions (resolution 5) to own; default: where it holds restaurants, unowned.
    regions: Option<Vec<RegionKey>>,
    /// Standby instances of the same cell, promoted by the health check when `http` fails.
    #[serde(default)]
    standby: Vec<String>,
}

async fn add_cell(
    State(app): State<RouterApp>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, RouterError> {
    let who = require_admin(&app, &headers)?;
    let req: AddCell = json_body(&body)?;
    let map = app
        .control()
        .add_cell(req.http, req.regions, req.standby, &who)
        .await?;
    Ok((StatusCode::CREATED, Json(map)).into_response())
}

#[derive(Deserialize)]
struct Target {
    to: String,
}

async fn move_region(
    State(app): State<RouterApp>,
    headers: HeaderMap,
    Path(region): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, RouterError> {
    let who = require_admin(&app, &headers)?;
    let region: RegionKey = region.parse().map_err(RouterError::BadRequest)?;
    let to = parse_cell(&json_body::<Target>(&body)?.to)?;
    let report = app.control().move_region(region, to, &who).await?;
    Ok(Json(report).into_response())
}

async fn drain_cell(
    State(app): State<RouterApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response, RouterError> {
    let who = require_admin(&app, &headers)?;
    let cell = parse_cell(&id)?;
    let to = parse_cell(&json_body::<Target>(&body)?.to)?;
    let moves = app.control().drain(cell, to, &who).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "cell": cell,
            "state": "draining",
            "moves": moves,
            "note": "the cell becomes drained once its last active order ends; see GET /admin/v1/cells",
        })),
    )
        .into_response())
}

async fn remove_cell(
    State(app): State<RouterApp>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, RouterError> {
    let who = require_admin(&app, &headers)?;
    let map = app.control().remove(parse_cell(&id)?, &who).await?;
    Ok(Json(map).into_response())
}

async fn get_map(
    State(app): State<RouterApp>,
    headers: HeaderMap,
) -> Result<Response, RouterError> {
    require_admin(&app, &headers)?;
    let map = app.control().live.load_full().map.clone();
    Ok(Json(&*map).into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    limit: Option<usize>,
}

async fn audit(
    State(app): State<RouterApp>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Result<Response, RouterError> {
    require_admin(&app, &headers)?;
    let entries = app
        .control()
        .audit(q.limit.unwrap_or(100).clamp(1, 10_000))
        .await?;
    Ok(Json(entries).into_response())
}
