//! Live tracking (the seed's Flow 3): the in-process [`hub::Hub`] fans status changes (from
//! the event log) and driver locations (from pings, as they arrive) out to WebSocket
//! subscribers, and recomputes the ETA from the driver's progress.

pub mod hub;
pub mod ws;

pub use hub::{Hub, Topic, TrackingConfig};

use domain::{Order, OrderEvent, OrderId, OrderStatus, UnixMs};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// The hub plus what ETA updates need.
pub struct Tracker {
    pub hub: Hub,
    /// Last ETA (whole minutes) pushed per order: an update goes out only when it changes.
    eta: Mutex<HashMap<OrderId, u32>>,
    avg_speed_mps: f64,
    road_factor: f64,
}

impl Tracker {
    pub fn new(cfg: TrackingConfig, avg_speed_kmh: f64, road_factor: f64) -> Self {
        Self {
            hub: Hub::new(cfg),
            eta: Mutex::new(HashMap::new()),
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

    /// A driver carrying `order` sent a ping: push the location (throttled per subscriber)
    /// and the ETA when it changed.
    pub fn location(
        &self,
        order: &Order,
        lat: f64,
        lng: f64,
        heading: f32,
        ts_ms: u64,
        now: UnixMs,
    ) {
        let topic = Topic::Order(order.id);
        if !self.hub.has_subscribers(topic) {
            return;
        }
        let eta = self.eta_minutes(order, lat, lng);
        let msg = json!({"type": "location_update", "order_id": order.id, "lat": lat, "lng": lng, "heading": heading, "ts": ts_ms, "eta_minutes": eta});
        let sent = self
            .hub
            .publish_location(topic, Arc::from(msg.to_string()), Instant::now());
        if sent > 0 {
            // Driver clock → push: the end-to-end latency the customer sees.
            let lag_ms = (now.0 - ts_ms as i64).max(0) as f64;
            metrics::histogram!("cell_tracking_ping_to_push_seconds").record(lag_ms / 1000.0);
        }
        let changed = {
            let mut m = self.eta.lock();
            m.insert(order.id, eta) != Some(eta)
        };
        if changed {
            let at = now.0 + i64::from(eta) * 60_000;
            let msg = json!({"type": "eta_update", "order_id": order.id, "eta_minutes": eta, "eta_at": at});
            self.hub.publish(topic, Arc::from(msg.to_string()));
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
        if ev.status.is_terminal() {
            self.eta.lock().remove(&ev.order_id);
        }
        metrics::counter!("cell_tracking_status_updates_total").increment(1);
    }
}
