//! The wall-clock rule: finds clock reads in masked source (see `mask`), leaving out test
//! code (`#[cfg(test)]` items and the files of `#[cfg(test)] mod x;`) and the exempt
//! categories, and holds the allowlist to files that really read the clock.

use std::collections::BTreeSet;

use super::{Report, Rule, Rules, Violation, clock_exempt_by_rule, mask};

/// Type names whose `::now` reads the clock.
const CLOCK_TYPES: &[&str] = &["SystemTime", "Instant", "Utc", "Local", "UnixMs"];

pub(super) fn check_clock(rust: &[(String, String)], rules: &Rules, report: &mut Report) {
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
