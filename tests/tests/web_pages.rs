//! The web pages in a real browser: a router in front of Berlin (cell 1, simulated drivers)
//! and Munich (cell 2), and `web/tests/e2e.mjs` driving Debian's chromium through
//! playwright-core: a customer searches, orders, a tablet in a second browser context takes
//! the order from its WebSocket and accepts it, the driver's marker moves, `delivered`; the
//! operations console moves a region from Munich to Berlin and drains Munich. The network is
//! limited to loopback and no page may log a console error.
//!
//! Needs `node`, chromium and `web/node_modules` (`./dev test` installs them). Without them
//! the test fails when `CI` is set and is skipped otherwise, saying so (`./dev test` names
//! the skip in its summary, from the file `WEB_SKIP_NOTE` names).

use itest::router::{NO_LIMITS, Router};
use itest::{Cell, CellOpts, SHARED_CONFIG};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const MUNICH: (f64, f64) = (48.1372, 11.5755);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// What is missing to run the browser test, if anything.
fn missing() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    if !chromium().is_file() {
        return Some(format!("{} is not installed", chromium().display()));
    }
    if !repo_root()
        .join("web/node_modules/playwright-core")
        .is_dir()
    {
        return Some("web/node_modules is missing (run `npm ci` in web/)".into());
    }
    None
}

#[test]
fn customer_tablet_and_ops_pages_work_in_a_browser() {
    if let Some(why) = missing() {
        if std::env::var_os("CI").is_some() {
            panic!("the web pages' browser test cannot run in CI: {why}");
        }
        eprintln!("web-pages browser test SKIPPED (not in CI): {why}");
        // `./dev test` names the skip in its summary (test output is captured).
        if let Some(note) = std::env::var_os("WEB_SKIP_NOTE") {
            let _ = std::fs::write(note, &why);
        }
        return;
    }
    let berlin = Cell::start(CellOpts {
        cell_id: Some(1),
        config_toml: Some(SHARED_CONFIG.into()),
        ..CellOpts::default()
    });
    let munich = Cell::start(CellOpts {
        cell_id: Some(2),
        config_toml: Some(format!(
            "{SHARED_CONFIG}[cell]\nname = \"munich\"\n[demo]\ncity_name = \"Munich\"\n\
             center_lat = {}\ncenter_lng = {}\nradius_km = 3.0\nrestaurants = 100\n",
            MUNICH.0, MUNICH.1
        )),
        ..CellOpts::default()
    });
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(berlin.addr(), None).expect_status(201);
    router.add_cell(munich.addr(), None).expect_status(201);

    // Drivers around Berlin's centre, fast (20x), taking every offer; no simulated customers.
    let ready = berlin.ready();
    let bin = itest::harness::workspace_bin("drivesim", "DRIVESIM_BIN").expect("drivesim binary");
    let sim_log = tempfile::NamedTempFile::new().expect("a temp file");
    let mut sim = Command::new(bin)
        .args(["--http", &format!("http://{}", berlin.addr())])
        .args(["--router", &format!("http://{}", router.addr())])
        .args(["--quic", &ready.quic.expect("QUIC gateway").to_string()])
        .arg("--ca")
        .arg(ready.quic_ca.as_ref().expect("dev CA"))
        .args([
            "--server-name",
            ready.quic_server_name.as_deref().unwrap_or("localhost"),
        ])
        .args(["--dev-tokens", "--drivers", "12", "--speedup", "20"])
        .args(["--lat", "52.52", "--lng", "13.405", "--radius-km", "1.5"])
        .args(["--first-driver-id", "870000", "--status-every", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(sim_log.reopen().expect("the log"))
        .spawn()
        .expect("spawning drivesim");

    let out = Command::new("node")
        .arg(repo_root().join("web/tests/e2e.mjs"))
        .env("ROUTER_URL", format!("http://{}", router.addr()))
        .env("CHROMIUM", chromium())
        .env("OPS_FROM", "2")
        .env("OPS_TO", "1")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("running node");
    let _ = sim.kill();
    let _ = sim.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = stdout
        .lines()
        .find_map(|l| l.strip_prefix("E2E "))
        .unwrap_or_else(|| panic!("e2e.mjs printed no report:\n{stdout}"));
    eprintln!("web-pages e2e: {report}");
    let report: serde_json::Value = serde_json::from_str(report).expect("the report is JSON");
    assert!(
        out.status.success() && report["ok"] == true,
        "browser test failed: {:#}\nrouter log: {}\ndrivesim log: {}",
        report["problems"],
        router.log_path().display(),
        itest::harness::log_tail(sim_log.path(), 20)
    );
}

/// Without a browser: the router and a cell serve the embedded pages with their content
/// types, revalidation by ETag, and the router's demo token signs tokens it accepts itself
/// (an admin token reads the regions as GeoJSON).
#[test]
fn the_router_and_a_cell_serve_the_pages_and_the_demo_login() {
    let cell = Cell::start(CellOpts {
        cell_id: Some(1),
        config_toml: Some(format!("{SHARED_CONFIG}[demo]\nrestaurants = 50\n")),
        ..CellOpts::default()
    });
    let router = Router::start(NO_LIMITS, None);
    router.add_cell(cell.addr(), None).expect_status(201);

    for (path, kind) in [
        ("/", "text/html"),
        ("/restaurant", "text/html"),
        ("/ops", "text/html"),
        ("/static/customer.js", "text/javascript"),
        ("/static/app.css", "text/css"),
        ("/static/vendor/leaflet/leaflet.js", "text/javascript"),
    ] {
        for (who, r) in [
            ("router", router.get(path).send()),
            ("cell", cell.get(path).send()),
        ] {
            assert_eq!(r.status, 200, "{who} {path}");
            assert!(
                r.content_type.starts_with(kind),
                "{who} {path}: {}",
                r.content_type
            );
            let cache = r.headers["cache-control"].to_str().unwrap();
            let want = if kind == "text/html" {
                "no-cache"
            } else {
                "max-age"
            };
            assert!(cache.contains(want), "{who} {path}: {cache}");
            let etag = r.headers["etag"].to_str().unwrap().to_owned();
            let again = router.get(path).header("If-None-Match", &etag).send();
            assert_eq!(again.status, 304, "{who} {path} revalidated with {etag}");
        }
    }
    router.get("/static/nothing.js").send().expect_status(404);

    // The demo login: a token from the router that the router and the cell accept.
    let r = router
        .post("/api/v1/dev/token")
        .json(&serde_json::json!({"role": "admin", "sub": "0"}))
        .send()
        .expect_status(200);
    let admin = r.json["token"].as_str().expect("a token").to_owned();
    router
        .post("/api/v1/dev/token")
        .json(&serde_json::json!({"role": "wizard", "sub": "0"}))
        .send()
        .expect_status(400);
    router
        .get("/admin/v1/map/regions")
        .send()
        .expect_status(401);
    let geo = router
        .get("/admin/v1/map/regions")
        .token(&admin)
        .send()
        .expect_status(200);
    let features = geo.json["features"].as_array().expect("features");
    assert!(!features.is_empty(), "the cell's regions: {}", geo.text);
    assert!(features.iter().all(|f| f["properties"]["cell"] == 1));
    let customer = router
        .post("/api/v1/dev/token")
        .json(&serde_json::json!({"role": "customer", "sub": "77"}))
        .send()
        .expect_status(200);
    router
        .get("/api/v1/restaurants?lat=52.52&lng=13.405&radius=3km")
        .token(customer.json["token"].as_str().unwrap())
        .send()
        .expect_status(200);
}
