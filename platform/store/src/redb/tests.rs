//! Tests specific to the redb backend (the shared `Kv` conformance suite runs too): a
//! panicking transaction writes nothing, aborts inside a batch commit, reopening, and a
//! second open of the same directory.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::{TxnError, conformance};

async fn open_temp() -> Option<(Arc<dyn Kv>, tempfile::TempDir)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let kv = RedbStore::open(dir.path(), RedbOptions::default()).expect("open");
    Some((Arc::new(kv), dir))
}

crate::conformance_tests!(open_temp());

type Err = TxnError<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_closure_writes_nothing_and_the_writer_survives() {
    let (kv, _dir) = open_temp().await.unwrap();
    let r = crate::transact(&*kv, |txn| {
        Box::pin(async move {
            txn.set(b"k", b"v");
            txn.append_event(LogId(1), b"x");
            if txn.get(b"k").await?.is_some() {
                panic!("closure panics on purpose");
            }
            Ok::<_, Err>(())
        })
    })
    .await;
    assert!(matches!(r, Err(TxnError::Store(StoreError::Backend(_)))));
    conformance::atomicity(kv.clone()).await;
    assert_eq!(kv.log_head(LogId(1)).await.unwrap(), LogPos(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closures_may_use_tokio_and_jobs_after_an_abort_in_the_same_batch_commit() {
    let (kv, _dir) = open_temp().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0u32..32 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            crate::transact(&*kv, move |txn| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_micros(10)).await;
                    txn.set(&i.to_be_bytes(), b"v");
                    txn.append_event(LogId(2), &i.to_be_bytes());
                    if i % 2 == 1 {
                        return Err(TxnError::Abort(i));
                    }
                    Ok(())
                })
            })
            .await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().is_ok(), i % 2 == 0);
    }
    assert_eq!(kv.log_head(LogId(2)).await.unwrap(), LogPos(16));
    let events = kv.read_events(LogId(2), LogPos(1), 0).await.unwrap();
    assert!(
        events
            .iter()
            .all(|e| u32::from_be_bytes(e.payload[..].try_into().unwrap()) % 2 == 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_keeps_data_and_continues_the_log() {
    let dir = tempfile::tempdir().unwrap();
    for round in 1..=3u64 {
        let kv: Arc<dyn Kv> =
            Arc::new(RedbStore::open(dir.path(), RedbOptions::default()).unwrap());
        assert_eq!(
            kv.log_head(LogId(5)).await.unwrap(),
            LogPos(u128::from(round) - 1)
        );
        crate::transact(&*kv, move |txn| {
            Box::pin(async move {
                txn.set(&round.to_be_bytes(), b"r");
                txn.append_event(LogId(5), &round.to_be_bytes());
                Ok::<_, Err>(())
            })
        })
        .await
        .unwrap();
        let events = kv.read_events(LogId(5), LogPos(0), 0).await.unwrap();
        let pos: Vec<u128> = events.iter().map(|e| e.pos.0).collect();
        assert_eq!(pos, (1..=u128::from(round)).collect::<Vec<_>>());
    }
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _first = RedbStore::open(dir.path(), RedbOptions::default()).unwrap();
    match RedbStore::open(dir.path(), RedbOptions::default()) {
        Err(StoreError::AlreadyOpen { path }) => {
            assert!(path.contains(&*dir.path().to_string_lossy()))
        }
        other => panic!("expected AlreadyOpen, got {:?}", other.map(|_| ())),
    }
}

/// A transaction (and a snapshot read) older than 5 s fails with `LimitExceeded`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_older_than_five_seconds_fails() {
    let (kv, _dir) = open_temp().await.unwrap();
    let too_long = crate::limits::MAX_TXN_AGE + Duration::from_millis(100);
    let write = crate::transact(&*kv, move |txn| {
        Box::pin(async move {
            txn.set(b"slow", b"v");
            std::thread::sleep(too_long);
            Ok::<_, Err>(())
        })
    });
    let read = crate::read(&*kv, move |txn| {
        Box::pin(async move {
            let v = txn.get(b"slow").await?;
            tokio::time::sleep(too_long).await;
            Ok::<_, Err>(v)
        })
    });
    let (write, read) = tokio::join!(write, read);
    for r in [write.map(drop), read.map(drop)] {
        assert!(
            matches!(
                r,
                Err(TxnError::Store(StoreError::LimitExceeded {
                    what: "transaction age (ms)",
                    ..
                }))
            ),
            "{r:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_transactions_ride_along_a_few_per_commit_and_all_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = RedbOptions {
        background_per_batch: 2,
        ..RedbOptions::default()
    };
    let store = Arc::new(RedbStore::open(dir.path(), opts).expect("open"));
    let before = store.commit_stats();
    // Ten background writes sent at once: at most two per commit, so at least five commits;
    // without the limit they would share one or two.
    let writes = (0..10u8).map(|i| {
        let kv = store.clone();
        tokio::spawn(crate::priority::background(async move {
            crate::transact(&*kv, move |txn| {
                Box::pin(async move {
                    txn.set(&[b'b', i], b"v");
                    Ok::<_, Err>(())
                })
            })
            .await
        }))
    });
    let foreground = crate::transact(&*store, |txn| {
        Box::pin(async move {
            txn.set(b"f", b"v");
            Ok::<_, Err>(())
        })
    });
    let (done, fg) = tokio::join!(futures::future::join_all(writes), foreground);
    fg.unwrap();
    for d in done {
        d.unwrap().unwrap();
    }
    let after = store.commit_stats();
    assert_eq!(after.transactions - before.transactions, 11);
    assert!(
        after.batches - before.batches >= 5,
        "{} commits for 10 background writes, 2 allowed per commit",
        after.batches - before.batches
    );
    for i in 0..10u8 {
        let kv: &dyn Kv = &*store;
        let v = crate::read(kv, move |txn| {
            Box::pin(async move { Ok::<_, Err>(txn.get(&[b'b', i]).await?) })
        })
        .await
        .unwrap();
        assert_eq!(v.as_deref(), Some(&b"v"[..]));
    }
}
