//! Architecture rules, checked over the workspace's source files as text (nothing is built),
//! by `tests/architecture.rs`:
//!
//! - **pure-deps**: the libraries in [`PURE_CRATES`] hold logic and types only, so they have
//!   no normal dependency (`[dependencies]` or `[target.'cfg(..)'.dependencies]`; renamed and
//!   workspace-inherited entries resolved) on any crate in [`FORBIDDEN_DEPS`]: runtimes,
//!   network, storage. `[dev-dependencies]` are free (tests may use anything);
//!   `[build-dependencies]` are not checked (they run at build time and are not linked in).
//!   A listed crate whose folder does not exist yet is skipped and named in the report's notes.
//! - **wall-clock**: only edge files read the clock (`SystemTime::now`, `Instant::now` from
//!   std or tokio, chrono's `Utc::now`/`Local::now`, `OffsetDateTime::now_utc`,
//!   `UNIX_EPOCH.elapsed()`, and our own `UnixMs::now`, which wraps `SystemTime::now`).
//!   Logic takes `now` as a parameter (the cell passes it down from `app::Clock`), which is
//!   what makes it testable. Exempt by rule, see [`clock_exempt_by_rule`]: test code (any
//!   `tests/` folder, `tests.rs`, `*_tests.rs`, items and modules under `#[cfg(test)]`),
//!   `benches/`, `examples/`, `src/bin/` (benchmark and simulator binaries) and all of
//!   `loadgen/` (a load generator's job is timing). Everything else that reads the clock is
//!   in [`CLOCK_ALLOWLIST`] with its reason; an entry that no longer reads the clock fails
//!   too, so the list stays honest. `instant.elapsed()` is not looked for: the `Instant`
//!   had to come from a `now` somewhere.
//! - **module-doc**: every `.rs` file (except [`GENERATED`] code) opens with a `//!` (or
//!   `/*!`) module comment; only blank lines, inner attributes (`#![...]`) and license lines
//!   (`// SPDX-License-Identifier: ...`, `// Copyright ...`) may come before it.
//! - **folder-direction**: no crate under `cell/` depends (in any dependency table) on a crate
//!   under `router/`, and none under `router/` on one under `cell/` ([`SEPARATE_FOLDERS`]): the
//!   folders show who owns what, and code both binaries use lives in `platform/`.
//!
//! Files are those git lists (tracked, plus untracked ones it does not ignore) when the root is
//! a git work tree's top, otherwise every file below the root except `target/` and dot folders
//! (how the tests' temporary trees are read).
//!
//! Layout: this file holds the rule parameters, the file listing and module-doc;
//! `manifest.rs` pure-deps and folder-direction; `clock.rs` wall-clock; `mask.rs` blanks comments and literals.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

mod clock;
mod manifest;
mod mask;

/// Libraries that must stay free of I/O and runtimes (paths from the workspace root).
/// A listed crate whose folder is missing is skipped and named in the report (a crate being created).
pub const PURE_CRATES: &[&str] = &[
    "platform/domain",
    "geostore",
    "schemas",
    "platform/cellmap",
    "platform/cellapi",
    "platform/pathcodec",
];

/// Crates (package names) a pure library must not depend on; `store` is ours.
pub const FORBIDDEN_DEPS: &[&str] = &[
    "tokio",
    "axum",
    "quinn",
    "redb",
    "foundationdb",
    "reqwest",
    "store",
];

/// Production files outside the exempt categories that may read the clock, and why.
pub const CLOCK_ALLOWLIST: &[(&str, &str)] = &[
    (
        "platform/domain/src/time.rs",
        "`UnixMs::now`: the one function turning the system clock into a domain timestamp",
    ),
    (
        "cell/src/app.rs",
        "`SystemClock`, the cell's `app::Clock`: the cell's logic gets `now` from here",
    ),
    (
        "cell/src/main.rs",
        "binary entry point: the `token` subcommand stamps a minted token's issue time",
    ),
    (
        "router/src/main.rs",
        "binary entry point: the `token` and admin subcommands stamp the tokens they mint",
    ),
    (
        "router/src/web.rs",
        "HTTP handler: the demo-only token endpoint stamps the token it mints (as `router token` does)",
    ),
    (
        "platform/service/src/conn.rs",
        "HTTP edge: a connection's header-read and idle deadlines are measured from when it opened",
    ),
    (
        "platform/service/src/http.rs",
        "HTTP edge: the accept loop checks a connection's deadline against the time it woke at",
    ),
    (
        "cell/src/http/mod.rs",
        "HTTP middleware: request-duration metric",
    ),
    (
        "cell/src/gateway/conn.rs",
        "QUIC edge: `HelloAck.server_time_ms` lets the app estimate its clock offset",
    ),
    (
        "cell/src/tracking/mod.rs",
        "tracking edge: stamps a location when published, for the fan-out latency metric",
    ),
    (
        "cell/src/tracking/upgrade.rs",
        "WebSocket edge: stamps when a client's fragmented message opened, for its deadline",
    ),
    (
        "cell/src/tracking/ws.rs",
        "WebSocket edge: write-latency metric, ping lag, the ETA's wall-clock time and the socket's token-expiry deadline",
    ),
    (
        "cell/src/notify/consumer.rs",
        "notification task: counts the time spent shedding while the cell is overloaded",
    ),
    (
        "cell/src/dispatch/mod.rs",
        "dispatch: stamps a ping on entry for the ping-to-WebSocket latency metric only",
    ),
    (
        "cell/src/dispatch/matching/task.rs",
        "matcher task: times a match attempt for a metric only; decisions use the `now` passed in",
    ),
    (
        "cell/catalog/src/catalog.rs",
        "startup: logs how long loading the catalog took; times a menu cache miss's store read for a metric",
    ),
    (
        "cell/payments/src/resilient.rs",
        "the payments crate's clock edge: breaker cooldown (tokio's clock) and call duration",
    ),
    (
        "platform/store/src/redb.rs",
        "group commit: the linger deadline and commit-duration metrics",
    ),
    (
        "platform/store/src/redb/writer.rs",
        "group commit: the writer loop's linger deadline (moved out of redb.rs)",
    ),
    (
        "sim/src/clock.rs",
        "simulator: one real Instant anchors the model store's transaction-age clock to virtual time (only differences are used)",
    ),
    (
        "sim/src/main.rs",
        "simulator binary entry point: reports the wall time a run or a seed sweep took",
    ),
    (
        "platform/store/src/limits.rs",
        "store edge: `real_clock`, the one default clock a backend measures a transaction's 5 s age with (tests pass their own)",
    ),
    (
        "platform/store/src/redb/recover.rs",
        "fault recovery: the backoff between probe commits and the reopen deadline",
    ),
    (
        "platform/service/src/tls.rs",
        "certificate reload: paces the check of the files' modification times",
    ),
    (
        "platform/auth/src/oidc.rs",
        "JWKS fetch task: paces refreshes and rate-limits refetches; verification takes `now`",
    ),
    (
        "router/src/server.rs",
        "HTTP edge: token expiry check and request-duration metric",
    ),
    (
        "router/src/proxy.rs",
        "proxy edge: upstream latency metric and the cell's last-answered stamp",
    ),
    (
        "router/src/health.rs",
        "health-check task: compares last answers against the failure window",
    ),
    (
        "router/src/cells.rs",
        "issues the router's short-lived admin token for calls to cells",
    ),
    (
        "router/src/ops/mod.rs",
        "admin operation: stamps the cell-map audit entry with the commit time",
    ),
];

/// The binaries' folders: neither uses a crate from the other's (shared code is in `platform/`).
pub const SEPARATE_FOLDERS: &[(&str, &str)] = &[("cell", "router"), ("router", "cell")];

/// Generated code: not held to the source rules.
pub const GENERATED: &[&str] = &["schemas/src/generated/"];

/// The rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rule {
    /// A pure library depends on a runtime, network or storage crate.
    PureDeps,
    /// The clock is read outside an edge file.
    WallClock,
    /// A file lacks its opening `//!` comment.
    ModuleDoc,
    /// A crate under one binary's folder uses a crate under the other's.
    FolderDirection,
}

impl Rule {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Rule::PureDeps => "pure-deps",
            Rule::WallClock => "wall-clock",
            Rule::ModuleDoc => "module-doc",
            Rule::FolderDirection => "folder-direction",
        }
    }
}

/// One broken rule, at a file and line (1-based, relative to the root).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub file: String,
    pub line: usize,
    pub rule: Rule,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, line, rule) = (&self.file, self.line, self.rule.name());
        write!(f, "{file}:{line}: [{rule}] {}", self.message)
    }
}

/// What a check found: violations, and notes such as crates not present yet.
#[derive(Debug, Default)]
pub struct Report {
    pub violations: Vec<Violation>,
    pub notes: Vec<String>,
}

/// The rule parameters; [`Rules::workspace`] are this repository's.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub pure_crates: &'static [&'static str],
    pub forbidden_deps: &'static [&'static str],
    pub clock_allowlist: &'static [(&'static str, &'static str)],
    pub generated: &'static [&'static str],
    /// `(owner, other)`: no crate under `owner/` may depend on a crate under `other/`.
    pub separate_folders: &'static [(&'static str, &'static str)],
}

impl Rules {
    pub fn workspace() -> Rules {
        Rules {
            pure_crates: PURE_CRATES,
            forbidden_deps: FORBIDDEN_DEPS,
            clock_allowlist: CLOCK_ALLOWLIST,
            generated: GENERATED,
            separate_folders: SEPARATE_FOLDERS,
        }
    }
}

/// Checks every rule over the tree at `root` (a workspace root).
pub fn check(root: &Path, rules: &Rules) -> io::Result<Report> {
    let mut report = Report::default();
    manifest::check_pure_deps(root, rules, &mut report)?;
    let files = source_files(root)?;
    manifest::check_folder_direction(root, &files, rules, &mut report)?;
    let mut rust = Vec::new();
    for file in files {
        if file.ends_with(".rs") && !rules.generated.iter().any(|g| file.starts_with(g)) {
            let text = fs::read_to_string(root.join(&file))?;
            rust.push((file, text));
        }
    }
    for (file, text) in &rust {
        check_module_doc(file, text, &mut report);
    }
    clock::check_clock(&rust, rules, &mut report);
    report.violations.sort();
    Ok(report)
}

/// Why `file` may read the clock whatever it does, if it may.
pub fn clock_exempt_by_rule(file: &str) -> Option<&'static str> {
    let parts: Vec<&str> = file.split('/').collect();
    let name = parts.last().copied().unwrap_or_default();
    let dirs = &parts[..parts.len().saturating_sub(1)];
    if dirs.contains(&"tests") || name == "tests.rs" || name.ends_with("_tests.rs") {
        Some("test code")
    } else if dirs.contains(&"benches") || dirs.contains(&"examples") {
        Some("benchmark or example program")
    } else if dirs.windows(2).any(|w| w == ["src", "bin"]) {
        Some("benchmark or simulator binary")
    } else if parts.first() == Some(&"loadgen") {
        Some("load generator")
    } else {
        None
    }
}

/// Files below `root`, relative, with `/` separators.
fn source_files(root: &Path) -> io::Result<Vec<String>> {
    if let Some(files) = git_files(root) {
        return Ok(files
            .into_iter()
            .filter(|f| root.join(f).is_file())
            .collect());
    }
    let mut out = Vec::new();
    walk(root, "", &mut out)?;
    out.sort();
    Ok(out)
}

/// The files git tracks or would track, if `root` is the top of a git work tree.
fn git_files(root: &Path) -> Option<Vec<String>> {
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    };
    let top = String::from_utf8(git(&["rev-parse", "--show-toplevel"])?).ok()?;
    if fs::canonicalize(top.trim()).ok()? != fs::canonicalize(root).ok()? {
        return None;
    }
    let list = git(&[
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ])?;
    let files: BTreeSet<String> = list
        .split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    Some(files.into_iter().collect())
}

fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(&entry.path(), &path, out)?;
            }
        } else if kind.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn check_module_doc(file: &str, text: &str, report: &mut Report) {
    let code = mask::code_only(text);
    let mut attr_depth = 0i32;
    for (i, (line, masked)) in text.lines().zip(code.lines()).enumerate() {
        let t = line.trim();
        if attr_depth > 0 || t.starts_with("#![") {
            attr_depth += bracket_balance(masked);
            continue;
        }
        let license = t.starts_with("// SPDX-License-Identifier:") || t.starts_with("// Copyright");
        if t.is_empty() || license {
            continue;
        }
        if t.starts_with("//!") || t.starts_with("/*!") {
            return;
        }
        return report.violations.push(module_doc_violation(file, i + 1));
    }
    report.violations.push(module_doc_violation(file, 1));
}

fn bracket_balance(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            '[' => 1,
            ']' => -1,
            _ => 0,
        })
        .sum()
}

fn module_doc_violation(file: &str, line: usize) -> Violation {
    Violation {
        file: file.to_string(),
        line,
        rule: Rule::ModuleDoc,
        message: "the file does not open with a `//!` module comment. Add one as its first line \
                  (after any `#![...]` attributes or license lines) saying what the module is \
                  for and why it exists."
            .to_string(),
    }
}
