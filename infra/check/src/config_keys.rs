//! Example configs use only keys the binaries accept. The accepted keys are read from the
//! config structs in the sources (`pub struct Config { pub http: HttpSection, .. }` and the
//! structs its fields name), so a renamed or misspelt key fails here instead of at deploy time.
//! Scanning instead of linking the crates keeps this check's build light.

use crate::Problems;
use crate::source::SourceFile;
use std::collections::HashMap;

/// A struct's serde-visible fields and whether it rejects unknown keys.
#[derive(Debug, Clone, Default)]
pub struct StructDef {
    /// `(key, last path segment of the field's type with Option<> removed)`.
    pub fields: Vec<(String, String)>,
    pub deny_unknown: bool,
    /// Has a `#[serde(flatten)]` field: its keys cannot be listed, so unknown keys pass.
    pub flatten: bool,
}

/// Every `struct Name { .. }` with named fields in `files`. Names defined twice keep the
/// union of their fields (lenient; our config struct names are unique).
pub fn scan_structs(files: &[SourceFile]) -> HashMap<String, StructDef> {
    let mut out: HashMap<String, StructDef> = HashMap::new();
    for f in files {
        let lines: Vec<&str> = f.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let Some(rest) = t
                .strip_prefix("pub struct ")
                .or_else(|| t.strip_prefix("struct "))
            else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !rest[name.len()..].trim_start().starts_with('{') {
                continue; // tuple or unit struct, or generics: not a config section
            }
            let mut def = StructDef::default();
            // Attributes directly above the struct.
            for prev in lines[..i].iter().rev() {
                let p = prev.trim();
                if p.starts_with("#[") || p.starts_with("///") || p.starts_with("//") {
                    def.deny_unknown |= p.contains("deny_unknown_fields");
                } else {
                    break;
                }
            }
            let mut rename: Option<String> = None;
            let mut skip = false;
            for body in &lines[i + 1..] {
                let b = body.trim();
                if b.starts_with('}') {
                    break;
                }
                if b.starts_with("#[") {
                    def.flatten |= b.contains("flatten");
                    skip |= b.contains("skip") && !b.contains("skip_serializing_if");
                    if let Some(r) = b.split("rename = \"").nth(1) {
                        rename = r.split('"').next().map(str::to_owned);
                    }
                    continue;
                }
                let decl = b
                    .strip_prefix("pub(crate) ")
                    .or_else(|| b.strip_prefix("pub "))
                    .unwrap_or(b);
                if let Some((field, ty)) = decl.split_once(':') {
                    let field = field.trim();
                    if !field.is_empty() && field.chars().all(|c| c.is_alphanumeric() || c == '_') {
                        if !skip {
                            let key = rename.take().unwrap_or_else(|| field.to_owned());
                            def.fields.push((key, type_name(ty)));
                        }
                        rename = None;
                        skip = false;
                    }
                }
            }
            let e = out.entry(name).or_default();
            e.deny_unknown |= def.deny_unknown;
            e.flatten |= def.flatten;
            e.fields.extend(def.fields);
        }
    }
    out
}

/// `Option<foo::Bar>,` → `Bar`.
fn type_name(ty: &str) -> String {
    let ty = ty.trim().trim_end_matches(',').trim();
    let ty = ty
        .strip_prefix("Option<")
        .and_then(|t| t.strip_suffix('>'))
        .unwrap_or(ty);
    let base = ty.split('<').next().unwrap_or(ty);
    base.rsplit("::").next().unwrap_or(base).trim().to_owned()
}

/// Checks a TOML config against `root` and the structs its tables map to. Tables whose type is
/// not a scanned struct (enums, maps) are not descended into.
pub fn check_config(text: &str, root: &str, structs: &HashMap<String, StructDef>) -> Problems {
    let table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    let Some(def) = structs.get(root) else {
        return vec![format!("struct {root} not found in the sources")];
    };
    let mut p = Vec::new();
    check_table(&table, def, "", structs, &mut p);
    p
}

fn check_table(
    table: &toml::Table,
    def: &StructDef,
    prefix: &str,
    structs: &HashMap<String, StructDef>,
    p: &mut Problems,
) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match def.fields.iter().find(|(k, _)| k == key) {
            None if def.deny_unknown && !def.flatten => p.push(format!("unknown key `{path}`")),
            None => {}
            Some((_, ty)) => {
                if let (toml::Value::Table(t), Some(d)) = (value, structs.get(ty)) {
                    check_table(t, d, &format!("{path}."), structs, p);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpSection,
    #[serde(default)]
    pub quic: crate::gateway::QuicConfig,
    pub pricing: Option<catalog::Pricing>,
}

/// Docs.
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen_addr: SocketAddr,
    #[serde(rename = \"timeout-ms\")]
    pub timeout_ms: u64,
}

#[serde(deny_unknown_fields, default)]
pub struct QuicConfig {
    pub listen_addr: SocketAddr,
    pub cert_path: PathBuf,
}

pub struct Pricing {
    pub fee: u64,
}
";

    fn structs() -> HashMap<String, StructDef> {
        scan_structs(&[SourceFile {
            path: "config.rs".into(),
            text: SRC.into(),
        }])
    }

    #[test]
    fn good_configs_pass() {
        let s = structs();
        assert_eq!(s["HttpSection"].fields[1].0, "timeout-ms");
        assert_eq!(s["Config"].fields[1].1, "QuicConfig");
        let ok = "[http]\nlisten_addr = \"0.0.0.0:1\"\ntimeout-ms = 5\n[quic]\ncert_path = \"/x\"\n[pricing]\nanything = 1\n";
        assert_eq!(check_config(ok, "Config", &s), Vec::<String>::new());
    }

    #[test]
    fn unknown_keys_and_sections_are_reported() {
        let s = structs();
        let bad = "[http]\nlisten_adr = \"x\"\n[quic]\ncert_file = \"/x\"\n[tls]\nx = 1\n";
        let p = check_config(bad, "Config", &s);
        assert_eq!(
            p,
            [
                "unknown key `http.listen_adr`",
                "unknown key `quic.cert_file`",
                "unknown key `tls`"
            ]
        );
        assert!(check_config("[http", "Config", &s)[0].contains("parse"));
        assert!(check_config("", "Nope", &s)[0].contains("not found"));
    }
}
