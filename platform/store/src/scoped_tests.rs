//! Tests of [`SubspaceKv`] and [`Pages`] on the embedded backend.

use std::sync::Arc;

use crate::keys::{Subspace, pack};
use crate::{Kv, PageLimits, Pages, RangeRequest, RedbOptions, RedbStore, SubspaceKv, TxnError};

fn open() -> (tempfile::TempDir, Arc<dyn Kv>) {
    let dir = tempfile::tempdir().unwrap();
    let kv = RedbStore::open(dir.path(), RedbOptions::default()).unwrap();
    (dir, Arc::new(kv))
}

async fn put(kv: &dyn Kv, key: Vec<u8>, value: Vec<u8>) {
    crate::transact(kv, move |txn| {
        let (k, v) = (key.clone(), value.clone());
        Box::pin(async move {
            txn.set(&k, &v);
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .unwrap();
}

async fn all(kv: &dyn Kv) -> Vec<(Vec<u8>, Vec<u8>)> {
    crate::read(kv, |txn| {
        Box::pin(async move {
            let rows = txn
                .get_range(RangeRequest {
                    begin: vec![],
                    end: vec![0xff],
                    limit: 0,
                    reverse: false,
                })
                .await?;
            Ok::<_, TxnError<()>>(rows.into_iter().map(|r| (r.key, r.value)).collect())
        })
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn subspaces_of_one_store_are_disjoint() {
    let (_dir, raw) = open();
    let one = SubspaceKv::scoped(raw.clone(), Subspace::cell(1));
    let two = SubspaceKv::scoped(raw.clone(), Subspace::cell(2));
    put(&*one, pack(&("k", 1)), b"one".to_vec()).await;
    put(&*two, pack(&("k", 1)), b"two".to_vec()).await;
    put(&*two, pack(&("k", 2)), b"two".to_vec()).await;
    assert_eq!(all(&*one).await, vec![(pack(&("k", 1)), b"one".to_vec())]);
    assert_eq!(all(&*two).await.len(), 2);
    // Underneath, every key carries its subspace's prefix.
    let raw_keys = all(&*raw).await;
    assert_eq!(raw_keys.len(), 3);
    assert_eq!(raw_keys[0].0, Subspace::cell(1).pack(&("k", 1)));
    // A range clear in one subspace leaves the other alone.
    crate::transact(&*two, |txn| {
        Box::pin(async move {
            txn.clear_range(&[], &[0xff]);
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .unwrap();
    assert!(all(&*two).await.is_empty());
    assert_eq!(all(&*one).await.len(), 1);
}

#[tokio::test]
async fn pages_cover_the_range_once_within_their_bounds() {
    let (_dir, kv) = open();
    for i in 0..500u32 {
        put(
            &*kv,
            pack(&("p", i)),
            vec![7; 100 + (i as usize % 3) * 1000],
        )
        .await;
    }
    put(&*kv, pack(&("q", 0)), vec![1]).await;
    let limits = PageLimits {
        keys: 70,
        bytes: 20_000,
    };
    let mut pages = Pages::prefix(&pack(&("p",)), limits);
    let mut seen = Vec::new();
    while let Some(page) = pages.next(&*kv).await.unwrap() {
        assert!(page.len() <= limits.keys);
        let bytes: usize = page.iter().map(|r| r.key.len() + r.value.len()).sum();
        let last = page.last().unwrap();
        assert!(bytes - last.key.len() - last.value.len() < limits.bytes);
        seen.extend(page.into_iter().map(|r| r.key));
    }
    let want: Vec<_> = (0..500u32).map(|i| pack(&("p", i))).collect();
    assert_eq!(seen, want);
    assert!(pages.continuation().is_none());
}
