//! Token-bucket rate limits per key: the router's per client IP and per bearer token, the
//! cell's per user. Sans-IO: `now` comes in, so
//! the arithmetic is tested exactly. Sharded mutexes keep contention low; a shard forgets
//! full buckets when it grows, so memory stays bounded by the active clients.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const SHARDS: usize = 16;
/// A shard is pruned of idle (refilled) buckets once it holds this many.
const PRUNE_AT: usize = 50_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// One family of buckets (e.g. per IP) with one rate and burst.
pub struct Limiter<K> {
    rate_per_s: f64,
    burst: f64,
    shards: Vec<Mutex<HashMap<K, Bucket>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `rate_per_s == 0` turns the limiter off.
    pub fn new(rate_per_s: u32, burst: u32) -> Self {
        Self {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst.max(1)),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: Default::default(),
        }
    }

    /// Takes one token for `key`; on refusal returns the seconds until one is available.
    pub fn check(&self, key: &K, now_ms: u64) -> Result<(), u64> {
        if self.rate_per_s == 0.0 {
            return Ok(());
        }
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let mut map = shard.lock();
        if map.len() >= PRUNE_AT {
            let (rate, burst) = (self.rate_per_s, self.burst);
            map.retain(|_, b| {
                b.tokens + (now_ms.saturating_sub(b.at_ms) as f64) * rate / 1e3 < burst
            });
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            at_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(b.at_ms) as f64 / 1e3;
        b.tokens = (b.tokens + elapsed * self.rate_per_s).min(self.burst);
        b.at_ms = now_ms.max(b.at_ms);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / self.rate_per_s).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let l = Limiter::new(10, 5);
        for _ in 0..5 {
            assert!(l.check(&"a", 1_000).is_ok());
        }
        assert_eq!(l.check(&"a", 1_000), Err(1));
        // Other keys have their own bucket.
        assert!(l.check(&"b", 1_000).is_ok());
        // 10/s refills one token per 100 ms.
        assert!(l.check(&"a", 1_100).is_ok());
        assert!(l.check(&"a", 1_100).is_err());
        // Never more than the burst, however long the pause.
        for _ in 0..5 {
            assert!(l.check(&"a", 100_000).is_ok());
        }
        assert!(l.check(&"a", 100_000).is_err());
        // A clock that steps back does not mint tokens.
        assert!(l.check(&"a", 50_000).is_err());
    }

    #[test]
    fn zero_rate_is_off() {
        let l = Limiter::new(0, 0);
        for _ in 0..1000 {
            assert!(l.check(&1u64, 0).is_ok());
        }
    }
}
