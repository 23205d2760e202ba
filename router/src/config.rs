//! The router's configuration: one typed struct, loaded once. Layers, later wins: the
//! embedded `config/router.default.toml`, then `--config FILE`, then CLI flags. Unknown keys
//! are errors; [`Config::validate`] reports every unusable value at once, each under its key.

use serde::{Deserialize, Serialize};
use service::config::{Problems, Section, Validate};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const DEFAULT_TOML: &str = include_str!("../config/router.default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpSection,
    pub store: StoreSection,
    pub auth: AuthSection,
    pub health: HealthSection,
    pub limits: LimitsSection,
    pub tls: TlsSection,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen_addr: SocketAddr,
    pub max_body_bytes: usize,
    pub upstream_timeout_ms: u64,
    pub pool_max_idle_per_cell: usize,
}

pub use service::config::ConfigError;
pub use store::Backend;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub backend: Backend,
    pub data_dir: PathBuf,
    #[serde(default)]
    pub fdb_cluster_file: String,
    /// Base URL of a leader router to follow instead of opening a store.
    #[serde(default)]
    pub follow: String,
    pub poll_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub jwt_secret: String,
    pub token_ttl_s: u64,
    /// `[auth.hs256]`: the `kid` of `jwt_secret` and retired keys that still verify.
    #[serde(default)]
    pub hs256: auth::config::Hs256Config,
    /// `[auth.oidc]`: an issuer whose RS256/ES256 tokens are accepted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<auth::config::OidcConfig>,
}

impl AuthSection {
    /// The token verifier this section describes (no I/O besides previous keys' files).
    ///
    /// # Errors
    /// [`auth::config::KeyError`] when a previous key's secret cannot be read.
    pub fn verifier(&self) -> Result<auth::Verifier, auth::config::KeyError> {
        auth::Verifier::from_config(self.jwt_secret.as_bytes(), &self.hs256, self.oidc.as_ref())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSection {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub failure_threshold: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    pub per_ip_rps: u32,
    pub per_ip_burst: u32,
    pub per_token_rps: u32,
    pub per_token_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    #[serde(default)]
    pub cert_file: String,
    #[serde(default)]
    pub key_file: String,
}

impl Config {
    /// The defaults, then `file` if given, validated as a whole (for the admin commands,
    /// which take the file as it is).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let cfg = Config::layered(file)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The defaults, then `file` if given, not yet validated: `run` applies its flags first
    /// and then runs [`Config::validate`] once.
    pub fn layered(file: Option<&Path>) -> Result<Config, ConfigError> {
        Ok(service::load_toml(DEFAULT_TOML, file)?)
    }

    /// Every problem of every section at once, each under its key; run before anything binds
    /// a socket or opens the store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::new();
        p.validate("http", &self.http);
        p.validate("store", &self.store);
        p.validate("auth", &self.auth);
        p.validate("health", &self.health);
        p.validate("limits", &self.limits);
        p.validate("tls", &self.tls);
        p.into_result()
    }

    /// The config as TOML with the secret masked, for the startup log.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.auth.jwt_secret = "<redacted>".into();
        c.auth.hs256.redact();
        toml::to_string(&c).unwrap_or_default()
    }
}

impl Validate for HttpSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.max_body_bytes > 0, "max_body_bytes", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.upstream_timeout_ms > 0, "upstream_timeout_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
    }
}

impl Validate for StoreSection {
    fn validate(&self, s: &mut Section<'_>) {
        let follower = !self.follow.is_empty();
        s.ensure(
            !follower || self.follow.starts_with("http"),
            "follow",
            || {
                format!(
                    "must be an http(s) URL, or empty for an own store (got {:?})",
                    self.follow
                )
            },
        );
        // A follower opens no store, so the backend does not matter then.
        s.ensure(
            follower || self.backend != Backend::Fdb || cfg!(feature = "fdb"),
            "backend",
            || "\"fdb\" needs a router built with `--features fdb`".to_owned(),
        );
        s.ensure(self.poll_ms > 0, "poll_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
    }
}

impl Validate for AuthSection {
    fn validate(&self, s: &mut Section<'_>) {
        // The secret itself is never echoed.
        s.ensure(self.jwt_secret.len() >= 16, "jwt_secret", || {
            format!("must be at least 16 bytes (got {})", self.jwt_secret.len())
        });
        s.ensure(self.token_ttl_s > 0, "token_ttl_s", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.validate("hs256", &self.hs256);
        if let Some(oidc) = &self.oidc {
            s.validate("oidc", oidc);
        }
    }
}

impl Validate for HealthSection {
    fn validate(&self, s: &mut Section<'_>) {
        for (key, ms) in [
            ("interval_ms", self.interval_ms),
            ("timeout_ms", self.timeout_ms),
        ] {
            s.ensure(ms > 0, key, || "must be greater than 0 (got 0)".to_owned());
        }
        s.ensure(self.failure_threshold >= 1, "failure_threshold", || {
            "must be at least 1 (got 0)".to_owned()
        });
    }
}

impl Validate for LimitsSection {
    fn validate(&self, s: &mut Section<'_>) {
        // A burst of 0 would refuse every request; the limiter quietly treats it as 1, so a
        // typo would go unseen without this check.
        for (rate_key, rate, key, burst) in [
            (
                "per_ip_rps",
                self.per_ip_rps,
                "per_ip_burst",
                self.per_ip_burst,
            ),
            (
                "per_token_rps",
                self.per_token_rps,
                "per_token_burst",
                self.per_token_burst,
            ),
        ] {
            s.ensure(rate == 0 || burst >= 1, key, || {
                format!("must be at least 1 while {rate_key} is set (got 0)")
            });
        }
    }
}

impl Validate for TlsSection {
    fn validate(&self, s: &mut Section<'_>) {
        if self.cert_file.is_empty() != self.key_file.is_empty() {
            let (missing, other) = if self.cert_file.is_empty() {
                ("cert_file", "key_file")
            } else {
                ("key_file", "cert_file")
            };
            s.push(
                missing,
                format!("must be set together with {other}, or both left empty (plain HTTP)"),
            );
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
