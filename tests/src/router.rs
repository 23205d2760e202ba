//! A real `router` process for tests, like [`crate::harness::Cell`]: started on a free port,
//! ready on its `READY` line, tokens from `router token`, admin calls over HTTP.

use crate::client::{Client, Req, Resp};
use crate::harness::{forward_stdout, log_tail, sigkill, spawn_tied_to_us};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Fast checks so tests see health changes within a second or two. Demo mode: the tests run
/// with the shipped secret and plain HTTP on loopback, which the production rules refuse.
pub const TEST_CONFIG: &str = "\
[demo]
enabled = true

[health]
interval_ms = 200
timeout_ms = 500
failure_threshold = 2

[store]
poll_ms = 100
";

/// Rate limits off, for tests that send bursts.
pub const NO_LIMITS: &str = "\
[limits]
per_ip_rps = 0
per_token_rps = 0
";

#[derive(Debug, Clone, Deserialize)]
pub struct RouterReady {
    pub http: SocketAddr,
}

pub struct Router {
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    child: Option<Child>,
    ready: RouterReady,
    client: Client,
}

/// `$ROUTER_BIN`, else next to the `cell` binary.
pub fn router_bin() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("ROUTER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let cell = crate::harness::cell_bin()?;
    let bin = cell.with_file_name("router");
    if !bin.is_file() {
        bail!(
            "the router binary is not at {}: run `cargo build -p router` first, or set ROUTER_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

impl Router {
    /// Starts a router with [`TEST_CONFIG`] plus `extra_toml`; `follow` makes it a follower of
    /// another router.
    pub fn start(extra_toml: &str, follow: Option<&Router>) -> Router {
        Self::try_start(extra_toml, follow).unwrap_or_else(|e| panic!("starting a router: {e:#}"))
    }

    fn try_start(extra_toml: &str, follow: Option<&Router>) -> anyhow::Result<Router> {
        let dir = tempfile::Builder::new().prefix("itest-router-").tempdir()?;
        let cfg = dir.path().join("router.toml");
        std::fs::write(&cfg, format!("{TEST_CONFIG}\n{extra_toml}"))?;
        let log_path = dir.path().join("router.log");
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let bin = router_bin()?;
        writeln!(log, "=== itest: starting {} ===", bin.display())?;
        let mut cmd = Command::new(&bin);
        cmd.arg("run")
            .arg("--config")
            .arg(&cfg)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        if let Some(leader) = follow {
            cmd.arg("--follow").arg(format!("http://{}", leader.addr()));
        }
        cmd.env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log.try_clone()?));
        let mut child = spawn_tied_to_us(cmd)?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || forward_stdout(stdout, log, tx));
        let line = rx.recv_timeout(Duration::from_secs(30)).map_err(|_| {
            sigkill(child.id());
            anyhow::anyhow!(
                "router never printed READY; log:\n{}",
                log_tail(&log_path, 30)
            )
        })?;
        let ready: RouterReady = serde_json::from_str(&line)?;
        eprintln!(
            "itest: router pid {} ready at {}; log {}",
            child.id(),
            ready.http,
            log_path.display()
        );
        Ok(Router {
            client: Client::new(ready.http, log_path.clone()),
            dir: Some(dir),
            log_path,
            child: Some(child),
            ready,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.ready.http
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// A token signed like the router's (`router token`), with an optional home cell.
    pub fn token(&self, role: &str, sub: u64, home: Option<u32>) -> String {
        let mut cmd = Command::new(router_bin().expect("router binary"));
        cmd.args(["token", "--role", role, "--sub", &sub.to_string()]);
        if let Some(h) = home {
            cmd.args(["--home", &h.to_string()]);
        }
        let out = cmd.output().expect("running router token");
        assert!(out.status.success(), "router token failed: {out:?}");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    pub fn admin(&self) -> String {
        self.token("admin", 0, None)
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.client.req(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.client.req(reqwest::Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Req<'_> {
        self.client.req(reqwest::Method::PATCH, path)
    }

    /// `POST /admin/v1/cells` for the cell at `http`; `regions: None` = where it has
    /// restaurants.
    pub fn add_cell(&self, http: SocketAddr, regions: Option<Vec<String>>) -> Resp {
        self.post("/admin/v1/cells")
            .token(&self.admin())
            .json(&serde_json::json!({ "http": http.to_string(), "regions": regions }))
            .send()
    }

    /// `DELETE /admin/v1/cells/{id}`, expecting `status`.
    pub fn delete_cell_expect(&self, id: u32, status: u16) -> Resp {
        self.client
            .req(reqwest::Method::DELETE, &format!("/admin/v1/cells/{id}"))
            .token(&self.admin())
            .send()
            .expect_status(status)
    }

    /// `GET /admin/v1/cells`.
    pub fn cells(&self) -> serde_json::Value {
        self.get("/admin/v1/cells")
            .token(&self.admin())
            .send()
            .expect_status(200)
            .json
    }

    /// Polls `GET /admin/v1/cells` until `pred` holds, or panics after `timeout`.
    pub fn wait_cells(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = Instant::now();
        loop {
            let c = self.cells();
            if pred(&c) {
                return c;
            }
            assert!(
                start.elapsed() < timeout,
                "{what}: not within {timeout:?}; cells: {c:#}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            sigkill(c.id());
            let _ = c.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "test panicked: router dir kept at {}\n--- router log ---\n{}",
                kept.display(),
                log_tail(&self.log_path, 40)
            );
        }
    }
}
