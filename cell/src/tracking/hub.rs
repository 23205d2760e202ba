//! In-process fan-out of tracking updates, keyed by topic (an order, or a restaurant's
//! tablet). Every subscriber has a bounded queue: a subscriber that falls behind is dropped
//! (its socket closes with a reason) and never grows memory or slows the others.

use domain::{OrderId, RestaurantId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
    /// WebSocket read buffer: small, so an idle tracker costs a few KiB (stack facts).
    pub ws_read_buffer_bytes: usize,
}

impl Default for TrackingConfig {
    fn default() -> Self {
        Self {
            queue_depth: 64,
            min_location_interval_ms: 1_000,
            ws_read_buffer_bytes: 4_096,
        }
    }
}

struct Sub {
    id: u64,
    tx: mpsc::Sender<Arc<str>>,
    last_location: Option<Instant>,
}

/// A subscription: read messages from `rx`; `None` means the hub dropped it (too slow).
pub struct Subscription {
    pub id: u64,
    pub rx: mpsc::Receiver<Arc<str>>,
}

pub struct Hub {
    topics: Mutex<HashMap<Topic, Vec<Sub>>>,
    next_id: AtomicU64,
    cfg: TrackingConfig,
}

impl Hub {
    pub fn new(cfg: TrackingConfig) -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            cfg,
        }
    }

    pub fn config(&self) -> &TrackingConfig {
        &self.cfg
    }

    pub fn subscribe(&self, topic: Topic) -> Subscription {
        let (tx, rx) = mpsc::channel(self.cfg.queue_depth.max(1));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.topics.lock().entry(topic).or_default().push(Sub {
            id,
            tx,
            last_location: None,
        });
        metrics::gauge!("cell_tracking_subscribers").increment(1.0);
        Subscription { id, rx }
    }

    pub fn unsubscribe(&self, topic: Topic, id: u64) {
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

    /// Sends to every subscriber of `topic`; drops those whose queue is full.
    pub fn publish(&self, topic: Topic, msg: Arc<str>) -> usize {
        self.send(topic, msg, None)
    }

    /// Like `publish`, but at most once per subscriber per `min_location_interval`.
    pub fn publish_location(&self, topic: Topic, msg: Arc<str>, now: Instant) -> usize {
        self.send(topic, msg, Some(now))
    }

    fn send(&self, topic: Topic, msg: Arc<str>, throttle_at: Option<Instant>) -> usize {
        let min = Duration::from_millis(self.cfg.min_location_interval_ms);
        let mut topics = self.topics.lock();
        let Some(subs) = topics.get_mut(&topic) else {
            return 0;
        };
        let mut sent = 0;
        subs.retain_mut(|s| {
            if let Some(now) = throttle_at {
                if s.last_location.is_some_and(|t| now.duration_since(t) < min) {
                    metrics::counter!("cell_tracking_throttled_total").increment(1);
                    return true;
                }
                s.last_location = Some(now);
            }
            match s.tx.try_send(msg.clone()) {
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

    #[test]
    fn locations_are_throttled_per_subscriber() {
        let hub = Hub::new(TrackingConfig {
            min_location_interval_ms: 1_000,
            ..TrackingConfig::default()
        });
        let t = Topic::Order(OrderId(1));
        let mut s = hub.subscribe(t);
        let t0 = Instant::now();
        assert_eq!(hub.publish_location(t, Arc::from("a"), t0), 1);
        assert_eq!(
            hub.publish_location(t, Arc::from("b"), t0 + Duration::from_millis(500)),
            0
        );
        assert_eq!(
            hub.publish_location(t, Arc::from("c"), t0 + Duration::from_millis(1_001)),
            1
        );
        assert_eq!(&*s.rx.try_recv().unwrap(), "a");
        assert_eq!(&*s.rx.try_recv().unwrap(), "c");
        hub.unsubscribe(t, s.id);
        assert!(!hub.has_subscribers(t));
    }
}
