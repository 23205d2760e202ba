//! WebSocket endpoints: `/ws/orders/{id}/track` for the order's customer (or its
//! restaurant) and `/ws/restaurants/{id}/orders` for a restaurant's tablet. Each subscribes
//! to the hub before reading the snapshot, so nothing falls between the two.

use super::hub::{Location, Subscription};
use super::quota::Claim;
use super::upgrade::{FragmentOpen, Socket, Switched, Upgrade};
use super::{Topic, Tracker};
use crate::app::App;
use crate::auth::Principal;
use crate::http::ApiError;
use crate::http::dto::{OrderResponse, active_statuses};
use crate::http::extract::{AppPath, WsAuth, WsToken};
use axum::extract::State;
use axum::response::Response;
use domain::{OrderId, RestaurantId, UnixMs};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

pub fn routes() -> axum::Router<App> {
    axum::Router::new()
        .route("/ws/orders/{id}/track", axum::routing::get(track_order))
        .route(
            "/ws/restaurants/{id}/orders",
            axum::routing::get(restaurant_feed),
        )
}

/// Largest message (and frame) a client may send. Both endpoints only push; clients send
/// at most a ping or a close, so 1 KiB is ample and bounds what a client can make us buffer.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 1024;

/// Both endpoints only push: a small read buffer keeps an idle subscriber at a few KiB.
fn sized(ws: Upgrade, app: &App) -> Upgrade {
    let read_buffer = app.tracker().hub.config().ws_read_buffer_bytes;
    ws.config(|c| {
        c.read_buffer_size(read_buffer)
            .max_message_size(Some(MAX_CLIENT_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_CLIENT_MESSAGE_BYTES))
    })
}

/// Close codes: 1000 normal (delivered), 1008 policy (too slow, or a fragmented message not
/// finished within `[tracking] ws_fragment_timeout_ms`: not a malformed frame, so not 1002,
/// but a client holding the server's buffer), 1001 going away, and
/// 4001 `token_expired` (an application code, RFC 6455 §7.4.2): the token the socket was opened
/// with ran out; the client reconnects with a fresh one. A client that breaks the protocol
/// gets 1002 (bad frame), 1007 (text that is not UTF-8) or 1009 (message too big) before the
/// connection closes; see [`violation`]. A cell that stops closes every socket with 1012
/// (service restart, RFC 6455 registry): reconnect, and the snapshot comes first.
const CLOSE_DONE: u16 = 1000;
pub const CLOSE_RESTART: u16 = 1012;
const CLOSE_SLOW: u16 = 1008;
pub const CLOSE_TOKEN_EXPIRED: u16 = 4001;
pub const CLOSE_PROTOCOL: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;

/// The close frame for a read error that is the client's fault. tungstenite reports these
/// as errors and leaves the socket open without a close frame; RFC 6455 §7.1.7 wants the
/// endpoint to fail the connection with a code, so the socket task sends it.
fn violation(e: tokio_tungstenite::tungstenite::Error) -> Option<Message> {
    use tokio_tungstenite::tungstenite::Error;
    match e {
        // A reset without a close is the peer leaving, not a violation to answer.
        Error::Protocol(p)
            if !matches!(
                p,
                tokio_tungstenite::tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
            ) =>
        {
            Some(close(CLOSE_PROTOCOL, "protocol error"))
        }
        Error::Utf8(_) => Some(close(CLOSE_INVALID_DATA, "text is not UTF-8")),
        Error::Capacity(_) => Some(close(CLOSE_TOO_BIG, "message too big")),
        _ => None,
    }
}

// The token and the path are read before the upgrade headers: a call without a token is a
// 401 whatever else it lacks.
async fn track_order(
    State(app): State<App>,
    WsAuth(token, raw): WsAuth,
    AppPath(id): AppPath<String>,
    ws: Upgrade,
) -> Result<Response, ApiError> {
    let who = token.principal;
    let expiry = Instant::now() + token.remaining(app.now());
    let id: OrderId = crate::http::contract::parse_id("an order id", &id)?;
    let order = crate::orders::repo::get(&**app.kv(), id)
        .await?
        .ok_or_else(|| ApiError::not_found("order", id))?;
    let allowed = match who {
        Principal::Customer(c) => c == order.customer_id,
        Principal::Restaurant(r) => r == order.restaurant_id,
        Principal::Admin => true,
        Principal::Driver(_) | Principal::Support => false,
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "only the order's customer or restaurant may track it".into(),
        ));
    }
    let claim = claim(&app, &raw)?;
    Ok(sized(ws, &app).on_upgrade(move |socket, open| async move {
        track_socket(socket, open, app, id, who, expiry).await;
        drop(claim);
    }))
}

async fn track_socket(
    mut switched: Switched,
    mut open: FragmentOpen,
    app: App,
    id: OrderId,
    who: Principal,
    expiry: Instant,
) {
    let topic = Topic::Order(id);
    let mut sub = app.tracker().hub.subscribe(topic);
    // Snapshot after subscribing: an update racing the snapshot arrives after it.
    let Some(first) = order_snapshot(&app, id, who).await else {
        app.tracker().hub.unsubscribe(topic, sub);
        return;
    };
    // The snapshot goes out raw, before tungstenite: see `upgrade`'s module doc.
    let sent = switched.send_first(&first.text).await.is_ok();
    let (done, eta) = (first.done, first.eta);
    drop(first);
    let mut socket = switched.into_socket().await;
    if !sent || done {
        let _ = socket.send(close(CLOSE_DONE, "order finished")).await;
        app.tracker().hub.unsubscribe(topic, sub);
        return;
    }
    let mut locs = Locations::new(id, app.tracker(), eta);
    let ends = Ends {
        token_expiry: expiry,
        fragment_timeout: app.tracker().hub.config().ws_fragment_timeout(),
        closing: app.tracker().hub.closing(),
    };
    pump(
        &mut socket,
        &mut open,
        &mut sub,
        is_terminal_status,
        Some(&mut locs),
        ends,
    )
    .await;
    app.tracker().hub.unsubscribe(topic, sub);
}

/// An order tracker's first message.
struct Snapshot {
    text: String,
    /// The order is finished: the socket closes after the snapshot.
    done: bool,
    eta: Option<u32>,
}

/// The order's snapshot message, or `None` if it cannot be read. A function of its own so
/// that the order it is built from is gone before the socket starts waiting: whatever an
/// async function holds across its awaits stays in the socket task's memory for its life.
async fn order_snapshot(app: &App, id: OrderId, who: Principal) -> Option<Snapshot> {
    let snapshot = crate::orders::repo::get(&**app.kv(), id).await.ok()??;
    let now = app.now();
    let driver = snapshot
        .driver_id
        .and_then(|d| app.dispatch().geo().get(geostore::DriverId(d.0)));
    let eta = driver.map(|d| app.tracker().eta_minutes(&snapshot, d.lat, d.lng));
    let mut view = OrderResponse::build(&snapshot, None, now);
    // Its customer sees their own address, as in the order view; others see none of it.
    // Unreadable now (the key store down): the snapshot goes out without it.
    if let Err(e) =
        crate::http::privacy::reveal(app, &who, &snapshot, &[], &mut view.delivery_address)
    {
        tracing::warn!(error = %e, order_id = %id, "tracking snapshot without the address");
    }
    let msg = json!({
        "type": "snapshot",
        "order": crate::http::people::with_driver(app, view, &snapshot).await,
        "driver_location": driver.map(|d| json!({"lat": d.lat, "lng": d.lng, "heading": d.heading_deg, "ts": d.ts_ms})),
        "eta_minutes": eta,
    });
    Some(Snapshot {
        text: msg.to_string(),
        done: snapshot.status.is_terminal(),
        eta,
    })
}

/// A restaurant feed's first message: its active orders (as `order_snapshot`, a function of
/// its own so the orders are not held for the socket's life).
async fn feed_snapshot(app: &App, id: RestaurantId) -> String {
    let orders = crate::orders::repo::list_for_restaurant(&**app.kv(), id, active_statuses(), 200)
        .await
        .unwrap_or_default();
    let now = app.now();
    // The tablet shows who is coming and when.
    let mut views = Vec::with_capacity(orders.len());
    for o in &orders {
        let view = OrderResponse::build(o, None, now);
        views.push(crate::http::people::with_driver(app, view, o).await);
    }
    json!({"type": "snapshot", "orders": views}).to_string()
}

/// One tracker's side of its order's location slot: throttle and ETA changes are decided
/// here, in the socket task, so the ping path does no per-subscriber work.
struct Locations<'a> {
    order: OrderId,
    tracker: &'a Tracker,
    min_interval: Duration,
    last_push: Option<Instant>,
    last_eta: Option<u32>,
}

impl<'a> Locations<'a> {
    fn new(order: OrderId, tracker: &'a Tracker, snapshot_eta: Option<u32>) -> Self {
        Self {
            order,
            tracker,
            min_interval: Duration::from_millis(tracker.hub.config().min_location_interval_ms),
            last_push: None,
            last_eta: snapshot_eta,
        }
    }

    /// Writes the update(s) for a new location; `Err` when the socket is gone.
    async fn push(
        &mut self,
        socket: &mut Socket,
        loc: Location,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        let stages = &self.tracker.stages;
        let woke = Instant::now();
        stages
            .wakeup
            .record(woke.duration_since(loc.published).as_secs_f64());
        if self
            .last_push
            .is_some_and(|t| woke.duration_since(t) < self.min_interval)
        {
            metrics::counter!("cell_tracking_throttled_total").increment(1);
        } else {
            self.last_push = Some(woke);
            let msg = json!({"type": "location_update", "order_id": self.order, "lat": loc.lat, "lng": loc.lng, "heading": loc.heading, "ts": loc.ts_ms, "eta_minutes": loc.eta_minutes});
            let t = Instant::now();
            socket.send(Message::Text(msg.to_string().into())).await?;
            stages.ws_write.record(t.elapsed().as_secs_f64());
            // Driver clock → written: the end-to-end latency the customer sees.
            let lag_ms = (UnixMs::now().0 - loc.ts_ms as i64).max(0) as f64;
            stages.end_to_end.record(lag_ms / 1000.0);
        }
        if self.last_eta != Some(loc.eta_minutes) {
            self.last_eta = Some(loc.eta_minutes);
            let eta = loc.eta_minutes;
            let at = UnixMs::now().0 + i64::from(eta) * 60_000;
            let msg = json!({"type": "eta_update", "order_id": self.order, "eta_minutes": eta, "eta_at": at});
            socket.send(Message::Text(msg.to_string().into())).await?;
        }
        Ok(())
    }
}

/// The next location from the slot; never resolves without one (restaurants) or once the
/// slot is gone.
async fn next_location(rx: Option<&mut watch::Receiver<Option<Location>>>) -> Location {
    if let Some(rx) = rx {
        while rx.changed().await.is_ok() {
            if let Some(loc) = *rx.borrow_and_update() {
                return loc;
            }
        }
    }
    std::future::pending().await
}

/// Forwards the subscription to the socket until the client leaves, the hub drops a slow
/// subscriber (close 1008), `last` says a message ends the stream (close 1000 after it), or
/// the token expires (close 4001).
async fn pump(
    socket: &mut Socket,
    open: &mut FragmentOpen,
    sub: &mut Subscription,
    last: fn(&str) -> bool,
    mut locs: Option<&mut Locations<'_>>,
    mut ends: Ends,
) {
    let expired = tokio::time::sleep_until(ends.token_expiry.into());
    tokio::pin!(expired);
    loop {
        let fragment_deadline = open.borrow_and_update().map(|t| t + ends.fragment_timeout);
        let unfinished = async {
            match fragment_deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Status changes first: the last one closes the stream.
            biased;
            () = stopping(&mut ends.closing) => {
                let _ = socket.send(close(CLOSE_RESTART, "service restart")).await;
                return;
            }
            () = &mut expired => {
                let _ = socket.send(close(CLOSE_TOKEN_EXPIRED, "token_expired")).await;
                return;
            }
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
            loc = next_location(sub.locations.as_mut()), if locs.is_some() => {
                if let Some(l) = locs.as_deref_mut()
                    && l.push(socket, loc).await.is_err()
                {
                    return;
                }
            }
            // A fragment opened or closed: the loop re-reads the deadline.
            Ok(()) = open.changed() => {}
            () = unfinished => {
                let _ = socket.send(close(CLOSE_SLOW, "fragmented message not finished in time")).await;
                return;
            }
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_))) | None => return,
                Some(Err(e)) => {
                    if let Some(frame) = violation(e) {
                        let _ = socket.send(frame).await;
                    }
                    return;
                }
                // Clients may ping or send anything; it is ignored.
                Some(Ok(_)) => {}
            },
        }
    }
}

/// A place under the token's subscription cap, held by the socket task until it ends.
fn claim(app: &App, raw: &WsToken) -> Result<Claim, ApiError> {
    app.tracker().quota.claim(&raw.0).ok_or_else(|| {
        metrics::counter!("cell_tracking_subscriptions_refused_total").increment(1);
        ApiError::TooManyRequests {
            code: "tracking.too_many_subscriptions",
            message: format!(
                "this token has {} tracking sockets open already; close one first",
                app.tracker().hub.config().max_subscriptions_per_token
            ),
        }
    })
}

fn is_terminal_status(text: &str) -> bool {
    text.contains("\"type\":\"status_update\"")
        && (text.contains("\"status\":\"delivered\"") || text.contains("\"status\":\"cancelled\""))
}

fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }))
}

/// What ends a socket besides the client or the hub: its token's expiry, and a fragmented
/// message left unfinished this long.
/// Resolves once the cell is stopping; never if the hub is gone first.
async fn stopping(closing: &mut watch::Receiver<bool>) {
    if closing.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

struct Ends {
    token_expiry: Instant,
    fragment_timeout: Duration,
    /// The cell is stopping (see [`super::hub::Hub::close_all`]).
    closing: watch::Receiver<bool>,
}

async fn restaurant_feed(
    State(app): State<App>,
    WsAuth(token, raw): WsAuth,
    AppPath(id): AppPath<String>,
    ws: Upgrade,
) -> Result<Response, ApiError> {
    let who = token.principal;
    let expiry = Instant::now() + token.remaining(app.now());
    let id: RestaurantId = crate::http::contract::parse_id("a restaurant id", &id)?;
    match who {
        Principal::Restaurant(r) if r == id => {}
        Principal::Admin => {}
        _ => {
            return Err(ApiError::Forbidden(
                "only the restaurant may watch its orders".into(),
            ));
        }
    }
    let claim = claim(&app, &raw)?;
    Ok(sized(ws, &app).on_upgrade(move |socket, open| async move {
        feed_socket(socket, open, app, id, expiry).await;
        drop(claim);
    }))
}

async fn feed_socket(
    mut switched: Switched,
    mut open: FragmentOpen,
    app: App,
    id: RestaurantId,
    expiry: Instant,
) {
    let topic = Topic::Restaurant(id);
    let mut sub = app.tracker().hub.subscribe(topic);
    let snapshot = feed_snapshot(&app, id).await;
    let sent = switched.send_first(&snapshot).await.is_ok();
    drop(snapshot);
    if sent {
        let mut socket = switched.into_socket().await;
        let ends = Ends {
            token_expiry: expiry,
            fragment_timeout: app.tracker().hub.config().ws_fragment_timeout(),
            closing: app.tracker().hub.closing(),
        };
        pump(&mut socket, &mut open, &mut sub, |_| false, None, ends).await;
    }
    app.tracker().hub.unsubscribe(topic, sub);
}
