//! The bounded, expiring cache of customer data keys: at most `max_entries`, each forgotten
//! `ttl_ms` after it was unwrapped. Time is passed in.

use super::KeyId;
use domain::UnixMs;
use ring::aead::LessSafeKey;
use std::collections::HashMap;
use std::sync::Arc;

/// Bounds of the customer key cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    pub ttl_ms: i64,
}

impl Default for CacheLimits {
    /// 10K keys (≈ 10K active customers of a cell, about 5 MB with ring's key schedules);
    /// 5 minutes, about one order's life on the customer's screens.
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            ttl_ms: 300_000,
        }
    }
}

pub(super) struct KeyCache {
    limits: CacheLimits,
    map: HashMap<KeyId, (Arc<LessSafeKey>, UnixMs)>,
}

impl KeyCache {
    pub(super) fn new(limits: CacheLimits) -> Self {
        assert!(limits.max_entries > 0, "a cache holds at least one key");
        Self {
            limits,
            map: HashMap::new(),
        }
    }

    pub(super) fn get(&mut self, id: KeyId, now: UnixMs) -> Option<Arc<LessSafeKey>> {
        match self.map.get(&id) {
            Some((k, at)) if now.0.saturating_sub(at.0) < self.limits.ttl_ms => Some(k.clone()),
            Some(_) => {
                self.map.remove(&id);
                None
            }
            None => None,
        }
    }

    pub(super) fn insert(&mut self, id: KeyId, key: Arc<LessSafeKey>, now: UnixMs) {
        if self.map.len() >= self.limits.max_entries && !self.map.contains_key(&id) {
            let ttl = self.limits.ttl_ms;
            self.map
                .retain(|_, (_, at)| now.0.saturating_sub(at.0) < ttl);
            // Still full: the oldest goes (a scan, only when full of live keys).
            if self.map.len() >= self.limits.max_entries
                && let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| *k)
            {
                self.map.remove(&oldest);
            }
        }
        self.map.insert(id, (key, now));
    }

    pub(super) fn remove(&mut self, id: KeyId) {
        self.map.remove(&id);
    }

    pub(super) fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Arc<LessSafeKey> {
        Arc::new(super::super::kek::aead_key(&[1; 32]))
    }

    #[test]
    fn entries_expire_and_the_cache_never_grows_past_its_bound() {
        let mut c = KeyCache::new(CacheLimits {
            max_entries: 2,
            ttl_ms: 1_000,
        });
        c.insert(KeyId::Customer(1), key(), UnixMs(0));
        assert!(c.get(KeyId::Customer(1), UnixMs(999)).is_some());
        assert!(
            c.get(KeyId::Customer(1), UnixMs(1_000)).is_none(),
            "expired"
        );
        for i in 0..10 {
            c.insert(KeyId::Customer(i), key(), UnixMs(i as i64));
            assert!(c.len() <= 2);
        }
        assert!(
            c.get(KeyId::Customer(9), UnixMs(10)).is_some(),
            "the newest stays"
        );
        assert!(
            c.get(KeyId::Customer(0), UnixMs(10)).is_none(),
            "the oldest went"
        );
    }
}
