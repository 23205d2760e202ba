//! `loadgen` end to end: every scenario for a few seconds at low rates against a real
//! cell, the JSON (and HTML) reports checked: traffic flowed without errors, histograms
//! filled, loss accounting adds up, exit status 2 for a missed SLO.
//!
//! Two cells, one per test: the QUIC scenarios and then the HTTP ones on the first (pings
//! before any order exists, so `track`'s drivers are offered only its own orders), `city`
//! alone on the second. Needs the `loadgen` binary next to the test executable (CI builds
//! every binary first) or in `$LOADGEN_BIN`.

use itest::harness::workspace_bin;
use itest::{Cell, CellOpts};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The target, QUIC and token flags for `cell`.
fn target_args(cell: &Cell) -> Vec<String> {
    let r = cell.ready();
    let mut v = vec![
        "--target".into(),
        format!("http://{}", r.http),
        "--token-from-dev".into(),
        "--progress".into(),
        "lines".into(),
    ];
    if let Some(pid) = cell.pid() {
        v.extend(["--target-pid".into(), pid.to_string()]);
    }
    v
}

fn quic_args(cell: &Cell) -> Vec<String> {
    let r = cell.ready();
    let mut v = target_args(cell);
    v.extend([
        "--quic".into(),
        r.quic
            .expect("the harness starts the QUIC gateway")
            .to_string(),
        "--quic-server-name".into(),
        r.quic_server_name.clone().expect("server name"),
        "--quic-ca".into(),
        r.quic_ca.clone().expect("dev CA").display().to_string(),
    ]);
    v
}

/// Runs loadgen with `args` then `extra`, writing JSON and HTML reports into `dir`;
/// returns the exit code, the JSON report and the HTML text.
fn loadgen(args: &[&str], extra: &[String], dir: &Path) -> (i32, Value, String) {
    let bin = workspace_bin("loadgen", "LOADGEN_BIN").unwrap_or_else(|e| panic!("{e:#}"));
    let json = dir.join(format!("{}.json", args[0]));
    let html = dir.join(format!("{}.html", args[0]));
    let out = Command::new(bin)
        .args(args)
        .args(extra)
        .arg("--report-json")
        .arg(&json)
        .arg("--report-html")
        .arg(&html)
        .output()
        .expect("running loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("loadgen {args:?}\n{stdout}\n{stderr}");
    let body = std::fs::read(&json).unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    let page = std::fs::read_to_string(&html).unwrap_or_else(|e| panic!("no html ({e})"));
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&body).unwrap(),
        page,
    )
}

/// Small warm-up and customer pools for the HTTP scenarios (seconds, not minutes).
const SMALL: &[&str] = &[
    "--customers",
    "5",
    "--warmup-points",
    "20",
    "--warmup-menus",
    "20",
];

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn op<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["ops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["op"] == name)
        .unwrap_or_else(|| panic!("no op {name}"))
}

/// An op got answers, no errors, a filled histogram.
fn assert_clean(report: &Value, name: &str) {
    let o = op(report, name);
    assert!(u(&o["ok"]) > 0, "{name}: nothing ok: {o}");
    assert_eq!(o["errors"], 0, "{name}: {o} {}", report["error_samples"]);
    assert!(u(&o["latency_ms"]["count"]) > 0, "{name}: empty histogram");
    assert!(o["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert!(!o["latency_hist_b64"].as_str().unwrap().is_empty());
}

/// The HTML report plots every op named and is self-contained.
fn assert_html(html: &str, timed: &[&str], untimed: &[&str]) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    for op in timed {
        assert!(html.contains(&format!("{op}: latency per second")), "{op}");
        assert!(html.contains(&format!("{op}: rate")), "{op}");
    }
    for op in untimed {
        assert!(html.contains(&format!("{op}: rate")), "{op}");
    }
    assert!(!html.contains("<script") && !html.contains("src="));
}

/// Pings reached the cell and the loss figures add up, from `/metrics` and (when the
/// cell counts per driver) from its admin counters. `alone`: nothing else pinged the cell
/// (in `city` the trackers' drivers do, so the `/metrics` totals hold more than was sent).
fn assert_pings(r: &Value, drivers: u64, alone: bool) {
    assert_eq!(u(&r["connected"]), drivers, "{r}");
    assert_eq!(u(&r["connection_failures"]), 0);
    let sent = u(&r["sent"]);
    assert!(sent > 0);
    assert_eq!(r["server"]["scraped"], true);
    let (arrived, accepted) = (u(&r["server"]["arrived"]), u(&r["server"]["accepted"]));
    assert!(accepted > 0, "the cell accepted nothing: {r}");
    assert!(accepted <= arrived, "{r}");
    let l = &r["loss"];
    assert_eq!(u(&l["sent"]), sent);
    assert_eq!(l["foreign_traffic"], !alone && arrived > sent, "{r}");
    if alone {
        assert!(arrived <= sent, "{r}");
        assert_eq!(u(&l["lost"]), sent - accepted);
        assert_eq!(u(&l["lost_in_transit"]) + u(&l["refused"]), u(&l["lost"]));
        // Loopback, a few hundred pings/s: nearly everything gets through.
        assert!(l["loss_pct"].as_f64().unwrap() < 5.0, "{r}");
    }
    // Measured per driver from the cell's own counters (ours only, even in `city`).
    let p = &r["per_driver"];
    assert!(p.is_object(), "no per-driver counters: {r}");
    assert_eq!(u(&p["drivers"]), drivers);
    assert_eq!(u(&p["sent"]), sent);
    assert_eq!(u(&p["drivers_over_counted"]), 0, "{p}");
    assert_eq!(u(&p["lost"]) + u(&p["received"]), sent, "{p}");
    // (>=: the cell may add outcomes, e.g. rate-limited.)
    assert!(
        u(&p["received"]) >= u(&p["accepted"]) + u(&p["rejected"]) + u(&p["stale"]),
        "{p}"
    );
    assert!(p["loss_pct"].as_f64().unwrap() < 5.0, "{p}");
    assert_eq!(
        op(r, "ping")["loss_pct"].as_f64(),
        p["loss_pct"].as_f64(),
        "the ping op's loss is the measured one"
    );
    let ping = op(r, "ping");
    assert_eq!(u(&ping["sent"]), sent);
    assert_eq!(ping["timed"], false);
    assert!(r["cpu"]["target_cores"].is_number());
}

#[test]
fn quic_then_http_scenarios() {
    let cell = Cell::start(CellOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let q = quic_args(&cell);
    let d = dir.path();

    let (code, r, html) = loadgen(
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
            "--slo",
            "loss_pct=5",
            "--slo",
            "ping.min_rate=300",
        ],
        &q,
        d,
    );
    assert_eq!(code, 0, "{}", r["slo"]);
    assert_pings(&r, 40, true);
    assert_eq!(u(&r["sockets"]), 40);
    assert_eq!(r["slo"].as_array().unwrap().len(), 2);
    assert_html(&html, &[], &["ping"]);

    let trace = d.join("trace.csv");
    let trace_s = trace.to_str().unwrap();
    let (code, r, _) = loadgen(
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
        ],
        &q,
        d,
    );
    assert_eq!(code, 0);
    assert_pings(&r, 10, true);
    assert_eq!(u(&r["sockets"]), 2);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(text.starts_with("driver,ts_ms,lat,lng,heading,speed\n"));
    assert_eq!(text.lines().count() as u64 - 1, u(&r["sent"]));

    // An impossible rate objective: the run still reports, the exit status says missed.
    let (code, r, html) = loadgen(
        &[
            "replay",
            "--trace",
            trace_s,
            "--speed",
            "4",
            "--slo",
            "min_rate=1000000",
        ],
        &q,
        d,
    );
    assert_eq!(code, 2, "{}", r["slo"]);
    assert_pings(&r, 10, true);
    assert_eq!(u(&r["sent"]) as usize, text.lines().count() - 1);
    // 2 s of trace at 4×: about half a second of sending.
    assert!(r["send_s"].as_f64().unwrap() < 1.5, "{r}");
    assert!(html.contains("MISSED"));

    let (code, r, html) = loadgen(
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
            "--slo",
            "push.p99_ms=5000",
        ],
        &q,
        d,
    );
    assert_eq!(code, 0, "{}", r["slo"]);
    assert_eq!(u(&r["trackers_connected"]), 5, "{r}");
    assert!(u(&r["assignments"]) > 0, "no driver was assigned: {r}");
    assert!(u(&r["location_updates"]) > 0, "no location pushed: {r}");
    assert!(r["ping_to_push_ms"]["p99"].as_f64().unwrap() > 0.0);
    // Every push is counted once: in the steady quantiles or in the settling window's.
    assert_eq!(r["settle_s"].as_f64(), Some(2.0), "half of the 4 s run");
    assert_eq!(
        u(&op(&r, "push")["latency_ms"]["count"]) + u(&r["settling_ms"]["count"]),
        u(&r["location_updates"])
    );
    assert_html(&html, &["push"], &[]);

    // The HTTP scenarios, on the same cell.
    let t = target_args(&cell);
    let mut search = vec![
        "search",
        "--rate",
        "50",
        "--duration",
        "2s",
        "--ramp-up",
        "500ms",
        "--slo",
        "errors=0",
    ];
    search.extend(SMALL);
    let (code, r, html) = loadgen(&search, &t, d);
    assert_eq!(code, 0);
    assert_clean(&r, "search");
    assert!(
        r["server"]["families"]["cell_http_requests_total"]
            .as_f64()
            .unwrap()
            >= 100.0
    );
    assert!(!r["timeline"].as_array().unwrap().is_empty());
    assert_html(&html, &["search"], &[]);

    let mut browse = vec![
        "browse",
        "--rate",
        "40",
        "--duration",
        "2s",
        "--ramp-up",
        "0s",
    ];
    browse.extend(SMALL);
    let (code, r, _) = loadgen(&browse, &t, d);
    assert_eq!(code, 0);
    assert_clean(&r, "search");
    assert_clean(&r, "menu");

    let mut orders = vec![
        "orders",
        "--rate",
        "5",
        "--duration",
        "3s",
        "--ramp-up",
        "0s",
        "--slo",
        "errors=0",
    ];
    orders.extend(SMALL);
    let (code, r, html) = loadgen(&orders, &t, d);
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
    assert!(created >= placed, "created {created} < placed {placed}");
    assert_html(&html, &["place", "order"], &[]);

    // An objective nobody can meet: the exit status says so.
    let mut menu = vec![
        "menu",
        "--rate",
        "20",
        "--duration",
        "1s",
        "--ramp-up",
        "0s",
        "--slo",
        "p99_ms=0.001",
    ];
    menu.extend(SMALL);
    let (code, r, _) = loadgen(&menu, &t, d);
    assert_eq!(code, 2);
    assert_eq!(r["slo"][0]["pass"], false);
    assert_clean(&r, "menu");
}

#[test]
fn city_all_at_once() {
    let cell = Cell::start(CellOpts::default());
    let dir = tempfile::tempdir().unwrap();
    let (code, r, html) = loadgen(
        &[
            "city",
            "--orders-rate",
            "2",
            "--read-ratio",
            "10",
            "--profile",
            "dinner",
            "--duration",
            "5s",
            "--ramp-up",
            "1s",
            "--drivers",
            "30",
            "--ping-rate",
            "150",
            "--trackers",
            "3",
            "--customers",
            "5",
            "--warmup-points",
            "30",
            "--warmup-menus",
            "20",
            "--slo",
            "errors=0",
            "--slo",
            "loss_pct=5",
        ],
        &quic_args(&cell),
        dir.path(),
    );
    assert_eq!(code, 0, "{}", r["slo"]);
    assert_eq!(r["scenario"], "city");
    // Browsing and ordering, with no errors.
    for name in ["search", "menu", "place", "order"] {
        assert_clean(&r, name);
    }
    // Reads outnumber order placements (10 browse requests per flow, plus the flow's own).
    let reads = u(&op(&r, "search")["sent"]) + u(&op(&r, "menu")["sent"]);
    let places = u(&op(&r, "place")["sent"]);
    assert!(reads > 4 * places, "reads {reads}, places {places}");
    // The dinner profile: the HTTP rate at its peak is well above its base.
    let per_s: Vec<f64> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            ["search", "menu"]
                .iter()
                .map(|o| p["ops"][o]["ok_per_s"].as_f64().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let peak = per_s.iter().copied().fold(0.0, f64::max);
    assert!(peak > 2.0 * 20.0, "peak browse rate {peak}/s: {per_s:?}");
    // Pings and trackers ran alongside, with their figures in the same report.
    assert_pings(&r["pings"], 30, false);
    assert_eq!(u(&op(&r, "ping")["sent"]), u(&r["pings"]["sent"]));
    assert_eq!(u(&r["track"]["trackers_connected"]), 3, "{}", r["track"]);
    assert!(u(&op(&r, "push")["sent"]) > 0, "no push: {}", r["track"]);
    assert!(
        r["slo"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["pass"] == true)
    );
    assert_html(&html, &["search", "menu", "place", "push"], &["ping"]);
    assert!(html.contains("loss per driver") || html.contains("loss from /metrics"));
}
