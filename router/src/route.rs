//! Which cell a request belongs to, from its path, query and (for a few endpoints) body.
//! Pure: no I/O, no map; [`crate::table`] turns a [`Hint`] into a cell.
//!
//! - Search is answered by the router, from every cell whose regions the search disk
//!   touches ([`crate::fanout`]); its `lat`/`lng` are checked here.
//! - Restaurants by the H3 region in their id: a moved restaurant keeps its id, and the
//!   current map says which cell holds its region now.
//! - Orders and deliveries by the cell id in their Snowflake: an order never moves, so its
//!   tracking and every action on it reach the cell that created it, even after a move.
//! - A customer's order list is merged from every cell ([`crate::fanout`]): orders stay in
//!   the cell that created them, and a customer orders wherever they are.
//! - What names none of those (a driver's status) goes to the home cell in the caller's
//!   token.

use domain::{CellId, DeliveryId, OrderId, RegionId, RestaurantId};
use serde::Deserialize;

/// Where a request should go, before the map is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    Region(RegionId),
    Cell(CellId),
    /// The body decides; buffer it and call [`from_body`].
    Body(BodyRoute),
    /// The caller's home cell (token claim).
    Home,
    /// Answered by the router itself.
    Local(Local),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyRoute {
    /// `restaurant_id` in the JSON body (place an order, quote).
    Restaurant,
    /// `lat`/`lng` in the body (a driver's REST location ping), unless the driver's token
    /// names a home cell: then that cell, which holds their delivery.
    Position,
    /// `delivery_id` if present, else the home cell (a driver's status change).
    DeliveryOrHome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    /// `GET /api/v1/drivers/cell`: where a driver should stream.
    DriverCell,
    /// `GET /api/v1/restaurants?lat&lng…`: fanned out to the cells the disk touches.
    Search,
    /// `GET /api/v1/orders`: a customer's orders, merged from every cell.
    Orders,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no such endpoint")]
    NotFound,
    /// The path is one of the API's, the method is not one it serves there.
    #[error("method not allowed on this path (allowed: {allow})")]
    MethodNotAllowed { allow: &'static str },
    /// A well-formed restaurant id whose region bits name no H3 region: no cell can hold it.
    #[error("restaurant {0} not found")]
    UnknownRestaurant(String),
    #[error("{0}")]
    BadInput(String),
    #[error(
        "the request names no place, restaurant or order; pass lat/lng or use a token with a home cell"
    )]
    NoHint,
}

fn bad(what: &str, v: &str) -> RouteError {
    RouteError::BadInput(format!("{v:?} is not a valid {what}"))
}

fn order_cell(s: &str) -> Result<Hint, RouteError> {
    let id: OrderId = s.parse().map_err(|_| bad("order id", s))?;
    Ok(Hint::Cell(id.cell()))
}

fn delivery_cell(s: &str) -> Result<Hint, RouteError> {
    let id: DeliveryId = s.parse().map_err(|_| bad("delivery id", s))?;
    Ok(Hint::Cell(id.cell()))
}

fn restaurant_region(s: &str) -> Result<Hint, RouteError> {
    let id: RestaurantId = s.parse().map_err(|_| bad("restaurant id", s))?;
    // The API's document says only "decimal digits"; which of those carry a valid region is
    // ours to know, so such an id is one that names no restaurant.
    id.region()
        .map(Hint::Region)
        .map_err(|_| RouteError::UnknownRestaurant(s.to_owned()))
}

/// `lat` and `lng` from a query string, if both are present.
pub fn query_position(query: Option<&str>) -> Result<Option<RegionId>, RouteError> {
    let (mut lat, mut lng) = (None, None);
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "lat" => lat = Some(v),
            "lng" => lng = Some(v),
            _ => {}
        }
    }
    match (lat, lng) {
        (Some(a), Some(b)) => position(a, b).map(Some),
        (None, None) => Ok(None),
        _ => Err(RouteError::BadInput("lat and lng go together".into())),
    }
}

fn position(lat: &str, lng: &str) -> Result<RegionId, RouteError> {
    let la: f64 = lat.parse().map_err(|_| bad("latitude", lat))?;
    let ln: f64 = lng.parse().map_err(|_| bad("longitude", lng))?;
    region_at(la, ln)
}

fn region_at(lat: f64, lng: f64) -> Result<RegionId, RouteError> {
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lng) {
        return Err(RouteError::BadInput(format!(
            "({lat}, {lng}) is not a coordinate"
        )));
    }
    RegionId::from_latlng(lat, lng)
        .map_err(|_| RouteError::BadInput(format!("({lat}, {lng}) is not a coordinate")))
}

/// The routing hint for a request. `method` is only used where one path has several owners.
pub fn classify(method: &str, path: &str, query: Option<&str>) -> Result<Hint, RouteError> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match segs.as_slice() {
        ["ws", "orders", id, "track"] => order_cell(id),
        ["ws", "restaurants", id, "orders"] => restaurant_region(id),
        ["api", "v1", rest @ ..] => classify_api(method, rest, query),
        _ => Err(RouteError::NotFound),
    }
}

fn classify_api(method: &str, segs: &[&str], query: Option<&str>) -> Result<Hint, RouteError> {
    match segs {
        ["restaurants"] => query_position(query)?
            .map(|_| Hint::Local(Local::Search))
            .ok_or_else(|| RouteError::BadInput("lat and lng are required".into())),
        ["restaurants", "orders", id] => order_cell(id),
        ["restaurants", id, ..] => restaurant_region(id),
        ["orders"] if method == "POST" => Ok(Hint::Body(BodyRoute::Restaurant)),
        ["orders"] if method == "GET" => Ok(Hint::Local(Local::Orders)),
        ["orders"] => Ok(query_position(query)?.map_or(Hint::Home, Hint::Region)),
        ["orders", "quote"] => Ok(Hint::Body(BodyRoute::Restaurant)),
        ["orders", id, ..] => order_cell(id),
        ["drivers", "cell"] => Ok(Hint::Local(Local::DriverCell)),
        ["drivers", "location"] => Ok(Hint::Body(BodyRoute::Position)),
        ["drivers", "deliveries", id, ..] => delivery_cell(id),
        ["drivers", "status"] => Ok(Hint::Body(BodyRoute::DeliveryOrHome)),
        ["drivers", ..] => Ok(query_position(query)?.map_or(Hint::Home, Hint::Region)),
        _ => Err(RouteError::NotFound),
    }
}

/// The methods the API serves on `path`, for a 405 with `Allow` before any routing (a cell
/// would answer 405 too, but the router may find no cell for a request it cannot route).
/// `None` for paths not listed here: those are forwarded whatever the method.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let allow = match segs.as_slice() {
        ["ws", "orders", _, "track"] | ["ws", "restaurants", _, "orders"] => "GET",
        ["api", "v1", rest @ ..] => match rest {
            ["restaurants"] | ["restaurants", _, "menu"] | ["restaurants", _, "orders"] => "GET",
            ["restaurants", "orders", _] | ["restaurants", _] => "PATCH",
            ["restaurants", _, "menu", "items", _] => "PATCH",
            ["orders"] => "GET, POST",
            ["orders", "quote"] | ["orders", _, "cancel"] => "POST",
            ["orders", _] => "GET",
            ["drivers", "cell"] | ["drivers", "me", "delivery"] => "GET",
            ["drivers", "location"] | ["drivers", "status"] => "POST",
            ["drivers", "deliveries", _, "accept" | "decline"] => "POST",
            _ => return None,
        },
        _ => return None,
    };
    Some(allow)
}

/// Refuses a method the API does not serve on `path` (HEAD and OPTIONS pass: a cell answers
/// them).
pub fn check_method(method: &str, path: &str) -> Result<(), RouteError> {
    match allowed_methods(path) {
        Some(allow)
            if !matches!(method, "HEAD" | "OPTIONS") && !allow.split(", ").any(|m| m == method) =>
        {
            Err(RouteError::MethodNotAllowed { allow })
        }
        _ => Ok(()),
    }
}

#[derive(Deserialize)]
struct BodyFields {
    restaurant_id: Option<String>,
    delivery_id: Option<String>,
    lat: Option<f64>,
    lng: Option<f64>,
}

/// Resolves a [`Hint::Body`] from the buffered JSON body.
pub fn from_body(kind: BodyRoute, body: &[u8]) -> Result<Hint, RouteError> {
    let f: BodyFields = serde_json::from_slice(body)
        .map_err(|e| RouteError::BadInput(format!("request body is not valid JSON: {e}")))?;
    match kind {
        BodyRoute::Restaurant => match f.restaurant_id {
            Some(id) => restaurant_region(&id),
            None => Err(RouteError::BadInput("restaurant_id is required".into())),
        },
        BodyRoute::Position => match (f.lat, f.lng) {
            (Some(lat), Some(lng)) => region_at(lat, lng).map(Hint::Region),
            _ => Err(RouteError::BadInput("lat and lng are required".into())),
        },
        BodyRoute::DeliveryOrHome => match f.delivery_id {
            Some(id) => delivery_cell(&id),
            None => Ok(Hint::Home),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::SnowflakeGen;

    fn cell(n: u32) -> CellId {
        CellId::new(n).unwrap()
    }

    #[test]
    fn orders_and_deliveries_route_by_their_cell_bits() {
        let mut g = SnowflakeGen::new(cell(7));
        let o = g.next_order(1_800_000_000_000);
        let d = g.next_delivery(1_800_000_000_000);
        for path in [
            format!("/api/v1/orders/{o}"),
            format!("/api/v1/orders/{o}/cancel"),
            format!("/api/v1/restaurants/orders/{o}"),
            format!("/ws/orders/{o}/track"),
            format!("/api/v1/drivers/deliveries/{d}/accept"),
        ] {
            assert_eq!(
                classify("GET", &path, None),
                Ok(Hint::Cell(cell(7))),
                "{path}"
            );
        }
        assert!(matches!(
            classify("GET", "/api/v1/orders/abc", None),
            Err(RouteError::BadInput(_))
        ));
    }

    #[test]
    fn restaurants_route_by_region_and_discovery_by_position() {
        let region = RegionId::from_latlng(48.137, 11.575).unwrap();
        let rid = RestaurantId::new(region, 99);
        for path in [
            format!("/api/v1/restaurants/{rid}/menu"),
            format!("/api/v1/restaurants/{rid}"),
            format!("/ws/restaurants/{rid}/orders"),
        ] {
            assert_eq!(classify("GET", &path, None), Ok(Hint::Region(region)));
        }
        assert_eq!(
            classify(
                "GET",
                "/api/v1/restaurants",
                Some("lat=48.137&lng=11.575&radius=2km")
            ),
            Ok(Hint::Local(Local::Search))
        );
        for q in [
            None,
            Some("lat=48.1"),
            Some("lat=x&lng=1"),
            Some("lat=91&lng=0"),
        ] {
            assert!(classify("GET", "/api/v1/restaurants", q).is_err(), "{q:?}");
        }
        let body = format!(r#"{{"restaurant_id":"{rid}","items":[]}}"#);
        assert_eq!(
            classify("POST", "/api/v1/orders", None),
            Ok(Hint::Body(BodyRoute::Restaurant))
        );
        assert_eq!(
            from_body(BodyRoute::Restaurant, body.as_bytes()),
            Ok(Hint::Region(region))
        );
        assert!(from_body(BodyRoute::Restaurant, b"{").is_err());
        // Digits whose region bits are no H3 cell: a restaurant that cannot exist (404), not a
        // malformed request.
        let forged = RestaurantId((127 << 15) << 41).to_string(); // base cell 127: none
        assert_eq!(
            classify("GET", &format!("/api/v1/restaurants/{forged}/menu"), None),
            Err(RouteError::UnknownRestaurant(forged))
        );
        assert!(from_body(BodyRoute::Restaurant, b"{}").is_err());
        assert_eq!(
            from_body(BodyRoute::Position, br#"{"lat":48.137,"lng":11.575}"#),
            Ok(Hint::Region(region))
        );
    }

    #[test]
    fn undeclared_methods_are_refused_with_allow() {
        assert_eq!(
            check_method("TRACE", "/api/v1/orders/quote"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            check_method("DELETE", "/api/v1/orders"),
            Err(RouteError::MethodNotAllowed { allow: "GET, POST" })
        );
        assert_eq!(check_method("POST", "/api/v1/orders"), Ok(()));
        assert_eq!(check_method("HEAD", "/api/v1/orders/7"), Ok(()));
        assert_eq!(
            check_method("PATCH", "/api/v1/restaurants/orders/7"),
            Ok(())
        );
        // Paths the table does not know are the cells' to answer.
        assert_eq!(check_method("DELETE", "/api/v1/drivers/me/other"), Ok(()));
    }

    #[test]
    fn the_rest_goes_home_or_nowhere() {
        assert_eq!(
            classify("GET", "/api/v1/orders", None),
            Ok(Hint::Local(Local::Orders))
        );
        assert_eq!(
            classify("GET", "/api/v1/drivers/me/delivery", None),
            Ok(Hint::Home)
        );
        assert_eq!(
            from_body(BodyRoute::DeliveryOrHome, br#"{"status":"online"}"#),
            Ok(Hint::Home)
        );
        assert_eq!(
            classify("GET", "/api/v1/drivers/cell", Some("lat=1&lng=2")),
            Ok(Hint::Local(Local::DriverCell))
        );
        for p in ["/", "/api/v2/orders", "/api/v1/admin/status", "/ws/other"] {
            assert_eq!(classify("GET", p, None), Err(RouteError::NotFound), "{p}");
        }
    }
}
