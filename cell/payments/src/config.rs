//! [`PaymentsConfig`]: which provider, and how patiently to talk to it. Durations are
//! `*_ms` integers in the file and `Duration` in code.

use crate::breaker::BreakerConfig;
use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use service::secret::{SecretKeys, SecretSource};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The `[payments]` section of the cell's config. Every field has a default, so an empty
/// section is a working sandbox setup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentsConfig {
    /// Which provider to call.
    pub provider: ProviderConfig,
    /// Per-attempt timeout. The seed's section 12 says 5 s: long enough for a slow card
    /// network, short enough that a customer is still looking at the checkout screen.
    pub timeout_ms: u64,
    /// Retries after the first attempt, for timeouts and unavailability only.
    pub max_retries: u32,
    /// First backoff; doubles per retry, with jitter.
    pub backoff_base_ms: u64,
    /// Upper bound on any one backoff.
    pub backoff_max_ms: u64,
    /// Consecutive provider failures (attempts, not calls) that open the circuit.
    pub breaker_failure_threshold: u32,
    /// How long an open circuit fails fast before letting one trial call through.
    pub breaker_cooldown_ms: u64,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        PaymentsConfig {
            provider: ProviderConfig::default(),
            timeout_ms: 5_000,
            max_retries: 2,
            backoff_base_ms: 100,
            backoff_max_ms: 2_000,
            breaker_failure_threshold: 5,
            breaker_cooldown_ms: 30_000,
        }
    }
}

impl PaymentsConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }

    pub fn backoff_max(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms)
    }

    pub fn breaker(&self) -> BreakerConfig {
        BreakerConfig {
            failure_threshold: self.breaker_failure_threshold,
            cooldown: Duration::from_millis(self.breaker_cooldown_ms),
        }
    }
}

/// Every problem at once, so one edit fixes the file; keys are relative to `[payments]`.
impl Validate for PaymentsConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.timeout_ms > 0, "timeout_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(self.max_retries <= 10, "max_retries", || {
            format!(
                "must be at most 10, as each retry may wait timeout_ms (got {})",
                self.max_retries
            )
        });
        s.ensure(
            self.backoff_max_ms >= self.backoff_base_ms,
            "backoff_max_ms",
            || {
                format!(
                    "must be at least backoff_base_ms = {} (got {})",
                    self.backoff_base_ms, self.backoff_max_ms
                )
            },
        );
        s.ensure(
            self.breaker_failure_threshold >= 1,
            "breaker_failure_threshold",
            || "must be at least 1 (got 0)".to_owned(),
        );
        match &self.provider {
            ProviderConfig::Stripe(stripe) => s.validate("provider", stripe),
            ProviderConfig::Sandbox(sandbox) => s.validate("provider", sandbox),
        }
    }
}

impl Validate for StripeConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            reqwest::Url::parse(&self.base_url).is_ok(),
            "base_url",
            || format!("must be a URL (got {:?})", self.base_url),
        );
        // The key itself is never echoed: it is a secret. An unreadable key file is reported
        // once, under its own key.
        STRIPE_SECRET_KEYS.check_readable(s, &self.secret_key_source);
        let unreadable = matches!(self.secret_key_source, SecretSource::Unreadable { .. });
        s.ensure(
            unreadable || !self.secret_key.is_empty(),
            "secret_key",
            || "must be set for the stripe provider (got \"\")".to_owned(),
        );
    }
}

/// The provider, tagged by `kind = "sandbox" | "stripe"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProviderConfig {
    Sandbox(SandboxConfig),
    Stripe(StripeConfig),
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig::Sandbox(SandboxConfig::default())
    }
}

/// Settings of the in-memory [`SandboxGateway`](crate::SandboxGateway).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// How long `pm_card_timeout` (and the `timeout` fault) takes to answer. Longer than
    /// `timeout_ms` by default so it times out; tests shorten both.
    pub timeout_card_delay_ms: u64,
    /// Fault mode at startup: share of calls (0-100) failing as unavailable.
    pub fail_percent: u8,
    /// Fault mode at startup: every call goes unanswered (times out).
    pub timeout: bool,
    /// Fault mode at startup: down (every call unavailable) for this long after start.
    pub down_for_ms: u64,
    /// Fault mode at startup: captures are declined as if the authorization expired.
    pub decline_after_authorize: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            timeout_card_delay_ms: 60_000,
            fail_percent: 0,
            timeout: false,
            down_for_ms: 0,
            decline_after_authorize: false,
        }
    }
}

impl SandboxConfig {
    /// The startup fault modes as a patch over "no faults".
    pub fn faults(&self) -> crate::sandbox::FaultPatch {
        crate::sandbox::FaultPatch {
            fail_percent: Some(self.fail_percent),
            timeout: Some(self.timeout),
            down_for_ms: Some(self.down_for_ms),
            decline_after_authorize: Some(self.decline_after_authorize),
        }
    }
}

impl Validate for SandboxConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.fail_percent <= 100, "fail_percent", || {
            format!("must be 0-100 (got {})", self.fail_percent)
        });
    }
}

/// Environment variable that holds the Stripe secret key (wins over `secret_key_file`).
pub const STRIPE_SECRET_KEY_ENV: &str = "CELL_PAYMENTS_SECRET_KEY";

/// The Stripe key's config keys, for problem messages.
pub const STRIPE_SECRET_KEYS: SecretKeys<'static> = SecretKeys {
    key: "secret_key",
    file_key: "secret_key_file",
    env_var: STRIPE_SECRET_KEY_ENV,
    min_bytes: 1,
};

impl StripeConfig {
    /// Reads the secret key from [`STRIPE_SECRET_KEY_ENV`] or `secret_key_file` when given
    /// (see [`service::secret::resolve`]); run once when the config is loaded.
    pub fn resolve_secret(&mut self) {
        self.secret_key_source = service::secret::resolve(
            &mut self.secret_key,
            &self.secret_key_file,
            STRIPE_SECRET_KEY_ENV,
            "",
        );
    }
}

/// Settings of the [`StripeGateway`](crate::StripeGateway).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// `https://api.stripe.com` in production; the test server's address in tests.
    pub base_url: String,
    /// The secret API key (`sk_...`). Never logged: `Debug` redacts it. Demo mode only:
    /// production gives it in `secret_key_file` or [`STRIPE_SECRET_KEY_ENV`], and the cell's
    /// config loader puts what it read here.
    #[serde(default)]
    pub secret_key: String,
    /// A file holding the secret API key (a systemd credential, a mounted Kubernetes
    /// Secret); a trailing newline is removed. Empty: not used.
    #[serde(default)]
    pub secret_key_file: PathBuf,
    /// Where `secret_key` came from, set when the config is loaded.
    #[serde(skip)]
    pub secret_key_source: SecretSource,
    /// TCP + TLS connect timeout, separate from the per-call timeout so a dead host fails
    /// quickly and leaves time for a retry.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Whole-request safety net for a gateway used without the resilient wrapper. Above
    /// the wrapper's `timeout_ms` by default, so normally the wrapper's timeout fires first.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
}

fn default_request_timeout_ms() -> u64 {
    10_000
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}

impl StripeConfig {
    pub fn new(base_url: impl Into<String>, secret_key: impl Into<String>) -> Self {
        StripeConfig {
            base_url: base_url.into(),
            secret_key: secret_key.into(),
            secret_key_file: PathBuf::new(),
            secret_key_source: SecretSource::default(),
            connect_timeout_ms: default_connect_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
        }
    }
}

impl fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeConfig")
            .field("base_url", &self.base_url)
            .field("secret_key", &"<redacted>")
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_seed() {
        let cfg = PaymentsConfig::default();
        assert_eq!(cfg.timeout(), Duration::from_secs(5));
        assert_eq!(cfg.max_retries, 2);
        assert_eq!(cfg.backoff_base(), Duration::from_millis(100));
        assert_eq!(cfg.breaker().failure_threshold, 5);
        assert_eq!(cfg.breaker().cooldown, Duration::from_secs(30));
        assert!(service::config::check("payments", &cfg).is_ok());
    }

    #[test]
    fn default_round_trips_and_empty_is_default() {
        let cfg = PaymentsConfig::default();
        let json = serde_json::to_string(&cfg).unwrap();
        assert_eq!(serde_json::from_str::<PaymentsConfig>(&json).unwrap(), cfg);
        assert_eq!(serde_json::from_str::<PaymentsConfig>("{}").unwrap(), cfg);
    }

    #[test]
    fn every_key_parses() {
        let json = r#"{
            "provider": {"kind": "stripe", "base_url": "http://127.0.0.1:9/",
                         "secret_key": "sk_test_x", "connect_timeout_ms": 100,
                         "request_timeout_ms": 200},
            "timeout_ms": 1, "max_retries": 0, "backoff_base_ms": 1, "backoff_max_ms": 2,
            "breaker_failure_threshold": 1, "breaker_cooldown_ms": 3
        }"#;
        let cfg: PaymentsConfig = serde_json::from_str(json).unwrap();
        assert!(matches!(&cfg.provider, ProviderConfig::Stripe(s) if s.connect_timeout_ms == 100));
        assert_eq!(cfg.breaker_cooldown_ms, 3);
        assert!(service::config::check("payments", &cfg).is_ok());
        let sandbox = r#"{"provider": {"kind": "sandbox", "timeout_card_delay_ms": 7,
            "fail_percent": 10, "timeout": true, "down_for_ms": 5,
            "decline_after_authorize": true}}"#;
        let cfg: PaymentsConfig = serde_json::from_str(sandbox).unwrap();
        assert_eq!(
            cfg.provider,
            ProviderConfig::Sandbox(SandboxConfig {
                timeout_card_delay_ms: 7,
                fail_percent: 10,
                timeout: true,
                down_for_ms: 5,
                decline_after_authorize: true,
            })
        );
        let bad = r#"{"provider": {"kind": "sandbox", "fail_percent": 101}}"#;
        let cfg: PaymentsConfig = serde_json::from_str(bad).unwrap();
        assert!(service::config::check("payments", &cfg).is_err());
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_json::from_str::<PaymentsConfig>(r#"{"timeout": 5}"#).is_err());
        let bad_stripe = r#"{"provider": {"kind": "stripe", "base_url": "http://x",
                             "secret_key": "k", "secret": "oops"}}"#;
        assert!(serde_json::from_str::<PaymentsConfig>(bad_stripe).is_err());
    }

    #[test]
    fn validate_reports_every_problem() {
        let cfg = PaymentsConfig {
            provider: ProviderConfig::Stripe(StripeConfig::new("not a url", "")),
            timeout_ms: 0,
            breaker_failure_threshold: 0,
            backoff_base_ms: 10,
            backoff_max_ms: 1,
            ..PaymentsConfig::default()
        };
        let Err(service::config::ConfigError::Invalid(problems)) =
            service::config::check("payments", &cfg)
        else {
            panic!("accepted {cfg:?}");
        };
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "payments.timeout_ms",
                "payments.backoff_max_ms",
                "payments.breaker_failure_threshold",
                "payments.provider.base_url",
                "payments.provider.secret_key",
            ]
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let s = format!("{:?}", StripeConfig::new("http://x", "sk_live_secret"));
        assert!(!s.contains("sk_live_secret"), "{s}");
    }
}
