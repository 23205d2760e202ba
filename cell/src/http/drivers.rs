//! The driver REST endpoints of the seed (5.6, 5.7) plus status updates: the same dispatch
//! calls as the QUIC gateway, for drivers (and tools) that speak HTTP.

use super::dto::{AddressDto, ErrorBody};
use super::error::ApiError;
use super::extract::{AppJson, AppPath, Auth};
use crate::app::App;
use crate::auth::Principal;
use crate::dispatch::offers::OfferId;
use crate::dispatch::pings::PingRejection;
use crate::dispatch::{DispatchError, DriverUpdate, GpsFix};
use crate::people::Kind;
use crate::personal::window::{self, Shown};
use axum::extract::State;
use axum::response::IntoResponse;
use domain::{DeliveryId, DriverId, Order};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(location))
        .routes(routes!(accept))
        .routes(routes!(decline))
        .routes(routes!(status))
        .routes(routes!(current))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    /// Unix milliseconds (integer) or RFC 3339 (string); default: now. Too old, from the
    /// future, or implying an impossible speed: 422.
    #[schema(schema_with = timestamp_schema)]
    #[serde(default)]
    pub timestamp: Option<serde_json::Value>,
    #[serde(default)]
    pub heading: Option<f32>,
    #[serde(default)]
    pub speed: Option<f32>,
}

#[derive(Serialize, ToSchema)]
pub struct Ack {
    pub ack: bool,
    /// On `delivered`: what the driver earned for this delivery, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_cents: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub delivery_id: String,
    pub order_id: String,
    pub status: String,
    pub restaurant_name: String,
    /// The restaurant's street address (empty if its region has moved to another cell since
    /// the order was placed).
    pub restaurant_address: String,
    pub restaurant_location: [f64; 2],
    /// The street address: empty until pickup (or acceptance, as `[privacy]
    /// driver_address_from` says) and again after the delivery ended plus the grace.
    pub customer_address: String,
    /// The dropoff: exact while the address is shown, else the centre of its H3
    /// resolution-8 cell (`address_shown` = `approximate`).
    pub customer_location: [f64; 2],
    /// `full` or `approximate`.
    pub address_shown: String,
    /// Restaurant to dropoff, straight line, in metres.
    pub dropoff_distance_m: u32,
    /// The customer's first name and last initial, while the address is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_name: Option<String>,
    /// Delivery notes, while the address is shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_notes: Option<String>,
    /// Minutes to the restaurant from the driver's last position.
    pub pickup_eta_minutes: Option<u32>,
    /// What the driver earns for this delivery, in cents.
    pub payout_cents: i64,
    /// While offered: the offer to name in the accept (`offer_id`, `fence`) and the deadline
    /// to show (Unix ms; the lease runs `offer_display_margin_ms` longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OfferView>,
}

/// An open offer, as a REST driver sees it.
#[derive(Serialize, ToSchema)]
pub struct OfferView {
    pub offer_id: String,
    pub fence: u64,
    pub deadline_ms: i64,
}

/// A driver's status change. Progress through a delivery names the delivery; going online
/// or offline may.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: String,
    #[serde(default)]
    pub delivery_id: Option<String>,
}

impl utoipa::ToSchema for StatusRequest {}

impl utoipa::PartialSchema for StatusRequest {
    /// Two shapes, because which statuses need `delivery_id` is part of the contract.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let pattern = super::contract::ID_PATTERN;
        let shape = |statuses: &[&str], required: &[&str]| {
            // Required, it must be an id; optional, it may also be null.
            let types = if required.contains(&"delivery_id") {
                serde_json::json!("string")
            } else {
                serde_json::json!(["string", "null"])
            };
            serde_json::json!({
                "type": "object",
                "properties": {
                    "status": { "type": "string", "enum": statuses },
                    "delivery_id": { "type": types, "pattern": pattern },
                },
                "required": required,
                "additionalProperties": false,
            })
        };
        let schema = serde_json::json!({ "oneOf": [
            shape(&["online", "offline"], &["status"]),
            shape(&["arrived_at_restaurant", "picked_up", "delivered"], &["status", "delivery_id"]),
        ]});
        serde_json::from_value(schema).expect("a valid schema")
    }
}

/// `timestamp` of a location ping: Unix milliseconds or an RFC 3339 time.
fn timestamp_schema() -> utoipa::openapi::schema::Schema {
    serde_json::from_value(serde_json::json!({ "oneOf": [
        { "type": "integer", "minimum": 0, "maximum": u64::MAX },
        { "type": "string", "format": "date-time" },
        { "type": "null" },
    ]}))
    .expect("a valid schema")
}

fn driver(who: &Principal) -> Result<DriverId, ApiError> {
    match who {
        Principal::Driver(d) => Ok(*d),
        Principal::Customer(_)
        | Principal::Restaurant(_)
        | Principal::Admin
        | Principal::Support => Err(ApiError::Forbidden("only drivers may do this".into())),
    }
}

pub(crate) fn dispatch_error(e: DispatchError) -> ApiError {
    match e {
        DispatchError::UnknownDelivery(d) => ApiError::not_found("delivery", d),
        // The typed reason of a late or stale answer: `offer_expired`, `offer_superseded`,
        // `order_taken`.
        DispatchError::Refused(r) => ApiError::Conflict {
            code: r.code(),
            message: r.to_string(),
            status: None,
        },
        DispatchError::Store(s) => super::error::store_error(s),
        DispatchError::Order(o) => super::orders::order_error(o),
    }
}

fn parse_delivery(id: &str) -> Result<DeliveryId, ApiError> {
    super::contract::parse_id("a delivery id", id)
}

async fn delivery_body(
    app: &App,
    driver: DriverId,
    o: &Order,
    offered: bool,
) -> Result<DeliveryResponse, ApiError> {
    let pos = app.dispatch().geo().get(geostore::DriverId(driver.0));
    // Carried orders are active: no end time yet.
    let shown = window::shown(&app.config().privacy, o.status, offered, None, app.now());
    let mut address = AddressDto {
        lat: o.delivery_address.lat,
        lng: o.delivery_address.lng,
        formatted: String::new(),
        phone: None,
        notes: None,
    };
    super::privacy::driver_view(app, o, shown, &mut address)?;
    let customer_name = match shown {
        Shown::Full => {
            let demo = app.config().demo.enabled;
            crate::people::display_name(&**app.kv(), Kind::Customer, o.customer_id.0, demo)
                .await
                .map(|n| window::first_name_last_initial(&n))
        }
        Shown::Approximate => None,
    };
    let (d, a) = (&o.delivery_address, &address);
    Ok(DeliveryResponse {
        delivery_id: o.delivery_id.map(|d| d.to_string()).unwrap_or_default(),
        order_id: o.id.to_string(),
        status: o.status.as_str().into(),
        restaurant_name: o.restaurant_name.clone(),
        restaurant_address: app
            .catalog()
            .restaurant(o.restaurant_id)
            .map(|l| l.restaurant.address.clone())
            .unwrap_or_default(),
        restaurant_location: [o.restaurant_lat, o.restaurant_lng],
        customer_address: a.formatted.clone(),
        customer_location: [a.lat, a.lng],
        address_shown: match shown {
            Shown::Full => "full",
            Shown::Approximate => "approximate",
        }
        .into(),
        dropoff_distance_m: geostore::haversine_m(o.restaurant_lat, o.restaurant_lng, d.lat, d.lng)
            .round() as u32,
        customer_name,
        delivery_notes: a.notes.clone(),
        pickup_eta_minutes: pos.map(|p| {
            super::people::minutes_between((p.lat, p.lng), (o.restaurant_lat, o.restaurant_lng))
        }),
        payout_cents: crate::earnings::payout(&app.config().dispatch, o).0,
        offer: None,
    })
}

/// A GPS ping over HTTP (seed 5.6); the QUIC datagram path is the fast one. 429 over the
/// driver's ping rate limit (shared with QUIC).
#[utoipa::path(post, path = "/api/v1/drivers/location", request_body = LocationRequest, security(("bearer" = [])),
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the ping is too old, from the future, or implies an impossible speed"),
        (status = 429, body = ErrorBody)))]
async fn location(
    State(app): State<App>,
    Auth(who): Auth,
    AppJson(req): AppJson<LocationRequest>,
) -> Result<axum::Json<Ack>, ApiError> {
    let d = driver(&who)?;
    let now = app.now();
    let ts = match req.timestamp {
        None | Some(serde_json::Value::Null) => now.0 as u64,
        Some(serde_json::Value::Number(n)) => super::dto::whole_number(&n).ok_or_else(|| {
            ApiError::bad_request("location.invalid_timestamp", "timestamp must be Unix ms")
        })?,
        Some(serde_json::Value::String(s)) => chrono::DateTime::parse_from_rfc3339(&s)
            .map(|t| t.timestamp_millis().max(0) as u64)
            .map_err(|_| {
                ApiError::bad_request(
                    "location.invalid_timestamp",
                    "timestamp must be RFC 3339 or Unix ms",
                )
            })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "location.invalid_timestamp",
                "timestamp must be RFC 3339 or Unix ms",
            ));
        }
    };
    app.dispatch()
        .ping(
            d,
            GpsFix {
                lat: req.lat,
                lng: req.lng,
                heading: req.heading.unwrap_or(0.0),
                speed: req.speed.unwrap_or(0.0),
                ts_ms: ts,
            },
            now,
        )
        .map_err(|e| match e {
            PingRejection::RateLimited => ApiError::TooManyRequests {
                code: "location.rate_limited",
                message: e.to_string(),
            },
            PingRejection::InvalidCoordinates => {
                ApiError::bad_request("location.invalid_coordinates", e.to_string())
            }
            // Well-formed, but not believable now: the clock or the speed says no.
            PingRejection::FromFuture { .. }
            | PingRejection::TooOld
            | PingRejection::Spoofed { .. }
            | PingRejection::Stale { .. } => ApiError::Unprocessable {
                code: "location.rejected",
                message: e.to_string(),
            },
        })?;
    Ok(axum::Json(Ack {
        ack: true,
        payout_cents: None,
    }))
}

/// Which offer an accept answers: the offer id and fencing number the offer carried
/// (`GET /api/v1/drivers/me/delivery` shows them). Optional: without them the order's
/// latest offer is meant, checked with its own fencing number.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptRequest {
    #[schema(pattern = r"^[0-9]{1,20}$")]
    pub offer_id: String,
    pub fence: u64,
}

/// Accept a delivery offer (seed 5.7). A repeat of an accept that assigned returns the
/// identical body; a late one is 409 with `offer_expired`, `offer_superseded` or
/// `order_taken`; 404 if it is not yours.
#[utoipa::path(post, path = "/api/v1/drivers/deliveries/{delivery_id}/accept", params(("delivery_id" = String, Path)),
    request_body(content = Option<AcceptRequest>, description = "optional: the offer id and fencing number"),
    security(("bearer" = [])), responses((status = 200, body = DeliveryResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn accept(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
    body: axum::body::Bytes,
) -> Result<axum::response::Response, ApiError> {
    let d = driver(&who)?;
    let delivery = parse_delivery(&id)?;
    let (offer, fence) = if body.iter().all(u8::is_ascii_whitespace) {
        (None, None)
    } else {
        let req: AcceptRequest = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("offer.invalid_body", e.to_string()))?;
        let offer = req.offer_id.parse::<u64>().map_err(|_| {
            ApiError::bad_request("offer.invalid_body", "offer_id must be a decimal id")
        })?;
        (Some(OfferId(offer)), Some(req.fence))
    };
    let accepted = app
        .dispatch()
        .answer(d, delivery, offer, fence, true, app.now())
        .await
        .map_err(dispatch_error)?
        .ok_or_else(|| ApiError::internal("accept returned no order"))?;
    let text = match accepted.body {
        Some(kept) => kept,
        None => {
            let view = delivery_body(&app, d, &accepted.order, false).await?;
            let text = serde_json::to_string(&view).map_err(ApiError::internal)?;
            // The first reply made is kept: a repeat (or a racing one) answers with it.
            app.dispatch()
                .keep_reply(accepted.reply.offer, text)
                .await
                .map_err(dispatch_error)?
        }
    };
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

/// Decline a delivery offer (seed 5.7): it moves on to the next driver.
#[utoipa::path(post, path = "/api/v1/drivers/deliveries/{delivery_id}/decline", params(("delivery_id" = String, Path)),
    security(("bearer" = [])), responses((status = 200, body = Ack), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn decline(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
) -> Result<axum::Json<Ack>, ApiError> {
    let d = driver(&who)?;
    let delivery = parse_delivery(&id)?;
    app.dispatch()
        .respond(d, delivery, false, app.now())
        .await
        .map_err(dispatch_error)?;
    Ok(axum::Json(Ack {
        ack: true,
        payout_cents: None,
    }))
}

/// Online/offline, and progress through a delivery.
#[utoipa::path(post, path = "/api/v1/drivers/status", request_body = StatusRequest, security(("bearer" = [])),
    responses((status = 200, body = Ack), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn status(
    State(app): State<App>,
    Auth(who): Auth,
    AppJson(req): AppJson<StatusRequest>,
) -> Result<axum::Json<Ack>, ApiError> {
    let d = driver(&who)?;
    // Checked whenever present, so a malformed one is refused even where it is optional.
    let given = req.delivery_id.as_deref().map(parse_delivery).transpose()?;
    let delivery = || {
        given.ok_or_else(|| {
            ApiError::bad_request("driver.missing_delivery", "delivery_id is required")
        })
    };
    let update = match req.status.as_str() {
        "online" => DriverUpdate::Online,
        "offline" => DriverUpdate::Offline,
        "arrived_at_restaurant" => DriverUpdate::ArrivedAtRestaurant(delivery()?),
        "picked_up" => DriverUpdate::PickedUp(delivery()?),
        "delivered" => DriverUpdate::Delivered(delivery()?),
        other => {
            return Err(ApiError::bad_request(
                "driver.invalid_status",
                format!("unknown status {other:?}"),
            ));
        }
    };
    // The delivery's payout, told to the driver once it is delivered.
    let carried = matches!(update, DriverUpdate::Delivered(_))
        .then(|| app.dispatch().carrying(d))
        .flatten();
    app.dispatch()
        .update(d, update, app.now())
        .await
        .map_err(dispatch_error)?;
    Ok(axum::Json(Ack {
        ack: true,
        payout_cents: carried.map(|o| crate::earnings::payout(&app.config().dispatch, &o).0),
    }))
}

/// The driver's current delivery, or their open offer.
#[utoipa::path(get, path = "/api/v1/drivers/me/delivery", security(("bearer" = [])),
    responses((status = 200, body = DeliveryResponse), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn current(
    State(app): State<App>,
    Auth(who): Auth,
) -> Result<axum::Json<DeliveryResponse>, ApiError> {
    let d = driver(&who)?;
    if let Some(o) = app.dispatch().carrying(d) {
        return Ok(axum::Json(delivery_body(&app, d, &o, false).await?));
    }
    match app.dispatch().open_offer(d) {
        Some(o) => {
            let mut body = delivery_body(&app, d, &o, true).await?;
            body.offer = app.dispatch().open_lease(d).await.map(|l| OfferView {
                offer_id: l.offer.to_string(),
                fence: l.fence,
                deadline_ms: l.display_deadline.0,
            });
            Ok(axum::Json(body))
        }
        None => Err(ApiError::not_found("delivery", "current")),
    }
}
