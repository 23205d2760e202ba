//! The redb backend on a full filesystem (a tmpfs this test mounts; root only, otherwise it
//! prints why it did not run): a failed commit is never acknowledged, the store reports the
//! fault and refuses writes fast, serves reads meanwhile, and accepts writes again by itself
//! once space returns.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use store::{Kv, RedbOptions, RedbStore, StoreError, TxnError};

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(tempfile::TempDir);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

fn mount_tmpfs(size: &str) -> Result<Mount, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir.path())
        .output()
        .map_err(|e| format!("running mount: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
    }
    Ok(Mount(dir))
}

async fn put(kv: &dyn Kv, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
    store::transact(kv, move |txn| {
        let (k, v) = (key.clone(), value.clone());
        Box::pin(async move {
            txn.set(&k, &v);
            Ok::<_, TxnError<()>>(())
        })
    })
    .await
    .map_err(|e| match e {
        TxnError::Store(s) => s,
        TxnError::Abort(()) => unreachable!("the closure never aborts"),
    })
}

async fn get(kv: &dyn Kv, key: Vec<u8>) -> Result<Option<Vec<u8>>, StoreError> {
    store::read(kv, move |txn| {
        let k = key.clone();
        Box::pin(async move { Ok::<_, TxnError<()>>(txn.get(&k).await?) })
    })
    .await
    .map_err(|e| match e {
        TxnError::Store(s) => s,
        TxnError::Abort(()) => unreachable!("the closure never aborts"),
    })
}

fn key(i: u32) -> Vec<u8> {
    store::keys::pack(&("t", i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_commits_without_acknowledging_them_and_recovers() {
    let mount = match mount_tmpfs("16m") {
        Ok(m) => m,
        Err(why) => {
            println!("store disk_full: NOT RUN: cannot mount a tmpfs ({why})");
            return;
        }
    };
    let dir = mount.0.path().join("data");
    let kv = RedbStore::open(&dir, RedbOptions::default()).unwrap();
    let value = vec![7u8; 16 << 10];
    put(&kv, key(0), value.clone()).await.unwrap();

    // Fill the filesystem.
    let ballast = mount.0.path().join("ballast");
    let mut f = std::fs::File::create(&ballast).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while f.write(&chunk).is_ok_and(|n| n > 0) {}
    drop(f);

    let mut acked = vec![0];
    let mut i = 1;
    let err = loop {
        match put(&kv, key(i), value.clone()).await {
            Ok(()) => acked.push(i),
            Err(e) => break e,
        }
        i += 1;
        assert!(i < 10_000, "the full disk never failed a commit");
    };
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let fault = kv.fault().expect("a fault is reported");
    println!(
        "store disk_full: {} commits, then {err}; fault: {fault}",
        acked.len()
    );
    // Refused fast while faulty, and the refused key was never written.
    let started = Instant::now();
    assert!(matches!(
        put(&kv, key(i + 1), value.clone()).await,
        Err(StoreError::Unavailable { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(100));
    // Reads are served from the reopened file (give the writer a moment to reopen it).
    let mut read = get(&kv, key(0)).await;
    for _ in 0..20 {
        if read.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
        read = get(&kv, key(0)).await;
    }
    assert_eq!(
        read.unwrap().as_deref(),
        Some(value.as_slice()),
        "a read while full"
    );

    std::fs::remove_file(&ballast).unwrap();
    let freed = Instant::now();
    while let Err(e) = put(&kv, key(100_000), b"back".to_vec()).await {
        assert!(
            freed.elapsed() < Duration::from_secs(5),
            "still failing: {e}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(kv.fault(), None);
    println!(
        "store disk_full: writes accepted {:?} after space returned",
        freed.elapsed()
    );
    for k in &acked {
        assert_eq!(
            get(&kv, key(*k)).await.unwrap().as_deref(),
            Some(value.as_slice())
        );
    }
    assert_eq!(
        get(&kv, key(i)).await.unwrap(),
        None,
        "the failed commit left nothing"
    );
    drop(kv);
    let kv = RedbStore::open(&dir, RedbOptions::default()).unwrap();
    for k in &acked {
        assert!(
            get(&kv, key(*k)).await.unwrap().is_some(),
            "key {k} after reopening"
        );
    }
}
