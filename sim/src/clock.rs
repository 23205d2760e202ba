//! Virtual time and the event queue. The clock only moves when the world takes the next
//! event; every handler reads "now" from it, never from the system.

use domain::UnixMs;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The simulation's clock: the cell's [`cell::app::Clock`], set by the world before each event.
#[derive(Debug)]
pub struct VirtualClock {
    now: AtomicI64,
}

impl VirtualClock {
    pub fn new(start: UnixMs) -> Self {
        Self {
            now: AtomicI64::new(start.0),
        }
    }

    pub fn set(&self, t: i64) {
        self.now.store(t, Ordering::Relaxed);
    }

    pub fn get(&self) -> UnixMs {
        UnixMs(self.now.load(Ordering::Relaxed))
    }
}

impl cell::app::Clock for VirtualClock {
    fn now(&self) -> UnixMs {
        self.get()
    }
}

/// The model store measures a transaction's age in [`Instant`]s. One real instant, read once
/// per process, anchors virtual time: only differences are ever used, so the anchor decides
/// nothing.
fn anchor() -> Instant {
    static ANCHOR: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ANCHOR.get_or_init(Instant::now)
}

/// The model store's clock on virtual time, counted from `start`.
pub fn store_clock(clock: Arc<VirtualClock>, start: UnixMs) -> store::limits::Clock {
    let base = anchor();
    Arc::new(move || {
        let ms = clock.get().0.saturating_sub(start.0).max(0);
        base + Duration::from_millis(ms as u64)
    })
}

/// Events ordered by (time, sequence number): equal times keep the order they were scheduled in.
#[derive(Debug)]
pub struct Queue<E> {
    events: BTreeMap<(i64, u64), E>,
    seq: u64,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            events: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<E> Queue<E> {
    pub fn push(&mut self, at: i64, e: E) {
        self.seq += 1;
        self.events.insert((at, self.seq), e);
    }

    pub fn pop(&mut self) -> Option<(i64, E)> {
        self.events.pop_first().map(|((t, _), e)| (t, e))
    }

    pub fn peek_time(&self) -> Option<i64> {
        self.events.first_key_value().map(|((t, _), _)| *t)
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_orders_by_time_then_by_scheduling_order() {
        let mut q = Queue::default();
        q.push(20, "c");
        q.push(10, "a");
        q.push(10, "b");
        assert_eq!(q.pop(), Some((10, "a")));
        assert_eq!(q.pop(), Some((10, "b")));
        assert_eq!(q.pop(), Some((20, "c")));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn the_store_clock_follows_virtual_time() {
        let v = Arc::new(VirtualClock::new(UnixMs(1_000)));
        let c = store_clock(v.clone(), UnixMs(1_000));
        let t0 = c();
        v.set(6_000);
        assert_eq!(c() - t0, Duration::from_secs(5));
    }
}
