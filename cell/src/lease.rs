//! The cell's lease: one process per cell id serves and writes. A process that finds the
//! lease held waits as a standby ([`CellLease::acquire`]) and takes over once it expired or
//! was released; while serving, [`CellLease::keep`] renews it every third of `lease_ms` and
//! returns when it is lost, upon which the cell stops. Every write of the cell goes through
//! [`CellLease::kv`], a `store::FencedKv`, so even a process that has not noticed yet that it
//! lost the lease commits nothing after the takeover (see `store::lease`).

use crate::app::Clock;
use crate::config::Config;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use store::lease::{Acquire, Incarnation};
use store::{Kv, Lease, StoreError};

/// The key of the cell's lease, in the cell's subspace (the store the cell runs on is scoped
/// to it, so this is `("c", cell_id, "lease")` in the cluster).
pub fn key() -> Vec<u8> {
    store::keys::pack(&("lease",))
}

/// Who holds the lease while this process waits as a standby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub incarnation: String,
    /// When the holder's lease ends unless it renews (ms since the epoch).
    pub until_ms: u64,
}

/// Why a serving cell lost its lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseLost {
    #[error("another instance took over the cell's lease: {0}")]
    Fenced(String),
    #[error("the lease could not be renewed before it expired{}", last_error(.0))]
    Expired(Option<String>),
}

fn last_error(e: &Option<String>) -> String {
    e.as_ref()
        .map(|e| format!(" (last error: {e})"))
        .unwrap_or_default()
}

/// This process's lease on its cell.
#[derive(Clone)]
pub struct CellLease {
    lease: Lease,
    lease_ms: u64,
    /// Our lease's expiry as last written (ms); past it, one late renewal is tried, then none.
    expires_ms: Arc<AtomicU64>,
}

impl CellLease {
    /// The lease of `config`'s cell in `kv`, for a fresh incarnation. Holds nothing yet.
    pub fn new(kv: Arc<dyn Kv>, config: &Config) -> Self {
        let key = key();
        Self {
            lease: Lease::new(kv, key, Incarnation::random()),
            lease_ms: config.store.lease_ms,
            expires_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The store handle the cell writes through: every write transaction checks the fence.
    pub fn kv(&self) -> Arc<dyn Kv> {
        Arc::new(self.lease.fenced_kv())
    }

    pub fn incarnation(&self) -> Incarnation {
        self.lease.incarnation()
    }

    /// The fence held, if any.
    pub fn fence(&self) -> Option<u64> {
        self.lease.fence()
    }

    /// Takes the lease, waiting as long as another live instance holds it. `on_standby` is
    /// called when it finds the lease held (with the holder and its expiry). Retries store
    /// errors; the caller races this against shutdown.
    pub async fn acquire(&self, clock: &dyn Clock, mut on_standby: impl FnMut(&Holder)) -> u64 {
        // A release is seen within a second; an expiry right when it happens.
        let poll = Duration::from_millis((self.lease_ms / 4).min(1_000));
        let mut last_holder = None;
        loop {
            let now = now_ms(clock);
            let wait = match self.lease.try_acquire(now, self.lease_ms).await {
                Ok(Acquire::Acquired { fence, expires_ms }) => {
                    self.expires_ms.store(expires_ms, Ordering::Release);
                    tracing::info!(
                        fence,
                        incarnation = %self.incarnation(),
                        "holding the cell's lease"
                    );
                    return fence;
                }
                Ok(Acquire::Held { holder, until_ms }) => {
                    let h = Holder {
                        incarnation: holder.to_string(),
                        until_ms,
                    };
                    if last_holder.as_ref() != Some(&h.incarnation) {
                        tracing::warn!(
                            holder = %h.incarnation,
                            until_ms,
                            "another instance holds this cell's lease: running as a standby \
                             (not ready) until it expires or is released"
                        );
                        last_holder = Some(h.incarnation.clone());
                    }
                    on_standby(&h);
                    poll.min(Duration::from_millis(until_ms.saturating_sub(now) + 1))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the cell's lease; retrying");
                    poll
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Renews the lease every third of `lease_ms` until it is lost: someone else holds it
    /// (fenced), or no renewal succeeded before it expired nor in one late attempt after.
    /// Then it also refuses this process's writes, and returns why.
    pub async fn keep(&self, clock: &dyn Clock) -> LeaseLost {
        let every = Duration::from_millis(self.lease_ms / 3);
        let mut wait = every;
        loop {
            tokio::time::sleep(wait).await;
            let now = now_ms(clock);
            let left = self.expires_ms.load(Ordering::Acquire).saturating_sub(now);
            // Past the expiry (this process was paused or starved) one late renewal is still
            // tried: it commits only while the fence is ours, and a takeover raises the fence,
            // so if it commits nobody else held the lease meanwhile. Stopping then would turn a
            // stall into an outage for nothing.
            let budget = if left > 0 {
                left
            } else {
                every.as_millis() as u64
            };
            // A renewal that hangs past the expiry (or the late budget) counts as failed.
            let renewal = self.lease.renew(now, self.lease_ms);
            match tokio::time::timeout(Duration::from_millis(budget), renewal).await {
                Ok(Ok(expires_ms)) => {
                    if left == 0 {
                        tracing::warn!(
                            "renewed the cell's lease after it had expired; nobody took it over"
                        );
                    }
                    self.expires_ms.store(expires_ms, Ordering::Release);
                    wait = every;
                }
                Ok(Err(StoreError::Fenced { reason })) => return LeaseLost::Fenced(reason),
                Ok(Err(e)) if left == 0 => {
                    self.lease.abandon();
                    return LeaseLost::Expired(Some(e.to_string()));
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, left_ms = left, "could not renew the cell's lease");
                    // Try again soon, while there is time left.
                    wait = every.min(Duration::from_millis(left / 2));
                }
                Err(_) => {
                    self.lease.abandon();
                    return LeaseLost::Expired(Some("the renewal did not finish in time".into()));
                }
            }
        }
    }

    /// Gives the lease up on a clean shutdown, so a standby takes over at once.
    pub async fn release(&self) {
        match self.lease.release().await {
            Ok(()) => tracing::info!("released the cell's lease"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the cell's lease; a standby takes over when it expires")
            }
        }
    }
}

fn now_ms(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now().0).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::UnixMs;
    use std::sync::atomic::AtomicI64;

    /// A clock the test sets: the process "pauses" by moving it past the lease's expiry.
    struct SetClock(AtomicI64);

    impl Clock for SetClock {
        fn now(&self) -> UnixMs {
            UnixMs(self.0.load(Ordering::SeqCst))
        }
    }

    const PATIENCE: Duration = Duration::from_secs(60);

    /// A holder paused past its expiry renews late when nobody took over, and keeps serving;
    /// once a standby has taken over, the next renewal is fenced and `keep` returns.
    #[tokio::test]
    async fn a_late_renewal_keeps_the_lease_unless_someone_took_over() {
        let db = store::model::ModelDb::new(store::model::ModelFaults::none());
        let kv: Arc<dyn Kv> = Arc::new(db.store());
        let mut config = Config::load(None).unwrap();
        config.store.lease_ms = 1_000;
        let clock = Arc::new(SetClock(AtomicI64::new(10_000)));
        let lease = CellLease::new(kv.clone(), &config);
        assert_eq!(lease.acquire(&*clock, |_| {}).await, 1);

        // Paused for 5 s: the clock is past the expiry (11,000) before the first renewal.
        clock.0.store(16_000, Ordering::SeqCst);
        let keeper = {
            let (lease, clock) = (lease.clone(), clock.clone());
            tokio::spawn(async move { lease.keep(&*clock).await })
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while lease.expires_ms.load(Ordering::SeqCst) < 17_000 {
            assert!(!keeper.is_finished(), "keep gave up: {:?}", keeper.await);
            assert!(tokio::time::Instant::now() < deadline, "no late renewal");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(lease.fence(), Some(1), "still held, same fence");

        // A standby takes over after the next expiry; the holder's renewal is then fenced.
        clock.0.store(30_000, Ordering::SeqCst);
        let standby = Lease::new(kv.clone(), key(), Incarnation(7));
        assert!(matches!(
            standby.try_acquire(30_000, 1_000).await.unwrap(),
            Acquire::Acquired { fence: 2, .. }
        ));
        let lost = tokio::time::timeout(PATIENCE, keeper)
            .await
            .expect("keep returns once fenced")
            .unwrap();
        assert!(matches!(lost, LeaseLost::Fenced(_)), "{lost}");
    }
}
