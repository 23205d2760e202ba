//! The lease cases on the embedded backend, plus the record's encoding.

use super::{Incarnation, LeaseRecord};
use crate::{Kv, RedbOptions, RedbStore, StoreError};
use std::sync::Arc;

async fn open_temp() -> Option<(Arc<dyn Kv>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = RedbStore::open(dir.path(), RedbOptions::default()).expect("open");
    Some((Arc::new(kv), dir))
}

crate::lease_tests!(open_temp());

#[test]
fn a_record_round_trips_and_a_short_one_is_corrupt() {
    let r = LeaseRecord {
        holder: Incarnation(u128::MAX - 7),
        fence: 42,
        expires_ms: 1_700_000_000_123,
    };
    assert_eq!(LeaseRecord::decode(b"k", &r.encode()).unwrap(), r);
    assert!(matches!(
        LeaseRecord::decode(b"k", &r.encode()[..31]),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn incarnations_differ_per_start() {
    assert_ne!(Incarnation::random(), Incarnation::random());
}
