//! Recording, flushing, compaction, restart, purge and holds, on the embedded store and a
//! real key store file. Time is passed in: days are chosen, not waited for.

use super::{DAY_MS, History, HistoryConfig, HistoryError, Hold, keys};
use crate::dispatch::GpsFix;
use crate::envelope::{Kek, KeyError, KeyId, KeyRing, KeyStore, RedbKeyStore};
use domain::{DeliveryId, OrderId, UnixMs};
use std::sync::Arc;
use store::{Kv, RangeRequest, TxnError};

const CELL: u16 = 1;
/// Noon of day 20,000 (2024-10-04).
const DAY: u32 = 20_000;
const T0: i64 = DAY as i64 * DAY_MS + DAY_MS / 2;

struct Env {
    _dirs: Vec<tempfile::TempDir>,
    kv: Arc<dyn Kv>,
    keys: Arc<dyn KeyStore>,
}

fn redb(dirs: &mut Vec<tempfile::TempDir>) -> Arc<dyn Kv> {
    let d = tempfile::tempdir().unwrap();
    let kv = Arc::new(store::RedbStore::open(d.path(), store::RedbOptions::default()).unwrap());
    dirs.push(d);
    kv
}

fn env() -> Env {
    let mut dirs = Vec::new();
    let kv = redb(&mut dirs);
    let kd = tempfile::tempdir().unwrap();
    let keys: Arc<dyn KeyStore> =
        Arc::new(RedbKeyStore::open(&kd.path().join("keys.redb")).unwrap());
    dirs.push(kd);
    Env {
        _dirs: dirs,
        kv,
        keys,
    }
}

/// A history service over `kv` and `keys`, as a freshly started process has it (no cached
/// keys, nothing buffered).
fn history(kv: &Arc<dyn Kv>, keys: &Arc<dyn KeyStore>) -> History {
    let ring = Arc::new(KeyRing::new(CELL, Kek::from_bytes(&[9; 32]), keys.clone()));
    History::new(HistoryConfig::default(), CELL, kv.clone(), ring)
}

fn fix(i: i64) -> GpsFix {
    GpsFix {
        lat: 52.52 + i as f64 * 3e-4,
        lng: 13.405 - i as f64 * 2e-4,
        heading: 135.0,
        speed: 9.5,
        ts_ms: (T0 + i * 5_000) as u64,
    }
}

fn record(h: &History, d: u64, range: std::ops::Range<i64>) {
    for i in range {
        h.record(
            DeliveryId(d),
            OrderId(d + 1000),
            &fix(i),
            UnixMs(T0 + i * 5_000),
        );
    }
}

async fn stored_keys(kv: &Arc<dyn Kv>, prefix: Vec<u8>) -> Vec<Vec<u8>> {
    store::read(&**kv, move |txn| {
        let p = prefix.clone();
        Box::pin(
            async move { Ok::<_, TxnError<()>>(txn.get_range(RangeRequest::prefix(&p)).await?) },
        )
    })
    .await
    .unwrap()
    .into_iter()
    .map(|kv| kv.key)
    .collect()
}

/// Every key and value of `from` written to `to`: a backup of the data store.
async fn copy_store(from: &Arc<dyn Kv>, to: &Arc<dyn Kv>) {
    let rows = store::read(&**from, |txn| {
        Box::pin(async move {
            Ok::<_, TxnError<()>>(
                txn.get_range(RangeRequest {
                    begin: vec![],
                    end: vec![0xff],
                    limit: 0,
                    reverse: false,
                })
                .await?,
            )
        })
    })
    .await
    .unwrap();
    let rows = Arc::new(rows);
    store::transact(&**to, move |txn| {
        let rows = rows.clone();
        Box::pin(async move {
            for kv in rows.iter() {
                txn.set(&kv.key, &kv.value);
            }
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .unwrap();
}

fn assert_track(got: &[pathcodec::Fix], range: std::ops::Range<i64>) {
    assert_eq!(got.len(), range.clone().count());
    for (f, i) in got.iter().zip(range) {
        let want = fix(i);
        assert!(
            (f.lat - want.lat).abs() <= 0.5e-5 && (f.lng - want.lng).abs() <= 0.5e-5,
            "{i}"
        );
        assert!((f.t_ms - want.ts_ms as i64).abs() <= 50, "{i}");
    }
}

#[tokio::test]
async fn segments_are_group_committed_and_a_finished_path_is_compacted_into_one_block() {
    let e = env();
    let h = history(&e.kv, &e.keys);
    record(&h, 1, 0..12);
    record(&h, 2, 0..7);
    let s = h.flush(false, UnixMs(T0)).await.unwrap();
    assert_eq!(
        (s.segments, s.commits, s.compacted),
        (2, 1, 0),
        "two deliveries, one commit"
    );
    record(&h, 1, 12..24);
    record(&h, 2, 7..9);
    h.flush(false, UnixMs(T0)).await.unwrap();
    let parts = stored_keys(&e.kv, keys::path_prefix(DAY, DeliveryId(1))).await;
    assert_eq!(
        parts,
        vec![
            keys::path(DAY, DeliveryId(1), 0),
            keys::path(DAY, DeliveryId(1), 1)
        ]
    );
    assert_track(&h.read_path(DeliveryId(1)).await.unwrap().1, 0..24);

    // Delivery 1 ends: its last fixes and its segments become one block.
    record(&h, 1, 24..30);
    h.finish(DeliveryId(1));
    let s = h.flush(true, UnixMs(T0)).await.unwrap();
    assert_eq!(
        (s.segments, s.compacted),
        (1, 1),
        "only the finished delivery"
    );
    let parts = stored_keys(&e.kv, keys::path_prefix(DAY, DeliveryId(1))).await;
    assert_eq!(parts, vec![keys::path(DAY, DeliveryId(1), keys::COMPACT)]);
    let (idx, fixes) = h.read_path(DeliveryId(1)).await.unwrap();
    assert!(idx.compacted);
    assert_eq!(idx.order, 1001);
    assert_track(&fixes, 0..30);
    // Delivery 2 kept recording meanwhile.
    assert_track(&h.read_path(DeliveryId(2)).await.unwrap().1, 0..9);
    assert!(matches!(
        h.read_path(DeliveryId(3)).await,
        Err(HistoryError::NotFound(_))
    ));
}

#[tokio::test]
async fn a_restart_loses_only_the_unflushed_segment_and_continues_after_the_stored_parts() {
    let e = env();
    {
        let h = history(&e.kv, &e.keys);
        record(&h, 5, 0..10);
        h.flush(false, UnixMs(T0)).await.unwrap();
        record(&h, 5, 10..14);
        // Killed here: fixes 10..14 were only in memory.
    }
    let h = history(&e.kv, &e.keys);
    assert_track(&h.read_path(DeliveryId(5)).await.unwrap().1, 0..10);
    record(&h, 5, 14..20);
    h.flush(false, UnixMs(T0 + DAY_MS)).await.unwrap();
    // The next day's process keeps the path in the day it started, after the stored part.
    let parts = stored_keys(&e.kv, keys::path_prefix(DAY, DeliveryId(5))).await;
    assert_eq!(parts.len(), 2);
    let got = h.read_path(DeliveryId(5)).await.unwrap().1;
    assert_eq!(got.len(), 16);
    assert_track(&got[..10], 0..10);
    assert_track(&got[10..], 14..20);
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_delivery_does_not_open() {
    let e = env();
    let h = history(&e.kv, &e.keys);
    record(&h, 1, 0..5);
    record(&h, 2, 0..5);
    h.flush(false, UnixMs(T0)).await.unwrap();
    store::transact(&*e.kv, |txn| {
        Box::pin(async move {
            let v = txn.get(&keys::path(DAY, DeliveryId(1), 0)).await?.unwrap();
            txn.set(&keys::path(DAY, DeliveryId(2), 0), &v);
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .unwrap();
    assert!(matches!(
        h.read_path(DeliveryId(2)).await,
        Err(HistoryError::Key(KeyError::Open))
    ));
    assert_track(&h.read_path(DeliveryId(1)).await.unwrap().1, 0..5);
}

fn hold(d: u64, expires_at: i64) -> Hold {
    Hold {
        delivery_id: d.to_string(),
        reason: "dispute 77".into(),
        expires_at,
        placed_at: T0,
        placed_by: "ana".into(),
        role: "support".into(),
    }
}

#[tokio::test]
async fn the_purge_shreds_expired_days_in_backups_too_and_keeps_held_paths() {
    let e = env();
    let h = history(&e.kv, &e.keys);
    // Day DAY: deliveries 1 (held) and 2; 31 days later: delivery 3.
    record(&h, 1, 0..20);
    record(&h, 2, 0..20);
    h.finish(DeliveryId(1));
    h.flush(false, UnixMs(T0)).await.unwrap();
    let later = T0 + 31 * DAY_MS;
    h.record(DeliveryId(3), OrderId(1003), &fix(0), UnixMs(later));
    h.flush(false, UnixMs(later)).await.unwrap();
    let hold_until = later + 10 * DAY_MS;
    h.place_hold(DeliveryId(1), hold(1, hold_until))
        .await
        .unwrap();
    assert!(matches!(
        h.place_hold(DeliveryId(9), hold(9, hold_until)).await,
        Err(HistoryError::NotFound(_))
    ));

    let mut dirs = Vec::new();
    let backup = redb(&mut dirs);
    copy_store(&e.kv, &backup).await;

    let r = h.purge(UnixMs(later)).await.unwrap();
    assert_eq!((r.days, r.holds_resealed), (1, 1), "{r:?}");
    assert_eq!(
        r.keys_cleared, 2,
        "delivery 1's block and delivery 2's segment"
    );
    assert!(stored_keys(&e.kv, keys::day_prefix(DAY)).await.is_empty());
    assert!(
        !e.keys
            .list()
            .unwrap()
            .iter()
            .any(|(id, live)| *live && matches!(id, KeyId::Day(d) if *d < DAY + 1)),
        "no live key of the purged day"
    );
    assert_track(&h.read_path(DeliveryId(1)).await.unwrap().1, 0..20);
    assert!(matches!(
        h.read_path(DeliveryId(2)).await,
        Err(HistoryError::NotFound(_))
    ));
    assert_eq!(
        h.read_path(DeliveryId(3)).await.unwrap().1.len(),
        1,
        "a recent day is kept"
    );
    assert_eq!(
        h.purge(UnixMs(later)).await.unwrap(),
        Default::default(),
        "nothing left to do"
    );

    // The backup still holds day DAY's ciphertext, but with the key store after the purge
    // (a freshly started process) it does not open.
    let from_backup = history(&backup, &e.keys);
    for d in [1, 2] {
        assert!(
            matches!(
                from_backup.read_path(DeliveryId(d)).await,
                Err(HistoryError::Purged(_))
            ),
            "delivery {d}"
        );
    }
    assert!(!stored_keys(&backup, keys::day_prefix(DAY)).await.is_empty());

    // The hold expires: its own key and blocks go at the next purge.
    let r = h.purge(UnixMs(hold_until)).await.unwrap();
    assert_eq!(r.holds_expired, 1, "{r:?}");
    assert!(matches!(
        h.read_path(DeliveryId(1)).await,
        Err(HistoryError::NotFound(_))
    ));
    assert!(e.keys.list().unwrap().contains(&(KeyId::Hold(1), false)));
    assert!(
        stored_keys(&e.kv, keys::held_prefix(DeliveryId(1)))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_purge_interrupted_after_destroying_the_key_clears_the_day_next_time() {
    let e = env();
    let h = history(&e.kv, &e.keys);
    record(&h, 1, 0..5);
    h.flush(false, UnixMs(T0)).await.unwrap();
    // Stopped right after the key went.
    h.keys().destroy(KeyId::Day(DAY)).unwrap();
    let r = h.purge(UnixMs(T0 + 40 * DAY_MS)).await.unwrap();
    assert_eq!((r.days, r.keys_cleared), (1, 1), "{r:?}");
    assert!(stored_keys(&e.kv, keys::paths_prefix()).await.is_empty());
}

#[tokio::test]
async fn the_purge_clears_a_big_day_in_bounded_batches() {
    let e = env();
    let ring = Arc::new(KeyRing::new(
        CELL,
        Kek::from_bytes(&[9; 32]),
        e.keys.clone(),
    ));
    let cfg = HistoryConfig {
        purge_batch_keys: 7,
        flush_batch_segments: 16,
        ..HistoryConfig::default()
    };
    let h = History::new(cfg, CELL, e.kv.clone(), ring);
    for d in 0..50 {
        record(&h, d, 0..3);
    }
    let s = h.flush(false, UnixMs(T0)).await.unwrap();
    assert_eq!(
        (s.segments, s.commits),
        (50, 4),
        "batches of at most 16 segments"
    );
    let r = h.purge(UnixMs(T0 + 31 * DAY_MS)).await.unwrap();
    assert_eq!(r.keys_cleared, 50);
    assert!(stored_keys(&e.kv, keys::paths_prefix()).await.is_empty());
}

#[tokio::test]
async fn a_segment_of_a_purged_day_is_dropped_without_blocking_the_others() {
    let e = env();
    let h = history(&e.kv, &e.keys);
    record(&h, 1, 0..5);
    h.flush(false, UnixMs(T0)).await.unwrap();
    // Delivery 1 outlives its day's key; delivery 2 starts the next day.
    h.keys().destroy(KeyId::Day(DAY)).unwrap();
    record(&h, 1, 5..8);
    h.record(DeliveryId(2), OrderId(1002), &fix(0), UnixMs(T0 + DAY_MS));
    let s = h.flush(false, UnixMs(T0 + DAY_MS)).await.unwrap();
    assert_eq!(s.commits, 1);
    assert_eq!(h.read_path(DeliveryId(2)).await.unwrap().1.len(), 1);
    assert!(h.pending.lock().is_empty(), "nothing left to retry forever");
    assert!(matches!(
        h.read_path(DeliveryId(1)).await,
        Err(HistoryError::Purged(_))
    ));
}
