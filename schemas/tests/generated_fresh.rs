//! The committed generated code equals what flatc 25.12.19 produces from the schema now.
//!
//! Runs whenever a matching flatc is found (`$FLATC`, or `flatc` on `PATH`); otherwise it
//! prints why it skipped. `schemas/regen.sh` installs flatc and regenerates.

use std::path::{Path, PathBuf};
use std::process::Command;

const FLATC_VERSION: &str = "flatc version 25.12.19";

fn find_flatc() -> Result<PathBuf, String> {
    let candidate = std::env::var_os("FLATC").map_or_else(|| PathBuf::from("flatc"), PathBuf::from);
    let output = Command::new(&candidate)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", candidate.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && version == FLATC_VERSION {
        Ok(candidate)
    } else {
        Err(format!(
            "{} reports {version:?}, need {FLATC_VERSION:?}",
            candidate.display()
        ))
    }
}

#[test]
fn generated_code_is_fresh() {
    let flatc = match find_flatc() {
        Ok(flatc) => flatc,
        Err(reason) => {
            println!("SKIPPED generated_code_is_fresh: {reason} (run schemas/regen.sh)");
            return;
        }
    };
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().expect("temp dir");
    // Same arguments as regen.sh.
    let status = Command::new(&flatc)
        .current_dir(crate_dir)
        .args(["--rust", "-o"])
        .arg(out.path())
        .arg("fbs/driver.fbs")
        .status()
        .expect("run flatc");
    assert!(status.success(), "flatc failed: {status}");

    let committed_dir = crate_dir.join("src/generated");
    let mut names: Vec<_> = std::fs::read_dir(out.path())
        .expect("read temp dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["driver_generated.rs"],
        "flatc produced unexpected files"
    );
    for name in names {
        let fresh = std::fs::read(out.path().join(&name)).expect("read fresh");
        let committed = std::fs::read(committed_dir.join(&name)).unwrap_or_default();
        assert!(
            fresh == committed,
            "src/generated/{} is stale: run schemas/regen.sh and commit the result",
            name.to_string_lossy()
        );
    }
}
