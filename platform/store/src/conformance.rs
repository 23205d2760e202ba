//! The backend-independent conformance suite. Every backend's tests run these cases (the
//! embedded one always, FoundationDB when `FDB_CLUSTER_FILE` is set); other crates can run them
//! against a backend of their own with the `testing` feature.
//!
//! Event positions are strictly increasing in commit order on every backend, and gap-free only
//! on the embedded one ([`gap_free`]): on FoundationDB and the model they are versionstamps.
//!
//! Each case works in its own key namespace `("conformance", case)` and its own event log, clears
//! its namespace first and measures event positions relative to the head it finds, so the suite
//! can run repeatedly against a shared, persistent cluster.

use std::sync::Arc;
use std::time::Duration;

use crate::keys::pack;
use crate::{Kv, LogId, LogPos, RangeRequest, StoreError, TxnError, keys};

/// What the suite's closures abort with.
type Err = TxnError<&'static str>;

/// Whether `kv` numbers events without gaps (the embedded backend's counters).
pub fn gap_free(kv: &dyn Kv) -> bool {
    kv.backend_name() == "redb"
}

fn ns(case: &str) -> Vec<u8> {
    pack(&("conformance", case))
}

fn key(case: &str, k: &str) -> Vec<u8> {
    pack(&("conformance", case, k))
}

async fn reset(kv: &dyn Kv, case: &str) {
    let p = ns(case);
    crate::transact(kv, move |txn| {
        let p = p.clone();
        Box::pin(async move {
            txn.clear_range(&p, &keys::prefix_end(&p));
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("reset namespace");
}

async fn get(kv: &dyn Kv, k: &[u8]) -> Option<Vec<u8>> {
    let k = k.to_vec();
    crate::read(kv, move |txn| {
        let k = k.clone();
        Box::pin(async move { Ok::<_, Err>(txn.get(&k).await?) })
    })
    .await
    .expect("read")
}

async fn put(kv: &dyn Kv, pairs: Vec<(Vec<u8>, Vec<u8>)>) {
    crate::transact(kv, move |txn| {
        let pairs = pairs.clone();
        Box::pin(async move {
            for (k, v) in &pairs {
                txn.set(k, v);
            }
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("put");
}

/// An aborted or failing transaction writes nothing, events included; a read-only snapshot
/// discards its writes.
pub async fn atomicity(kv: Arc<dyn Kv>) {
    let kv = &*kv;
    let case = "atomicity";
    let log = LogId(901);
    reset(kv, case).await;
    let (a, b) = (key(case, "a"), key(case, "b"));
    put(kv, vec![(a.clone(), b"before".to_vec())]).await;
    let head = kv.log_head(log).await.expect("head");

    let (a2, b2) = (a.clone(), b.clone());
    let r = crate::transact(kv, move |txn| {
        let (a, b) = (a2.clone(), b2.clone());
        Box::pin(async move {
            txn.set(&a, b"after");
            txn.set(&b, b"new");
            txn.append_event(log, b"must not appear");
            Err::<(), _>(TxnError::Abort("no"))
        })
    })
    .await;
    assert!(matches!(r, Err(TxnError::Abort("no"))), "abort is returned");

    let (a2, b2) = (a.clone(), b.clone());
    let r = crate::transact(kv, move |txn| {
        let (a, b) = (a2.clone(), b2.clone());
        Box::pin(async move {
            txn.set(&a, b"after");
            txn.clear(&b);
            txn.append_event(log, b"must not appear");
            Err::<(), Err>(TxnError::Store(StoreError::Backend("injected".into())))
        })
    })
    .await;
    assert!(matches!(r, Err(TxnError::Store(_))), "failure is returned");

    let a2 = a.clone();
    crate::read(kv, move |txn| {
        let a = a2.clone();
        Box::pin(async move {
            txn.set(&a, b"from a snapshot");
            txn.append_event(log, b"must not appear");
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("snapshot");

    assert_eq!(get(kv, &a).await.as_deref(), Some(&b"before"[..]));
    assert_eq!(get(kv, &b).await, None);
    assert_eq!(kv.log_head(log).await.expect("head"), head);
}

/// Concurrent read-modify-write transactions lose no update.
pub async fn serializability(kv: Arc<dyn Kv>) {
    const TASKS: u64 = 8;
    const EACH: u64 = 1_000;
    let case = "serializability";
    reset(&*kv, case).await;
    let counter = key(case, "counter");
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let kv = kv.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                let c = counter.clone();
                crate::transact(&*kv, move |txn| {
                    let c = c.clone();
                    Box::pin(async move {
                        let n = match txn.get(&c).await? {
                            Some(v) => u64::from_be_bytes(v.try_into().expect("8 bytes")),
                            None => 0,
                        };
                        txn.set(&c, &(n + 1).to_be_bytes());
                        Ok::<_, Err>(())
                    })
                })
                .await
                .expect("increment");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let v = get(&*kv, &counter).await.expect("counter exists");
    assert_eq!(u64::from_be_bytes(v.try_into().unwrap()), TASKS * EACH);
}

/// Reads inside a transaction see its own sets, clears and range clears.
pub async fn read_your_writes(kv: Arc<dyn Kv>) {
    let case = "ryw";
    reset(&*kv, case).await;
    let (a, b, c) = (key(case, "a"), key(case, "b"), key(case, "c"));
    put(
        &*kv,
        vec![(a.clone(), b"1".to_vec()), (b.clone(), b"2".to_vec())],
    )
    .await;
    let p = ns(case);
    let (a2, b2, c2) = (a.clone(), b.clone(), c.clone());
    crate::transact(&*kv, move |txn| {
        let (a, b, c, p) = (a2.clone(), b2.clone(), c2.clone(), p.clone());
        Box::pin(async move {
            assert_eq!(txn.get(&a).await?.as_deref(), Some(&b"1"[..]));
            txn.set(&a, b"10");
            txn.set(&c, b"30");
            assert_eq!(txn.get(&a).await?.as_deref(), Some(&b"10"[..]));
            txn.clear(&b);
            assert_eq!(txn.get(&b).await?, None);
            let all = txn.get_range(RangeRequest::prefix(&p)).await?;
            let vals: Vec<_> = all.iter().map(|kv| kv.value.clone()).collect();
            assert_eq!(vals, vec![b"10".to_vec(), b"30".to_vec()]);
            txn.clear_range(&p, &keys::prefix_end(&p));
            assert_eq!(txn.get(&c).await?, None);
            assert!(txn.get_range(RangeRequest::prefix(&p)).await?.is_empty());
            txn.set(&b, b"20");
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("ryw");
    assert_eq!(get(&*kv, &a).await, None);
    assert_eq!(get(&*kv, &b).await.as_deref(), Some(&b"20"[..]));
    assert_eq!(get(&*kv, &c).await, None);
}

/// Range reads: ascending, reverse, limit, and a prefix excludes its neighbours.
pub async fn range_reads(kv: Arc<dyn Kv>) {
    let case = "range";
    reset(&*kv, case).await;
    let items: Vec<(Vec<u8>, Vec<u8>)> = (0u32..20)
        .map(|i| {
            (
                pack(&("conformance", case, "in", i)),
                i.to_be_bytes().to_vec(),
            )
        })
        .chain([
            (pack(&("conformance", case, "im", 5u32)), b"before".to_vec()),
            (pack(&("conformance", case, "io", 5u32)), b"after".to_vec()),
        ])
        .collect();
    put(&*kv, items).await;
    let p = pack(&("conformance", case, "in"));
    let rows = crate::read(&*kv, move |txn| {
        let p = p.clone();
        Box::pin(async move {
            let asc = txn.get_range(RangeRequest::prefix(&p)).await?;
            let rev = txn.get_range(RangeRequest::prefix(&p).reverse()).await?;
            let lim = txn.get_range(RangeRequest::prefix(&p).limit(3)).await?;
            let rlim = txn
                .get_range(RangeRequest::prefix(&p).reverse().limit(3))
                .await?;
            let mid = txn
                .get_range(RangeRequest {
                    begin: [p.as_slice(), &pack(&5u32)].concat(),
                    end: [p.as_slice(), &pack(&8u32)].concat(),
                    limit: 0,
                    reverse: false,
                })
                .await?;
            Ok::<_, Err>([asc, rev, lim, rlim, mid])
        })
    })
    .await
    .expect("ranges");
    let nums = |kvs: &Vec<crate::KeyValue>| -> Vec<u32> {
        kvs.iter()
            .map(|kv| u32::from_be_bytes(kv.value.clone().try_into().expect("4 bytes")))
            .collect()
    };
    assert_eq!(nums(&rows[0]), (0..20).collect::<Vec<_>>());
    assert_eq!(nums(&rows[1]), (0..20).rev().collect::<Vec<_>>());
    assert_eq!(nums(&rows[2]), vec![0, 1, 2]);
    assert_eq!(nums(&rows[3]), vec![19, 18, 17]);
    assert_eq!(nums(&rows[4]), vec![5, 6, 7]);
    assert!(rows[0].windows(2).all(|w| w[0].key < w[1].key));
}

/// `clear_range` removes exactly `[begin, end)`.
pub async fn clear_range(kv: Arc<dyn Kv>) {
    let case = "clear_range";
    reset(&*kv, case).await;
    let k = |i: u32| pack(&("conformance", case, i));
    put(&*kv, (0..10).map(|i| (k(i), vec![1])).collect()).await;
    let (b, e) = (k(3), k(7));
    crate::transact(&*kv, move |txn| {
        let (b, e) = (b.clone(), e.clone());
        Box::pin(async move {
            txn.clear_range(&b, &e);
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("clear");
    for i in 0..10 {
        assert_eq!(
            get(&*kv, &k(i)).await.is_some(),
            !(3..7).contains(&i),
            "key {i}"
        );
    }
}

/// Concurrent appenders: positions strictly increase (gap-free on redb), a transaction's events
/// are contiguous and in append order, and `read_events` honours `from` and `limit`.
pub async fn event_log_order(kv: Arc<dyn Kv>) {
    const TASKS: usize = 8;
    const TXNS: usize = 25;
    let log = LogId(902);
    let start = kv.log_head(log).await.expect("head").0;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let kv = kv.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..TXNS {
                crate::transact(&*kv, move |txn| {
                    Box::pin(async move {
                        for e in 0..(1 + n % 3) {
                            txn.append_event(log, format!("{t}/{n}/{e}").as_bytes());
                        }
                        Ok::<_, Err>(())
                    })
                })
                .await
                .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let total: usize = (0..TXNS).map(|n| 1 + n % 3).sum::<usize>() * TASKS;
    let head = kv.log_head(log).await.expect("head").0;
    let gap_free = gap_free(&*kv);
    if gap_free {
        assert_eq!(head - start, total as u128);
    }
    let events = kv
        .read_events(log, LogPos(start + 1), 0)
        .await
        .expect("events");
    assert_eq!(events.len(), total);
    assert_eq!(
        events.last().expect("events").pos,
        LogPos(head),
        "head is the last"
    );
    assert!(
        events.windows(2).all(|w| w[0].pos < w[1].pos),
        "strictly increasing"
    );
    let parsed: Vec<(usize, usize, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, ev)| {
            if gap_free {
                assert_eq!(ev.pos, LogPos(start + 1 + i as u128), "gap-free");
            }
            let s = String::from_utf8(ev.payload.clone()).expect("utf8");
            let v: Vec<usize> = s.split('/').map(|x| x.parse().expect("num")).collect();
            (v[0], v[1], v[2])
        })
        .collect();
    // Each task's transactions appear in order, each one's events contiguous.
    for t in 0..TASKS {
        let mine: Vec<_> = parsed
            .iter()
            .filter(|p| p.0 == t)
            .map(|p| (p.1, p.2))
            .collect();
        let expected: Vec<_> = (0..TXNS)
            .flat_map(|n| (0..(1 + n % 3)).map(move |e| (n, e)))
            .collect();
        assert_eq!(mine, expected, "task {t}");
    }
    for w in parsed.windows(2) {
        if w[1].2 > 0 {
            assert_eq!(
                (w[0].0, w[0].1, w[0].2 + 1),
                w[1],
                "events of a txn are contiguous"
            );
        }
    }
    let page = kv.read_events(log, events[4].pos, 3).await.expect("page");
    assert_eq!(page, events[4..7].to_vec());
    let after = kv
        .read_events(log, events[4].pos.next(), 1)
        .await
        .expect("page");
    assert_eq!(after, events[5..6].to_vec());
}

/// `wait_for_events` returns at once when the log is already past `after`, and wakes on commit.
pub async fn wait_for_events_wakes(kv: Arc<dyn Kv>) {
    let log = LogId(903);
    let head = kv.log_head(log).await.expect("head");
    if head.0 > 0 {
        let now = tokio::time::timeout(
            Duration::from_secs(5),
            kv.wait_for_events(log, LogPos(head.0 - 1)),
        )
        .await
        .expect("immediate")
        .expect("wait");
        assert!(now >= head);
    }
    let waiter = {
        let kv = kv.clone();
        tokio::spawn(async move { kv.wait_for_events(log, head).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished(), "no event yet");
    crate::transact(&*kv, move |txn| {
        Box::pin(async move {
            txn.append_event(log, b"wake up");
            Ok::<_, Err>(())
        })
    })
    .await
    .expect("append");
    let woke = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woken within 10 s")
        .expect("task")
        .expect("wait");
    assert!(woke > head);
    if gap_free(&*kv) {
        assert_eq!(woke, LogPos(head.0 + 1));
    }
    let ev = kv.read_events(log, head.next(), 0).await.expect("read");
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].pos, &ev[0].payload[..]), (woke, &b"wake up"[..]));
}

/// FoundationDB's size limits fail the transaction with `LimitExceeded`, and it writes nothing.
pub async fn limits(kv: Arc<dyn Kv>) {
    let case = "limits";
    reset(&*kv, case).await;
    let marker = key(case, "marker");
    type Write = fn(&dyn crate::Txn);
    let cases: [(&str, Write); 4] = [
        ("key size", |t| t.set(&[7; 10_001], b"v")),
        ("value size", |t| t.set(&key("limits", "v"), &[7; 100_001])),
        ("value size", |t| t.append_event(LogId(904), &[7; 100_001])),
        ("transaction size", |t| {
            for i in 0u32..101 {
                t.set(&pack(&("conformance", "limits", i)), &[7; 99_990]);
            }
        }),
    ];
    for (expected, write) in cases {
        let m = marker.clone();
        let r = crate::transact(&*kv, move |txn| {
            let m = m.clone();
            Box::pin(async move {
                txn.set(&m, b"x");
                write(txn);
                Ok::<_, Err>(())
            })
        })
        .await;
        match r {
            Err(TxnError::Store(StoreError::LimitExceeded { what, size, max })) => {
                assert_eq!(what, expected);
                assert!(size > max);
            }
            other => panic!("{expected}: expected LimitExceeded, got {other:?}"),
        }
    }
    assert_eq!(get(&*kv, &marker).await, None, "nothing committed");
}

/// Read-modify-write transactions with transaction ids ([`crate::transact_once`]), several
/// tasks at once: every one is applied exactly once, even where the backend reports a commit
/// as unknown after applying it and the store retries it (the model with faults). No duplicated
/// effect (counter, events), no lost write (each transaction's own key).
pub async fn retried_commits_apply_once(kv: Arc<dyn Kv>) {
    const TASKS: u64 = 8;
    const EACH: u64 = 130;
    let case = "once";
    let log = LogId(905);
    reset(&*kv, case).await;
    let start = kv.log_head(log).await.expect("head");
    let ids = crate::keys::Subspace::shared("conformance-once");
    // Ids left by an interrupted earlier run would answer for this run's transactions.
    crate::purge_txn_ids(&*kv, &ids, u64::MAX)
        .await
        .expect("purge");
    let counter = key(case, "counter");
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let (kv, counter, ids) = (kv.clone(), counter.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            for n in 0..EACH {
                let mut raw = [0u8; 16];
                raw[..8].copy_from_slice(&t.to_be_bytes());
                raw[8..].copy_from_slice(&n.to_be_bytes());
                let id = crate::TxnId::new(&ids, raw, 1_000 + n);
                let c = counter.clone();
                let seen = crate::transact_once(&*kv, &id, move |txn| {
                    let c = c.clone();
                    Box::pin(async move {
                        let v = match txn.get(&c).await? {
                            Some(v) => u64::from_be_bytes(v.try_into().expect("8 bytes")),
                            None => 0,
                        };
                        txn.set(&c, &(v + 1).to_be_bytes());
                        txn.set(&pack(&("conformance", "once", "w", t, n)), b"done");
                        txn.append_event(log, format!("{t}/{n}").as_bytes());
                        Ok::<_, Err>(v + 1)
                    })
                })
                .await
                .expect("transact_once");
                assert!(seen >= 1);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let total = TASKS * EACH;
    let v = get(&*kv, &counter).await.expect("counter");
    assert_eq!(
        u64::from_be_bytes(v.try_into().unwrap()),
        total,
        "applied once each"
    );
    let p = pack(&("conformance", case, "w"));
    let written = crate::read(&*kv, move |txn| {
        let p = p.clone();
        Box::pin(async move { Ok::<_, Err>(txn.get_range(RangeRequest::prefix(&p)).await?.len()) })
    })
    .await
    .expect("read");
    assert_eq!(written as u64, total, "no lost write");
    let events = kv.read_events(log, start.next(), 0).await.expect("events");
    let mut payloads: Vec<Vec<u8>> = events.into_iter().map(|e| e.payload).collect();
    assert_eq!(payloads.len() as u64, total, "one event each");
    payloads.sort();
    payloads.dedup();
    assert_eq!(payloads.len() as u64, total, "no duplicated event");

    // Purging removes exactly the ids older than the cut-off.
    assert_eq!(count(&*kv, ids.range()).await as u64, total);
    crate::purge_txn_ids(&*kv, &ids, 1_000 + EACH / 2)
        .await
        .expect("purge");
    assert_eq!(count(&*kv, ids.range()).await as u64, total / 2);
    crate::purge_txn_ids(&*kv, &ids, u64::MAX)
        .await
        .expect("purge");
    assert_eq!(count(&*kv, ids.range()).await, 0);
}

async fn count(kv: &dyn Kv, (begin, end): (Vec<u8>, Vec<u8>)) -> usize {
    crate::read(kv, move |txn| {
        let range = RangeRequest {
            begin: begin.clone(),
            end: end.clone(),
            limit: 0,
            reverse: false,
        };
        Box::pin(async move { Ok::<_, Err>(txn.get_range(range).await?.len()) })
    })
    .await
    .expect("count")
}

/// Every case, one after another.
pub async fn run_all(kv: Arc<dyn Kv>) {
    atomicity(kv.clone()).await;
    read_your_writes(kv.clone()).await;
    range_reads(kv.clone()).await;
    clear_range(kv.clone()).await;
    event_log_order(kv.clone()).await;
    wait_for_events_wakes(kv.clone()).await;
    limits(kv.clone()).await;
    retried_commits_apply_once(kv.clone()).await;
    serializability(kv).await;
}

/// Declares one `#[tokio::test]` per conformance case; `$open` is a future giving
/// `Option<(Arc<dyn Kv>, guard)>` (`None` skips, after printing why; the guard, e.g. a temporary
/// directory, is dropped after the case).
#[macro_export]
macro_rules! conformance_tests {
    ($open:expr) => {
        $crate::conformance_tests!(@case $open; atomicity, serializability, read_your_writes,
            range_reads, clear_range, event_log_order, wait_for_events_wakes, limits,
            retried_commits_apply_once);
    };
    (@case $open:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                if let Some((kv, _guard)) = $open.await {
                    $crate::conformance::$case(kv).await;
                }
            }
        )*
    };
}
