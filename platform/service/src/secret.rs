//! Where a secret comes from, and whether it is fit for production.
//!
//! A secret (the JWT signing key, the payment provider's API key) is read, in this order, from
//! an environment variable (`CELL_AUTH_JWT_SECRET`), a file named in the config
//! (`auth.jwt_secret_file`: a systemd credential or a mounted Kubernetes Secret), or the TOML
//! value itself. The TOML value is for demo mode only: a config file is copied, diffed and
//! committed far more often than a credential file, so a secret in it leaks sooner.
//! [`resolve`] records which source won in a [`SecretSource`]; [`SecretKeys::check`] turns an
//! unusable secret into config problems, each naming its key and the fix.

use crate::config::Section;
use std::path::{Path, PathBuf};

/// Shortest secret accepted outside demo mode: 256 bits, what HS256 is specified for
/// (RFC 7518 section 3.2 asks for a key at least as long as the hash output).
pub const MIN_SECRET_BYTES: usize = 32;

/// Secrets that ship in this repository (the embedded defaults, the example systemd and
/// Kubernetes configs, the docs): anyone can read them, so anyone could sign with them.
const SHIPPED_SECRETS: &[&str] = &[
    "dev-only-secret-change-me",
    "REPLACE-with-openssl-rand-base64-48",
    "change-me",
    "changeme",
    "secret",
];

/// Whether `secret` is one we ship or an obvious placeholder (`REPLACE-…`, `…change-me…`).
pub fn is_placeholder(secret: &str) -> bool {
    let s = secret.trim().to_ascii_lowercase();
    SHIPPED_SECRETS.iter().any(|p| s == p.to_ascii_lowercase())
        || s.starts_with("replace")
        || s.contains("change-me")
        || s.contains("changeme")
        || s.contains("placeholder")
}

/// Where a resolved secret came from. Never holds the secret itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SecretSource {
    /// The TOML value (possibly the embedded default).
    #[default]
    Inline,
    /// The file named by the `*_file` key, trailing newline removed. `also_inline`: the TOML
    /// value was set too (and differs from the shipped default), so the secret may sit in a
    /// config file as well.
    File { path: PathBuf, also_inline: bool },
    /// The environment variable; `also_inline` as for `File`.
    Env { var: String, also_inline: bool },
    /// The `*_file` key names a file that cannot be read.
    Unreadable { path: PathBuf, error: String },
}

/// Replaces `value` (the TOML value) with the secret from `env_var` if that is set and not
/// empty, else with the contents of `file` if that is not empty, and says which won.
/// `shipped` is the TOML value of the embedded default, so an untouched default does not count
/// as "also set inline".
pub fn resolve(value: &mut String, file: &Path, env_var: &str, shipped: &str) -> SecretSource {
    resolve_with(value, file, env_var, std::env::var(env_var).ok(), shipped)
}

/// [`resolve`] with the environment variable's value passed in, for tests.
pub fn resolve_with(
    value: &mut String,
    file: &Path,
    env_var: &str,
    env_value: Option<String>,
    shipped: &str,
) -> SecretSource {
    let also_inline = !value.is_empty() && value != shipped;
    if let Some(v) = env_value.filter(|v| !v.is_empty()) {
        *value = v;
        return SecretSource::Env {
            var: env_var.to_owned(),
            also_inline,
        };
    }
    if file.as_os_str().is_empty() {
        return SecretSource::Inline;
    }
    match std::fs::read_to_string(file) {
        Ok(text) => {
            // `echo`, `openssl rand` and editors end the file with a newline that is not
            // part of the secret.
            *value = text.trim_end_matches(['\n', '\r']).to_owned();
            SecretSource::File {
                path: file.to_owned(),
                also_inline,
            }
        }
        Err(e) => {
            value.clear();
            SecretSource::Unreadable {
                path: file.to_owned(),
                error: e.to_string(),
            }
        }
    }
}

/// The keys of one secret in its section, for messages.
#[derive(Debug, Clone, Copy)]
pub struct SecretKeys<'a> {
    /// The inline TOML key, e.g. `jwt_secret`.
    pub key: &'a str,
    /// The key naming the file, e.g. `jwt_secret_file`.
    pub file_key: &'a str,
    /// The environment variable, e.g. `CELL_AUTH_JWT_SECRET`.
    pub env_var: &'a str,
    /// Shortest value accepted outside demo mode: [`MIN_SECRET_BYTES`] for a signing key we
    /// choose; 1 for a key a provider issues (its format is the provider's business).
    pub min_bytes: usize,
}

impl<'a> SecretKeys<'a> {
    /// The JWT signing secret of an `[auth]` section (`jwt_secret`, `jwt_secret_file`), read
    /// from `env_var` first.
    pub const fn jwt_secret(env_var: &'a str) -> Self {
        Self {
            key: "jwt_secret",
            file_key: "jwt_secret_file",
            env_var,
            min_bytes: MIN_SECRET_BYTES,
        }
    }
}

impl SecretKeys<'_> {
    /// A `*_file` that cannot be read: a problem in every mode, since the secret is unusable.
    pub fn check_readable(&self, s: &mut Section<'_>, source: &SecretSource) {
        if let SecretSource::Unreadable { path, error } = source {
            s.push(
                self.file_key,
                format!(
                    "cannot read {}: {error}; point it at a readable file holding the secret",
                    path.display()
                ),
            );
        }
    }

    /// The production rules: the secret comes from a file or the environment, is not
    /// set inline as well, is not a shipped placeholder, and has at least
    /// `min_bytes`. The secret itself is never echoed.
    pub fn check_production(&self, s: &mut Section<'_>, value: &str, source: &SecretSource) {
        let (file_key, env) = (s.path(self.file_key), self.env_var);
        let from = match source {
            SecretSource::Unreadable { .. } => return, // already reported by check_readable
            SecretSource::Inline => {
                s.push(
                    self.key,
                    format!(
                        "is set inline in the TOML config; outside demo mode a secret comes \
                         from a file ({file_key}, e.g. a systemd credential or a mounted \
                         Kubernetes Secret) or the environment variable {env}"
                    ),
                );
                "the TOML config".to_owned()
            }
            SecretSource::File { path, also_inline } => {
                self.check_also_inline(s, *also_inline, &file_key);
                format!("{} ({file_key})", path.display())
            }
            SecretSource::Env { var, also_inline } => {
                self.check_also_inline(s, *also_inline, var);
                format!("the environment variable {var}")
            }
        };
        if is_placeholder(value) {
            s.push(
                self.key,
                format!(
                    "the value from {from} is a shipped default or placeholder; generate a \
                     secret of its own, e.g. `openssl rand -base64 48`"
                ),
            );
        } else if value.len() < self.min_bytes {
            s.push(
                self.key,
                format!(
                    "the value from {from} is {} bytes, must be at least {}; generate one \
                     with `openssl rand -base64 48`",
                    value.len(),
                    self.min_bytes
                ),
            );
        }
    }

    fn check_also_inline(&self, s: &mut Section<'_>, also_inline: bool, source: &str) {
        s.ensure(!also_inline, self.key, || {
            format!(
                "is set inline in the TOML config as well as through {source}; remove it from \
                 the TOML file, which is not the place for a secret"
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Problems;

    const KEYS: SecretKeys<'static> = SecretKeys {
        key: "jwt_secret",
        file_key: "jwt_secret_file",
        env_var: "CELL_AUTH_JWT_SECRET",
        min_bytes: MIN_SECRET_BYTES,
    };
    const SHIPPED: &str = "dev-only-secret-change-me";
    const GOOD: &str = "0123456789abcdef0123456789abcdef-good";

    fn problems(value: &str, source: &SecretSource) -> Vec<String> {
        let mut p = Problems::new();
        let mut s = p.section("auth");
        KEYS.check_readable(&mut s, source);
        KEYS.check_production(&mut s, value, source);
        p.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn env_wins_over_file_and_file_over_inline_and_the_newline_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("jwt");
        std::fs::write(&f, format!("{GOOD}\n")).unwrap();
        let mut v = SHIPPED.to_owned();
        let src = resolve_with(&mut v, &f, "E", Some("from-env".into()), SHIPPED);
        assert_eq!(v, "from-env");
        assert_eq!(
            src,
            SecretSource::Env {
                var: "E".into(),
                also_inline: false
            }
        );
        let mut v = "mine".to_owned();
        let src = resolve_with(&mut v, &f, "E", Some(String::new()), SHIPPED);
        assert_eq!(v, GOOD);
        assert_eq!(
            src,
            SecretSource::File {
                path: f.clone(),
                also_inline: true
            }
        );
        let mut v = SHIPPED.to_owned();
        assert_eq!(
            resolve_with(&mut v, Path::new(""), "E", None, SHIPPED),
            SecretSource::Inline
        );
        assert_eq!(v, SHIPPED);
        let missing = dir.path().join("nope");
        let src = resolve_with(&mut v, &missing, "E", None, SHIPPED);
        assert!(matches!(src, SecretSource::Unreadable { .. }), "{src:?}");
        assert_eq!(
            v, "",
            "an unreadable file never leaves the default in place"
        );
    }

    #[test]
    fn production_rules_name_the_key_and_the_fix() {
        let file = SecretSource::File {
            path: "/run/credentials/jwt".into(),
            also_inline: false,
        };
        assert!(problems(GOOD, &file).is_empty());
        let inline = problems(GOOD, &SecretSource::Inline);
        assert_eq!(inline.len(), 1);
        assert!(inline[0].starts_with("auth.jwt_secret: is set inline"));
        assert!(inline[0].contains("auth.jwt_secret_file") && inline[0].contains("CELL_AUTH"));
        // The shipped default inline: both the source and the value are wrong.
        assert_eq!(problems(SHIPPED, &SecretSource::Inline).len(), 2);
        let short = problems("short", &file);
        assert!(
            short[0].contains("is 5 bytes, must be at least 32"),
            "{short:?}"
        );
        for p in [
            "REPLACE-with-openssl-rand-base64-48",
            "change-me",
            "please-change-me-0123456789abcdef",
        ] {
            let got = problems(p, &file);
            assert!(
                got[0].contains("shipped default or placeholder"),
                "{p}: {got:?}"
            );
            assert!(!got[0].contains(p), "the secret is never echoed");
        }
        let env = SecretSource::Env {
            var: "CELL_AUTH_JWT_SECRET".into(),
            also_inline: true,
        };
        let both = problems(GOOD, &env);
        assert_eq!(both.len(), 1);
        assert!(both[0].contains("as well as through CELL_AUTH_JWT_SECRET"));
        let unreadable = SecretSource::Unreadable {
            path: "/nope".into(),
            error: "No such file or directory".into(),
        };
        assert_eq!(
            problems("", &unreadable),
            [
                "auth.jwt_secret_file: cannot read /nope: No such file or directory; point it at \
              a readable file holding the secret"
            ]
        );
    }
}
