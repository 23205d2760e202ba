//! People in the API: the admin endpoints for profiles, and the driver as the order view shows
//! them to the customer and the restaurant (first name, live position while the order is
//! active, minutes to the restaurant before pickup; see [`crate::people`]).

use super::admin::require_admin;
use super::dto::{DriverRef, ErrorBody, OrderResponse};
use super::error::ApiError;
use super::extract::{AppJson, AppPath, Auth};
use crate::app::App;
use crate::people::{self, Kind, Profile};
use axum::extract::State;
use domain::{Order, OrderStatus};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(get_profile, put_profile))
}

fn people_error(e: people::PeopleError) -> ApiError {
    match e {
        people::PeopleError::Personal(p) => super::error::personal_error(p),
        people::PeopleError::Store(s) => ApiError::internal(s),
    }
}

fn profile_id(id: &str) -> Result<u64, ApiError> {
    super::contract::parse_id("a profile id", id)
}

/// A profile (admins only; it holds the phone).
#[utoipa::path(get, path = "/api/v1/admin/profiles/{kind}/{id}",
    params(("kind" = inline(Kind), Path), ("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_profile(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath((kind, id)): AppPath<(Kind, String)>,
) -> Result<axum::Json<Profile>, ApiError> {
    require_admin(&who)?;
    let id = profile_id(&id)?;
    let sealer = people::Sealer {
        vault: app.orders().vault(),
        now: app.now(),
    };
    people::get_opened(&**app.kv(), &sealer, kind, id)
        .await
        .map_err(people_error)?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found("profile", id.to_string()))
}

/// Creates or replaces a profile (admins only).
#[utoipa::path(put, path = "/api/v1/admin/profiles/{kind}/{id}",
    params(("kind" = inline(Kind), Path), ("id" = String, Path)), request_body = Profile, security(("bearer" = [])),
    responses((status = 200, body = Profile), (status = 403, body = ErrorBody)))]
async fn put_profile(
    State(app): State<App>,
    Auth(who): Auth,
    AppPath((kind, id)): AppPath<(Kind, String)>,
    AppJson(p): AppJson<Profile>,
) -> Result<axum::Json<Profile>, ApiError> {
    require_admin(&who)?;
    let id = profile_id(&id)?;
    p.validate()
        .map_err(|e| ApiError::bad_request("profile.invalid", e.to_string()))?;
    let sealer = people::Sealer {
        vault: app.orders().vault(),
        now: app.now(),
    };
    people::put(&**app.kv(), &sealer, kind, id, &p)
        .await
        .map_err(people_error)?;
    Ok(axum::Json(p))
}

/// Minutes for a driver at `from` to reach `to` in a city (the crow's distance × 1.3 at
/// 25 km/h), as the driver's own delivery view estimates them.
pub(super) fn minutes_between(from: (f64, f64), to: (f64, f64)) -> u32 {
    let m = geostore::haversine_m(from.0, from.1, to.0, to.1);
    (m * 1.3 / (25.0 / 3.6) / 60.0).ceil() as u32
}

/// The driver of `o` as its customer and restaurant see them.
pub(crate) async fn driver_ref(app: &App, o: &Order) -> Option<DriverRef> {
    let d = o.driver_id?;
    let demo = app.config().demo.enabled;
    let name = people::display_name(&**app.kv(), Kind::Driver, d.0, demo)
        .await
        .map(|n| people::first_name(&n));
    let pos = o
        .status
        .is_active()
        .then(|| app.dispatch().geo().get(geostore::DriverId(d.0)))
        .flatten();
    let before_pickup = matches!(
        o.status,
        OrderStatus::DriverAssigned | OrderStatus::DriverAtRestaurant
    );
    Some(DriverRef {
        id: d.to_string(),
        name,
        lat: pos.map(|p| p.lat),
        lng: pos.map(|p| p.lng),
        heading: pos.map(|p| p.heading_deg),
        pickup_eta_minutes: pos
            .filter(|_| before_pickup)
            .map(|p| minutes_between((p.lat, p.lng), (o.restaurant_lat, o.restaurant_lng))),
    })
}

/// `resp` (built from `o`) with its driver filled in.
pub(crate) async fn with_driver(app: &App, mut resp: OrderResponse, o: &Order) -> OrderResponse {
    resp.driver = driver_ref(app, o).await;
    // The live ETA, as the tracking WebSocket computes it, while the driver is on the way.
    if let Some(d) = &resp.driver
        && let (Some(lat), Some(lng)) = (d.lat, d.lng)
    {
        let eta = app.tracker().eta_minutes(o, lat, lng);
        resp.eta_minutes = Some(eta);
        resp.estimated_delivery = format!("{eta} min");
    }
    resp
}
