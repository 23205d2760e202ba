//! The manifest rules: pure-deps reads the pure libraries' `Cargo.toml` (and the workspace's,
//! for inherited entries) and reports every normal dependency on a forbidden crate, at its line;
//! folder-direction reports a crate under one binary's folder that uses a crate under the
//! other's.

use std::fs;
use std::io;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::{Report, Rule, Rules, Violation, line_of};

pub(super) fn check_pure_deps(root: &Path, rules: &Rules, report: &mut Report) -> io::Result<()> {
    let ws_text = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let ws_doc = DeTable::parse(&ws_text).ok();
    let ws_deps = ws_doc.as_ref().and_then(|d| workspace_deps(d.get_ref()));
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

/// `[workspace.dependencies]` of the root manifest, for entries with `workspace = true`.
fn workspace_deps<'a, 'i>(root_doc: &'a DeTable<'i>) -> Option<&'a DeTable<'i>> {
    table(get(root_doc, "workspace")?)
        .and_then(|w| get(w, "dependencies"))
        .and_then(table)
}

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
    let (name, path) = resolve(root, crate_dir, key, spec, ws_deps);
    let declared = path
        .and_then(|p| fs::read_to_string(p.join("Cargo.toml")).ok())
        .and_then(|text| {
            let doc = DeTable::parse(&text).ok()?;
            let package = table(get(doc.get_ref(), "package")?)?;
            get(package, "name")?.as_str().map(str::to_string)
        });
    declared.unwrap_or(name)
}

/// A dependency entry's `package` (or key) and `path`, through the workspace entry for
/// `workspace = true`.
fn resolve(
    root: &Path,
    crate_dir: &str,
    key: &str,
    spec: &DeValue<'_>,
    ws_deps: Option<&DeTable<'_>>,
) -> (String, Option<std::path::PathBuf>) {
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
    (name, path)
}

/// The folder-direction rule: no crate under one binary's folder depends (in any dependency
/// table, dev and build included) on a crate under the other's, so the tree shows who owns
/// what. Shared code lives in `platform/`.
pub(super) fn check_folder_direction(
    root: &Path,
    files: &[String],
    rules: &Rules,
    report: &mut Report,
) -> io::Result<()> {
    let ws_text = fs::read_to_string(root.join("Cargo.toml")).unwrap_or_default();
    let ws_doc = DeTable::parse(&ws_text).ok();
    let ws_deps = ws_doc.as_ref().and_then(|d| workspace_deps(d.get_ref()));
    let canonical_root = fs::canonicalize(root)?;
    for manifest in files.iter().filter(|f| f.ends_with("Cargo.toml")) {
        let crate_dir = manifest
            .trim_end_matches("Cargo.toml")
            .trim_end_matches('/');
        let Some(&(owner, other)) = rules
            .separate_folders
            .iter()
            .find(|(owner, _)| in_folder(crate_dir, owner))
        else {
            continue;
        };
        let text = fs::read_to_string(root.join(manifest))?;
        let doc = DeTable::parse(&text)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{manifest}: {e}")))?;
        for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
            let Some(deps) = get(doc.get_ref(), section).and_then(table) else {
                continue;
            };
            for (key, spec) in deps {
                let (name, path) = resolve(root, crate_dir, key.get_ref(), spec.get_ref(), ws_deps);
                let Some(at) = path.and_then(|p| fs::canonicalize(p).ok()).and_then(|p| {
                    p.strip_prefix(&canonical_root)
                        .ok()
                        .map(|p| p.to_path_buf())
                }) else {
                    continue;
                };
                let at = at.to_string_lossy().replace('\\', "/");
                if in_folder(&at, other) {
                    report.violations.push(Violation {
                        file: manifest.clone(),
                        line: line_of(&text, key.span().start),
                        rule: Rule::FolderDirection,
                        message: format!(
                            "`{crate_dir}` (under {owner}/) depends on `{name}` at {at}/, under \
                             {other}/: the folders would no longer show who owns what. Move \
                             `{name}` to platform/ if both need it."
                        ),
                    });
                }
            }
        }
    }
    Ok(())
}

fn in_folder(path: &str, folder: &str) -> bool {
    path == folder || path.starts_with(&format!("{folder}/"))
}
