//! The router's configuration: one typed struct, loaded once. Layers, later wins: the
//! embedded `config/router.default.toml`, then `--config FILE`, then CLI flags. Unknown keys
//! are errors.

use serde::{Deserialize, Serialize};
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl From<service::LoadError> for ConfigError {
    fn from(e: service::LoadError) -> Self {
        ConfigError::Parse {
            path: e.path,
            message: e.message,
        }
    }
}

impl Config {
    /// The defaults, then `file` if given.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let cfg: Config = service::load_toml(DEFAULT_TOML, file)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if self.auth.jwt_secret.len() < 16 {
            problems.push("auth.jwt_secret must be at least 16 bytes".to_string());
        }
        if self.http.max_body_bytes == 0 {
            problems.push("http.max_body_bytes must be > 0".into());
        }
        if self.health.failure_threshold == 0 {
            problems.push("health.failure_threshold must be >= 1".into());
        }
        if self.tls.cert_file.is_empty() != self.tls.key_file.is_empty() {
            problems.push("tls.cert_file and tls.key_file are set together or not at all".into());
        }
        if !self.store.follow.is_empty() && !self.store.follow.starts_with("http") {
            problems.push("store.follow must be an http(s) URL".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// The config as TOML with the secret masked, for the startup log.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.auth.jwt_secret = "<redacted>".into();
        toml::to_string(&c).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_overlay_wins() {
        let c = Config::load(None).unwrap();
        assert_eq!(c.http.listen_addr.port(), 8080);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("r.toml");
        std::fs::write(&f, "[limits]\nper_ip_rps = 5\n").unwrap();
        let c = Config::load(Some(&f)).unwrap();
        assert_eq!(c.limits.per_ip_rps, 5);
        assert_eq!(c.limits.per_ip_burst, 4000);
        std::fs::write(&f, "[limits]\nper_ip_rsp = 5\n").unwrap();
        assert!(matches!(
            Config::load(Some(&f)),
            Err(ConfigError::Parse { .. })
        ));
        std::fs::write(&f, "[tls]\ncert_file = \"x.pem\"\n").unwrap();
        assert!(matches!(
            Config::load(Some(&f)),
            Err(ConfigError::Invalid(_))
        ));
    }
}
