//! Wire types of the REST API (JSON). Storage types stay out of the wire format: each
//! response is built here from the domain record. Amounts are integer cents, ids strings.

use crate::auth::Role;
use domain::{HistoryEntry, Order, OrderStatus};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Every error: `{"error": {"code", "message"}}`; `status` only for a refused transition.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// On a 429 from a per-user limit: the limit and the wait (as in `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitDto>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LimitDto {
    /// Requests (or orders) allowed per window.
    pub max: u32,
    pub window_s: u64,
    pub retry_after_s: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Where to deliver to. Optional in the type only so that a missing one is answered
    /// `search.missing_location`.
    #[param(required = true, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    #[param(required = true, minimum = -180, maximum = 180)]
    pub lng: Option<f64>,
    /// "5km", "2.5km", "800m" or whole metres "800": 1 m to 20 km; default 5 km.
    #[param(
        pattern = r"^(?:(?:[1-9][0-9]{0,3}|1[0-9]{4}|20000)m?|(?:(?:[1-9]|1[0-9])(?:\.[0-9]{1,3})?|20(?:\.0{1,3})?|0\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))km)$"
    )]
    pub radius: Option<String>,
    /// Case-insensitive exact match on the cuisine.
    #[param(max_length = 64)]
    pub cuisine: Option<String>,
    /// 1-based.
    #[param(minimum = 1, maximum = 500)]
    pub page: Option<u32>,
    #[param(minimum = 1, maximum = 50)]
    pub page_size: Option<u32>,
    /// Through the router only: the previous answer's `next_cursor`, instead of `page` (the
    /// router refuses both together). The next page starts after the row the cursor names,
    /// so restaurants opening or closing on earlier pages shift nothing. A cell pages by
    /// `page` alone and ignores it.
    #[param(
        pattern = r"^[0-9]{1,19}_[A-Za-z0-9_-]{1,64}_([0-9]{1,9}-[0-9]{1,9}(\.[0-9]{1,9}-[0-9]{1,9}){0,1023})?$"
    )]
    pub cursor: Option<String>,
}

/// One search result (seed 5.1).
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestaurantSummary {
    pub id: String,
    pub name: String,
    pub cuisine_type: String,
    pub rating: f32,
    /// Cents, for this address.
    pub delivery_fee: i64,
    /// "25-35 min".
    pub estimated_time: String,
    pub eta_min_minutes: u32,
    pub eta_max_minutes: u32,
    pub distance_m: u32,
    pub thumbnail_url: String,
    /// The restaurant's position (a map pin).
    pub lat: f64,
    pub lng: f64,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchResponse {
    /// Nearest first (through the router: by `distance_m`, then `id`, over every cell).
    pub restaurants: Vec<RestaurantSummary>,
    /// The next page by number; null on the last page, and through the router when paging
    /// by `cursor`.
    pub next_page: Option<u32>,
    /// Matches over all pages (through the router: over the cells that answered).
    pub total: usize,
    /// Through the router: pass as `cursor` for the next page; null on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Through the router: `true` when a cell whose regions the search disk touches was
    /// down or missed the router's deadline (`[fanout] search_deadline_ms`), so its
    /// restaurants are missing from this page; `missing_cells` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<bool>,
    /// Through the router, when `partial`: the names of the cells that did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_cells: Option<Vec<String>>,
}

/// The menu body (seed 5.2), served as bytes from the catalog's menu cache or the store.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuResponse {
    pub restaurant: serde_json::Value,
    pub categories: Vec<MenuCategory>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuCategory {
    pub name: String,
    pub items: Vec<MenuItemDto>,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MenuItemDto {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Cents.
    pub price: i64,
    pub available: bool,
    pub customizations: Vec<serde_json::Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemAvailability {
    pub available: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestaurantOpen {
    pub open: bool,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct CartLineDto {
    #[schema(pattern = "^[0-9]{1,19}$")]
    pub item_id: String,
    #[schema(minimum = 1, maximum = 50)]
    #[serde(deserialize_with = "whole_u32")]
    pub quantity: u32,
    /// Option names, e.g. ["Large", "No onions"].
    #[serde(default)]
    pub customizations: Vec<String>,
}

#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct AddressDto {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lng: f64,
    /// The street address. Personal data: stored sealed under the customer's key, shown to
    /// the customer, and to the assigned driver during the delivery only.
    #[serde(default)]
    pub formatted: String,
    /// A phone number for the driver to call at the door (personal data, stored sealed;
    /// shown to the customer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 32)]
    pub phone: Option<String>,
    /// Delivery notes ("ring twice"); personal data, stored sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 500)]
    pub notes: Option<String>,
}

/// `POST /api/v1/orders` (seed 5.3).
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    #[schema(pattern = "^[0-9]{1,19}$")]
    pub restaurant_id: String,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<CartLineDto>,
    pub delivery_address: AddressDto,
    /// Optional in the type only so that a missing one is answered
    /// `payment.missing_method`.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 255)]
    #[serde(default)]
    pub payment_method_id: Option<String>,
}

/// `POST /api/v1/orders/quote`: a cart to price, without placing it.
#[derive(Deserialize, Serialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    #[schema(pattern = "^[0-9]{1,19}$")]
    pub restaurant_id: String,
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<CartLineDto>,
    pub delivery_address: AddressDto,
    /// Accepted so a client can quote the body it will place; ignored.
    #[serde(default)]
    pub payment_method_id: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct QuoteResponse {
    pub restaurant_id: String,
    pub items: Vec<OrderItemDto>,
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub tax: i64,
    pub total: i64,
    pub currency: String,
    /// "35-45 min".
    pub estimated_delivery: String,
    pub eta_min_minutes: u32,
    pub eta_max_minutes: u32,
    pub distance_m: u32,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct PlaceOrderResponse {
    pub order_id: String,
    pub status: String,
    pub estimated_delivery: String,
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub tax: i64,
    pub total: i64,
    pub currency: String,
    /// Set while the order waits for its payment authorization (status `payment_pending`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrderItemDto {
    pub item_id: String,
    pub name: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub customizations: Vec<String>,
    pub line_total: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct RestaurantRef {
    pub id: String,
    pub name: String,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DriverRef {
    pub id: String,
    /// The driver's first name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the driver is, while the order is active (none afterwards: past positions are
    /// never shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lng: Option<f64>,
    /// Degrees clockwise from north.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<f32>,
    /// Minutes until the driver reaches the restaurant, before pickup (for the restaurant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pickup_eta_minutes: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryDto {
    pub status: String,
    pub event: String,
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    pub by: String,
}

impl HistoryDto {
    pub fn from_entry(e: &HistoryEntry) -> Self {
        HistoryDto {
            status: e.status.as_str().into(),
            event: e.event.as_str().into(),
            at: e.at.0,
            by: actor_label(&e.by),
        }
    }
}

/// `GET /api/v1/orders/{id}` (seed 5.4).
#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrderResponse {
    pub order_id: String,
    pub status: String,
    pub kitchen: String,
    pub restaurant: RestaurantRef,
    pub items: Vec<OrderItemDto>,
    pub driver: Option<DriverRef>,
    pub delivery_address: AddressDto,
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub tax: i64,
    pub total: i64,
    pub payment_status: String,
    pub estimated_delivery: String,
    /// The live ETA in minutes, from the driver's last position, while a driver carries the
    /// order (what the tracking WebSocket pushes as `eta_minutes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_minutes: Option<u32>,
    pub estimated_delivery_min_at: i64,
    pub estimated_delivery_max_at: i64,
    pub delayed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_history: Option<Vec<HistoryDto>>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct OrderList {
    /// Newest first: by `created_at`, then `order_id`.
    pub orders: Vec<OrderResponse>,
    /// Pass as `cursor` for the next (older) page.
    pub next_cursor: Option<String>,
    /// A customer's history through the router, merged from every cell: `true` when a cell
    /// was down or missed the router's deadline (`[fanout] orders_deadline_ms`), so its
    /// orders are missing; `missing_cells` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<bool>,
    /// Through the router, when `partial`: the names of the cells that did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_cells: Option<Vec<String>>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    /// Only `me` (the caller) is supported.
    #[param(inline, value_type = Option<CustomerFilter>)]
    pub customer: Option<String>,
    /// The previous page's `next_cursor`: `<created_at ms>_<order id>`, from a cell or from
    /// the router's merged history alike.
    #[param(pattern = r"^[0-9]{1,19}_[0-9]{1,19}$")]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

/// The only customer an order list can name: the caller.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum CustomerFilter {
    Me,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestaurantOrdersParams {
    /// `active` (default: every status before delivery) or one status.
    #[param(inline, value_type = Option<OrderStatusFilter>)]
    pub status: Option<String>,
}

/// What a restaurant's order list can filter on: `active`, or any order status (listed from
/// the one status enum, so the document cannot drift from it).
pub struct OrderStatusFilter;

impl ToSchema for OrderStatusFilter {}

impl utoipa::PartialSchema for OrderStatusFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let values: Vec<&str> = std::iter::once("active")
            .chain(OrderStatus::ALL.iter().map(|s| s.as_str()))
            .collect();
        serde_json::from_value(serde_json::json!({
            "type": "string",
            "enum": values,
            "description": "What a restaurant's order list can filter on.",
        }))
        .expect("a valid schema")
    }
}

/// `PATCH /api/v1/restaurants/orders/{id}` (seed 5.8).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestaurantStatusUpdate {
    #[schema(inline, value_type = RestaurantStatusChange)]
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The moves a restaurant makes on an order; `confirmed` and `ready` are synonyms of
/// `accepted` and `ready_for_pickup`.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RestaurantStatusChange {
    Accepted,
    Confirmed,
    Preparing,
    ReadyForPickup,
    Ready,
    Rejected,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub order_id: String,
    pub status: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevTokenRequest {
    #[schema(value_type = String)]
    pub role: Role,
    pub sub: String,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct DevTokenResponse {
    pub token: String,
    pub expires_in_s: u64,
}

/// A JSON number that is a whole number, as JSON Schema's `integer` counts them: `15.0` is
/// one (serde's `u32` alone refuses it).
pub fn whole_number(n: &serde_json::Number) -> Option<u64> {
    n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(f))
            .map(|f| f as u64)
    })
}

fn whole_u32<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    whole_number(&n)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or_else(|| {
            serde::de::Error::custom(format!("{n} is not a whole number 0..=4294967295"))
        })
}

fn item_dto(i: &domain::OrderItem) -> OrderItemDto {
    OrderItemDto {
        item_id: i.item_id.to_string(),
        name: i.name.clone(),
        quantity: i.quantity,
        unit_price: i.unit_price.0,
        customizations: i.customizations.iter().map(|c| c.option.clone()).collect(),
        line_total: i.line_total.0,
    }
}

pub fn items_dto(items: &[domain::OrderItem]) -> Vec<OrderItemDto> {
    items.iter().map(item_dto).collect()
}

fn actor_label(a: &domain::Actor) -> String {
    match a {
        domain::Actor::Customer(_) => "customer".into(),
        domain::Actor::Restaurant(_) => "restaurant".into(),
        domain::Actor::Driver(d) => format!("driver:{d}"),
        domain::Actor::System => "system".into(),
        domain::Actor::Admin => "admin".into(),
    }
}

pub fn eta_label(o: &Order, now: domain::UnixMs) -> String {
    if o.status.is_terminal() {
        return String::new();
    }
    let lo = o.estimated_delivery_min.0.saturating_sub(now.0).max(0) / 60_000;
    let hi = o.estimated_delivery_max.0.saturating_sub(now.0).max(0) / 60_000;
    format!("{lo}-{hi} min")
}

impl OrderResponse {
    pub fn build(o: &Order, history: Option<&[HistoryEntry]>, now: domain::UnixMs) -> Self {
        OrderResponse {
            order_id: o.id.to_string(),
            status: o.status.as_str().into(),
            kitchen: serde_json::to_value(o.kitchen)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            restaurant: RestaurantRef {
                id: o.restaurant_id.to_string(),
                name: o.restaurant_name.clone(),
            },
            items: items_dto(&o.items),
            driver: o.driver_id.map(|d| DriverRef {
                id: d.to_string(),
                name: None,
                lat: None,
                lng: None,
                heading: None,
                pickup_eta_minutes: None,
            }),
            // The personal fields are sealed: [`OrderResponse::reveal`] fills them in for those
            // who may see them. Legacy orders carry a plaintext street address.
            delivery_address: AddressDto {
                lat: o.delivery_address.lat,
                lng: o.delivery_address.lng,
                formatted: o.delivery_address.formatted.clone(),
                phone: None,
                notes: None,
            },
            subtotal: o.subtotal.0,
            delivery_fee: o.delivery_fee.0,
            tax: o.tax.0,
            total: o.total.0,
            payment_status: serde_json::to_value(o.payment_state)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            estimated_delivery: eta_label(o, now),
            eta_minutes: None,
            estimated_delivery_min_at: o.estimated_delivery_min.0,
            estimated_delivery_max_at: o.estimated_delivery_max.0,
            delayed: o.delayed,
            cancel_reason: o.cancel_reason.clone(),
            created_at: o.created_at.0,
            updated_at: o.updated_at.0,
            status_history: history.map(|h| h.iter().map(HistoryDto::from_entry).collect()),
        }
    }
}

/// Statuses a restaurant tablet lists as "active". Not `payment_pending`: the restaurant
/// hears of an order once its funds are held (`order_created`), as after any placement.
pub fn active_statuses() -> Vec<OrderStatus> {
    OrderStatus::ALL
        .into_iter()
        .filter(|s| s.is_active() && *s != OrderStatus::PaymentPending)
        .collect()
}
