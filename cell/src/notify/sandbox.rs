//! [`LogPush`]: the demo's push provider. Logs each notification with tracing and keeps the
//! last few in memory, for tests and an admin view. Like a real provider it dedupes by
//! idempotency key (within what it keeps), so a replayed event shows up once.

use super::provider::{BoxFuture, Notification, PushError, PushProvider};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

/// See the module doc.
#[derive(Debug)]
pub struct LogPush {
    keep: usize,
    recent: Mutex<VecDeque<Notification>>,
    delivered: AtomicU64,
}

impl LogPush {
    /// Keeps the last `keep` notifications (at least one).
    pub fn new(keep: usize) -> Self {
        let keep = keep.max(1);
        LogPush {
            keep,
            recent: Mutex::new(VecDeque::with_capacity(keep)),
            delivered: AtomicU64::new(0),
        }
    }

    /// The kept notifications, oldest first.
    pub fn recent(&self) -> Vec<Notification> {
        self.recent.lock().iter().cloned().collect()
    }

    /// Notifications delivered since start (duplicates not counted).
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    fn deliver(&self, n: &Notification) {
        {
            let mut recent = self.recent.lock();
            if recent
                .iter()
                .any(|r| r.idempotency_key == n.idempotency_key)
            {
                tracing::debug!(key = %n.idempotency_key, "duplicate notification suppressed");
                return;
            }
            if recent.len() == self.keep {
                recent.pop_front();
            }
            recent.push_back(n.clone());
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            key = %n.idempotency_key,
            recipient = ?n.recipient,
            kind = n.kind.as_str(),
            order_id = %n.order_id,
            title = %n.title,
            body = %n.body,
            "push notification (sandbox)"
        );
    }
}

impl PushProvider for LogPush {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), PushError>> {
        self.deliver(n);
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> &'static str {
        "log"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::provider::Recipient;
    use domain::{CustomerId, EventKind, OrderId, UnixMs};

    fn n(key: &str) -> Notification {
        Notification {
            idempotency_key: key.into(),
            recipient: Recipient::Customer(CustomerId(1)),
            kind: EventKind::OrderDelivered,
            title: "t".into(),
            body: "b".into(),
            order_id: OrderId(1),
            at: UnixMs(0),
        }
    }

    #[tokio::test]
    async fn keeps_the_last_n_and_dedupes_by_key() {
        let p = LogPush::new(2);
        for k in ["a", "b", "b", "c"] {
            p.send(&n(k)).await.unwrap();
        }
        let keys: Vec<_> = p.recent().into_iter().map(|n| n.idempotency_key).collect();
        assert_eq!(keys, ["b", "c"]);
        assert_eq!(p.delivered(), 3);
    }
}
