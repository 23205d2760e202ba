//! Reading the Rust sources the checks derive their facts from (metric names, config structs).

use crate::Error;
use std::path::{Path, PathBuf};

/// A source file's path (relative to the scanned root, for messages) and text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
}

/// Non-test `.rs` files under `dirs` (relative to `root`), sorted. Test code is skipped because
/// a metric only a test registers is not exported by a running service.
pub fn rust_sources(root: &Path, dirs: &[&str]) -> Result<Vec<SourceFile>, Error> {
    let mut out = Vec::new();
    for d in dirs {
        let dir = root.join(d);
        if dir.is_dir() {
            walk(root, &dir, &mut out)?;
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<SourceFile>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    for entry in entries {
        let path = entry
            .map_err(|source| Error::Io {
                path: dir.to_owned(),
                source,
            })?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !matches!(name, "tests" | "benches" | "target" | "fuzz") {
                walk(root, &path, out)?;
            }
        } else if name.ends_with(".rs") && !name.ends_with("tests.rs") {
            let text = crate::read(&path)?;
            let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
            out.push(SourceFile { path: rel, text });
        }
    }
    Ok(())
}

/// True when `pos` in `text` is inside a `//` comment (good enough for macro calls and
/// declarations, which do not share a line with a string containing `//`).
pub fn in_line_comment(text: &str, pos: usize) -> bool {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    text[line_start..pos].contains("//")
}

/// 1-based line number of byte offset `pos`.
pub fn line_of(text: &str, pos: usize) -> usize {
    text[..pos].matches('\n').count() + 1
}
