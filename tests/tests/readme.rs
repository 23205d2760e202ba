//! The README tells the truth about the API:
//! - `the_readme_example_runs_as_written`: the shell block under "Trying the API" runs verbatim
//!   (bash, curl, python3) against a started cell, with `B` and `T` pointing at it, and ends
//!   with the order it placed;
//! - `the_api_table_and_the_openapi_document_agree`: every `METHOD /path` of the cell in the
//!   README's endpoint table is an operation of `/api/v1/openapi.json`, and every operation of
//!   the document is named somewhere in the README.

use itest::{Cell, CellOpts};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn readme() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first fenced `sh` block after `heading`.
fn shell_block(text: &str, heading: &str) -> String {
    let from = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let rest = &text[from..];
    let start = rest.find("```sh\n").expect("a sh block") + "```sh\n".len();
    let len = rest[start..].find("\n```").expect("the block ends");
    rest[start..start + len].to_owned()
}

#[test]
fn the_readme_example_runs_as_written() {
    let block = shell_block(&readme(), "## Trying the API");
    let cell = Cell::start(CellOpts::default());
    let token = cell.token("customer", 42);
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &block])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("B", format!("http://{}", cell.addr()))
        .env("T", &token)
        // Plain HTTP here: the block's CA bundle (`./dev city`'s dev CA) is not read.
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the README block failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    let quote: Value = serde_json::from_str(lines[0]).expect("the quote is JSON");
    let order: Value = serde_json::from_str(lines.last().expect("output")).expect("the order");
    assert!(quote["total"].as_i64().unwrap_or(0) > 0, "{quote}");
    assert_eq!(order["items"][0]["quantity"], 2, "{order}");
    assert_eq!(order["total"], quote["total"], "charged as quoted: {order}");
    assert!(order["status"].is_string(), "{order}");
}

/// `(method, path)` with path parameters as `{}`, so `{id}` and `{order_id}` compare equal.
fn normal(method: &str, path: &str) -> (String, String) {
    let path = path.split('?').next().unwrap_or(path);
    let mut out = String::new();
    let mut depth = 0;
    for ch in path.chars() {
        match ch {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("{}");
                }
            }
            '}' => depth -= 1,
            _ if depth == 0 => out.push(ch),
            _ => {}
        }
    }
    (method.to_uppercase(), out)
}

/// The cell's operations named in the README's endpoint table (rows about the router only
/// and WebSockets are left out: the document describes the cell's REST API).
fn table_operations(text: &str) -> BTreeSet<(String, String)> {
    let from = text
        .find("| What | Endpoint |")
        .expect("the endpoint table");
    let mut ops = BTreeSet::new();
    for row in text[from..].lines().skip(2) {
        if !row.starts_with('|') {
            break;
        }
        if row.contains("Router only") {
            continue;
        }
        // Each backticked span: `METHOD /path` or `GET`/`PUT /path` or `/path` (ops, no
        // method) or `/suffix` continuing the previous span's path.
        let mut methods: Vec<String> = Vec::new();
        let (mut last_path, mut last_methods) = (String::new(), Vec::new());
        for span in row.split('`').skip(1).step_by(2) {
            let span = span.replace("\\|", "|");
            let mut words = span.split_whitespace();
            let (Some(first), second) = (words.next(), words.next()) else {
                continue;
            };
            let (ms, path) = match second {
                Some(p) => (first.split('/').map(str::to_owned).collect::<Vec<_>>(), p),
                None if first.chars().all(|c| c.is_ascii_uppercase()) => {
                    methods.push(first.to_owned());
                    continue;
                }
                None => (Vec::new(), first),
            };
            if !path.starts_with('/') || ms.iter().any(|m| m == "WS") {
                continue;
            }
            methods.extend(ms);
            let path = if path.starts_with("/api/") {
                path.to_owned()
            } else if !last_path.is_empty() && methods.is_empty() {
                // `/decline` after `POST .../{id}/accept`: the same method and resource.
                methods.clone_from(&last_methods);
                let base = last_path.rsplit_once('/').map_or("", |(b, _)| b);
                format!("{base}{path}")
            } else {
                // Health and metrics (`/live`, `/metrics`): not operations of the document.
                continue;
            };
            if methods.is_empty() {
                // `/api/v1/openapi.json`, named without a method: the document itself.
                continue;
            }
            last_methods.clone_from(&methods);
            // `{customer|driver|restaurant}` in a path is one parameter.
            for m in methods.drain(..) {
                ops.insert(normal(&m, &path));
            }
            last_path = path;
        }
    }
    ops
}

#[test]
fn the_api_table_and_the_openapi_document_agree() {
    let text = readme();
    let cell = Cell::start(CellOpts::default());
    let doc = cell
        .get("/api/v1/openapi.json")
        .send()
        .expect_status(200)
        .json;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert(((method.to_uppercase(), path.clone()), normal(method, path)));
            }
        }
    }
    let normals: BTreeSet<_> = documented.iter().map(|(_, n)| n.clone()).collect();

    let table = table_operations(&text);
    assert!(table.len() >= 15, "the table parsed: {table:?}");
    let missing: Vec<_> = table.difference(&normals).collect();
    assert!(
        missing.is_empty(),
        "in the README's table but not in the OpenAPI document: {missing:?}"
    );

    // Every operation is named in the README (the table, or the section about it), with
    // its path as the document spells it or with other parameter names.
    let spans: BTreeSet<(String, String)> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|s| {
            let p = s.split_whitespace().find(|w| w.starts_with('/'))?;
            Some(normal("GET", p).1)
        })
        .map(|p| (String::new(), p))
        .chain(table.iter().map(|(_, p)| (String::new(), p.clone())))
        .collect();
    let unnamed: Vec<String> = documented
        .iter()
        .filter(|(_, (m, p))| {
            !spans.contains(&(String::new(), p.clone())) && !table.contains(&(m.clone(), p.clone()))
        })
        .map(|((m, p), _)| format!("{m} {p}"))
        .collect();
    assert!(
        unnamed.is_empty(),
        "operations of the OpenAPI document the README never names: {unnamed:?}"
    );
}
