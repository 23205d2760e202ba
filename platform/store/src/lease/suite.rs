//! The backend-independent lease cases: two [`Lease`]s with different incarnations over one
//! store play two processes of one cell. Every backend's tests run them ([`lease_tests!`] on
//! redb here); other crates can run them against a backend of their own with the `testing`
//! feature. Time is simulated: each case passes its own `now_ms`.
//!
//! Each case works on its own key `("lease-suite", case)` and clears it first, so the cases
//! can run repeatedly against a shared, persistent cluster.

use super::{Acquire, FencedKv, Incarnation, Lease};
use crate::keys::pack;
use crate::{Kv, StoreError, TxnError};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

const LEASE_MS: u64 = 1_000;

type Err = TxnError<()>;

/// The lease key of `case`, cleared, and the two processes `(a, b)` contending for it.
async fn setup(kv: &Arc<dyn Kv>, case: &str) -> (Lease, Lease) {
    let key = pack(&("lease-suite", case));
    let k = key.clone();
    crate::transact(&**kv, move |txn| {
        let k = k.clone();
        Box::pin(async move {
            txn.clear(&k);
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("clearing the case's lease key");
    (
        Lease::new(kv.clone(), key.clone(), Incarnation(0xa)),
        Lease::new(kv.clone(), key, Incarnation(0xb)),
    )
}

fn data_key(case: &str, k: &str) -> Vec<u8> {
    pack(&("lease-suite-data", case, k))
}

/// A write of `a`'s paused inside its first attempt, past the fence check and before commit,
/// so that a case can commit something else while it is in flight. Retries do not pause.
struct PausedWrite {
    go: Arc<tokio::sync::Notify>,
    attempts: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<Result<(), Err>>,
}

impl PausedWrite {
    /// Starts the write of `k` and returns once its first attempt is paused.
    async fn start(a: &Lease, k: Vec<u8>) -> Self {
        let started = Arc::new(tokio::sync::Notify::new());
        let go = Arc::new(tokio::sync::Notify::new());
        let attempts = Arc::new(AtomicU32::new(0));
        let a_kv = a.fenced_kv();
        let (s, g, n) = (started.clone(), go.clone(), attempts.clone());
        let task = tokio::spawn(async move {
            crate::transact(&a_kv, move |txn| {
                let (k, started, go) = (k.clone(), s.clone(), g.clone());
                let first = n.fetch_add(1, Ordering::SeqCst) == 0;
                Box::pin(async move {
                    txn.set(&k, b"in flight");
                    if first {
                        started.notify_one();
                        go.notified().await;
                    }
                    Ok::<_, Err>(())
                })
            })
            .await
        });
        started.notified().await;
        Self { go, attempts, task }
    }

    /// Lets the paused attempt go on; the write's outcome and how many attempts it took.
    async fn finish(self) -> (Result<(), Err>, u32) {
        self.go.notify_one();
        let r = self.task.await.expect("the writing task");
        (r, self.attempts.load(Ordering::SeqCst))
    }
}

/// Writes `k` = `v` through `kv` (a fenced handle).
async fn write(kv: &FencedKv, k: Vec<u8>, v: &'static [u8]) -> Result<(), StoreError> {
    crate::transact(kv, move |txn| {
        let k = k.clone();
        Box::pin(async move {
            txn.set(&k, v);
            Ok::<_, Err>(())
        })
    })
    .await
    .map_err(|e| match e {
        TxnError::Store(e) => e,
        TxnError::Abort(()) => unreachable!("the closure never aborts"),
    })
}

async fn stored(kv: &dyn Kv, k: Vec<u8>) -> Option<Vec<u8>> {
    crate::read(kv, move |txn| {
        let k = k.clone();
        Box::pin(async move { Ok::<_, Err>(txn.get(&k).await?) })
    })
    .await
    .expect("reading back")
}

fn assert_fenced<T: std::fmt::Debug>(r: Result<T, StoreError>, what: &str) {
    assert!(
        matches!(r, Err(StoreError::Fenced { .. })),
        "{what}: expected Fenced, got {r:?}"
    );
}

/// Exactly one of two processes holds the lease and can write; the other's acquire fails
/// (saying who holds it until when) up to the expiry, and its writes are refused.
pub async fn exactly_one_holds(kv: Arc<dyn Kv>) {
    let (a, b) = setup(&kv, "one").await;
    let got = a.try_acquire(1_000, LEASE_MS).await.unwrap();
    assert_eq!(
        got,
        Acquire::Acquired {
            fence: 1,
            expires_ms: 2_000
        }
    );
    for now in [1_000, 1_500, 1_999] {
        assert_eq!(
            b.try_acquire(now, LEASE_MS).await.unwrap(),
            Acquire::Held {
                holder: a.incarnation(),
                until_ms: 2_000
            },
            "at {now} the lease is a's"
        );
    }
    assert_eq!((a.fence(), b.fence()), (Some(1), None));
    write(&a.fenced_kv(), data_key("one", "a"), b"a")
        .await
        .expect("the holder writes");
    assert_fenced(
        write(&b.fenced_kv(), data_key("one", "b"), b"b").await,
        "the standby's write",
    );
    assert_eq!(
        stored(&*kv, data_key("one", "a")).await.as_deref(),
        Some(&b"a"[..])
    );
    assert_eq!(stored(&*kv, data_key("one", "b")).await, None);
    // Acquiring again while holding it is a renewal: same fence.
    assert_eq!(
        a.try_acquire(1_500, LEASE_MS).await.unwrap(),
        Acquire::Acquired {
            fence: 1,
            expires_ms: 2_500
        }
    );
}

/// After the lease expired the standby takes over with a higher fence; the old holder's
/// writes then fail `Fenced` and store nothing, and its renewal fails `Fenced` too.
pub async fn takeover_fences_the_old_holder(kv: Arc<dyn Kv>) {
    let (a, b) = setup(&kv, "takeover").await;
    let a_kv = a.fenced_kv();
    assert!(matches!(
        a.try_acquire(0, LEASE_MS).await.unwrap(),
        Acquire::Acquired { fence: 1, .. }
    ));
    assert_eq!(a.renew(600, LEASE_MS).await.unwrap(), 1_600);
    assert!(matches!(
        b.try_acquire(1_599, LEASE_MS).await.unwrap(),
        Acquire::Held {
            until_ms: 1_600,
            ..
        }
    ));
    assert_eq!(
        b.try_acquire(1_600, LEASE_MS).await.unwrap(),
        Acquire::Acquired {
            fence: 2,
            expires_ms: 2_600
        }
    );
    // a does not know yet (it missed its renewals): its handle still thinks it holds fence 1.
    assert_eq!(a.fence(), Some(1));
    assert_fenced(
        write(&a_kv, data_key("takeover", "a"), b"late").await,
        "the old holder's write",
    );
    assert_eq!(stored(&*kv, data_key("takeover", "a")).await, None);
    write(&b.fenced_kv(), data_key("takeover", "b"), b"b")
        .await
        .expect("the new holder writes");
    assert_fenced(a.renew(1_700, LEASE_MS).await, "the old holder's renewal");
    assert_eq!(a.fence(), None, "a failed renewal drops the fence");
    // The old holder cannot come back before the new one's lease ends.
    assert!(matches!(
        a.try_acquire(1_700, LEASE_MS).await.unwrap(),
        Acquire::Held { .. }
    ));
    assert_eq!(b.renew(2_000, LEASE_MS).await.unwrap(), 3_000);
}

/// A release lets the standby in at once (no waiting for the expiry), with a higher fence;
/// the released process's writes are refused from then on.
pub async fn release_lets_the_standby_in_at_once(kv: Arc<dyn Kv>) {
    let (a, b) = setup(&kv, "release").await;
    a.try_acquire(0, 10 * LEASE_MS).await.unwrap();
    assert!(matches!(
        b.try_acquire(1, LEASE_MS).await.unwrap(),
        Acquire::Held { .. }
    ));
    a.release().await.unwrap();
    assert_eq!(a.fence(), None);
    assert_eq!(
        b.try_acquire(2, LEASE_MS).await.unwrap(),
        Acquire::Acquired {
            fence: 2,
            expires_ms: 1_002
        }
    );
    assert_fenced(
        write(&a.fenced_kv(), data_key("release", "a"), b"a").await,
        "a write after the release",
    );
    assert_eq!(stored(&*kv, data_key("release", "a")).await, None);
    // Releasing again, or a lease someone else holds now, is a no-op that leaves b's alone.
    a.release().await.unwrap();
    assert_eq!(b.renew(3, LEASE_MS).await.unwrap(), 1_003);
}

/// The old holder's transaction is in flight (past its fence check) when the takeover
/// commits: its commit conflicts on the lease key it read, and the retry fails `Fenced`.
/// Only for backends that run write transactions concurrently (FoundationDB, the model): on
/// a serial one (redb) the takeover would wait behind the paused transaction forever.
pub async fn in_flight_write_conflicts_then_fails_fenced(kv: Arc<dyn Kv>) {
    let (a, b) = setup(&kv, "in-flight").await;
    a.try_acquire(0, LEASE_MS).await.unwrap();
    let write = PausedWrite::start(&a, data_key("in-flight", "a")).await;
    assert!(matches!(
        b.try_acquire(LEASE_MS, LEASE_MS).await.unwrap(),
        Acquire::Acquired { fence: 2, .. }
    ));
    let (r, attempts) = write.finish().await;
    assert!(
        matches!(r, Err(TxnError::Store(StoreError::Fenced { .. }))),
        "expected Fenced, got {r:?}"
    );
    // The closure ran once, so the first attempt passed its fence check: `Fenced` can only
    // come from a retry (the wrapper's check fails before the closure runs), so the first
    // commit was refused as a conflict rather than committed under the old fence.
    assert_eq!(attempts, 1, "the fence check of attempt 1 passed");
    assert_eq!(stored(&*kv, data_key("in-flight", "a")).await, None);
}

/// A renewal committed while a write of the holder is in flight does not make that write
/// fail or retry into a conflict: renewals write only the expiry key, writes read only the
/// tenure key. For backends that run write transactions concurrently, like the case above.
pub async fn in_flight_write_survives_a_renewal(kv: Arc<dyn Kv>) {
    let (a, _) = setup(&kv, "renew-in-flight").await;
    a.try_acquire(0, LEASE_MS).await.unwrap();
    let write = PausedWrite::start(&a, data_key("renew-in-flight", "a")).await;
    assert_eq!(a.renew(500, LEASE_MS).await.unwrap(), 1_500);
    let (r, attempts) = write.finish().await;
    r.expect("the write commits");
    assert_eq!(attempts, 1, "no conflict, no retry");
    assert_eq!(
        stored(&*kv, data_key("renew-in-flight", "a"))
            .await
            .as_deref(),
        Some(&b"in flight"[..])
    );
}

/// Runs the lease cases that hold on every backend against `$open`, an async expression
/// giving `Option<(Arc<dyn Kv>, guard)>` (`None` skips); `lease_tests!(open, concurrent)` adds
/// the in-flight cases for backends that run write transactions concurrently.
#[macro_export]
macro_rules! lease_tests {
    ($open:expr, concurrent) => {
        $crate::lease_tests!($open);
        $crate::lease_tests!(@case $open; in_flight_write_conflicts_then_fails_fenced,
            in_flight_write_survives_a_renewal);
    };
    ($open:expr) => {
        $crate::lease_tests!(@case $open; exactly_one_holds, takeover_fences_the_old_holder,
            release_lets_the_standby_in_at_once);
    };
    (@case $open:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some((kv, _guard)) = $open.await {
                    $crate::lease::suite::$case(kv).await;
                }
            }
        )*
    };
}
