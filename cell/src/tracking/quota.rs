//! The per-token cap on tracking subscriptions (`[tracking] max_subscriptions_per_token`):
//! one stolen or leaked token cannot open sockets without bound. A [`Claim`] is taken before
//! the upgrade and lives in the socket task, so closing the socket frees it.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

/// Open subscriptions per token, keyed by a hash of the token (never the token itself).
pub struct Quota {
    max: usize,
    keys: RandomState,
    open: Arc<Mutex<HashMap<u64, usize>>>,
}

/// One open subscription of a token; released on drop.
pub struct Claim {
    key: u64,
    open: Arc<Mutex<HashMap<u64, usize>>>,
}

impl Quota {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            keys: RandomState::new(),
            open: Arc::default(),
        }
    }

    /// A place for one more subscription of `token`, or `None` when it holds `max` already.
    pub fn claim(&self, token: &str) -> Option<Claim> {
        let key = self.keys.hash_one(token);
        let mut open = self.open.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Claim {
            key,
            open: self.open.clone(),
        })
    }

    /// Tokens holding at least one subscription.
    pub fn tokens(&self) -> usize {
        self.open.lock().len()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_gets_max_claims_and_a_closed_one_frees_its_place() {
        let q = Quota::new(2);
        let (a, b) = (q.claim("t1").unwrap(), q.claim("t1").unwrap());
        assert!(q.claim("t1").is_none());
        let other = q.claim("t2");
        assert!(other.is_some(), "another token has its own budget");
        drop(a);
        let c = q.claim("t1");
        assert!(c.is_some());
        drop((b, c, other));
        assert_eq!(q.tokens(), 0, "no entry outlives its last claim");
    }
}
