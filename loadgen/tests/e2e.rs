//! End to end: a real (debug) cell process, `loadgen` runs of a few seconds at low rates,
//! the JSON reports checked. Skipped, with the reason printed, when no cell binary is
//! found (build it with `cargo build -p cell`, or set `LOADGEN_CELL_BIN`).

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
    // Next to the test executable: <target>/debug/deps/e2e-… → <target>/debug/cell.
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent().and_then(Path::parent)
    {
        candidates.push(dir.join("cell"));
    }
    // The workspace's default target dir (loadgen may be built elsewhere).
    candidates.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/cell"));
    candidates.into_iter().find(|p| p.is_file())
}

struct Cell {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Cell {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_cell(bin: &Path) -> Cell {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(bin)
        .args(["run", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
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
    let v: Value = serde_json::from_str(&ready).unwrap();
    Cell {
        child,
        url: format!("http://{}", v["http"].as_str().unwrap()),
        _dir: dir,
    }
}

/// Runs loadgen; returns its exit code and the JSON report.
fn loadgen(cell: &Cell, args: &[&str]) -> (i32, Value) {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args([
            "--target",
            &cell.url,
            "--token-from-dev",
            "--progress",
            "off",
        ])
        .args([
            "--customers",
            "5",
            "--warmup-points",
            "20",
            "--warmup-menus",
            "20",
        ])
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

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == name)
        .unwrap_or_else(|| panic!("no op {name}"))
}

fn assert_clean(report: &Value, name: &str) {
    let o = op(report, name);
    assert!(o["ok"].as_u64().unwrap() > 0, "{name}: nothing ok: {o}");
    assert_eq!(
        o["errors"], 0,
        "{name}: errors: {o} {}",
        report["error_samples"]
    );
    assert!(
        o["latency_ms"]["count"].as_u64().unwrap() > 0,
        "{name}: empty histogram"
    );
    assert!(o["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert!(!o["latency_hist_b64"].as_str().unwrap().is_empty());
}

#[test]
fn search_and_orders_against_a_real_cell() {
    let Some(bin) = cell_binary() else {
        println!("SKIPPED: no cell binary (cargo build -p cell, or set LOADGEN_CELL_BIN)");
        return;
    };
    let t0 = Instant::now();
    let cell = start_cell(&bin);
    println!("cell up at {} after {:?}", cell.url, t0.elapsed());

    let (code, r) = loadgen(
        &cell,
        &[
            "search",
            "--rate",
            "50",
            "--duration",
            "2s",
            "--ramp-up",
            "500ms",
            "--slo",
            "errors=0",
        ],
    );
    assert_eq!(code, 0);
    assert_clean(&r, "search");
    assert_eq!(r["server"]["scraped"], true);
    assert!(
        r["server"]["families"]["cell_http_requests_total"]
            .as_f64()
            .unwrap()
            >= 100.0
    );
    assert!(!r["timeline"].as_array().unwrap().is_empty());

    let (code, r) = loadgen(
        &cell,
        &[
            "orders",
            "--rate",
            "5",
            "--duration",
            "3s",
            "--ramp-up",
            "0s",
            "--slo",
            "errors=0",
        ],
    );
    assert_eq!(code, 0);
    for name in [
        "search",
        "menu",
        "quote",
        "place",
        "accept",
        "preparing",
        "ready",
        "order",
    ] {
        assert_clean(&r, name);
    }
    let placed = op(&r, "place")["ok"].as_f64().unwrap();
    let created = r["server"]["families"]["cell_orders_created_total"]
        .as_f64()
        .unwrap();
    assert!(
        created >= placed,
        "server created {created} < placed {placed}"
    );

    // An objective nobody can meet: the exit status says so.
    let (code, r) = loadgen(
        &cell,
        &[
            "menu",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--ramp-up",
            "0s",
            "--slo",
            "p99_ms=0.001",
        ],
    );
    assert_eq!(code, 2);
    assert_eq!(r["slo"][0]["pass"], false);
    assert_clean(&r, "menu");
}
