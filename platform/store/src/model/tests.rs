//! Tests of the model: the conformance suite without and with faults, FoundationDB's semantics
//! at the raw API (snapshots, conflict ranges, versionstamps, watches, limits, faults), and the
//! control showing that `commit_unknown_result` does duplicate a non-idempotent transaction
//! retried without a transaction id.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::fdbsem::{RawTxn, codes};
use crate::keys::{self, Versionstamp};
use crate::{Kv, LogId, RangeRequest, StoreError, TxnError};

type Err = TxnError<()>;

async fn open(faults: ModelFaults) -> Option<(Arc<dyn Kv>, ModelDb)> {
    let db = ModelDb::new(faults);
    Some((db.kv(), db))
}

/// Retryable faults only: the suite's cases that are not idempotent (increments, appends) would
/// be duplicated by `commit_unknown_result`, which `unknown_results` below covers.
fn retryable_faults(seed: u64) -> ModelFaults {
    ModelFaults {
        seed,
        conflict: 0.1,
        unknown_result: 0.0,
        too_old: 0.02,
        latency: Duration::from_micros(200),
    }
}

fn unknown_result_faults(seed: u64) -> ModelFaults {
    ModelFaults {
        seed,
        conflict: 0.1,
        unknown_result: 0.1,
        too_old: 0.02,
        latency: Duration::from_micros(100),
    }
}

mod plain {
    use super::*;
    crate::conformance_tests!(open(ModelFaults::none()));
}

mod faulty {
    use super::*;
    crate::conformance_tests!(open(retryable_faults(7)));
}

fn txn(db: &ModelDb) -> ModelTxn {
    crate::fdbsem::RawDb::create_txn(db).expect("txn")
}

async fn commit(t: ModelTxn) -> Result<(), i32> {
    t.commit().await.map_err(|(_, e)| e.code)
}

async fn put(db: &ModelDb, k: &[u8], v: &[u8]) {
    let t = txn(db);
    t.set(k, v);
    commit(t).await.expect("put");
}

#[tokio::test]
async fn reads_see_their_snapshot_and_their_own_writes() {
    let db = ModelDb::new(ModelFaults::none());
    put(&db, b"k", b"1").await;
    let a = txn(&db);
    put(&db, b"k", b"2").await;
    assert_eq!(a.get(b"k", false).await.unwrap(), Some(b"1".to_vec()));
    a.set(b"k", b"mine");
    a.clear_range(b"l", b"m");
    assert_eq!(a.get(b"k", true).await.unwrap(), Some(b"mine".to_vec()));
    assert_eq!(
        txn(&db).get(b"k", false).await.unwrap(),
        Some(b"2".to_vec())
    );
}

#[tokio::test]
async fn non_snapshot_reads_conflict_and_snapshot_reads_do_not() {
    let db = ModelDb::new(ModelFaults::none());
    for snapshot in [false, true] {
        let a = txn(&db);
        a.get(b"k", snapshot).await.unwrap();
        put(&db, b"k", b"changed").await;
        a.set(b"other", b"x");
        let expected = if snapshot {
            Ok(())
        } else {
            Err(codes::NOT_COMMITTED)
        };
        assert_eq!(commit(a).await, expected, "snapshot: {snapshot}");
    }
    // A key the transaction wrote itself before reading it is no read conflict.
    let a = txn(&db);
    a.set(b"k", b"own");
    a.get(b"k", false).await.unwrap();
    put(&db, b"k", b"theirs").await;
    assert_eq!(commit(a).await, Ok(()));
    assert_eq!(db.stats().conflicts, 1);
}

#[tokio::test]
async fn a_range_cut_by_its_limit_conflicts_only_where_it_was_read() {
    let db = ModelDb::new(ModelFaults::none());
    for k in [b"b", b"d", b"f"] {
        put(&db, k, b"v").await;
    }
    let read = |reverse: bool| {
        let t = txn(&db);
        async move {
            let mut r = RangeRequest {
                begin: b"a".to_vec(),
                end: b"z".to_vec(),
                limit: 2,
                reverse: false,
            };
            r.reverse = reverse;
            let rows = t.get_range(r, false).await.unwrap();
            assert_eq!(rows.len(), 2);
            t.set(b"out", b"x");
            t
        }
    };
    // Ascending, it read [a, d]: a write at e does not conflict, one at c does.
    let t = read(false).await;
    put(&db, b"e", b"new").await;
    assert_eq!(commit(t).await, Ok(()));
    let t = read(false).await;
    put(&db, b"c", b"new").await;
    assert_eq!(commit(t).await, Err(codes::NOT_COMMITTED));
    // Reverse, it read [e, z): a write at c does not conflict, one at y does.
    let t = read(true).await;
    put(&db, b"c", b"again").await;
    assert_eq!(commit(t).await, Ok(()));
    let t = read(true).await;
    put(&db, b"y", b"new").await;
    assert_eq!(commit(t).await, Err(codes::NOT_COMMITTED));
}

#[tokio::test]
async fn blind_appenders_do_not_conflict_and_get_commit_ordered_stamps() {
    // The event log's reasoning, checked at the raw API: appenders that started together write
    // versionstamped keys and blind-write the same signal key; all of them commit.
    let db = ModelDb::new(ModelFaults::none());
    let signal = keys::event_signal_key(1);
    let appenders: Vec<ModelTxn> = (0..4).map(|_| txn(&db)).collect();
    let watcher = txn(&db);
    let before = watcher.get(&signal, false).await.unwrap();
    let fired = watcher.watch(&signal);
    commit(watcher).await.expect("watcher");
    for (i, t) in appenders.into_iter().enumerate() {
        let key = keys::pack_with_versionstamp(&(keys::EVENTS, 1u16, Versionstamp::incomplete(0)));
        t.set_versionstamped_key(&key, format!("e{i}").as_bytes());
        let stamp = keys::pack_with_versionstamp(&(Versionstamp::incomplete(0),));
        t.set_versionstamped_value(&signal, &stamp);
        assert_eq!(commit(t).await, Ok(()), "appender {i}");
    }
    assert_eq!(db.stats().conflicts, 0);
    tokio::time::timeout(Duration::from_secs(5), fired)
        .await
        .expect("watch fired")
        .expect("watch");
    let rows = txn(&db)
        .get_range(RangeRequest::prefix(&keys::event_prefix(1)), true)
        .await
        .unwrap();
    let payloads: Vec<&[u8]> = rows.iter().map(|kv| &kv.value[..]).collect();
    assert_eq!(
        payloads,
        vec![&b"e0"[..], b"e1", b"e2", b"e3"],
        "commit order"
    );
    let (_, _, stamp): (String, u16, Versionstamp) = keys::unpack(&rows[0].key).unwrap();
    assert_eq!(
        &stamp.transaction_version()[..8],
        &1u64.to_be_bytes(),
        "commit version (the watcher committed read-only)"
    );
    assert_ne!(txn(&db).get(&signal, true).await.unwrap(), before);
}

#[tokio::test]
async fn a_watch_fires_only_when_the_value_changes() {
    let db = ModelDb::new(ModelFaults::none());
    put(&db, b"w", b"1").await;
    let t = txn(&db);
    let mut fired = t.watch(b"w");
    commit(t).await.unwrap();
    put(&db, b"other", b"x").await;
    put(&db, b"w", b"1").await;
    assert!(
        futures::poll!(&mut fired).is_pending(),
        "same value: no change"
    );
    put(&db, b"w", b"2").await;
    assert!(futures::poll!(&mut fired).is_ready());
}

#[tokio::test]
async fn size_limits_fail_the_commit_with_foundationdbs_codes() {
    let db = ModelDb::new(ModelFaults::none());
    type Write = fn(&ModelTxn);
    let cases: [(Write, i32); 3] = [
        (|t| t.set(&[1; 10_001], b""), codes::KEY_TOO_LARGE),
        (|t| t.set(b"k", &[1; 100_001]), codes::VALUE_TOO_LARGE),
        (
            |t| {
                for i in 0u32..101 {
                    t.set(&i.to_be_bytes(), &[1; 99_999]);
                }
            },
            codes::TRANSACTION_TOO_LARGE,
        ),
    ];
    for (write, code) in cases {
        let t = txn(&db);
        write(&t);
        assert_eq!(commit(t).await, Err(code));
    }
    assert_eq!(db.stats().commits, 0);
}

#[tokio::test]
async fn a_transaction_older_than_five_seconds_is_too_old() {
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock_now = now.clone();
    let db = ModelDb::with_clock(
        ModelFaults::none(),
        Arc::new(move || *clock_now.lock().unwrap()),
    );
    let t = txn(&db);
    *now.lock().unwrap() += Duration::from_secs(6);
    let e = t.get(b"k", false).await.unwrap_err();
    assert_eq!(e.code, codes::TRANSACTION_TOO_OLD);

    // Through the store: the age the closure took is a typed limit error, not retried forever.
    let kv = db.kv();
    let advance = now.clone();
    let r = crate::transact(&*kv, move |txn| {
        let advance = advance.clone();
        Box::pin(async move {
            txn.get(b"k").await?;
            *advance.lock().unwrap() += Duration::from_secs(6);
            txn.set(b"k", b"late");
            Ok::<_, Err>(())
        })
    })
    .await;
    assert!(
        matches!(r, Err(TxnError::Store(StoreError::LimitExceeded { .. }))),
        "{r:?}"
    );
}

#[tokio::test]
async fn an_unknown_result_is_applied() {
    let db = ModelDb::new(ModelFaults {
        unknown_result: 1.0,
        ..ModelFaults::none()
    });
    let t = txn(&db);
    t.set(b"k", b"v");
    assert_eq!(commit(t).await, Err(codes::COMMIT_UNKNOWN_RESULT));
    assert_eq!(
        txn(&db).get(b"k", false).await.unwrap(),
        Some(b"v".to_vec())
    );
}

#[tokio::test]
async fn stores_sharing_one_model_see_one_database() {
    let db = ModelDb::new(ModelFaults::none());
    let (a, b) = (db.kv(), db.kv());
    crate::transact(&*a, |txn| {
        Box::pin(async move {
            txn.set(b"shared", b"yes");
            txn.append_event(LogId(3), b"from a");
            Ok::<_, Err>(())
        })
    })
    .await
    .unwrap();
    let v = crate::read(&*b, |txn| {
        Box::pin(async move { Ok::<_, Err>(txn.get(b"shared").await?) })
    })
    .await
    .unwrap();
    assert_eq!(v.as_deref(), Some(&b"yes"[..]));
    assert_eq!(
        b.read_events(LogId(3), crate::LogPos(0), 0)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// 64 concurrent order-shaped writers on one log: the event log causes no conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_never_conflict() {
    let db = ModelDb::new(ModelFaults::none());
    let kv = db.kv();
    let mut tasks = Vec::new();
    for w in 0..64u64 {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..10 {
                crate::synthetic::create_order(&*kv, w * 100 + n, LogId(1))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(db.stats().conflicts, 0);
    assert_eq!(db.stats().commits, 640);
    let events = kv.read_events(LogId(1), crate::LogPos(0), 0).await.unwrap();
    assert_eq!(events.len(), 640);
}

/// The acceptance run: >= 1,000 seeded read-modify-write transactions under injected unknown
/// results and conflicts, with transaction ids: no duplicated effect, no lost write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_results_and_conflicts_with_transaction_ids_apply_once() {
    let db = ModelDb::new(unknown_result_faults(16));
    crate::conformance::retried_commits_apply_once(db.kv()).await;
    let s = db.stats();
    assert!(s.injected_unknown_results > 50, "{s:?}");
    assert!(s.injected_conflicts > 50, "{s:?}");
}

/// The control: the same increments WITHOUT transaction ids are applied more than once under
/// `commit_unknown_result`, so the fault demonstrably fires and the ids are what prevent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_transaction_ids_unknown_results_duplicate_effects() {
    const TASKS: u64 = 8;
    const EACH: u64 = 130;
    let db = ModelDb::new(unknown_result_faults(17));
    let kv = db.kv();
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                crate::transact(&*kv, |txn| {
                    Box::pin(async move {
                        let v = match txn.get(b"counter").await? {
                            Some(v) => u64::from_be_bytes(v.try_into().unwrap()),
                            None => 0,
                        };
                        txn.set(b"counter", &(v + 1).to_be_bytes());
                        Ok::<_, Err>(())
                    })
                })
                .await
                .expect("increment");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    db.set_faults(ModelFaults::none());
    let v = crate::read(&*kv, |txn| {
        Box::pin(async move { Ok::<_, Err>(txn.get(b"counter").await?) })
    })
    .await
    .unwrap()
    .unwrap();
    let counter = u64::from_be_bytes(v.try_into().unwrap());
    let unknown = db.stats().injected_unknown_results;
    assert!(unknown > 0);
    // Each unknown result was applied and then applied again by the retry.
    assert_eq!(counter, TASKS * EACH + unknown);
}

/// The lease cases, the in-flight ones included: the model runs writers concurrently, so a
/// takeover can commit while a write of the old holder is past its fence check.
mod lease {
    use super::*;
    crate::lease_tests!(open(ModelFaults::none()), concurrent);
}

/// The cases that need no exact attempt count, with conflicts, unknown results and too-old
/// reads injected: acquiring, renewing and releasing are safe to retry blindly.
mod lease_faulty {
    use super::*;
    crate::lease_tests!(open(unknown_result_faults(11)));
}

/// What the in-flight case cannot see through `Kv`: the old holder's first commit was a real
/// conflict on the tenure key (no fault is injected here), and nothing else conflicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_takeover_makes_the_in_flight_write_conflict() {
    let db = ModelDb::new(ModelFaults::none());
    crate::lease::suite::in_flight_write_conflicts_then_fails_fenced(db.kv()).await;
    assert_eq!(db.stats().conflicts, 1);
    let db = ModelDb::new(ModelFaults::none());
    crate::lease::suite::in_flight_write_survives_a_renewal(db.kv()).await;
    assert_eq!(db.stats().conflicts, 0);
}
