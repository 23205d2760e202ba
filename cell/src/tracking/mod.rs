//! Live tracking (the seed's Flow 3): the in-process [`hub::Hub`] fans status changes (from
//! the event log) and driver locations (from pings, as they arrive) out to WebSocket
//! subscribers, and recomputes the ETA from the driver's progress.

pub mod hub;
pub mod quota;
pub mod upgrade;
pub mod ws;

pub use hub::{Hub, Location, Topic, TrackingConfig};

use domain::{Order, OrderEvent, OrderStatus, UnixMs};
use metrics::Histogram;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

/// Where the time of a ping → customer push goes, stage by stage, for tracked orders only
/// (`cell_tracking_stage_seconds{stage}`). Handles resolved once: no registry lookup per
/// ping.
pub struct Stages {
    /// Driver clock → the ping reaches the dispatch (client send, network, kernel socket
    /// queue, QUIC, the connection task). Millisecond resolution (the ping's timestamp).
    pub arrival: Histogram,
    /// Dispatch entry → location in the order's slot (checks, geostore, ETA).
    pub ping_path: Histogram,
    /// Slot written → the tracker's socket task reads it (scheduler wake-up).
    pub wakeup: Histogram,
    /// The WebSocket write of one location update.
    pub ws_write: Histogram,
    /// Driver clock → update written to the socket: `cell_tracking_ping_to_push_seconds`.
    pub end_to_end: Histogram,
}

impl Stages {
    fn new() -> Self {
        let h = |stage: &'static str| metrics::histogram!("cell_tracking_stage_seconds", "stage" => stage);
        Self {
            arrival: h("arrival"),
            ping_path: h("ping_path"),
            wakeup: h("wakeup"),
            ws_write: h("ws_write"),
            end_to_end: metrics::histogram!("cell_tracking_ping_to_push_seconds"),
        }
    }
}

/// The hub plus what ETA updates need.
pub struct Tracker {
    pub hub: Hub,
    /// Open tracking sockets per token.
    pub quota: quota::Quota,
    pub stages: Stages,
    avg_speed_mps: f64,
    road_factor: f64,
}

impl Tracker {
    pub fn new(cfg: TrackingConfig, avg_speed_kmh: f64, road_factor: f64) -> Self {
        Self {
            quota: quota::Quota::new(cfg.max_subscriptions_per_token),
            hub: Hub::new(cfg),
            stages: Stages::new(),
            avg_speed_mps: avg_speed_kmh / 3.6,
            road_factor,
        }
    }

    /// Minutes until delivery from the driver's position: to the restaurant first if the
    /// food is not picked up yet, then to the customer.
    pub fn eta_minutes(&self, order: &Order, lat: f64, lng: f64) -> u32 {
        let to_customer = |from: (f64, f64)| {
            geostore::haversine_m(
                from.0,
                from.1,
                order.delivery_address.lat,
                order.delivery_address.lng,
            )
        };
        let metres = match order.status {
            OrderStatus::PickedUp | OrderStatus::Delivering => to_customer((lat, lng)),
            _ => {
                geostore::haversine_m(lat, lng, order.restaurant_lat, order.restaurant_lng)
                    + to_customer((order.restaurant_lat, order.restaurant_lng))
            }
        };
        let secs = metres * self.road_factor / self.avg_speed_mps.max(0.1);
        (secs / 60.0).ceil() as u32
    }

    /// A driver carrying `order` sent a ping (the dispatch took it at `entered`): its
    /// position and ETA go into the order's location slot if anyone tracks the order. The
    /// trackers' socket tasks throttle, serialise and push.
    #[allow(clippy::too_many_arguments)]
    pub fn location(
        &self,
        order: &Order,
        lat: f64,
        lng: f64,
        heading: f32,
        ts_ms: u64,
        now: UnixMs,
        entered: Instant,
    ) {
        let published = self.hub.publish_location(order.id, || {
            let published = Instant::now();
            Location {
                lat,
                lng,
                heading,
                ts_ms,
                eta_minutes: self.eta_minutes(order, lat, lng),
                published,
            }
        });
        if published {
            let lag_ms = (now.0 - ts_ms as i64).max(0) as f64;
            self.stages.arrival.record(lag_ms / 1000.0);
            self.stages
                .ping_path
                .record(entered.elapsed().as_secs_f64());
        }
    }

    /// An order event from the log: a status update to the order's trackers and an order
    /// update to its restaurant's tablet.
    pub fn event(&self, ev: &OrderEvent) {
        let msg = json!({"type": "status_update", "order_id": ev.order_id, "status": ev.status, "event": ev.kind, "driver_id": ev.driver_id, "at": ev.at});
        self.hub
            .publish(Topic::Order(ev.order_id), Arc::from(msg.to_string()));
        let tablet = json!({"type": "order_update", "order_id": ev.order_id, "status": ev.status, "event": ev.kind, "at": ev.at});
        self.hub.publish(
            Topic::Restaurant(ev.restaurant_id),
            Arc::from(tablet.to_string()),
        );
        metrics::counter!("cell_tracking_status_updates_total").increment(1);
    }
}
