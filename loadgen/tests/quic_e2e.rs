//! End to end over QUIC: a real (debug) cell, `pings`, `record` + `replay` and `track`
//! runs of a few seconds, the JSON reports checked (pings received, loss accounting
//! consistent). Skipped, with the reason printed, when no cell binary is found (build it
//! with `cargo build -p cell`, or set `LOADGEN_CELL_BIN`).

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn cell_binary() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(p) = std::env::var("LOADGEN_CELL_BIN") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(dir.join("cell"));
    }
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/cell"));
    candidates.into_iter().find(|p| p.is_file())
}

struct Cell {
    child: Child,
    ready: Value,
    _dir: tempfile::TempDir,
}

impl Drop for Cell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cell {
    fn start(bin: &Path) -> Cell {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(bin)
            .args(["run", "--demo", "--listen", "127.0.0.1:0"])
            .args(["--quic-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the cell");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(json) = line.strip_prefix("READY ") {
                    let _ = tx.send(json.to_string());
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("the cell did not print READY within 120 s");
        Cell {
            ready: serde_json::from_str(&ready).unwrap(),
            child,
            _dir: dir,
        }
    }

    fn args(&self) -> Vec<String> {
        let s = |k: &str| self.ready[k].as_str().unwrap().to_string();
        vec![
            "--target".into(),
            format!("http://{}", s("http")),
            "--quic".into(),
            s("quic"),
            "--quic-server-name".into(),
            s("quic_server_name"),
            "--quic-ca".into(),
            s("quic_ca"),
            "--token-from-dev".into(),
            "--target-pid".into(),
            self.child.id().to_string(),
        ]
    }
}

/// Runs loadgen; returns its exit code and the JSON report.
fn loadgen(cell: &Cell, args: &[&str], dir: &Path) -> (i32, Value) {
    let report = dir.join(format!("{}.json", args[0]));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(cell.args())
        .arg("--report-json")
        .arg(&report)
        .output()
        .expect("running loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("loadgen {args:?}\n{stdout}\n{stderr}");
    let body = std::fs::read(&report).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&body).unwrap(),
    )
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Pings reached the cell and the loss figures add up.
fn assert_pings(r: &Value, drivers: u64) {
    assert_eq!(u(&r["connected"]), drivers, "{r}");
    assert_eq!(u(&r["connection_failures"]), 0);
    let sent = u(&r["sent"]);
    assert!(sent > 0);
    assert_eq!(r["server"]["scraped"], true);
    let (arrived, accepted) = (u(&r["server"]["arrived"]), u(&r["server"]["accepted"]));
    assert!(accepted > 0, "the cell accepted nothing: {r}");
    assert!(accepted <= arrived && arrived <= sent, "{r}");
    let l = &r["loss"];
    assert_eq!(u(&l["sent"]), sent);
    assert_eq!(u(&l["lost"]), sent - accepted);
    assert_eq!(u(&l["lost_in_transit"]), sent - arrived);
    assert_eq!(u(&l["refused"]), arrived - accepted);
    let pct = l["loss_pct"].as_f64().unwrap();
    assert!((pct - (sent - accepted) as f64 * 100.0 / sent as f64).abs() < 1e-9);
    // Loopback, a few hundred pings/s: nearly everything gets through.
    assert!(pct < 5.0, "loss {pct}% at a trivial rate: {r}");
    assert!(r["cpu"]["target_cores"].is_number());
}

#[test]
fn pings_record_replay_track_against_a_real_cell() {
    let Some(bin) = cell_binary() else {
        println!("SKIPPED: no cell binary (cargo build -p cell, or set LOADGEN_CELL_BIN)");
        return;
    };
    let t0 = Instant::now();
    let cell = Cell::start(&bin);
    println!("cell up after {:?}: {}", t0.elapsed(), cell.ready);
    let dir = tempfile::tempdir().unwrap();

    let (code, r) = loadgen(
        &cell,
        &[
            "pings",
            "--drivers",
            "40",
            "--rate",
            "400",
            "--duration",
            "2s",
            "--ramp-up",
            "500ms",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert_pings(&r, 40);
    assert_eq!(u(&r["sockets"]), 40);

    let trace = dir.path().join("trace.csv");
    let trace_s = trace.to_str().unwrap();
    let (code, r) = loadgen(
        &cell,
        &[
            "record",
            "--out",
            trace_s,
            "--drivers",
            "10",
            "--rate",
            "100",
            "--duration",
            "2s",
            "--ramp-up",
            "0s",
            "--share-sockets",
            "2",
            "--driver-id-base",
            "3000000",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert_pings(&r, 10);
    assert_eq!(u(&r["sockets"]), 2);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.starts_with("driver,ts_ms,lat,lng,heading,speed\n"));
    assert_eq!(text.lines().count() as u64 - 1, u(&r["sent"]));

    let (code, r) = loadgen(
        &cell,
        &["replay", "--trace", trace_s, "--speed", "4"],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert_pings(&r, 10);
    assert_eq!(u(&r["sent"]) as usize, text.lines().count() - 1);
    // 2 s of trace at 4×: about half a second of sending.
    assert!(r["send_s"].as_f64().unwrap() < 1.5, "{r}");

    let (code, r) = loadgen(
        &cell,
        &[
            "track",
            "--trackers",
            "5",
            "--duration",
            "4s",
            "--warmup-points",
            "30",
            "--warmup-menus",
            "10",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    assert_eq!(u(&r["trackers_connected"]), 5, "{r}");
    assert!(u(&r["assignments"]) > 0, "no driver was assigned: {r}");
    assert!(u(&r["location_updates"]) > 0, "no location pushed: {r}");
    assert!(r["ping_to_push_ms"]["p99"].as_f64().unwrap() > 0.0);
}
