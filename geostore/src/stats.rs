//! What the store counts: the public [`Stats`] and [`SweepStats`], and the per-thread counter
//! stripes behind them (no locked instruction on the upsert path).

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};

/// Result of one [`GeoStore::sweep`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Slots examined.
    pub scanned: u64,
    /// Drivers removed because their last ping was stale.
    pub expired: u64,
}

/// Counters and gauges for the cell to export (e.g. as Prometheus metrics). Counters are
/// monotonic since the store was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Drivers currently tracked (gauge).
    pub drivers: u64,
    /// Buckets (H3 cells ever occupied; gauge).
    pub buckets: u64,
    pub upserts_total: u64,
    pub inserts_total: u64,
    /// Pings ignored because a newer one was already stored.
    pub ignored_older_total: u64,
    /// Upserts that moved a driver to another bucket.
    pub bucket_moves_total: u64,
    /// Upserts that skipped the H3 computation (position surely inside the current cell).
    pub fast_path_total: u64,
    pub removes_total: u64,
    pub queries_total: u64,
    /// Query passes repeated because a concurrent move invalidated them.
    pub query_retries_total: u64,
    pub sweeps_total: u64,
    pub swept_expired_total: u64,
    /// Heap bytes held by the index (gauge; computed on demand).
    pub memory_bytes: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ctr {
    /// Same-bucket updates that needed h3o (the fast-path ones count under `Fast`).
    Slow,
    Inserts,
    Ignored,
    Moves,
    Fast,
    Removes,
    Queries,
    Retries,
    Sweeps,
    Expired,
}
pub(crate) const NCTR: usize = 10;
pub(crate) const CTRS: [Ctr; NCTR] = [
    Ctr::Slow,
    Ctr::Inserts,
    Ctr::Ignored,
    Ctr::Moves,
    Ctr::Fast,
    Ctr::Removes,
    Ctr::Queries,
    Ctr::Retries,
    Ctr::Sweeps,
    Ctr::Expired,
];
/// Threads numbered below this own a stripe and bump it with a plain load and store; a locked
/// read-modify-write (`fetch_add`) drains the store buffer, which on the upsert path stalls
/// behind the previous ping's cache misses. Higher-numbered threads share one atomic stripe.
const OWNED_STRIPES: usize = 64;

/// Per-thread counter stripes, so concurrent writers neither bounce a cache line nor pay a
/// locked instruction per event.
pub(crate) struct Counters(Box<[CachePadded<[AtomicU64; NCTR]>]>);

/// A small process-wide thread number, returned to a free list when the thread exits so that
/// thread pools that churn threads keep reusing the owned stripes.
struct ThreadNo(usize);
static FREE_NOS: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());
static NEXT_NO: AtomicUsize = AtomicUsize::new(0);

impl ThreadNo {
    fn claim() -> Self {
        let reused = FREE_NOS.lock().ok().and_then(|mut f| f.pop());
        Self(reused.unwrap_or_else(|| NEXT_NO.fetch_add(1, Relaxed)))
    }
}

impl Drop for ThreadNo {
    fn drop(&mut self) {
        // The mutex orders this thread's last counter stores before the next owner's loads.
        if let Ok(mut f) = FREE_NOS.lock() {
            f.push(self.0);
        }
    }
}

thread_local! {
    static THREAD_NO: ThreadNo = ThreadNo::claim();
}

impl Counters {
    pub(crate) fn new() -> Self {
        Self(
            (0..=OWNED_STRIPES)
                .map(|_| CachePadded::new(Default::default()))
                .collect(),
        )
    }
    #[inline]
    pub fn add(&self, c: Ctr, n: u64) {
        // During thread teardown the thread-local may be gone: use the shared stripe.
        let no = THREAD_NO.try_with(|t| t.0).unwrap_or(OWNED_STRIPES);
        if no < OWNED_STRIPES {
            // Only this thread writes this stripe: a plain increment is exact.
            let a = &self.0[no][c as usize];
            a.store(a.load(Relaxed) + n, Relaxed);
        } else {
            self.0[OWNED_STRIPES][c as usize].fetch_add(n, Relaxed);
        }
    }
    pub(crate) fn sum(&self, c: Ctr) -> u64 {
        self.0.iter().map(|s| s[c as usize].load(Relaxed)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_table_matches_enum() {
        for (i, c) in CTRS.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
