//! Discovery, menus, and the restaurant side: availability, open/close, the tablet's order
//! list and order status updates (seed 5.1, 5.2, 5.8).

use super::contract::parse_id;
use super::dto::*;
use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, Auth};
use crate::app::App;
use crate::auth::Principal;
use axum::extract::State;
use axum::http::header;

use axum::response::IntoResponse;
use catalog::{CatalogError, QueryError, SearchQuery};
use domain::{Command, MenuItemId, OrderId, OrderStatus, RestaurantId};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(menu))
        .routes(routes!(set_open))
        .routes(routes!(set_item_available))
        .routes(routes!(restaurant_orders))
        .routes(routes!(update_order_status))
}

const DEFAULT_RADIUS_M: u32 = 5_000;
const DEFAULT_PAGE_SIZE: u32 = 20;

pub(super) fn query_error(e: QueryError) -> ApiError {
    ApiError::bad_request("search.invalid_query", e.to_string())
}

pub(super) fn catalog_error(e: CatalogError) -> ApiError {
    match e {
        CatalogError::UnknownRestaurant(id) => ApiError::not_found("restaurant", id),
        CatalogError::UnknownItem { item, .. } => ApiError::not_found("menu item", item),
        CatalogError::Invalid(v) => ApiError::bad_request("catalog.invalid", v.to_string()),
        CatalogError::Store(s) => super::error::store_error(s),
        CatalogError::Corrupt { .. } => ApiError::internal(e),
    }
}

pub(super) fn parse_restaurant(id: &str) -> Result<RestaurantId, ApiError> {
    parse_id("a restaurant id", id)
}

/// A restaurant may act only on itself; admins on any.
fn require_restaurant(who: &Principal, id: RestaurantId) -> Result<(), ApiError> {
    match who {
        Principal::Admin => Ok(()),
        Principal::Restaurant(r) if *r == id => Ok(()),
        Principal::Restaurant(_) => Err(ApiError::Forbidden(
            "this token is for another restaurant".into(),
        )),
        Principal::Customer(_) | Principal::Driver(_) | Principal::Support => Err(
            ApiError::Forbidden("only the restaurant may do this".into()),
        ),
    }
}

/// Search nearby open restaurants that deliver to the address (seed 5.1).
#[utoipa::path(get, path = "/api/v1/restaurants", params(SearchParams), security(("bearer" = [])),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn search(
    State(app): State<App>,
    _auth: Auth,
    AppQuery(p): AppQuery<SearchParams>,
) -> Result<impl IntoResponse, ApiError> {
    let (Some(lat), Some(lng)) = (p.lat, p.lng) else {
        return Err(ApiError::bad_request(
            "search.missing_location",
            "lat and lng are required",
        ));
    };
    let radius_m = match p.radius.as_deref() {
        None => DEFAULT_RADIUS_M,
        Some(r) => catalog::parse_radius(r).map_err(query_error)?,
    };
    let q = SearchQuery {
        lat,
        lng,
        radius_m,
        cuisine: p.cuisine,
        page: p.page.unwrap_or(1),
        page_size: p.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
    };
    let page = app
        .catalog()
        .search(&q, app.now(), &app.config().pricing)
        .map_err(query_error)?;
    Ok(axum::Json(page))
}

/// A restaurant's menu (seed 5.2), from the menu cache or, on a miss, the store.
#[utoipa::path(get, path = "/api/v1/restaurants/{id}/menu", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = MenuResponse), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn menu(
    State(app): State<App>,
    _auth: Auth,
    AppPath(id): AppPath<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_restaurant(&id)?;
    let body = app
        .catalog()
        .menu_json(id)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| ApiError::not_found("restaurant", id))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body))
}

/// Open or close the restaurant now (the owner's toggle; wins over operating hours).
#[utoipa::path(patch, path = "/api/v1/restaurants/{id}", params(("id" = String, Path)), request_body = RestaurantOpen,
    security(("bearer" = [])), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_open(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<RestaurantOpen>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = parse_restaurant(&id)?;
    require_restaurant(&who, id)?;
    app.catalog()
        .set_open(id, body.open)
        .await
        .map_err(catalog_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Mark a menu item available or sold out; the next menu read shows it.
#[utoipa::path(patch, path = "/api/v1/restaurants/{id}/menu/items/{item_id}",
    params(("id" = String, Path), ("item_id" = String, Path)), request_body = ItemAvailability,
    security(("bearer" = [])), responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn set_item_available(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath((id, item)): AppPath<(String, String)>,
    AppJson(body): AppJson<ItemAvailability>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = parse_restaurant(&id)?;
    let item: MenuItemId = parse_id("a menu item id", &item)?;
    require_restaurant(&who, id)?;
    app.catalog()
        .set_item_available(id, item, body.available)
        .await
        .map_err(catalog_error)?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// The tablet's list of orders: `status=active` (default) or one status.
#[utoipa::path(get, path = "/api/v1/restaurants/{id}/orders", params(("id" = String, Path), RestaurantOrdersParams),
    security(("bearer" = [])), responses((status = 200, body = OrderList), (status = 403, body = ErrorBody)))]
async fn restaurant_orders(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
    AppQuery(p): AppQuery<RestaurantOrdersParams>,
) -> Result<axum::Json<OrderList>, ApiError> {
    let id = parse_restaurant(&id)?;
    require_restaurant(&who, id)?;
    let statuses = match p.status.as_deref() {
        None | Some("active") => active_statuses(),
        Some(s) => vec![s.parse::<OrderStatus>().map_err(|_| {
            ApiError::bad_request("request.invalid_status", format!("unknown status {s:?}"))
        })?],
    };
    let orders = crate::orders::repo::list_for_restaurant(&**app.kv(), id, statuses, 200).await?;
    let now = app.now();
    // The tablet shows who is coming and when.
    let mut views = Vec::with_capacity(orders.len());
    for o in &orders {
        let resp = OrderResponse::build(o, None, now);
        views.push(super::people::with_driver(&app, resp, o).await);
    }
    Ok(axum::Json(OrderList {
        orders: views,
        next_cursor: None,
        partial: None,
        missing_cells: None,
    }))
}

/// Accept, start preparing, mark ready, or reject an order (seed 5.8), through the order
/// state machine: an illegal move is a 409 with the current status.
#[utoipa::path(patch, path = "/api/v1/restaurants/orders/{order_id}", params(("order_id" = String, Path)),
    request_body = RestaurantStatusUpdate, security(("bearer" = [])),
    responses((status = 200, body = StatusResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn update_order_status(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<RestaurantStatusUpdate>,
) -> Result<axum::Json<StatusResponse>, ApiError> {
    let id: OrderId = parse_id("an order id", &id)?;
    if !matches!(who, Principal::Restaurant(_) | Principal::Admin) {
        return Err(ApiError::Forbidden(
            "only the restaurant may update this order".into(),
        ));
    }
    let cmd = match body.status.as_str() {
        "accepted" | "confirmed" => Command::Accept,
        "preparing" => Command::StartPreparing,
        "ready_for_pickup" | "ready" => Command::MarkReady,
        "rejected" => Command::Reject {
            reason: body
                .reason
                .unwrap_or_else(|| "rejected by restaurant".into()),
        },
        other => {
            return Err(ApiError::bad_request(
                "order.invalid_status",
                format!(
                    "status must be accepted, preparing, ready_for_pickup or rejected, not {other:?}"
                ),
            ));
        }
    };
    let (order, _) = app
        .orders()
        .transition(id, cmd, who.as_actor(), app.now())
        .await
        .map_err(super::orders::order_error)?;
    Ok(axum::Json(StatusResponse {
        order_id: order.id.to_string(),
        status: order.status.as_str().into(),
    }))
}
