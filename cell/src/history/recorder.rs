//! [`Recorder`]: the in-memory half of path recording. Each active delivery has a
//! [`PathBuffer`] its driver's accepted pings are appended to (no store call, no allocation
//! beyond the buffer's growth); the flush task takes sealed segments out of it.
//!
//! Sans-IO: no store, no clock; `now` comes in. Sharded by delivery id so concurrent pings
//! of different drivers rarely meet on one lock.

use domain::{DeliveryId, OrderId, UnixMs};
use parking_lot::Mutex;
use pathcodec::{Fix, PathBuffer};
use std::collections::HashMap;

const SHARDS: usize = 16;

struct Track {
    order: OrderId,
    /// When the first ping was recorded (this process): the path's day unless the store
    /// already has one for it.
    started: UnixMs,
    buf: PathBuffer,
    finished: bool,
}

/// A sealed segment handed to the flush.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed {
    pub delivery: DeliveryId,
    pub order: OrderId,
    pub started: UnixMs,
    /// The `pathcodec` block (empty of fixes when only the end is reported).
    pub block: Vec<u8>,
    pub fixes: u32,
    /// The delivery ended: compact its segments.
    pub finished: bool,
}

#[derive(Default)]
pub struct Recorder {
    shards: [Mutex<HashMap<DeliveryId, Track>>; SHARDS],
}

fn shard(d: DeliveryId) -> usize {
    // Delivery ids are Snowflake-like: the low bits vary most.
    (d.0 as usize) % SHARDS
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an accepted ping of `delivery`'s assigned driver. A delivery that ended is
    /// not recorded again (a late ping after `delivered`).
    pub fn record(&self, delivery: DeliveryId, order: OrderId, fix: &Fix, now: UnixMs) {
        let mut s = self.shards[shard(delivery)].lock();
        let t = s.entry(delivery).or_insert_with(|| Track {
            order,
            started: now,
            buf: PathBuffer::new(delivery.0, 0),
            finished: false,
        });
        if !t.finished {
            t.buf.push(fix);
        }
    }

    /// `delivery` was delivered or cancelled: its last segment goes at the next flush, with
    /// the compaction. A delivery without a recorded ping is left alone.
    pub fn finish(&self, delivery: DeliveryId) -> bool {
        match self.shards[shard(delivery)].lock().get_mut(&delivery) {
            Some(t) => {
                t.finished = true;
                true
            }
            None => false,
        }
    }

    /// Deliveries being recorded (finished ones included until flushed).
    pub fn active(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    /// Seals what is buffered: every delivery with new fixes, and every finished one (which
    /// is then forgotten). With `only_finished`, active paths keep their buffers.
    pub fn take(&self, only_finished: bool) -> Vec<Sealed> {
        let mut out = Vec::new();
        for s in &self.shards {
            let mut s = s.lock();
            s.retain(|&delivery, t| {
                // An active path stays when only ended ones are asked for, or when it has nothing new.
                if !t.finished && (only_finished || t.buf.is_empty()) {
                    return true;
                }
                let fixes = t.buf.len();
                out.push(Sealed {
                    delivery,
                    order: t.order,
                    started: t.started,
                    block: t.buf.seal(),
                    fixes,
                    finished: t.finished,
                });
                !t.finished
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix(t: i64) -> Fix {
        Fix {
            t_ms: t,
            lat: 52.5 + t as f64 * 1e-6,
            lng: 13.4,
            heading_deg: 90.0,
            speed_mps: 8.0,
        }
    }

    #[test]
    fn segments_hold_the_pings_since_the_last_take_and_finish_forgets_the_delivery() {
        let r = Recorder::new();
        let (d, o) = (DeliveryId(9), OrderId(1));
        for t in 0..3 {
            r.record(d, o, &fix(t * 5_000), UnixMs(100));
        }
        assert!(r.take(true).is_empty(), "nothing finished");
        let first = r.take(false);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].fixes, 3);
        let got = pathcodec::decode(&first[0].block).unwrap();
        assert_eq!(got.fixes.len(), 3);
        assert!(r.take(false).is_empty(), "no new fixes, nothing to write");
        r.record(d, o, &fix(15_000), UnixMs(200));
        assert!(r.finish(d));
        r.record(d, o, &fix(20_000), UnixMs(200));
        let last = r.take(true);
        assert_eq!(last.len(), 1);
        assert!(last[0].finished);
        assert_eq!(last[0].fixes, 1, "the ping after the end is not recorded");
        assert_eq!(last[0].started, UnixMs(100));
        assert_eq!(r.active(), 0);
        assert!(!r.finish(DeliveryId(10)), "never recorded");
    }
}
