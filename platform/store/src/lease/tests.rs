//! The lease cases on the embedded backend, plus the record's encoding.

use super::{Acquire, Incarnation, Lease, Tenure};
use crate::{Kv, RedbOptions, RedbStore, StoreError};
use std::sync::Arc;

async fn open_temp() -> Option<(Arc<dyn Kv>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = RedbStore::open(dir.path(), RedbOptions::default()).expect("open");
    Some((Arc::new(kv), dir))
}

crate::lease_tests!(open_temp());

#[test]
fn a_tenure_round_trips_and_a_short_one_is_corrupt() {
    let t = Tenure {
        holder: Incarnation(u128::MAX - 7),
        fence: 42,
    };
    assert_eq!(Tenure::decode(b"k", &t.encode()).unwrap(), t);
    assert!(matches!(
        Tenure::decode(b"k", &t.encode()[..23]),
        Err(StoreError::Corrupt { .. })
    ));
}

/// What a restart after a crash finds on redb: a live lease of an incarnation that is gone
/// (no `Lease` of it in this process, and no other process can have the directory open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_redb_a_lease_left_by_a_dead_process_is_taken_over_at_once() {
    let (kv, _dir) = open_temp().await.unwrap();
    let key = b"lease".to_vec();
    let dead = Lease::new(kv.clone(), key.clone(), Incarnation(0xdead));
    let dead_kv = dead.fenced_kv();
    dead.try_acquire(0, 10_000).await.unwrap();
    let live = Lease::new(kv.clone(), key.clone(), Incarnation(0x1));
    // While the holder's Lease lives here, it is a live instance: wait for the expiry.
    assert!(matches!(
        live.try_acquire(1, 10_000).await.unwrap(),
        Acquire::Held { .. }
    ));
    drop(dead);
    // Its FencedKv still holds a clone: the incarnation is alive until that goes too.
    assert!(matches!(
        live.try_acquire(2, 10_000).await.unwrap(),
        Acquire::Held { .. }
    ));
    drop(dead_kv);
    assert_eq!(
        live.try_acquire(3, 10_000).await.unwrap(),
        Acquire::Acquired {
            fence: 2,
            expires_ms: 10_003
        }
    );
}

#[test]
fn incarnations_differ_per_start() {
    assert_ne!(Incarnation::random(), Incarnation::random());
}
