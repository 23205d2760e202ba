//! WebSocket endpoints: `/ws/orders/{id}/track` for the order's customer (or its
//! restaurant) and `/ws/restaurants/{id}/orders` for a restaurant's tablet. Each subscribes
//! to the hub before reading the snapshot, so nothing falls between the two.

use super::Topic;
use super::hub::Subscription;
use crate::app::App;
use crate::auth::Principal;
use crate::http::ApiError;
use crate::http::dto::{OrderResponse, active_statuses};
use crate::http::extract::{AppPath, Auth};
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use domain::{OrderId, RestaurantId};
use serde_json::json;

pub fn routes() -> axum::Router<App> {
    axum::Router::new()
        .route("/ws/orders/{id}/track", axum::routing::get(track_order))
        .route(
            "/ws/restaurants/{id}/orders",
            axum::routing::get(restaurant_feed),
        )
}

/// Both endpoints only push: a small read buffer keeps an idle subscriber at a few KiB.
fn sized(ws: WebSocketUpgrade, app: &App) -> WebSocketUpgrade {
    ws.read_buffer_size(app.tracker().hub.config().ws_read_buffer_bytes)
        .max_message_size(16 * 1024)
}

/// Close codes: 1000 normal (delivered), 1008 policy (too slow), 1001 going away.
const CLOSE_DONE: u16 = 1000;
const CLOSE_SLOW: u16 = 1008;

async fn track_order(
    ws: WebSocketUpgrade,
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    let id: OrderId = id
        .parse()
        .map_err(|_| ApiError::bad_request("request.invalid_id", "not an order id"))?;
    let order = crate::orders::repo::get(&**app.kv(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    let allowed = match who {
        Principal::Customer(c) => c == order.customer_id,
        Principal::Restaurant(r) => r == order.restaurant_id,
        Principal::Admin => true,
        Principal::Driver(_) => false,
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "only the order's customer or restaurant may track it".into(),
        ));
    }
    Ok(sized(ws, &app).on_upgrade(move |socket| track_socket(socket, app, id)))
}

async fn track_socket(mut socket: WebSocket, app: App, id: OrderId) {
    let topic = Topic::Order(id);
    let mut sub = app.tracker().hub.subscribe(topic);
    // Snapshot after subscribing: an update racing the snapshot arrives after it.
    let snapshot = match crate::orders::repo::get(&**app.kv(), id).await {
        Ok(Some(o)) => o,
        _ => return,
    };
    let now = app.now();
    let driver = snapshot
        .driver_id
        .and_then(|d| app.dispatch().geo().get(geostore::DriverId(d.0)));
    let eta = driver.map(|d| app.tracker().eta_minutes(&snapshot, d.lat, d.lng));
    let msg = json!({
        "type": "snapshot",
        "order": OrderResponse::build(&snapshot, None, now),
        "driver_location": driver.map(|d| json!({"lat": d.lat, "lng": d.lng, "heading": d.heading_deg, "ts": d.ts_ms})),
        "eta_minutes": eta,
    });
    let done = snapshot.status.is_terminal();
    if socket
        .send(Message::Text(msg.to_string().into()))
        .await
        .is_err()
        || done
    {
        let _ = socket.send(close(CLOSE_DONE, "order finished")).await;
        app.tracker().hub.unsubscribe(topic, sub.id);
        return;
    }
    pump(&mut socket, &mut sub, is_terminal_status).await;
    app.tracker().hub.unsubscribe(topic, sub.id);
}

/// Forwards the subscription to the socket until the client leaves, the hub drops a slow
/// subscriber (close 1008), or `last` says a message ends the stream (close 1000 after it).
async fn pump(socket: &mut WebSocket, sub: &mut Subscription, last: fn(&str) -> bool) {
    loop {
        tokio::select! {
            m = sub.rx.recv() => match m {
                Some(text) => {
                    if socket.send(Message::Text((*text).into())).await.is_err() {
                        return;
                    }
                    if last(&text) {
                        let _ = socket.send(close(CLOSE_DONE, "order finished")).await;
                        return;
                    }
                }
                None => {
                    let _ = socket.send(close(CLOSE_SLOW, "too slow: updates dropped")).await;
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Clients may ping or send anything; it is ignored.
                Some(Ok(_)) => {}
            },
        }
    }
}

fn is_terminal_status(text: &str) -> bool {
    text.contains("\"type\":\"status_update\"")
        && (text.contains("\"status\":\"delivered\"") || text.contains("\"status\":\"cancelled\""))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

async fn restaurant_feed(
    ws: WebSocketUpgrade,
    State(app): State<App>,
    Auth(who): Auth,
    AppPath(id): AppPath<String>,
) -> Result<Response, ApiError> {
    let id: RestaurantId = id
        .parse()
        .map_err(|_| ApiError::bad_request("request.invalid_id", "not a restaurant id"))?;
    match who {
        Principal::Restaurant(r) if r == id => {}
        Principal::Admin => {}
        _ => {
            return Err(ApiError::Forbidden(
                "only the restaurant may watch its orders".into(),
            ));
        }
    }
    Ok(sized(ws, &app).on_upgrade(move |socket| feed_socket(socket, app, id)))
}

async fn feed_socket(mut socket: WebSocket, app: App, id: RestaurantId) {
    let topic = Topic::Restaurant(id);
    let mut sub = app.tracker().hub.subscribe(topic);
    let orders = crate::orders::repo::list_for_restaurant(&**app.kv(), id, active_statuses(), 200)
        .await
        .unwrap_or_default();
    let now = app.now();
    let snapshot = json!({"type": "snapshot", "orders": orders.iter().map(|o| OrderResponse::build(o, None, now)).collect::<Vec<_>>()});
    if socket
        .send(Message::Text(snapshot.to_string().into()))
        .await
        .is_ok()
    {
        pump(&mut socket, &mut sub, |_| false).await;
    }
    app.tracker().hub.unsubscribe(topic, sub.id);
}
