//! The router's configuration: one typed struct, loaded once. Layers, later wins: the
//! embedded `config/router.default.toml`, then `--config FILE`, then CLI flags. Unknown keys
//! are errors; the JWT secret is then read from the environment or its file
//! ([`service::secret`]). [`Config::validate`] reports every unusable value at once, each
//! under its key, and outside demo mode the production rules ([`Config::production_rules`]):
//! no shipped or inline secret, no plain HTTP on a public address, a writable store directory.

use serde::{Deserialize, Serialize};
use service::config::{Problems, Section, Validate};
use service::secret::{SecretKeys, SecretSource};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const DEFAULT_TOML: &str = include_str!("../config/router.default.toml");

/// Environment variable holding the JWT secret; wins over `auth.jwt_secret_file`.
pub const JWT_SECRET_ENV: &str = "ROUTER_AUTH_JWT_SECRET";

/// The JWT secret's keys, for problem messages.
const JWT_SECRET_KEYS: SecretKeys<'static> = SecretKeys::jwt_secret(JWT_SECRET_ENV);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: HttpSection,
    pub store: StoreSection,
    pub auth: AuthSection,
    pub health: HealthSection,
    pub limits: LimitsSection,
    pub tls: TlsSection,
    /// Absent in files written before cells served HTTPS: then no upstream CA.
    #[serde(default)]
    pub upstream: UpstreamSection,
    #[serde(default)]
    pub demo: DemoSection,
    /// Absent in files written before searches crossed cell borders: the defaults.
    #[serde(default)]
    pub fanout: FanoutSection,
}

/// `[fanout]`: how long a request answered from several cells waits for them.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FanoutSection {
    /// A search across a cell border answers with the cells heard from by then
    /// (`partial: true` names the others).
    pub search_deadline_ms: u64,
    /// The same for a customer's order list, merged from every cell.
    pub orders_deadline_ms: u64,
}

impl Default for FanoutSection {
    fn default() -> Self {
        FanoutSection {
            search_deadline_ms: 150,
            orders_deadline_ms: 1000,
        }
    }
}

impl Validate for FanoutSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.search_deadline_ms > 0, "search_deadline_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.orders_deadline_ms > 0, "orders_deadline_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
    }
}

/// `[upstream]`: how the router reaches cells whose endpoint is `https://host:port`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// PEM CA certificate(s) that sign the cells' HTTPS certificates, the only roots the
    /// router trusts towards cells (and towards a leader it follows over https). Empty: no
    /// `https://` cell can be reached.
    #[serde(default)]
    pub ca_file: PathBuf,
    /// The router's own certificate chain and key, presented to cells that require client
    /// certificates (`[http] tls_client_ca_file` on the cell). Empty: none.
    #[serde(default)]
    pub client_cert_file: PathBuf,
    #[serde(default)]
    pub client_key_file: PathBuf,
    /// Local addresses the router's WebSocket connections to cells are made from, in turn
    /// (e.g. `["127.0.0.2", "127.0.0.3"]` for a cell on loopback). Each source reaches one
    /// cell address through at most ~28K ephemeral ports, one per spliced WebSocket; empty
    /// (the default): the kernel picks, one source.
    #[serde(default)]
    pub source_addrs: Vec<std::net::IpAddr>,
}

impl UpstreamSection {
    /// The TLS client config for cells, when a CA is configured.
    ///
    /// # Errors
    /// [`service::tls::TlsError`] naming a file that could not be loaded.
    pub fn client_config(&self) -> Result<Option<rustls::ClientConfig>, service::tls::TlsError> {
        if self.ca_file.as_os_str().is_empty() {
            return Ok(None);
        }
        let identity = (!self.client_cert_file.as_os_str().is_empty()).then_some((
            self.client_cert_file.as_path(),
            self.client_key_file.as_path(),
        ));
        service::tls::client_config(&self.ca_file, identity).map(Some)
    }
}

/// `[demo]`: a router for a laptop or a test, in front of demo cells.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSection {
    /// Skips the production rules (the shipped dev secret, plain HTTP on any address are
    /// accepted). Off by default, so a forgotten setting fails safe.
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    pub listen_addr: SocketAddr,
    pub max_body_bytes: usize,
    pub upstream_timeout_ms: u64,
    pub pool_max_idle_per_cell: usize,
    /// How long a request is held and retried while its cell restarts or fails over,
    /// before 503 (see `hold`); 0 answers 503 at once. Absent in older files: 10 s.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// `[http.edge]`: header-read and idle deadlines and the connection cap.
    #[serde(default)]
    pub edge: service::conn::EdgeConfig,
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
    /// HS256 secret shared with the cells. Never logged. Inline only in demo mode; after
    /// loading it holds the secret from [`JWT_SECRET_ENV`] or `jwt_secret_file`.
    pub jwt_secret: String,
    /// A file holding the secret (a systemd credential, a mounted Kubernetes Secret); a
    /// trailing newline is removed. Empty: not used.
    #[serde(default)]
    pub jwt_secret_file: PathBuf,
    /// Where `jwt_secret` came from, set when the config is loaded.
    #[serde(skip)]
    pub jwt_secret_source: SecretSource,
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
    /// The defaults, then `file` if given, with every value checked (for the admin commands,
    /// which take the file as it is and serve nothing, so the production rules do not apply).
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let cfg = Config::layered(file)?;
        cfg.value_problems().into_result()?;
        Ok(cfg)
    }

    /// The defaults, then `file` if given, checked only as far as signing a token needs (the
    /// `[auth]` section): `token` and the admin commands sign with it, and must work before
    /// the files the listeners need (TLS keys, a dev CA not generated yet) exist.
    pub fn load_for_signing(file: Option<&Path>) -> Result<Config, ConfigError> {
        let cfg = Config::layered(file)?;
        service::config::check("auth", &cfg.auth)?;
        Ok(cfg)
    }

    /// The defaults, then `file` if given, then the secret from the environment or its
    /// file; not yet validated: `run` applies its flags first and then runs
    /// [`Config::validate`] once.
    pub fn layered(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg: Config = service::load_toml(DEFAULT_TOML, file)?;
        let shipped: Config = toml::from_str(DEFAULT_TOML).expect("the embedded default parses");
        let auth = &mut cfg.auth;
        auth.jwt_secret_source = service::secret::resolve(
            &mut auth.jwt_secret,
            &auth.jwt_secret_file,
            JWT_SECRET_ENV,
            &shipped.auth.jwt_secret,
        );
        Ok(cfg)
    }

    /// Every problem of every section at once, each under its key, and outside demo mode the
    /// production rules too; run before anything binds a socket or opens the store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = self.value_problems();
        if !self.demo.enabled {
            self.production_rules(&mut p);
        }
        p.into_result()
    }

    /// What a router facing real clients must not run with; demo mode skips these.
    pub fn production_rules(&self, p: &mut Problems) {
        use service::production::{check_data_dir, check_public_listener};
        check_public_listener(
            &mut p.section("http"),
            "listen_addr",
            self.http.listen_addr,
            !self.tls.cert_file.is_empty(),
            "tls.cert_file and tls.key_file",
        );
        // A follower opens no store; fdb keeps no data there.
        if self.store.follow.is_empty() && self.store.backend == Backend::Redb {
            check_data_dir(&mut p.section("store"), "data_dir", &self.store.data_dir);
        }
        JWT_SECRET_KEYS.check_production(
            &mut p.section("auth"),
            &self.auth.jwt_secret,
            &self.auth.jwt_secret_source,
        );
    }

    fn value_problems(&self) -> Problems {
        let mut p = Problems::new();
        p.validate("http", &self.http);
        p.validate("store", &self.store);
        p.validate("auth", &self.auth);
        p.validate("health", &self.health);
        p.validate("limits", &self.limits);
        p.validate("tls", &self.tls);
        p.validate("upstream", &self.upstream);
        p.validate("fanout", &self.fanout);
        p
    }

    /// The config as TOML with the secret masked, for the startup log.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.auth.jwt_secret = "<redacted>".into();
        c.auth.hs256.redact();
        toml::to_string(&c).unwrap_or_default()
    }
}

fn default_hold_ms() -> u64 {
    10_000
}

impl Validate for HttpSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.max_body_bytes > 0, "max_body_bytes", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.upstream_timeout_ms > 0, "upstream_timeout_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.hold_ms <= 60_000, "hold_ms", || {
            format!(
                "must be at most 60000: clients give up before that (got {})",
                self.hold_ms
            )
        });
        s.validate("edge", &self.edge);
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
        JWT_SECRET_KEYS.check_readable(s, &self.jwt_secret_source);
        let unreadable = matches!(self.jwt_secret_source, SecretSource::Unreadable { .. });
        // The secret itself is never echoed.
        s.ensure(
            unreadable || self.jwt_secret.len() >= 16,
            "jwt_secret",
            || format!("must be at least 16 bytes (got {})", self.jwt_secret.len()),
        );
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
        service::production::check_tls_files(
            s,
            ("cert_file", Path::new(&self.cert_file)),
            ("key_file", Path::new(&self.key_file)),
        );
    }
}

impl Validate for UpstreamSection {
    fn validate(&self, s: &mut Section<'_>) {
        let set = |p: &Path| !p.as_os_str().is_empty();
        let (ca, cert, key) = (
            set(&self.ca_file),
            set(&self.client_cert_file),
            set(&self.client_key_file),
        );
        if cert != key {
            let missing = if cert {
                "client_key_file"
            } else {
                "client_cert_file"
            };
            s.push(
                missing,
                "must be set together with the other of client_cert_file and client_key_file"
                    .to_owned(),
            );
        } else if cert && !ca {
            s.push(
                "ca_file",
                "must be set when client_cert_file is: client certificates are for https:// \
                 cells, whose certificates this CA verifies"
                    .to_owned(),
            );
        } else if let Err(e) = self.client_config() {
            let key = if e.to_string().contains(&*self.ca_file.to_string_lossy()) {
                "ca_file"
            } else {
                "client_cert_file"
            };
            s.push(key, format!("{e}; give readable PEM files"));
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
