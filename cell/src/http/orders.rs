//! Customer ordering (seed 5.3, 5.4 and Flow 1): quote, place with an idempotency key,
//! read one order, order history, cancel.
//!
//! Handlers parse the request into typed values and map errors to [`ApiError`]; the flows
//! themselves (pricing, placement, transitions) are [`crate::orders::Orders`]'.

use super::dto::*;
use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, Auth};
use super::restaurants::parse_restaurant;
use crate::app::App;
use crate::auth::Principal;
use crate::orders::{OrderError, PlaceError, PlaceOrder, Placed};
use crate::personal::Contact;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use catalog::{CartError, CartLine, CartRequest};
use domain::order::Address;
use domain::{Command, CustomerId, MenuItemId, Order, OrderId, OrderStatus, RestaurantId, UnixMs};
use payments::PaymentError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(quote))
        .routes(routes!(place, list))
        .routes(routes!(get_order))
        .routes(routes!(cancel))
}

const MAX_IDEMPOTENCY_KEY: usize = 255;
const MAX_PAYMENT_METHOD_ID: usize = 255;
const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 100;

pub(super) fn order_error(e: OrderError) -> ApiError {
    match e {
        OrderError::Repo(r) => r.into(),
        OrderError::Payment(p) => payment_error(p),
    }
}

fn place_error(e: PlaceError) -> ApiError {
    match e {
        PlaceError::Cart(c) => cart_error(c),
        PlaceError::RegionMoved { restaurant, owner } => ApiError::Conflict {
            code: "order.region_moved",
            message: format!(
                "restaurant {restaurant} is now served by cell {} ({}); retry through the router",
                owner.id, owner.name
            ),
            status: None,
        },
        PlaceError::Payment(p) => payment_error(p),
        PlaceError::Limited { limit, retry_after } => {
            let retry_after_s = retry_after.as_millis().div_ceil(1000).max(1) as u64;
            ApiError::Limited {
                code: "order.limit_reached",
                message: format!(
                    "at most {} orders per {} minutes; try again in {retry_after_s} s",
                    limit.max,
                    limit.window.as_secs() / 60
                ),
                limit: super::error::LimitDetail {
                    max: limit.max,
                    window_s: limit.window.as_secs(),
                    retry_after_s,
                },
            }
        }
        PlaceError::Repo(r) => r.into(),
        PlaceError::Personal(p) => super::error::personal_error(p),
    }
}

fn payment_error(e: PaymentError) -> ApiError {
    match e {
        PaymentError::Declined { code, message } => ApiError::PaymentRequired {
            code: format!("payment.{code}"),
            message,
        },
        PaymentError::Timeout | PaymentError::Unavailable => ApiError::Unavailable {
            code: "payment.unavailable",
            message: "the payment provider is not answering; retry with the same Idempotency-Key"
                .into(),
            retry_after_s: 5,
        },
        PaymentError::Invalid(m) => ApiError::bad_request("payment.invalid", m),
        PaymentError::Provider(m) => ApiError::internal(format!("payment provider: {m}")),
    }
}

fn cart_error(e: CartError) -> ApiError {
    let message = e.to_string();
    match e {
        CartError::EmptyCart => ApiError::bad_request("cart.empty", message),
        CartError::TooManyLines { .. } => ApiError::bad_request("cart.too_many_lines", message),
        CartError::UnknownItem(_) => ApiError::bad_request("cart.unknown_item", message),
        CartError::ItemUnavailable(..) => ApiError::bad_request("cart.item_unavailable", message),
        CartError::InvalidCustomization { .. } => {
            ApiError::bad_request("cart.invalid_customization", message)
        }
        CartError::QuantityOutOfRange { .. } => {
            ApiError::bad_request("cart.invalid_quantity", message)
        }
        CartError::InvalidAddress => ApiError::bad_request("cart.invalid_address", message),
        CartError::RestaurantClosed => ApiError::Unprocessable {
            code: "restaurant.closed",
            message,
        },
        CartError::OutsideDeliveryRadius { .. } => ApiError::Unprocessable {
            code: "address.out_of_range",
            message,
        },
        CartError::UnknownRestaurant(id) => ApiError::not_found("restaurant", id),
        CartError::Unavailable(_) => {
            tracing::debug!(%message, "menu read failed");
            ApiError::Unavailable {
                code: "catalog.unavailable",
                message: "the menu cannot be read right now; retry later".into(),
                retry_after_s: 1,
            }
        }
    }
}

fn customer(who: &Principal) -> Result<CustomerId, ApiError> {
    match who {
        Principal::Customer(c) => Ok(*c),
        Principal::Restaurant(_) | Principal::Driver(_) | Principal::Admin | Principal::Support => {
            Err(ApiError::Forbidden(
                "only customers place and list their orders".into(),
            ))
        }
    }
}

fn parse_order(id: &str) -> Result<OrderId, ApiError> {
    super::contract::parse_id("an order id", id)
}

/// The restaurant and the cart of a request, typed: ids parsed, the address copied.
fn parse_cart(
    restaurant_id: &str,
    lines: &[CartLineDto],
    a: &AddressDto,
) -> Result<(RestaurantId, CartRequest), ApiError> {
    let rid = parse_restaurant(restaurant_id)?;
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        let item_id: MenuItemId = super::contract::parse_id("a menu item id", &line.item_id)
            .map_err(|_| {
                ApiError::bad_request(
                    "cart.unknown_item",
                    format!("item {:?} is not a menu item id", line.item_id),
                )
            })?;
        items.push(CartLine {
            item_id,
            quantity: line.quantity,
            customizations: line.customizations.clone(),
        });
    }
    // The personal fields never enter the cart: placement seals them (`Contact`).
    let cart = CartRequest {
        items,
        address: Address {
            lat: a.lat,
            lng: a.lng,
            formatted: String::new(),
            sealed: None,
        },
    };
    Ok((rid, cart))
}

/// The personal fields of a request's address.
fn contact(a: &AddressDto) -> Contact {
    Contact {
        formatted: a.formatted.clone(),
        phone: a.phone.clone().filter(|p| !p.is_empty()),
        notes: a.notes.clone().filter(|n| !n.is_empty()),
    }
}

/// Totals and delivery estimate for a cart, before placing it.
#[utoipa::path(post, path = "/api/v1/orders/quote", request_body = QuoteRequest, security(("bearer" = [])),
    responses((status = 200, body = QuoteResponse), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn quote(
    State(app): State<App>,
    Auth(who): Auth,
    AppJson(req): AppJson<QuoteRequest>,
) -> Result<axum::Json<QuoteResponse>, ApiError> {
    customer(&who)?;
    let (rid, cart) = parse_cart(&req.restaurant_id, &req.items, &req.delivery_address)?;
    let p = app
        .orders()
        .quote(rid, &cart, app.now())
        .await
        .map_err(cart_error)?;
    Ok(axum::Json(QuoteResponse {
        restaurant_id: rid.to_string(),
        items: items_dto(&p.items),
        subtotal: p.subtotal.0,
        delivery_fee: p.delivery_fee.0,
        tax: p.tax.0,
        total: p.total.0,
        currency: app.config().pricing_currency(),
        estimated_delivery: p.estimated_time(),
        eta_min_minutes: p.eta_min_minutes,
        eta_max_minutes: p.eta_max_minutes,
        distance_m: p.distance_m,
    }))
}

/// Place an order (seed 5.3). `Idempotency-Key` is required: a retry with the same key
/// returns the same order (200) and charges nothing twice. While the payment provider cannot
/// be reached the order is queued: 202 with status `payment_pending` and the message "Order
/// is being processed" (again on every retry while it waits); it moves to `pending` once
/// authorized, or is cancelled with a reason. A customer places at most the cell's order
/// limit per window (default 5 an hour): past it, 429 with `Retry-After` and the limit.
#[utoipa::path(post, path = "/api/v1/orders", request_body = PlaceOrderRequest, security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "client-generated, unique per order attempt",
        min_length = 1, max_length = 255, pattern = r"^[!-~](?:[ -~]*[!-~])?$")),
    responses((status = 201, body = PlaceOrderResponse), (status = 200, body = PlaceOrderResponse, description = "idempotent replay"),
        (status = 202, body = PlaceOrderResponse, description = "queued: the payment provider is unreachable; authorized when it is back"),
        (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "order limit or per-user request rate reached; see Retry-After"),
        (status = 503, body = ErrorBody, description = "the order store cannot accept writes right now")))]
async fn place(
    State(app): State<App>,
    Auth(who): Auth,
    headers: HeaderMap,
    AppJson(req): AppJson<PlaceOrderRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let customer = customer(&who)?;
    let idem = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "request.missing_idempotency_key",
                "the Idempotency-Key header is required",
            )
        })?;
    if idem.len() > MAX_IDEMPOTENCY_KEY {
        return Err(ApiError::bad_request(
            "request.invalid_idempotency_key",
            "Idempotency-Key is longer than 255 bytes",
        ));
    }
    // Characters, as the document's `maxLength` counts them.
    let payment_method_id = req
        .payment_method_id
        .clone()
        .filter(|p| (1..=MAX_PAYMENT_METHOD_ID).contains(&p.chars().count()))
        .ok_or_else(|| {
            ApiError::bad_request(
                "payment.missing_method",
                "payment_method_id is required: 1 to 255 characters",
            )
        })?;
    let (restaurant_id, cart) = parse_cart(&req.restaurant_id, &req.items, &req.delivery_address)?;
    let now = app.now();
    // The flow answers a replay before it validates the cart again (see `orders::place`).
    let request = PlaceOrder {
        customer,
        idempotency_key: idem.to_string(),
        fingerprint: crate::orders::fingerprint(&serde_json::to_vec(&req).unwrap_or_default()),
        restaurant_id,
        cart,
        payment_method_id,
        contact: contact(&req.delivery_address),
    };
    let Placed { order, created } = app
        .orders()
        .place(request, now)
        .await
        .map_err(place_error)?;
    let body = placed_body(&app, &order, now);
    // A queued order is 202 on every answer, first or replayed: it is still being processed.
    let status = if order.status == OrderStatus::PaymentPending {
        StatusCode::ACCEPTED
    } else if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(body)))
}

fn placed_body(app: &App, order: &Order, now: UnixMs) -> PlaceOrderResponse {
    PlaceOrderResponse {
        order_id: order.id.to_string(),
        status: order.status.as_str().into(),
        estimated_delivery: eta_label(order, now),
        subtotal: order.subtotal.0,
        delivery_fee: order.delivery_fee.0,
        tax: order.tax.0,
        total: order.total.0,
        currency: app.config().pricing_currency(),
        // The seed's words for an order whose payment is queued.
        message: (order.status == OrderStatus::PaymentPending)
            .then(|| "Order is being processed".to_owned()),
    }
}

/// May `who` see this order? Its customer, its restaurant, its driver, admins.
fn can_see(who: &Principal, o: &Order) -> bool {
    match who {
        Principal::Customer(c) => *c == o.customer_id,
        Principal::Restaurant(r) => *r == o.restaurant_id,
        Principal::Driver(d) => o.driver_id == Some(*d),
        Principal::Admin => true,
        // Support reads fraud flags (with their evidence), not orders.
        Principal::Support => false,
    }
}

/// One order with its status history (seed 5.4).
#[utoipa::path(get, path = "/api/v1/orders/{id}", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = OrderResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_order(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
) -> Result<axum::Json<OrderResponse>, ApiError> {
    let id = parse_order(&id)?;
    let (order, history) = crate::orders::repo::get_with_history(&**app.kv(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    if !can_see(&who, &order) {
        return Err(ApiError::Forbidden(
            "this order belongs to someone else".into(),
        ));
    }
    let mut resp = OrderResponse::build(&order, Some(&history), app.now());
    super::privacy::reveal(&app, &who, &order, &history, &mut resp.delivery_address)?;
    Ok(axum::Json(
        super::people::with_driver(&app, resp, &order).await,
    ))
}

/// The caller's orders, newest first (`customer=me`), paged by `cursor`.
#[utoipa::path(get, path = "/api/v1/orders", params(OrderListParams), security(("bearer" = [])),
    responses((status = 200, body = OrderList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list(
    State(app): State<App>,
    Auth(who): Auth,
    AppQuery(p): AppQuery<OrderListParams>,
) -> Result<axum::Json<OrderList>, ApiError> {
    let me = customer(&who)?;
    if p.customer.as_deref().is_some_and(|c| c != "me") {
        return Err(ApiError::bad_request(
            "request.invalid_customer",
            "only customer=me is supported",
        ));
    }
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "request.invalid_limit",
            format!("limit must be 1..={MAX_PAGE}"),
        ));
    }
    let before = p.cursor.as_deref().map(parse_cursor).transpose()?;
    let orders = crate::orders::repo::list_for_customer(&**app.kv(), me, before, limit).await?;
    let next_cursor = (orders.len() == limit)
        .then(|| {
            orders
                .last()
                .map(|o| format!("{}_{}", o.created_at.0, o.id))
        })
        .flatten();
    let now = app.now();
    Ok(axum::Json(OrderList {
        orders: orders
            .iter()
            .map(|o| {
                let mut r = OrderResponse::build(o, None, now);
                super::privacy::reveal(&app, &who, o, &[], &mut r.delivery_address)?;
                Ok(r)
            })
            .collect::<Result<_, ApiError>>()?,
        next_cursor,
        partial: None,
        missing_cells: None,
    }))
}

/// An order list cursor, `<created_at ms>_<order id>`, both parts 1 to 19 digits as the
/// document's pattern says (no sign: `i64::from_str` alone would take `+5` and `-5`).
fn parse_cursor(c: &str) -> Result<(UnixMs, OrderId), ApiError> {
    let bad = || ApiError::bad_request("request.invalid_cursor", "malformed cursor");
    let (at, id) = c.split_once('_').ok_or_else(bad)?;
    let at: u64 = super::contract::parse_id("a time", at).map_err(|_| bad())?;
    let id = super::contract::parse_id("an order id", id).map_err(|_| bad())?;
    // A time past i64 is merely far in the future: the page starts at the newest order.
    Ok((UnixMs(i64::try_from(at).unwrap_or(i64::MAX)), id))
}

/// Cancel before pickup: the hold is released, or the charge refunded if already captured.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", params(("id" = String, Path)), request_body = CancelRequest,
    security(("bearer" = [])), responses((status = 200, body = StatusResponse), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
    AppJson(req): AppJson<CancelRequest>,
) -> Result<axum::Json<StatusResponse>, ApiError> {
    let id = parse_order(&id)?;
    let reason = req.reason.unwrap_or_else(|| "cancelled by customer".into());
    let (order, _) = app
        .orders()
        .transition(id, Command::Cancel { reason }, who.as_actor(), app.now())
        .await
        .map_err(order_error)?;
    Ok(axum::Json(StatusResponse {
        order_id: order.id.to_string(),
        status: order.status.as_str().into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orders::OrderLimit;
    use std::time::Duration;

    #[tokio::test]
    async fn an_order_over_the_limit_is_429_with_retry_after_and_the_limit_in_the_body() {
        let e = PlaceError::Limited {
            limit: OrderLimit::default(),
            retry_after: Duration::from_millis(1_500),
        };
        let resp = place_error(e).into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        // Rounded up: retrying after 1 s would be refused again.
        assert_eq!(resp.headers()["retry-after"], "2");
        let body = axum::body::to_bytes(resp.into_body(), 4096).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "order.limit_reached");
        assert_eq!(
            v["error"]["limit"],
            serde_json::json!({"max": 5, "window_s": 3600, "retry_after_s": 2})
        );
    }
}
