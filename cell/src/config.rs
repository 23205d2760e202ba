//! The cell's configuration: one typed struct, loaded once. Layers, later wins: the embedded
//! `config/cell.default.toml`, then `--config FILE`, then CLI flags. Unknown keys are errors.
//! Secrets are then read from the environment or their `*_file` ([`service::secret`]).
//!
//! [`Config::validate`] reports every unusable value at once; outside demo mode it also
//! applies the production rules ([`Config::production_rules`]): no shipped or inline secret,
//! no sandbox payments, no generated QUIC CA, no plain HTTP on a public address, a store
//! directory that exists and is writable, a private key file for location history.

use serde::{Deserialize, Serialize};
use service::config::{Problems, Section, Validate};
use service::secret::{SecretKeys, SecretSource};
use std::net::SocketAddr;
use std::path::PathBuf;

const DEFAULT_TOML: &str = include_str!("../config/cell.default.toml");

/// Environment variable holding the JWT secret; wins over `auth.jwt_secret_file`.
pub const JWT_SECRET_ENV: &str = "CELL_AUTH_JWT_SECRET";

/// The JWT secret's keys, for problem messages.
const JWT_SECRET_KEYS: SecretKeys<'static> = SecretKeys::jwt_secret(JWT_SECRET_ENV);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub cell: CellSection,
    pub http: HttpSection,
    pub store: StoreSection,
    pub auth: AuthSection,
    pub demo: DemoSection,
    #[serde(default)]
    pub catalog: CatalogSection,
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
    #[serde(default)]
    pub drain: crate::drain::DrainConfig,
    #[serde(default)]
    pub fraud: crate::fraud::FraudConfig,
    #[serde(default)]
    pub reconcile: crate::reconcile::ReconcileConfig,
    #[serde(default)]
    pub payment_queue: crate::orders::QueueConfig,
    #[serde(default)]
    pub limits: crate::limits::LimitsConfig,
    #[serde(default)]
    pub payment_worker: crate::saga::PaymentWorkerConfig,
    #[serde(default)]
    pub history: crate::history::HistoryConfig,
    #[serde(default)]
    pub privacy: crate::personal::PrivacyConfig,
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
    /// PEM certificate chain (leaf first); with `tls_key_file`, the listener serves HTTPS
    /// (TLS 1.3 only). Empty: plain HTTP, refused outside demo mode on a non-loopback address.
    #[serde(default)]
    pub tls_cert_file: PathBuf,
    /// PEM private key of `tls_cert_file`.
    #[serde(default)]
    pub tls_key_file: PathBuf,
    /// PEM CA: with TLS, clients must present a certificate it signed (mutual TLS; the
    /// router's `[upstream] client_cert_file`). Empty: no client certificates asked for.
    #[serde(default)]
    pub tls_client_ca_file: PathBuf,
    /// `[http.edge]`: header-read and idle deadlines and the connection cap.
    #[serde(default)]
    pub edge: service::conn::EdgeConfig,
}

impl HttpSection {
    /// Whether the listener serves HTTPS.
    pub fn tls(&self) -> bool {
        !self.tls_cert_file.as_os_str().is_empty()
    }

    /// The listener's TLS acceptor when it serves HTTPS: the certificate reloaded from its
    /// files when they change, client certificates required with `tls_client_ca_file`.
    ///
    /// # Errors
    /// [`service::tls::TlsError`] naming a file that could not be loaded.
    pub fn tls_acceptor(
        &self,
    ) -> Result<Option<service::tls::TlsAcceptor>, service::tls::TlsError> {
        if !self.tls() {
            return Ok(None);
        }
        let client_ca =
            Some(self.tls_client_ca_file.as_path()).filter(|p| !p.as_os_str().is_empty());
        service::tls::server_config(
            &self.tls_cert_file,
            &self.tls_key_file,
            client_ca,
            service::tls::RELOAD_CHECK_EVERY,
        )
        .map(|c| Some(c.into()))
    }
}

pub use service::config::ConfigError;
pub use store::Backend;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSection {
    pub backend: Backend,
    pub data_dir: PathBuf,
    /// FoundationDB cluster file; empty means the client library's default.
    #[serde(default)]
    pub fdb_cluster_file: String,
    /// How long the cell's lease lasts without a renewal (renewed every third of it). A
    /// standby takes over this long after the holder died (at once after a clean shutdown);
    /// shorter means a faster takeover but more renewal writes, and a holder stalled for longer
    /// than this (a pause, a slow store) loses the lease and stops.
    #[serde(default = "default_lease_ms")]
    pub lease_ms: u64,
    /// redb's page cache, bytes (ignored for FoundationDB). Menus are cached by the catalog,
    /// so this only needs the hot B-tree pages; the operating system's page cache holds the
    /// rest of the file.
    #[serde(default = "default_cache_bytes")]
    pub cache_bytes: u64,
}

/// Bounds of `store.cache_bytes`.
pub const CACHE_BYTES_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(64 << 30);

fn default_cache_bytes() -> u64 {
    64 << 20
}

/// `[catalog]`: what of the catalog is kept in memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogSection {
    /// Menus kept in memory (their response bodies), most recently read first; the others
    /// are read from the store when asked for. 0: a fifth of the restaurants, at least
    /// [`catalog::MIN_MENU_CACHE`], following the catalog's size.
    #[serde(default)]
    pub menu_cache_menus: usize,
}

/// Most menus `catalog.menu_cache_menus` may ask for: a cell's catalog is far smaller.
pub const MAX_MENU_CACHE_MENUS: usize = 1_000_000;

impl CatalogSection {
    /// The capacity to give [`catalog::Catalog::load_with`]: `None` follows the catalog's size.
    pub fn menu_cache(&self) -> Option<usize> {
        (self.menu_cache_menus > 0).then_some(self.menu_cache_menus)
    }
}

impl Validate for CatalogSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            self.menu_cache_menus <= MAX_MENU_CACHE_MENUS,
            "menu_cache_menus",
            || {
                format!(
                    "must be at most {MAX_MENU_CACHE_MENUS} (got {})",
                    self.menu_cache_menus
                )
            },
        );
    }
}

/// Bounds of `store.lease_ms`: a renewal (a third of it) must fit a slow commit, and a takeover
/// after a crash should not wait for minutes.
pub const LEASE_MS_RANGE: std::ops::RangeInclusive<u64> = 1_000..=120_000;

fn default_lease_ms() -> u64 {
    10_000
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// HS256 secret shared with whoever issues tokens. Never logged. Inline only in demo
    /// mode; after loading it holds the secret from [`JWT_SECRET_ENV`] or `jwt_secret_file`.
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
    /// Shifts the cell's clock (ms, may be negative), for tests of a clock that moved back.
    /// Demo mode only: validation refuses it otherwise, so it is no production backdoor.
    #[serde(default)]
    pub clock_offset_ms: i64,
}

impl Config {
    /// The defaults, then `file` if given, then the secrets from the environment or their
    /// files. Not validated: flags may still change it, so the caller runs
    /// [`Config::validate`] once everything is applied.
    pub fn load(file: Option<&std::path::Path>) -> Result<Config, ConfigError> {
        let mut cfg: Config = service::load_toml(DEFAULT_TOML, file)?;
        cfg.resolve_secrets();
        Ok(cfg)
    }

    /// Replaces the inline secrets with those from the environment or `*_file`, recording
    /// where each came from.
    fn resolve_secrets(&mut self) {
        let shipped: Config = toml::from_str(DEFAULT_TOML).expect("the embedded default parses");
        let auth = &mut self.auth;
        auth.jwt_secret_source = service::secret::resolve(
            &mut auth.jwt_secret,
            &auth.jwt_secret_file,
            JWT_SECRET_ENV,
            &shipped.auth.jwt_secret,
        );
        if let payments::ProviderConfig::Stripe(stripe) = &mut self.payments.provider {
            stripe.resolve_secret();
        }
    }

    /// Every problem of every section at once, each under its key, and outside demo mode
    /// the production rules too; run before anything binds a socket or opens the store.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut p = self.value_problems();
        if !self.demo.enabled {
            self.production_rules(&mut p);
        }
        p.into_result()
    }

    /// Only whether each value is usable, for the commands that serve nothing (`token`).
    pub fn validate_values(&self) -> Result<(), ConfigError> {
        self.value_problems().into_result()
    }

    fn value_problems(&self) -> Problems {
        let mut p = Problems::new();
        p.validate("cell", &self.cell);
        p.validate("http", &self.http);
        p.validate("store", &self.store);
        p.validate("auth", &self.auth);
        p.validate("demo", &self.demo);
        p.validate("catalog", &self.catalog);
        p.validate("pricing", &self.pricing);
        p.validate("payments", &self.payments);
        p.validate("dispatch", &self.dispatch);
        p.validate("tracking", &self.tracking);
        p.validate("quic", &self.quic);
        p.validate("notify", &self.notify);
        p.validate("drain", &self.drain);
        p.validate("fraud", &self.fraud);
        p.validate("reconcile", &self.reconcile);
        p.validate("payment_queue", &self.payment_queue);
        let (wait, request) = (
            self.payment_queue.placement_wait_ms,
            self.http.request_timeout_ms,
        );
        p.section("payment_queue")
            // A request timeout of 0 is reported under [http] already.
            .ensure(request == 0 || wait < request, "placement_wait_ms", || {
                format!("must be below http.request_timeout_ms = {request} (got {wait})")
            });
        p.validate("limits", &self.limits);
        p.validate("payment_worker", &self.payment_worker);
        p.validate("history", &self.history);
        p.validate("privacy", &self.privacy);
        p
    }

    /// What a cell exposed to real customers must not run with. Demo mode skips these, so
    /// `./dev city` and the tests start with the shipped dev secret, the payment sandbox and
    /// a generated QUIC CA.
    pub fn production_rules(&self, p: &mut Problems) {
        use service::production::{check_data_dir, check_public_listener};
        let fix_demo = "(or run a demo with [demo] enabled = true)";
        check_public_listener(
            &mut p.section("http"),
            "listen_addr",
            self.http.listen_addr,
            self.http.tls(),
            "http.tls_cert_file and http.tls_key_file",
        );
        if self.store.backend == Backend::Redb && !self.store.data_dir.as_os_str().is_empty() {
            check_data_dir(&mut p.section("store"), "data_dir", &self.store.data_dir);
        }
        JWT_SECRET_KEYS.check_production(
            &mut p.section("auth"),
            &self.auth.jwt_secret,
            &self.auth.jwt_secret_source,
        );
        let mut pay = p.section("payments");
        match &self.payments.provider {
            payments::ProviderConfig::Sandbox(_) => pay.push(
                "provider.kind",
                format!(
                    "is \"sandbox\", which approves test cards without moving money; set \
                     kind = \"stripe\" with its base_url and secret key {fix_demo}"
                ),
            ),
            payments::ProviderConfig::Stripe(stripe) => {
                let mut prov = pay.section("provider");
                payments::STRIPE_SECRET_KEYS.check_production(
                    &mut prov,
                    &stripe.secret_key,
                    &stripe.secret_key_source,
                );
                prov.ensure(
                    !stripe.secret_key.starts_with("sk_test_"),
                    "secret_key",
                    || {
                        "is a Stripe test-mode key (sk_test_...), which moves no money; use the \
                     live key"
                            .to_owned()
                    },
                );
            }
        }
        self.history.production_rules(&mut p.section("history"));
        p.section("quic").ensure(
            !self.quic.cert_path.as_os_str().is_empty(),
            "cert_path",
            || {
                "is empty, so the driver gateway would serve a certificate from a generated \
             development CA; set quic.cert_path and quic.key_path to the PEM files of a \
             certificate the driver app trusts"
                    .to_owned()
            },
        );
    }

    /// ISO 4217 currency of the cell's prices.
    pub fn pricing_currency(&self) -> String {
        self.cell.currency.clone()
    }

    /// The effective config for the startup log, secrets redacted.
    pub fn redacted(&self) -> String {
        let mut c = self.clone();
        c.auth.jwt_secret = "<redacted>".into();
        c.auth.hs256.redact();
        let mut s = toml::to_string(&c).unwrap_or_default();
        if let payments::ProviderConfig::Stripe(_) = &self.payments.provider {
            s = s
                .lines()
                .map(|l| {
                    if l.starts_with("secret_key =") {
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

impl Validate for CellSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(domain::CellId::new(self.id).is_ok(), "id", || {
            format!("must be in 0..=1023 (got {})", self.id)
        });
        s.ensure(!self.name.is_empty(), "name", || {
            "must not be empty".to_owned()
        });
        // Payment providers take ISO 4217 codes in lower case.
        s.ensure(
            self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_lowercase()),
            "currency",
            || {
                format!(
                    "must be an ISO 4217 code in lower case, like \"eur\" (got {:?})",
                    self.currency
                )
            },
        );
    }
}

impl Validate for HttpSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.request_timeout_ms > 0, "request_timeout_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        service::production::check_tls_files(
            s,
            ("tls_cert_file", &self.tls_cert_file),
            ("tls_key_file", &self.tls_key_file),
        );
        s.validate("edge", &self.edge);
        if !self.tls_client_ca_file.as_os_str().is_empty() {
            if !self.tls() {
                s.push(
                    "tls_client_ca_file",
                    "needs tls_cert_file and tls_key_file: client certificates are asked for \
                     in the TLS handshake",
                );
            } else if let Err(e) = service::tls::client_config(&self.tls_client_ca_file, None) {
                s.push("tls_client_ca_file", format!("{e}; give a readable PEM CA"));
            }
        }
    }
}

impl Validate for StoreSection {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            self.backend != Backend::Fdb || cfg!(feature = "fdb"),
            "backend",
            || "\"fdb\" needs a cell built with `--features fdb`".to_owned(),
        );
        s.ensure(
            self.backend != Backend::Redb || !self.data_dir.as_os_str().is_empty(),
            "data_dir",
            || "must be set for the redb backend (got \"\")".to_owned(),
        );
        s.ensure(LEASE_MS_RANGE.contains(&self.lease_ms), "lease_ms", || {
            format!(
                "must be between {} and {} (got {})",
                LEASE_MS_RANGE.start(),
                LEASE_MS_RANGE.end(),
                self.lease_ms
            )
        });
        s.ensure(
            CACHE_BYTES_RANGE.contains(&self.cache_bytes),
            "cache_bytes",
            || {
                format!(
                    "must be between {} and {} (got {})",
                    CACHE_BYTES_RANGE.start(),
                    CACHE_BYTES_RANGE.end(),
                    self.cache_bytes
                )
            },
        );
    }
}

impl Validate for AuthSection {
    fn validate(&self, s: &mut Section<'_>) {
        JWT_SECRET_KEYS.check_readable(s, &self.jwt_secret_source);
        let unreadable = matches!(self.jwt_secret_source, SecretSource::Unreadable { .. });
        // The secret itself is never echoed.
        s.ensure(
            unreadable || self.jwt_secret.len() >= 8,
            "jwt_secret",
            || format!("must be at least 8 bytes (got {})", self.jwt_secret.len()),
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

impl DemoSection {
    /// The demo city these settings describe.
    pub fn spec(&self) -> catalog::demo::DemoSpec {
        catalog::demo::DemoSpec {
            seed: self.seed,
            center_lat: self.center_lat,
            center_lng: self.center_lng,
            radius_km: self.radius_km,
            restaurants: self.restaurants,
            city_name: self.city_name.clone(),
            timezone: self.timezone.clone(),
        }
    }
}

/// The city is only generated in demo mode, so its settings only matter then.
impl Validate for DemoSection {
    fn validate(&self, s: &mut Section<'_>) {
        if self.enabled {
            self.spec().validate(s);
        }
        s.ensure(
            self.enabled || self.clock_offset_ms == 0,
            "clock_offset_ms",
            || {
                format!(
                    "is for tests in demo mode only; set it to 0 or enable demo mode (got {})",
                    self.clock_offset_ms
                )
            },
        );
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
