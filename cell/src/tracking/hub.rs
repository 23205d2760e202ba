//! In-process fan-out of tracking updates, keyed by topic (an order, or a restaurant's
//! tablet).
//!
//! Two paths, because they have different rules:
//! - **Events** (status changes, order updates): every one matters, in order. Each
//!   subscriber has a bounded queue; one that falls behind is dropped (its socket closes
//!   with a reason) and never grows memory or slows the others.
//! - **Driver locations**: only the newest matters. Each order has one latest-value slot
//!   (a `watch` channel) that the ping path overwrites and each tracker's socket task reads
//!   when it gets to it. The ping path does no per-subscriber work (no queue, no throttle,
//!   no JSON), and a burst of pings is coalesced instead of queued. Throttling per
//!   subscriber happens in the socket task.

use domain::{OrderId, RestaurantId};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, watch};

/// What a subscriber listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    Order(OrderId),
    Restaurant(RestaurantId),
}

/// Tracking settings (`[tracking]` in the cell config).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackingConfig {
    /// Messages queued per subscriber before it counts as too slow and is dropped.
    pub queue_depth: usize,
    /// At most one location update per subscriber per this interval.
    pub min_location_interval_ms: u64,
    /// WebSocket read buffer, allocated with the socket. Small, so an idle tracker costs a
    /// few KiB: both endpoints only push, clients send at most a ping or a close (≤ 1 KiB),
    /// and tungstenite grows the buffer to a frame's length when a longer one arrives.
    pub ws_read_buffer_bytes: usize,
    /// Tracking sockets open at once with one token (429 `tracking.too_many_subscriptions`
    /// beyond it). An app tracks one order per screen; 8 leaves room for a few devices
    /// sharing a token and for reconnects that overlap the old socket's close.
    pub max_subscriptions_per_token: usize,
    /// A client's fragmented message must be finished within this (close 1008 otherwise).
    /// Client messages are at most 1 KiB and arrive within a round trip even in pieces; 5 s
    /// covers a stalled mobile link.
    pub ws_fragment_timeout_ms: u64,
}

impl TrackingConfig {
    pub fn ws_fragment_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.ws_fragment_timeout_ms)
    }
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            queue_depth: 64,
            min_location_interval_ms: 1_000,
            ws_read_buffer_bytes: 256,
            max_subscriptions_per_token: 8,
            ws_fragment_timeout_ms: 5_000,
        }
    }
}

/// Bounds that would make every subscriber useless: a queue that holds nothing, a WebSocket
/// that cannot read a frame.
impl service::config::Validate for TrackingConfig {
    fn validate(&self, s: &mut service::config::Section<'_>) {
        s.ensure(self.queue_depth > 0, "queue_depth", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(
            self.ws_read_buffer_bytes > 0,
            "ws_read_buffer_bytes",
            || "must be greater than 0 (got 0)".to_owned(),
        );
        s.ensure(
            self.max_subscriptions_per_token > 0,
            "max_subscriptions_per_token",
            || "must be greater than 0 (got 0)".to_owned(),
        );
        s.ensure(
            self.ws_fragment_timeout_ms > 0,
            "ws_fragment_timeout_ms",
            || "must be greater than 0 (got 0)".to_owned(),
        );
    }
}

struct Sub {
    id: u64,
    tx: mpsc::Sender<Arc<str>>,
}

/// The newest position of the driver carrying an order, as the ping path left it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Location {
    pub lat: f64,
    pub lng: f64,
    pub heading: f32,
    /// Driver clock, Unix milliseconds.
    pub ts_ms: u64,
    pub eta_minutes: u32,
    /// When the ping path published it (the socket task measures its wake-up from here).
    pub published: Instant,
}

/// A subscription: read events from `rx` (`None` means the hub dropped it: too slow) and,
/// for an order, the driver's latest location from `locations`.
pub struct Subscription {
    pub id: u64,
    pub rx: mpsc::Receiver<Arc<str>>,
    pub locations: Option<watch::Receiver<Option<Location>>>,
}

pub struct Hub {
    topics: Mutex<HashMap<Topic, Vec<Sub>>>,
    /// Per tracked order, its location slot; present while the order has a subscriber.
    feeds: RwLock<HashMap<OrderId, watch::Sender<Option<Location>>>>,
    next_id: AtomicU64,
    cfg: TrackingConfig,
    /// Set once when the cell stops: every socket closes with 1012 so clients reconnect
    /// (to the restarted cell, or wherever the router sends them).
    closing: watch::Sender<bool>,
}

impl Hub {
    pub fn new(cfg: TrackingConfig) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            feeds: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            cfg,
            closing: watch::channel(false).0,
        }
    }

    /// Fires when the cell stops; sockets then close with "service restart".
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Tells every socket to close with 1012 (the cell is stopping).
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Subscriptions still open, restaurant feeds included.
    pub fn subscriber_count(&self) -> usize {
        self.topics.lock().values().map(Vec::len).sum()
    }

    pub fn config(&self) -> &TrackingConfig {
        &self.cfg
    }

    pub fn subscribe(&self, topic: Topic) -> Subscription {
        let (tx, rx) = mpsc::channel(self.cfg.queue_depth.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.topics
            .lock()
            .entry(topic)
            .or_default()
            .push(Sub { id, tx });
        let locations = match topic {
            Topic::Order(o) => Some(
                self.feeds
                    .write()
                    .entry(o)
                    .or_insert_with(|| watch::channel(None).0)
                    .subscribe(),
            ),
            Topic::Restaurant(_) => None,
        };
        metrics::gauge!("cell_tracking_subscribers").increment(1.0);
        Subscription { id, rx, locations }
    }

    pub fn unsubscribe(&self, topic: Topic, sub: Subscription) {
        let id = sub.id;
        drop(sub);
        if let Topic::Order(o) = topic {
            // Under the write lock, so a concurrent subscribe either comes first (and keeps
            // the slot) or finds it gone and makes a new one.
            let mut feeds = self.feeds.write();
            if feeds.get(&o).is_some_and(|tx| tx.receiver_count() == 0) {
                feeds.remove(&o);
            }
        }
        let mut topics = self.topics.lock();
        if let Some(subs) = topics.get_mut(&topic) {
            let before = subs.len();
            subs.retain(|s| s.id != id);
            if subs.len() < before {
                metrics::gauge!("cell_tracking_subscribers").decrement(1.0);
            }
            if subs.is_empty() {
                topics.remove(&topic);
            }
        }
    }

    pub fn has_subscribers(&self, topic: Topic) -> bool {
        self.topics.lock().contains_key(&topic)
    }

    /// Puts the driver's newest location into `order`'s slot, replacing one not read yet,
    /// if anyone tracks the order. `make` runs only then. Returns whether it was published.
    pub fn publish_location(&self, order: OrderId, make: impl FnOnce() -> Location) -> bool {
        let feeds = self.feeds.read();
        let Some(tx) = feeds.get(&order) else {
            return false;
        };
        tx.send_replace(Some(make()));
        true
    }

    /// Sends to every subscriber of `topic`; drops those whose queue is full.
    pub fn publish(&self, topic: Topic, msg: Arc<str>) -> usize {
        let mut topics = self.topics.lock();
        let Some(subs) = topics.get_mut(&topic) else {
            return 0;
        };
        let mut sent = 0;
        subs.retain_mut(|s| match s.tx.try_send(msg.clone()) {
            Ok(()) => {
                sent += 1;
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!("cell_tracking_dropped_slow_total").increment(1);
                metrics::gauge!("cell_tracking_subscribers").decrement(1.0);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                metrics::gauge!("cell_tracking_subscribers").decrement(1.0);
                false
            }
        });
        if subs.is_empty() {
            topics.remove(&topic);
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slow_subscribers_are_dropped_and_others_keep_receiving() {
        let hub = Hub::new(TrackingConfig {
            queue_depth: 2,
            ..TrackingConfig::default()
        });
        let t = Topic::Order(OrderId(1));
        let mut fast = hub.subscribe(t);
        let mut slow = hub.subscribe(t);
        for i in 0..5 {
            hub.publish(t, Arc::from(format!("m{i}")));
            // The fast one reads as it goes.
            assert_eq!(&*fast.rx.recv().await.unwrap(), format!("m{i}"));
        }
        // The slow one got its queue's worth, then was dropped: its channel ends.
        assert_eq!(&*slow.rx.recv().await.unwrap(), "m0");
        assert_eq!(&*slow.rx.recv().await.unwrap(), "m1");
        assert!(slow.rx.recv().await.is_none());
        assert_eq!(hub.publish(t, Arc::from("x")), 1);
    }

    fn at(lat: f64) -> Location {
        Location {
            lat,
            lng: 13.4,
            heading: 0.0,
            ts_ms: 1,
            eta_minutes: 5,
            published: Instant::now(),
        }
    }

    #[tokio::test]
    async fn locations_are_coalesced_per_order_and_the_slot_goes_with_the_last_tracker() {
        let hub = Hub::new(TrackingConfig::default());
        let o = OrderId(1);
        // Nobody tracks the order: nothing is built or stored.
        assert!(!hub.publish_location(o, || unreachable!()));
        let a = hub.subscribe(Topic::Order(o));
        let b = hub.subscribe(Topic::Order(o));
        let (mut la, mut lb) = (a.locations.clone().unwrap(), b.locations.clone().unwrap());
        for i in 0..3 {
            assert!(hub.publish_location(o, || at(52.0 + f64::from(i))));
        }
        // Each tracker sees one change: the newest position, not a queue of three.
        la.changed().await.unwrap();
        assert_eq!(la.borrow_and_update().unwrap().lat, 54.0);
        lb.changed().await.unwrap();
        assert_eq!(lb.borrow_and_update().unwrap().lat, 54.0);
        assert!(!la.has_changed().unwrap());
        drop((la, lb));
        // Restaurants have no location slot.
        assert!(
            hub.subscribe(Topic::Restaurant(RestaurantId(1)))
                .locations
                .is_none()
        );
        hub.unsubscribe(Topic::Order(o), a);
        assert!(hub.publish_location(o, || at(1.0)));
        hub.unsubscribe(Topic::Order(o), b);
        assert!(!hub.has_subscribers(Topic::Order(o)));
        assert!(!hub.publish_location(o, || unreachable!()));
    }
}
