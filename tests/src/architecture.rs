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
//!
//! Files are those git lists (tracked, plus untracked ones it does not ignore) when the root is
//! a git work tree's top, otherwise every file below the root except `target/` and dot folders
//! (how the tests' temporary trees are read).

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

use toml::de::{DeTable, DeValue};

mod mask;

/// Libraries that must stay free of I/O and runtimes (paths from the workspace root).
/// `platform/cellapi` is being created; until its folder exists it is skipped and reported.
pub const PURE_CRATES: &[&str] = &[
    "platform/domain",
    "geostore",
    "schemas",
    "platform/cellmap",
    "platform/cellapi",
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
        "cell/src/tracking/ws.rs",
        "WebSocket edge: write-latency metric, ping lag and the ETA's wall-clock time",
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
        "cell/src/dispatch/matching.rs",
        "matcher task: times a match attempt for a metric only; decisions use the `now` passed in",
    ),
    (
        "cell/catalog/src/catalog.rs",
        "startup: logs how long loading the catalog took",
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
        "router/src/ops.rs",
        "admin operation: stamps the cell-map audit entry with the commit time",
    ),
];

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
}

impl Rule {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Rule::PureDeps => "pure-deps",
            Rule::WallClock => "wall-clock",
            Rule::ModuleDoc => "module-doc",
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
}

impl Rules {
    pub fn workspace() -> Rules {
        Rules {
            pure_crates: PURE_CRATES,
            forbidden_deps: FORBIDDEN_DEPS,
            clock_allowlist: CLOCK_ALLOWLIST,
            generated: GENERATED,
        }
    }
}

/// Checks every rule over the tree at `root` (a workspace root).
pub fn check(root: &Path, rules: &Rules) -> io::Result<Report> {
    let mut report = Report::default();
    check_pure_deps(root, rules, &mut report)?;
    let mut rust = Vec::new();
    for file in source_files(root)? {
        if file.ends_with(".rs") && !rules.generated.iter().any(|g| file.starts_with(g)) {
            let text = fs::read_to_string(root.join(&file))?;
            rust.push((file, text));
        }
    }
    for (file, text) in &rust {
        check_module_doc(file, text, &mut report);
    }
    check_clock(&rust, rules, &mut report);
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

// ---- pure-deps ----

fn check_pure_deps(root: &Path, rules: &Rules, report: &mut Report) -> io::Result<()> {
    let ws_text = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let ws_doc = DeTable::parse(&ws_text).ok();
    let ws_deps = ws_doc.as_ref().and_then(|d| {
        table(get(d.get_ref(), "workspace")?)
            .and_then(|w| get(w, "dependencies"))
            .and_then(table)
    });
    for dir in rules.pure_crates {
        let manifest = format!("{dir}/Cargo.toml");
        let Ok(text) = fs::read_to_string(root.join(&manifest)) else {
            report.notes.push(format!(
                "{dir}: not present yet, skipped (pure-deps checks it once {manifest} exists)"
            ));
            continue;
        };
        let doc = DeTable::parse(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{manifest}: {e}")))?;
        for (section, deps) in dependency_tables(doc.get_ref()) {
            for (key, spec) in deps {
                let name = package_name(root, dir, key.get_ref(), spec.get_ref(), ws_deps);
                if rules.forbidden_deps.contains(&name.as_str()) {
                    let line = line_of(&text, key.span().start);
                    report.violations.push(Violation {
                        file: manifest.clone(),
                        line,
                        rule: Rule::PureDeps,
                        message: format!(
                            "`{dir}` must stay pure (no runtime, network or storage) but `{section}` \
                             names `{name}`. Keep that code in a crate at the edge (cell, router, \
                             platform/service) and pass plain values in; if only tests need \
                             `{name}`, move it to [dev-dependencies]."
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

type Deps<'a, 'i> = &'a DeTable<'i>;

fn get<'a, 'i>(t: &'a DeTable<'i>, key: &str) -> Option<&'a DeValue<'i>> {
    t.iter()
        .find(|(k, _)| k.get_ref() == key)
        .map(|(_, v)| v.get_ref())
}

fn table<'a, 'i>(v: &'a DeValue<'i>) -> Option<&'a DeTable<'i>> {
    v.as_table()
}

/// `[dependencies]` and every `[target.<cfg>.dependencies]`, with the section's name.
fn dependency_tables<'a, 'i>(doc: &'a DeTable<'i>) -> Vec<(String, Deps<'a, 'i>)> {
    let mut out = Vec::new();
    if let Some(t) = get(doc, "dependencies").and_then(table) {
        out.push(("[dependencies]".to_string(), t));
    }
    if let Some(targets) = get(doc, "target").and_then(table) {
        for (cfg, v) in targets {
            if let Some(t) = table(v.get_ref())
                .and_then(|t| get(t, "dependencies"))
                .and_then(table)
            {
                out.push((format!("[target.'{}'.dependencies]", cfg.get_ref()), t));
            }
        }
    }
    out
}

/// The package a dependency entry really names: its `package` key, the workspace entry's
/// for `workspace = true`, or the `[package] name` found at its `path`.
fn package_name(
    root: &Path,
    crate_dir: &str,
    key: &str,
    spec: &DeValue<'_>,
    ws_deps: Option<&DeTable<'_>>,
) -> String {
    let mut name = key.to_string();
    let mut path = None;
    let mut read = |t: &DeTable<'_>, base: &Path| {
        if let Some(p) = get(t, "package").and_then(DeValue::as_str) {
            name = p.to_string();
        }
        if let Some(p) = get(t, "path").and_then(DeValue::as_str) {
            path = Some(base.join(p));
        }
    };
    if let Some(t) = table(spec) {
        read(t, &root.join(crate_dir));
        let inherited = get(t, "workspace").and_then(DeValue::as_bool) == Some(true);
        if let (true, Some(ws)) = (inherited, ws_deps)
            && let Some(entry) = get(ws, key)
            && let Some(t) = table(entry)
        {
            read(t, root);
        }
    }
    let declared = path
        .and_then(|p| fs::read_to_string(p.join("Cargo.toml")).ok())
        .and_then(|text| {
            let doc = DeTable::parse(&text).ok()?;
            let package = table(get(doc.get_ref(), "package")?)?;
            get(package, "name")?.as_str().map(str::to_string)
        });
    declared.unwrap_or(name)
}

// ---- module-doc ----

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

// ---- wall-clock ----

/// Type names whose `::now` reads the clock.
const CLOCK_TYPES: &[&str] = &["SystemTime", "Instant", "Utc", "Local", "UnixMs"];

fn check_clock(rust: &[(String, String)], rules: &Rules, report: &mut Report) {
    let masked: Vec<String> = rust.iter().map(|(_, t)| mask::code_only(t)).collect();
    // Files declared as `#[cfg(test)] mod x;` are test code wherever they live.
    let mut test_modules = BTreeSet::new();
    for ((file, text), code) in rust.iter().zip(&masked) {
        for m in cfg_test_items(code)
            .into_iter()
            .filter_map(|item| item.module)
        {
            test_modules.extend(module_paths(file, &m, text));
        }
    }
    // A test module's own submodules live in the folder named after it.
    let is_test_module = |f: &str| {
        test_modules.iter().any(|m: &String| {
            let folder = m.trim_end_matches(".rs").trim_end_matches("/mod");
            f == m || f.starts_with(&format!("{folder}/"))
        })
    };
    let allowed = |f: &str| rules.clock_allowlist.iter().any(|(a, _)| *a == f);
    let mut reading = BTreeSet::new();
    for ((file, _), code) in rust.iter().zip(&masked) {
        if clock_exempt_by_rule(file).is_some() || is_test_module(file) {
            continue;
        }
        let test_lines: Vec<(usize, usize)> =
            cfg_test_items(code).iter().map(|i| i.lines).collect();
        for (line, what) in clock_reads(code) {
            if test_lines.iter().any(|&(a, b)| (a..=b).contains(&line)) {
                continue;
            }
            reading.insert(file.clone());
            if !allowed(file) {
                report.violations.push(Violation {
                    file: file.clone(),
                    line,
                    rule: Rule::WallClock,
                    message: format!(
                        "`{what}` reads the wall clock outside the edge files. Take `now` as a \
                         parameter (in the cell, from `app::Clock`) so the logic stays \
                         testable; if this file really is an edge (a binary's main, a metrics \
                         timer, a network handler), add it to CLOCK_ALLOWLIST in \
                         tests/src/architecture.rs with a one-line reason."
                    ),
                });
            }
        }
    }
    for (file, _) in rules.clock_allowlist {
        if !reading.contains(*file) {
            report.violations.push(Violation {
                file: file.to_string(),
                line: 1,
                rule: Rule::WallClock,
                message: "is in CLOCK_ALLOWLIST but no longer reads the clock (or is gone, or \
                          is exempt anyway). Remove its entry in tests/src/architecture.rs."
                    .to_string(),
            });
        }
    }
}

/// A token of masked code: an identifier or one punctuation character, with its line and
/// byte offset.
struct Tok<'a> {
    text: &'a str,
    line: usize,
    at: usize,
}

fn tokens(code: &str) -> Vec<Tok<'_>> {
    let b = code.as_bytes();
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else {
            let len = if c.is_ascii_alphanumeric() || c == b'_' {
                b[i..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
                    .count()
            } else {
                code[i..].chars().next().map_or(1, char::len_utf8)
            };
            out.push(Tok {
                text: &code[i..i + len],
                line,
                at: i,
            });
            i += len;
        }
    }
    out
}

/// Every clock read in masked code: (line, the path as written).
fn clock_reads(code: &str) -> Vec<(usize, String)> {
    let toks = tokens(code);
    let text = |i: usize| toks.get(i).map_or("", |t| t.text);
    let mut types: BTreeSet<&str> = CLOCK_TYPES.iter().copied().collect();
    // `use tokio::time::Instant as TokioInstant;` makes `TokioInstant::now` a clock read too.
    for i in 0..toks.len() {
        if types.contains(text(i)) && text(i + 1) == "as" {
            types.insert(text(i + 2));
        }
    }
    let mut out = Vec::new();
    for (i, tok) in toks.iter().enumerate() {
        if tok.text == "UNIX_EPOCH" && text(i + 1) == "." && text(i + 2) == "elapsed" {
            out.push((tok.line, "UNIX_EPOCH.elapsed()".to_string()));
        }
        let now = matches!(tok.text, "now" | "now_utc" | "now_local");
        if !now || i < 3 || text(i - 1) != ":" || text(i - 2) != ":" {
            continue;
        }
        // Walk back over `a::b::C::` to the start of the path.
        let mut segments = vec![tok.text];
        let mut j = i;
        while j >= 3 && text(j - 1) == ":" && text(j - 2) == ":" && is_ident(text(j - 3)) {
            segments.push(text(j - 3));
            j -= 3;
        }
        segments.reverse();
        let ty = segments[segments.len() - 2];
        let chrono = segments.iter().any(|s| matches!(*s, "chrono" | "jiff"));
        let time_crate = ty == "OffsetDateTime" && tok.text != "now";
        if (types.contains(ty) && tok.text == "now") || chrono || time_crate {
            out.push((toks[j].line, segments.join("::")));
        }
    }
    out
}

fn is_ident(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
}

/// An item under `#[cfg(test)]`: its lines, and for `mod name;` the module's name and any
/// `#[path = "..."]` (an offset range into the source).
struct TestItem {
    lines: (usize, usize),
    module: Option<(String, Option<(usize, usize)>)>,
}

fn cfg_test_items(code: &str) -> Vec<TestItem> {
    let toks = tokens(code);
    let text = |i: usize| toks.get(i).map_or("", |t| t.text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let is_cfg_test =
            (0..7).all(|k| text(i + k) == ["#", "[", "cfg", "(", "test", ")", "]"][k]);
        if !is_cfg_test {
            i += 1;
            continue;
        }
        let start = toks[i].line;
        let mut j = i + 7;
        let mut path_attr = None;
        // Further attributes, e.g. `#[path = "x_tests.rs"]`.
        while text(j) == "#" && text(j + 1) == "[" {
            let end = matching(&toks, j + 1, "[", "]");
            if text(j + 2) == "path" && text(j + 3) == "=" && text(j + 4) == "\"" {
                let close = (j + 5..end).find(|&k| text(k) == "\"");
                path_attr = close.map(|c| (toks[j + 4].at + 1, toks[c].at));
            }
            j = end + 1;
        }
        let item_start = j;
        let mut depth = 0i32;
        while j < toks.len() {
            match text(j) {
                "(" | "[" => depth += 1,
                ")" | "]" => depth -= 1,
                ";" if depth == 0 => break,
                "{" if depth == 0 => {
                    j = matching(&toks, j, "{", "}");
                    break;
                }
                _ => {}
            }
            j += 1;
        }
        let j = j.min(toks.len().saturating_sub(1));
        let mut k = item_start;
        if text(k) == "pub" {
            k += 1;
            if text(k) == "(" {
                k = matching(&toks, k, "(", ")") + 1;
            }
        }
        let module =
            (text(k) == "mod" && text(k + 2) == ";").then(|| (text(k + 1).to_string(), path_attr));
        out.push(TestItem {
            lines: (start, toks.get(j).map_or(start, |t| t.line)),
            module,
        });
        i = j + 1;
    }
    out
}

/// The index of the token closing the bracket opened at `open` (or the last token).
fn matching(toks: &[Tok<'_>], open: usize, l: &str, r: &str) -> usize {
    let mut depth = 0;
    for (k, t) in toks.iter().enumerate().skip(open) {
        if t.text == l {
            depth += 1;
        } else if t.text == r {
            depth -= 1;
            if depth == 0 {
                return k;
            }
        }
    }
    toks.len().saturating_sub(1)
}

/// The files module `name`, declared in `file`, may live in (`name.rs`, `name/mod.rs`, or the
/// `#[path]` given), following Rust's rules for mod-rs and non-mod-rs files.
fn module_paths(
    file: &str,
    (name, path_attr): &(String, Option<(usize, usize)>),
    text: &str,
) -> Vec<String> {
    let (dir, base) = file.rsplit_once('/').unwrap_or(("", file));
    let join = |a: &str, b: &str| {
        if a.is_empty() {
            b.to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    if let Some((from, to)) = path_attr {
        return vec![join(dir, &text[*from..*to])];
    }
    let parent = if matches!(base, "mod.rs" | "lib.rs" | "main.rs") {
        dir.to_string()
    } else {
        join(dir, base.trim_end_matches(".rs"))
    };
    vec![
        join(&parent, &format!("{name}.rs")),
        join(&parent, &format!("{name}/mod.rs")),
    ]
}
