//! The cell's configuration: one typed struct, loaded once. Layers, later wins: the embedded
//! `config/cell.default.toml`, then `--config FILE`, then CLI flags. Unknown keys are errors.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

const DEFAULT_TOML: &str = include_str!("../config/cell.default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub cell: CellSection,
    pub http: HttpSection,
    pub store: StoreSection,
    pub auth: AuthSection,
    pub demo: DemoSection,
    #[serde(default)]
    pub pricing: catalog::PricingConfig,
    #[serde(default)]
    pub payments: payments::PaymentsConfig,
    #[serde(default)]
    pub dispatch: crate::dispatch::DispatchConfig,
    #[serde(default)]
    pub tracking: crate::tracking::TrackingConfig,
    #[serde(default)]
    pub quic: crate::gateway::QuicConfig,
    #[serde(default)]
    pub notify: crate::notify::NotifyConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellSection {
    /// 0..=1023; embedded in every order id this cell creates, so it must never be reused
    /// by another cell.
    pub id: u32,
    /// Human name, for logs and the admin API.
    pub name: String,
    /// ISO 4217, lower case ("eur").
    pub currency: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen_addr: SocketAddr,
    /// Whole-request deadline: a stuck handler cannot hold a connection forever.
    pub request_timeout_ms: u64,
}

pub use store::Backend;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub backend: Backend,
    pub data_dir: PathBuf,
    /// FoundationDB cluster file; empty means the client library's default.
    #[serde(default)]
    pub fdb_cluster_file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// HS256 secret shared with whoever issues tokens. Never logged.
    pub jwt_secret: String,
    pub token_ttl_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSection {
    /// Demo mode: seeds the catalog when empty and serves `POST /api/v1/dev/token`.
    pub enabled: bool,
    pub seed: u64,
    pub city_name: String,
    pub center_lat: f64,
    pub center_lng: f64,
    pub radius_km: f64,
    pub restaurants: usize,
    pub timezone: String,
}

impl Config {
    /// The defaults, then `file` if given.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let cfg: Config = service::load_toml(DEFAULT_TOML, file)?;
        Ok(cfg)
    }

    /// Every problem at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if domain::CellId::new(self.cell.id).is_err() {
            problems.push(format!("cell.id={} must be in 0..=1023", self.cell.id));
        }
        if self.auth.jwt_secret.len() < 8 {
            problems.push("auth.jwt_secret must be at least 8 bytes".into());
        }
        if self.http.request_timeout_ms == 0 {
            problems.push("http.request_timeout_ms must be > 0".into());
        }
        if self.store.backend == Backend::Fdb && !cfg!(feature = "fdb") {
            problems.push("store.backend=fdb needs a build with `--features fdb`".into());
        }
        if self.demo.enabled && !(-90.0..=90.0).contains(&self.demo.center_lat) {
            problems.push("demo.center_lat out of range".into());
        }
        if let Err(p) = self.payments.validate() {
            problems.extend(p);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }

    /// ISO 4217 currency of the cell's prices.
    pub fn pricing_currency(&self) -> String {
        self.cell.currency.clone()
    }

    /// The effective config for the startup log, secrets redacted.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.auth.jwt_secret = "<redacted>".into();
        let mut s = toml::to_string(&c).unwrap_or_default();
        if let payments::ProviderConfig::Stripe(_) = &self.payments.provider {
            s = s
                .lines()
                .map(|l| {
                    if l.starts_with("secret_key") {
                        "secret_key = \"<redacted>\""
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
        }
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid config:\n  - {}", .0.join("\n  - "))]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_loads_and_validates() {
        let c = Config::load(None).unwrap();
        c.validate().unwrap();
        assert!(!c.redacted().contains(&c.auth.jwt_secret));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[http]\nlisten_adr = \"x\"\n").unwrap();
        assert!(
            Config::load(Some(&p))
                .unwrap_err()
                .to_string()
                .contains("listen_adr")
        );
        std::fs::write(&p, "[cell]\nid = 5000\n[auth]\njwt_secret = \"x\"\n").unwrap();
        let err = Config::load(Some(&p))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cell.id") && err.contains("jwt_secret"),
            "{err}"
        );
    }
}
