//! Durability across SIGKILL and the one-process-per-directory rule, with real processes
//! (`store-crash-writer`).

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use store::{Kv, LogId, LogPos, RedbOptions, RedbStore, keys, synthetic};

const BIN: &str = env!("CARGO_BIN_EXE_store-crash-writer");
const LOG: LogId = LogId(1);

/// Runs the writer until it has acknowledged `target` orders (or 30 s pass), SIGKILLs it and
/// returns every id it acknowledged, including lines it printed just before dying.
fn write_then_kill(dir: &std::path::Path, first: u64, target: usize) -> BTreeSet<u64> {
    let mut child = Command::new(BIN)
        .args(["write", &dir.to_string_lossy(), &first.to_string(), "16"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn store-crash-writer");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut line = Vec::new();
        // Only whole lines count: a line cut by the kill was never acknowledged to us.
        while out.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
            if line.ends_with(b"\n") {
                let id: u64 = std::str::from_utf8(&line).unwrap().trim().parse().unwrap();
                if tx.send(id).is_err() {
                    break;
                }
            }
            line.clear();
        }
    });
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.len() < target && Instant::now() < deadline {
        if let Ok(id) = rx.recv_timeout(Duration::from_millis(100)) {
            acked.insert(id);
        }
    }
    child.kill().expect("SIGKILL"); // `Child::kill` sends SIGKILL on Unix.
    let status = child.wait().expect("wait");
    assert!(!status.success(), "the writer was killed: {status:?}");
    reader.join().expect("reader");
    acked.extend(rx.try_iter());
    assert!(
        acked.len() >= target,
        "only {} acknowledged orders",
        acked.len()
    );
    acked
}

#[test]
fn acknowledged_orders_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked = BTreeSet::new();
    for round in 0..3u64 {
        acked.extend(write_then_kill(dir.path(), round * 1_000_000_000, 800));
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let kv = RedbStore::open(dir.path(), RedbOptions::default()).expect("reopen");
        let stored: BTreeSet<u64> = store::read(&kv, |txn| {
            Box::pin(async move {
                let rows = txn
                    .get_range(store::RangeRequest::prefix(&synthetic::order_prefix()))
                    .await?;
                Ok::<_, store::TxnError<()>>(
                    rows.iter()
                        .map(|kv| {
                            let (_, _, id): (String, String, u64) = keys::unpack(&kv.key).unwrap();
                            assert_eq!(kv.value, synthetic::record(id), "record of {id}");
                            id
                        })
                        .collect(),
                )
            })
        })
        .await
        .unwrap();
        let lost: Vec<_> = acked.difference(&stored).collect();
        assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");

        // Every committed order has exactly one event, and the log has no gap.
        let head = kv.log_head(LOG).await.unwrap();
        assert_eq!(head.0, stored.len() as u128);
        let events = kv.read_events(LOG, LogPos(1), 0).await.unwrap();
        assert_eq!(events.len() as u128, head.0);
        let mut in_log = BTreeSet::new();
        for (i, ev) in events.iter().enumerate() {
            assert_eq!(ev.pos, LogPos(i as u128 + 1), "gap-free");
            let (_, id): (String, u64) = keys::unpack(&ev.payload).unwrap();
            in_log.insert(id);
        }
        assert_eq!(in_log, stored);
        eprintln!(
            "{} acknowledged, {} stored (the rest were committed but not yet printed)",
            acked.len(),
            stored.len()
        );
    });
}

#[test]
fn a_second_process_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let held = RedbStore::open(dir.path(), RedbOptions::default()).unwrap();
    let out = Command::new(BIN)
        .args(["open", &dir.path().to_string_lossy()])
        .output()
        .expect("run store-crash-writer");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    assert!(
        stderr.contains("already in use by another process"),
        "{stderr}"
    );
    drop(held);
    let out = Command::new(BIN)
        .args(["open", &dir.path().to_string_lossy()])
        .output()
        .unwrap();
    assert!(out.status.success(), "opens once released");
}
