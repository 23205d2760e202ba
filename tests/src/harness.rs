//! Real `cell` processes for tests: start one on a free port, wait for its `READY` line,
//! talk to it over HTTP, kill it with SIGKILL, restart it on the same data directory.
//!
//! Every process gets its own temp dir holding the data dir and a log file (the child's
//! stderr). The dir is removed when the [`Cell`] is dropped, unless the test is panicking:
//! then the dir is kept and the log path and its tail are printed. Children are also
//! spawned with `PR_SET_PDEATHSIG` from a thread that lives as long as the test binary, so a
//! killed or crashed test binary never leaves a cell running.

use crate::client::Client;
use anyhow::{Context, bail};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// The shared cell's config: the per-user limits raised (high rather than off, so the limiter
/// still runs on every request), because a test binary's cases place more orders per
/// customer than the 5 an hour a cell allows by default (the authorization matrix alone
/// places 7 for its customer A) and send requests back to back with one token. The limits
/// are tested on cells of their own (`tests/payments_queue.rs`).
pub const SHARED_CONFIG: &str =
    "[limits]\norders_per_window = 1000\nper_user_rps = 100000\nper_user_burst = 100000\n";

/// How long a cell may take from spawn to `READY` (it seeds ~3,000 restaurants in demo mode).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How to start a cell. `Default` is what most tests want: demo mode, cell id 1.
#[derive(Debug, Clone)]
pub struct CellOpts {
    /// `--demo`: seed the demo city and serve `POST /api/v1/dev/token`.
    pub demo: bool,
    /// `--cell-id`; `None` keeps the config's (1).
    pub cell_id: Option<u32>,
    /// TOML written to `config.toml` in the temp dir and passed as `--config` (unset keys
    /// keep the cell's defaults), e.g. short matching timeouts for the real-time tests.
    pub config_toml: Option<String>,
    /// Further arguments appended to `cell run ...` (after the harness's own).
    pub extra_args: Vec<String>,
    /// HTTP and QUIC addresses; default `127.0.0.1:0` (any free port). Fixed ports let a
    /// restarted cell come back where the router expects it.
    pub listen: Option<(SocketAddr, SocketAddr)>,
    /// The store's data directory; default `<temp dir>/data`. The disk-full test puts it on
    /// a small filesystem of its own.
    pub data_dir: Option<PathBuf>,
}

impl Default for CellOpts {
    fn default() -> Self {
        Self {
            demo: true,
            cell_id: None,
            config_toml: None,
            extra_args: Vec::new(),
            listen: None,
            data_dir: None,
        }
    }
}

/// The `READY {json}` line a cell prints once it serves.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    pub cell: u32,
    pub name: String,
    pub http: SocketAddr,
    /// The QUIC driver gateway, when the cell runs one.
    #[serde(default)]
    pub quic: Option<SocketAddr>,
    /// Gateway threads serving it (one `SO_REUSEPORT` socket each).
    #[serde(default)]
    pub quic_threads: Option<usize>,
    /// The TLS server name drivers must ask for.
    #[serde(default)]
    pub quic_server_name: Option<String>,
    /// The dev CA (PEM file) clients trust, in dev mode.
    #[serde(default)]
    pub quic_ca: Option<PathBuf>,
    /// SHA-256 fingerprint of the gateway's leaf certificate.
    #[serde(default)]
    pub quic_fingerprint: Option<String>,
    pub restaurants: usize,
    /// Whether the HTTP listener serves HTTPS.
    #[serde(default)]
    pub tls: bool,
}

/// One running (or killed) `cell` process. See the module doc.
pub struct Cell {
    opts: CellOpts,
    /// `None` only while `Drop` decides whether to keep it.
    dir: Option<tempfile::TempDir>,
    /// `<dir>/data`: survives [`Cell::restart`].
    data_dir: PathBuf,
    /// `<dir>/cell.log`: the child's stderr (and any stdout after READY), appended across
    /// restarts.
    log_path: PathBuf,
    /// `None` after [`Cell::kill9`].
    child: Option<Child>,
    ready: Ready,
    client: Client,
    /// Open restaurants picked once per cell by `fixtures::pool`.
    pub(crate) pool: OnceLock<Vec<crate::fixtures::Pick>>,
}

// === impl Cell ===

impl Cell {
    /// Starts a cell and waits for its `READY` line; panics with the log's tail if it does
    /// not come up within [`READY_TIMEOUT`].
    pub fn start(opts: CellOpts) -> Cell {
        match Cell::try_start(opts) {
            Ok(c) => c,
            Err(e) => panic!("starting a cell failed: {e:#}"),
        }
    }

    pub fn try_start(opts: CellOpts) -> anyhow::Result<Cell> {
        let dir = tempfile::Builder::new()
            .prefix("itest-cell-")
            .tempdir()
            .context("creating the cell's temp dir")?;
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        let log_path = dir.path().join("cell.log");
        if let Some(toml) = &opts.config_toml {
            std::fs::write(dir.path().join("config.toml"), toml)?;
        }
        let (child, ready) = match spawn_cell(&opts, dir.path(), &data_dir, &log_path) {
            Ok(started) => started,
            Err(e) => {
                let kept = dir.keep();
                return Err(e.context(format!("cell dir kept at {}", kept.display())));
            }
        };
        Ok(Cell {
            client: Client::new(ready.http, log_path.clone()),
            opts,
            dir: Some(dir),
            data_dir,
            log_path,
            child: Some(child),
            ready,
            pool: OnceLock::new(),
        })
    }

    /// One demo cell per test binary, started on first use and killed (its temp dir removed
    /// unless a test panicked) when the binary exits. Tests sharing it must not depend on
    /// each other's state: each uses its own customer ids and restaurants.
    pub fn shared() -> &'static Cell {
        static SHARED: OnceLock<Cell> = OnceLock::new();
        extern "C" fn cleanup() {
            if let Some(cell) = SHARED.get() {
                cell.cleanup_at_exit();
            }
        }
        SHARED.get_or_init(|| {
            note_panics();
            let cell = Cell::start(CellOpts {
                config_toml: Some(SHARED_CONFIG.into()),
                ..CellOpts::default()
            });
            // SAFETY: `cleanup` is a plain `extern "C" fn()` that only kills a pid and
            // removes a directory; registering it has no other preconditions.
            unsafe { libc::atexit(cleanup) };
            cell
        })
    }

    /// The bound HTTP address from the `READY` line.
    pub fn addr(&self) -> SocketAddr {
        self.ready.http
    }

    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The child's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A token from the demo endpoint `POST /api/v1/dev/token`.
    pub fn token(&self, role: &str, sub: impl std::fmt::Display) -> String {
        let r = self
            .post("/api/v1/dev/token")
            .json(&serde_json::json!({ "role": role, "sub": sub.to_string() }))
            .send()
            .expect_status(200);
        r.json["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token in {}", r.text))
            .to_owned()
    }

    pub fn get(&self, path: &str) -> crate::client::Req<'_> {
        self.client.req(reqwest::Method::GET, path)
    }

    pub fn post(&self, path: &str) -> crate::client::Req<'_> {
        self.client.req(reqwest::Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> crate::client::Req<'_> {
        self.client.req(reqwest::Method::PATCH, path)
    }

    /// Sends SIGKILL to the process and reaps it: no shutdown hook runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigkill(child.id());
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the process to end (a graceful stop, as systemd or Kubernetes
    /// stop a cell); SIGKILL if it is still running after `grace`. Returns how long it took.
    pub fn terminate(&mut self, grace: std::time::Duration) -> std::time::Duration {
        let started = std::time::Instant::now();
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) with our own child's pid; an already-dead child gives ESRCH.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
            while started.elapsed() < grace {
                if let Ok(Some(_)) = child.try_wait() {
                    return started.elapsed();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            sigkill(child.id());
            let _ = child.wait();
        }
        started.elapsed()
    }

    /// SIGSTOP (`true`) or SIGCONT (`false`): a stopped cell keeps its sockets open and
    /// answers nothing, like a cell that hangs.
    pub fn pause(&self, stop: bool) {
        if let Some(child) = &self.child {
            let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
            // SAFETY: kill(2) with our own child's pid; an already-dead child gives ESRCH.
            unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        }
    }

    /// Kills the process (if running) and starts a new one on the same data dir; the new
    /// process listens on a new port.
    pub fn restart(&mut self) {
        self.restart_with(|_| {});
    }

    /// Like [`Cell::restart`], after `change` edited the options (the data dir stays).
    pub fn restart_with(&mut self, change: impl FnOnce(&mut CellOpts)) {
        self.kill9();
        change(&mut self.opts);
        let dir = self
            .dir
            .as_ref()
            .expect("temp dir present")
            .path()
            .to_owned();
        if let Some(toml) = &self.opts.config_toml {
            std::fs::write(dir.join("config.toml"), toml)
                .unwrap_or_else(|e| panic!("writing the config for the restart: {e}"));
        }
        let (child, ready) = spawn_cell(&self.opts, &dir, &self.data_dir, &self.log_path)
            .unwrap_or_else(|e| panic!("restarting the cell failed: {e:#}"));
        self.client = Client::new(ready.http, self.log_path.clone());
        self.child = Some(child);
        self.ready = ready;
    }

    /// At exit of the test binary, for the shared cell (statics are never dropped).
    fn cleanup_at_exit(&self) {
        if let Some(child) = &self.child {
            sigkill(child.id());
            // SAFETY: waitpid on our own child's pid with a null status pointer.
            unsafe { libc::waitpid(child.id() as libc::pid_t, std::ptr::null_mut(), 0) };
        }
        let Some(dir) = &self.dir else { return };
        if ANY_PANIC.load(Ordering::SeqCst) {
            eprintln!(
                "a test failed: shared cell's log kept at {}",
                self.log_path.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "test panicked: cell dir kept at {}; log {}\n--- last lines of the log ---\n{}",
                kept.display(),
                self.log_path.display(),
                log_tail(&self.log_path, 40)
            );
        }
    }
}

/// Where the `cell` binary is: `$CELL_BIN`, else next to the test executable's directory
/// (`target/<profile>/deps/<test>` → `target/<profile>/cell`).
pub fn cell_bin() -> anyhow::Result<PathBuf> {
    workspace_bin("cell", "CELL_BIN")
}

/// Where a workspace binary `name` is: `$env`, else next to the test executable's
/// directory. `./dev test` (CI) builds every binary before the tests.
pub fn workspace_bin(name: &str, env: &str) -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os(env) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("{env}={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the test executable")?;
    let mut dir = exe.parent().context("test executable has no directory")?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().context("deps has no parent")?;
    }
    let bin = dir.join(name);
    if !bin.is_file() {
        bail!(
            "the {name} binary is not at {}: run `cargo build -p {name}` first (with the same \
             CARGO_TARGET_DIR and profile as the tests), or set {env}",
            bin.display()
        );
    }
    Ok(bin)
}

fn spawn_cell(
    opts: &CellOpts,
    dir: &Path,
    data_dir: &Path,
    log_path: &Path,
) -> anyhow::Result<(Child, Ready)> {
    let bin = cell_bin()?;
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("opening {}", log_path.display()))?;
    writeln!(log, "=== itest: starting {} ===", bin.display())?;
    let mut cmd = Command::new(&bin);
    let (http, quic) = opts
        .listen
        .map_or(("127.0.0.1:0".into(), "127.0.0.1:0".into()), |(h, q)| {
            (h.to_string(), q.to_string())
        });
    cmd.arg("run")
        .arg("--listen")
        .arg(http)
        .arg("--quic-listen")
        .arg(quic)
        .arg("--data-dir")
        .arg(data_dir);
    if opts.demo {
        cmd.arg("--demo");
    }
    if let Some(id) = opts.cell_id {
        cmd.arg("--cell-id").arg(id.to_string());
    }
    if opts.config_toml.is_some() {
        cmd.arg("--config").arg(dir.join("config.toml"));
    }
    cmd.args(&opts.extra_args);
    cmd.env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log.try_clone()?));
    let mut child = spawn_tied_to_us(cmd).with_context(|| format!("spawning {}", bin.display()))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let (tx, rx) = mpsc::channel();
    // Reads stdout for the READY line, then keeps draining it into the log so the child
    // never blocks on (or dies from) a full or closed pipe. Ends at EOF, when the child dies.
    std::thread::spawn(move || forward_stdout(stdout, log, tx));
    let started = Instant::now();
    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) => line,
        Err(e) => {
            let status = match e {
                mpsc::RecvTimeoutError::Timeout => {
                    sigkill(child.id());
                    format!("no READY line within {READY_TIMEOUT:?}")
                }
                mpsc::RecvTimeoutError::Disconnected => "stdout closed before READY".to_owned(),
            };
            let exit = child.wait().map(|s| s.to_string()).unwrap_or_default();
            bail!(
                "cell {status} (exit: {exit}); log {}:\n{}",
                log_path.display(),
                log_tail(log_path, 40)
            );
        }
    };
    let ready: Ready =
        serde_json::from_str(&line).with_context(|| format!("parsing the READY line {line:?}"))?;
    eprintln!(
        "itest: cell {} pid {} ready at {} after {:?}; log {}",
        ready.cell,
        child.id(),
        ready.http,
        started.elapsed(),
        log_path.display()
    );
    Ok((child, ready))
}

pub(crate) fn forward_stdout(
    stdout: std::process::ChildStdout,
    mut log: File,
    tx: mpsc::Sender<String>,
) {
    let mut tx = Some(tx);
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        match (line.strip_prefix("READY "), tx.take()) {
            (Some(json), Some(tx)) => {
                let _ = tx.send(json.to_owned());
            }
            (_, t) => {
                tx = t;
                let _ = writeln!(log, "stdout: {line}");
            }
        }
    }
}

/// Spawns `cmd` from one long-lived thread with `PR_SET_PDEATHSIG = SIGKILL`: the kernel
/// kills the child when that thread, i.e. the test binary, goes away for any reason.
/// (The signal follows the spawning *thread*, hence not the short-lived test thread.)
pub(crate) fn spawn_tied_to_us(cmd: Command) -> std::io::Result<Child> {
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("itest-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    tie_to_parent(&mut cmd);
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawning the spawner thread");
        Mutex::new(tx)
    });
    let (tx, rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send((cmd, tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    rx.recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

#[cfg(target_os = "linux")]
fn tie_to_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let die_with_parent = || {
        // SAFETY: prctl is async-signal-safe and takes no pointers here.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure only calls prctl, which is allowed between fork and exec.
    unsafe { cmd.pre_exec(die_with_parent) };
}

#[cfg(not(target_os = "linux"))]
fn tie_to_parent(_cmd: &mut Command) {}

pub(crate) fn sigkill(pid: u32) {
    // SAFETY: kill(2) with our own child's pid; an already-dead child gives ESRCH.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
}

/// The last `n` lines of a log file, for failure messages.
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

static ANY_PANIC: AtomicBool = AtomicBool::new(false);

/// Remembers that some test panicked, so the shared cell's log is kept at exit.
fn note_panics() {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        ANY_PANIC.store(true, Ordering::SeqCst);
        prev(info);
    }));
}
