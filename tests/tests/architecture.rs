//! The architecture rules of `itest::architecture`: over this repository (must pass), and over
//! small temporary trees with one planted violation each, which must be reported with file,
//! line and rule (so each rule is shown able to fail).

use std::fs;
use std::path::{Path, PathBuf};

use itest::architecture::{self, CLOCK_ALLOWLIST, PURE_CRATES, Report, Rule, Rules, Violation};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

#[test]
fn this_repository_follows_the_architecture_rules() {
    let report = architecture::check(&repo_root(), &Rules::workspace()).expect("read the tree");
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let listed: Vec<String> = report.violations.iter().map(Violation::to_string).collect();
    assert!(
        listed.is_empty(),
        "{} architecture violations:\n{}",
        listed.len(),
        listed.join("\n")
    );
}

#[test]
fn every_clock_allowlist_entry_gives_a_reason() {
    for (file, reason) in CLOCK_ALLOWLIST {
        assert!(reason.len() > 20, "{file}: say why it may read the clock");
    }
}

/// A temporary workspace holding `files` (path, contents).
fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }
    dir
}

/// The repository's rules, without its clock allowlist (whose files a planted tree lacks).
fn rules() -> Rules {
    Rules {
        clock_allowlist: &[],
        ..Rules::workspace()
    }
}

fn check(files: &[(&str, &str)], rules: &Rules) -> Report {
    let dir = tree(files);
    architecture::check(dir.path(), rules).expect("check")
}

/// The violations as `file:line rule`, for exact comparison.
fn found(report: &Report) -> Vec<String> {
    report
        .violations
        .iter()
        .map(|v| format!("{}:{} {}", v.file, v.line, v.rule.name()))
        .collect()
}

const WORKSPACE: &str = r#"[workspace]
members = ["platform/domain"]

[workspace.dependencies]
kv = { path = "platform/store", package = "store" }
"#;

const STORE: &str = "[package]\nname = \"store\"\n";

const LIB: &str = "//! A library.\n\npub fn f() {}\n";

#[test]
fn a_clean_tree_has_no_violations() {
    let report = check(
        &[
            ("Cargo.toml", WORKSPACE),
            ("platform/store/Cargo.toml", STORE),
            (
                "platform/domain/Cargo.toml",
                "[package]\nname = \"domain\"\n\n[dependencies]\nserde = \"1\"\n\n\
                 [dev-dependencies]\ntokio = \"1\"\n",
            ),
            ("platform/domain/src/lib.rs", LIB),
        ],
        &rules(),
    );
    assert_eq!(found(&report), Vec::<String>::new());
}

#[test]
fn a_pure_crate_depending_on_a_runtime_or_our_store_is_reported() {
    let manifest = "[package]\nname = \"domain\"\n\n\
                    [dependencies]\n\
                    serde = \"1\"\n\
                    tokio = { version = \"1\" }\n\
                    \n[target.'cfg(unix)'.dependencies]\n\
                    redb = \"4\"\n\
                    \n[dependencies.kv]\nworkspace = true\n\
                    \n[dev-dependencies]\naxum = \"0.8\"\n";
    let report = check(
        &[
            ("Cargo.toml", WORKSPACE),
            ("platform/store/Cargo.toml", STORE),
            ("platform/domain/Cargo.toml", manifest),
            ("platform/domain/src/lib.rs", LIB),
        ],
        &rules(),
    );
    assert_eq!(
        found(&report),
        [
            "platform/domain/Cargo.toml:6 pure-deps",
            "platform/domain/Cargo.toml:9 pure-deps",
            "platform/domain/Cargo.toml:11 pure-deps",
        ]
    );
    let text: Vec<String> = report.violations.iter().map(Violation::to_string).collect();
    assert!(text[0].contains("`tokio`") && text[0].contains("[dev-dependencies]"));
    assert!(text[1].contains("[target.'cfg(unix)'.dependencies]") && text[1].contains("`redb`"));
    // `kv` is the workspace's rename of our `store` crate.
    assert!(text[2].contains("`store`"), "{}", text[2]);
}

#[test]
fn a_pure_crate_not_present_yet_is_skipped_and_named() {
    assert!(PURE_CRATES.contains(&"platform/cellapi"));
    let report = check(&[("Cargo.toml", WORKSPACE)], &rules());
    assert!(report.violations.is_empty());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.starts_with("platform/cellapi: not present yet")),
        "{:?}",
        report.notes
    );
}

#[test]
fn reading_the_clock_in_logic_is_reported() {
    let logic = "//! Matching.\n\n\
                 // Instant::now() in a comment is no read.\n\
                 pub fn f() -> u64 {\n\
                 \x20   let s = \"SystemTime::now()\";\n\
                 \x20   let t = std::time::Instant::now();\n\
                 \x20   domain::UnixMs::now().0 as u64 + chrono::offset::Utc::now().timestamp() as u64\n\
                 }\n\n\
                 #[cfg(test)]\n\
                 mod tests {\n\
                 \x20   fn g() { let _ = std::time::Instant::now(); }\n\
                 }\n";
    let aliased = "//! Timer.\n\nuse tokio::time::Instant as Clock;\n\n\
                   pub fn f() { let _ = Clock::now(); }\n";
    let report = check(
        &[
            ("Cargo.toml", WORKSPACE),
            ("cell/src/dispatch/matching.rs", logic),
            ("cell/src/timer.rs", aliased),
            // Exempt by rule: test files, loadgen, binaries under src/bin.
            (
                "cell/src/orders/tests.rs",
                "//! Tests.\nfn f() { Instant::now(); }\n",
            ),
            (
                "loadgen/src/run.rs",
                "//! Run.\nfn f() { Instant::now(); }\n",
            ),
            (
                "geostore/src/bin/bench.rs",
                "//! Bench.\nfn f() { Instant::now(); }\n",
            ),
        ],
        &rules(),
    );
    assert_eq!(
        found(&report),
        [
            "cell/src/dispatch/matching.rs:6 wall-clock",
            "cell/src/dispatch/matching.rs:7 wall-clock",
            "cell/src/dispatch/matching.rs:7 wall-clock",
            "cell/src/timer.rs:5 wall-clock",
        ]
    );
    let first = report.violations[0].to_string();
    assert!(first.contains("std::time::Instant::now"), "{first}");
    assert!(first.contains("CLOCK_ALLOWLIST"), "{first}");
}

#[test]
fn a_cfg_test_module_file_may_read_the_clock() {
    let lib = "//! Lib.\n\n#[cfg(test)]\n#[path = \"sim_support.rs\"]\nmod sim;\n\n\
               #[cfg(test)]\nmod fixtures;\n";
    let report = check(
        &[
            ("Cargo.toml", WORKSPACE),
            ("cell/src/lib.rs", lib),
            (
                "cell/src/sim_support.rs",
                "//! Sim.\nfn f() { Instant::now(); }\n",
            ),
            ("cell/src/fixtures/mod.rs", "//! Fx.\nmod clock;\n"),
            (
                "cell/src/fixtures/clock.rs",
                "//! C.\nfn f() { Instant::now(); }\n",
            ),
        ],
        &rules(),
    );
    assert_eq!(found(&report), Vec::<String>::new());
}

#[test]
fn the_clock_allowlist_admits_its_files_and_reports_stale_entries() {
    const ALLOW: &[(&str, &str)] = &[
        ("cell/src/app.rs", "the clock"),
        ("cell/src/gone.rs", "was the clock once"),
    ];
    let report = check(
        &[
            ("Cargo.toml", WORKSPACE),
            (
                "cell/src/app.rs",
                "//! App.\nfn now() { SystemTime::now(); }\n",
            ),
        ],
        &Rules {
            clock_allowlist: ALLOW,
            ..Rules::workspace()
        },
    );
    assert_eq!(found(&report), ["cell/src/gone.rs:1 wall-clock"]);
    assert!(report.violations[0].message.contains("Remove its entry"));
}

#[test]
fn a_file_without_its_module_comment_is_reported() {
    let report = check(
        &[
            ("Cargo.toml", WORKSPACE),
            ("cell/src/lib.rs", "\nuse std::fmt;\n//! Too late.\n"),
            (
                "cell/src/ok.rs",
                "// SPDX-License-Identifier: Apache-2.0\n#![allow(\n    dead_code\n)]\n\n//! Fine.\n",
            ),
            ("cell/src/empty.rs", ""),
            (
                "cell/src/plain.rs",
                "// A plain comment is not a module comment.\nfn f() {}\n",
            ),
            ("schemas/src/generated/x_generated.rs", "// generated\n"),
        ],
        &rules(),
    );
    assert_eq!(
        found(&report),
        [
            "cell/src/empty.rs:1 module-doc",
            "cell/src/lib.rs:2 module-doc",
            "cell/src/plain.rs:1 module-doc",
        ]
    );
    assert!(report.violations[0].message.contains("//!"));
    assert_eq!(report.violations[1].rule, Rule::ModuleDoc);
}

#[test]
fn a_binary_folder_using_the_other_binarys_crate_is_reported() {
    let workspace = "[workspace]\nmembers = [\"cell\", \"cell/catalog\", \"router\", \"router/map\"]\n\n\
                     [workspace.dependencies]\ncellmap = { path = \"router/map\" }\n";
    let cell = "[package]\nname = \"cell\"\n\n[dependencies]\ncellmap.workspace = true\n\
                catalog = { path = \"catalog\" }\n";
    let router = "[package]\nname = \"router\"\n\n[dependencies]\nserde = \"1\"\n\n\
                  [dev-dependencies]\ncatalog = { path = \"../cell/catalog\" }\n";
    let report = check(
        &[
            ("Cargo.toml", workspace),
            ("cell/Cargo.toml", cell),
            ("cell/src/lib.rs", LIB),
            ("cell/catalog/Cargo.toml", "[package]\nname = \"catalog\"\n"),
            ("cell/catalog/src/lib.rs", LIB),
            ("router/Cargo.toml", router),
            ("router/src/lib.rs", LIB),
            ("router/map/Cargo.toml", "[package]\nname = \"cellmap\"\n"),
            ("router/map/src/lib.rs", LIB),
        ],
        &rules(),
    );
    // The cell's own catalog is fine; the router's map and the cell's catalog across are not.
    assert_eq!(
        found(&report),
        [
            "cell/Cargo.toml:5 folder-direction",
            "router/Cargo.toml:8 folder-direction",
        ]
    );
    assert!(report.violations[0].message.contains("platform/"));
    assert!(report.violations[1].message.contains("`catalog`"));
}
