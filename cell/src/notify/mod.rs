//! Push notifications (the "Notifications"): a durable consumer of the cell's event
//! log tells customers and restaurants what happened to an order, through a
//! [`PushProvider`] chosen in config — [`WebhookPush`] (HTTP POST with retries and an
//! idempotency key per event) or [`LogPush`] (the demo's sandbox).
//!
//! Why this shape:
//! - Events drive everything (design notes): the consumer reads the log through the durable
//!   cursor [`CONSUMER`], so a restart resumes where it stopped. A push is an effect outside
//!   the store, so it carries an idempotency key derived from the event's log position
//!   ([`idempotency_key`]) and a replay after a crash shows the receiver nothing twice.
//! - Shed first under overload (seed section 12): while [`Overload`] is set the consumer
//!   holds its next event, sending nothing and not advancing its cursor, and catches up
//!   afterwards without loss. Order placement and matching are never shed.
//! - Which events notify whom, and the texts, are a pure function ([`notifications_for`]),
//!   tested without I/O.
//!
//! Wiring: [`spawn`] at server startup, with `[notify]` from the config ([`NotifyConfig`]).

mod consumer;
mod messages;
mod provider;
mod sandbox;
mod webhook;

#[cfg(test)]
mod consumer_tests;
#[cfg(test)]
mod receiver;
#[cfg(test)]
mod webhook_tests;

pub use consumer::{CONSUMER, Overload, handle, run};
pub use messages::{needs_restaurant_name, notifications_for};
pub use provider::{
    BoxFuture, Notification, Origin, PushError, PushProvider, Recipient, idempotency_key,
};
pub use sandbox::LogPush;
pub use webhook::{WebhookPush, WebhookSettings};

use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Which [`PushProvider`] the cell uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// [`LogPush`]: log and keep in memory (the demo; no outside service).
    #[default]
    Log,
    /// [`WebhookPush`] to `webhook_url`.
    Webhook,
}

/// The `[notify]` config section. Defaults: the log sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    pub provider: ProviderKind,
    /// Where [`WebhookPush`] POSTs (required for `provider = "webhook"`).
    pub webhook_url: String,
    /// Per attempt.
    pub timeout_ms: u64,
    /// Attempts after the first, on retryable failures.
    pub max_retries: u32,
    /// Pause before the first retry; doubles each retry (capped at 10 s).
    pub backoff_base_ms: u64,
    /// How many notifications [`LogPush`] keeps for the admin view.
    pub log_keep: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            provider: ProviderKind::Log,
            webhook_url: String::new(),
            timeout_ms: 2_000,
            max_retries: 3,
            backoff_base_ms: 200,
            log_keep: 200,
        }
    }
}

impl NotifyConfig {
    fn webhook_settings(&self) -> WebhookSettings {
        WebhookSettings {
            url: self.webhook_url.clone(),
            timeout: Duration::from_millis(self.timeout_ms),
            max_retries: self.max_retries,
            backoff_base: Duration::from_millis(self.backoff_base_ms),
        }
    }
}

/// Problems with this section, for the cell's config validation.
impl Validate for NotifyConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.timeout_ms > 0, "timeout_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        if self.provider == ProviderKind::Webhook
            && let Err(e) = webhook::parse_url(&self.webhook_url)
        {
            s.push(
                "webhook_url",
                format!(
                    "must be an http(s) URL for provider = \"webhook\" (got {:?}: {e})",
                    self.webhook_url
                ),
            );
        }
    }
}

/// Why notifications could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("invalid notify config: {0}")]
    Config(String),
}

/// What [`spawn`] started.
pub struct Notifications {
    /// The provider in use (for sending something outside the log, e.g. an admin test push).
    pub provider: Arc<dyn PushProvider>,
    /// The sandbox, when `provider = "log"`: its [`LogPush::recent`] feeds an admin view.
    pub sandbox: Option<Arc<LogPush>>,
    /// The consumer task; it ends after `shutdown` flips (await it to drain).
    pub task: tokio::task::JoinHandle<()>,
}

/// The provider chosen in config.
pub struct Configured {
    pub provider: Arc<dyn PushProvider>,
    /// Another handle on the provider when it is the sandbox, for [`LogPush::recent`].
    pub sandbox: Option<Arc<LogPush>>,
}

/// Builds the configured provider (and the sandbox handle, when it is the sandbox).
pub fn provider_from_config(cfg: &NotifyConfig) -> Result<Configured, NotifyError> {
    if cfg.timeout_ms == 0 {
        return Err(NotifyError::Config("timeout_ms must be positive".into()));
    }
    Ok(match cfg.provider {
        ProviderKind::Log => {
            let sandbox = Arc::new(LogPush::new(cfg.log_keep));
            Configured {
                provider: sandbox.clone(),
                sandbox: Some(sandbox),
            }
        }
        ProviderKind::Webhook => {
            let push = WebhookPush::new(cfg.webhook_settings())
                .map_err(|e| NotifyError::Config(e.to_string()))?;
            Configured {
                provider: Arc::new(push),
                sandbox: None,
            }
        }
    })
}

/// Starts the notification consumer on the current tokio runtime: reads `log` from the
/// durable cursor [`CONSUMER`], pauses while `overload` is set, stops when `shutdown` flips.
pub fn spawn(
    kv: Arc<dyn store::Kv>,
    log: store::LogId,
    cfg: &NotifyConfig,
    overload: Arc<Overload>,
    shutdown: watch::Receiver<bool>,
) -> Result<Notifications, NotifyError> {
    let Configured { provider, sandbox } = provider_from_config(cfg)?;
    let task = tokio::spawn(run(kv, log, provider.clone(), overload, shutdown));
    Ok(Notifications {
        provider,
        sandbox,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_to_the_sandbox_and_rejects_unknown_fields() {
        let c: NotifyConfig = toml::from_str("").unwrap();
        assert_eq!(c, NotifyConfig::default());
        assert_eq!(c.provider, ProviderKind::Log);
        assert!(service::config::check("notify", &c).is_ok());
        let c: NotifyConfig = toml::from_str(
            "provider = \"webhook\"\nwebhook_url = \"http://127.0.0.1:9/hook\"\nmax_retries = 5",
        )
        .unwrap();
        assert_eq!(
            (c.provider, c.max_retries, c.timeout_ms),
            (ProviderKind::Webhook, 5, 2_000)
        );
        assert!(service::config::check("notify", &c).is_ok());
        assert!(toml::from_str::<NotifyConfig>("webhook = \"x\"").is_err());
        assert!(toml::from_str::<NotifyConfig>("provider = \"sms\"").is_err());
    }

    #[test]
    fn a_webhook_without_a_usable_url_is_a_config_error() {
        let c = NotifyConfig {
            provider: ProviderKind::Webhook,
            ..NotifyConfig::default()
        };
        assert!(matches!(
            service::config::check("notify", &c),
            Err(service::config::ConfigError::Invalid(p))
                if p.len() == 1 && p.iter().all(|p| p.key == "notify.webhook_url")
        ));
        assert!(matches!(
            provider_from_config(&c),
            Err(NotifyError::Config(_))
        ));
    }

    #[tokio::test]
    async fn the_log_provider_comes_with_its_sandbox_handle() {
        let c = provider_from_config(&NotifyConfig::default()).unwrap();
        assert_eq!(c.provider.name(), "log");
        assert!(c.sandbox.is_some());
    }
}
