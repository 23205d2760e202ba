//! The lease cases on the embedded backend, plus the record's encoding.

use super::{Incarnation, Tenure};
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

#[test]
fn incarnations_differ_per_start() {
    assert_ne!(Incarnation::random(), Incarnation::random());
}
