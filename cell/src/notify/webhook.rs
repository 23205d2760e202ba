//! [`WebhookPush`]: POSTs each notification as JSON to a configured URL, with an
//! `Idempotency-Key` header, a per-call timeout, and retries with exponential backoff on
//! retryable failures. Every attempt carries the same key, so a retry after a timeout (which
//! may have been delivered after all) is deduplicated by the receiver.
//!
//! Status mapping: 2xx is delivered (a receiver answers 2xx for a key it already has, too);
//! 408, 409 (same key still in flight), 429 and 5xx are retryable; any other 4xx is a
//! permanent rejection and is not retried.

use super::provider::{BoxFuture, Notification, PushError, PushProvider};
use reqwest::StatusCode;
use std::time::Duration;

/// The longest pause between two attempts, whatever the base and attempt number: a
/// notification that waits longer is not worth holding the consumer for.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Settings of a [`WebhookPush`].
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// Per attempt, connection included.
    pub timeout: Duration,
    /// Attempts after the first.
    pub max_retries: u32,
    /// The pause before retry `n` (1-based) is `backoff_base × 2^(n-1)`, capped at 10 s.
    pub backoff_base: Duration,
}

/// See the module doc.
#[derive(Debug, Clone)]
pub struct WebhookPush {
    client: reqwest::Client,
    url: reqwest::Url,
    settings: WebhookSettings,
}

/// `url` as the webhook's target: an absolute http(s) URL. Shared by [`WebhookPush::new`]
/// and config validation so both accept the same addresses.
pub(crate) fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    if matches!(parsed.scheme(), "http" | "https") {
        Ok(parsed)
    } else {
        Err("must be http or https".to_owned())
    }
}

impl WebhookPush {
    /// Fails (as [`PushError::Rejected`]) when the URL is not http(s) or the client cannot
    /// be built: both are configuration errors, found at startup.
    pub fn new(settings: WebhookSettings) -> Result<Self, PushError> {
        let url = parse_url(&settings.url)
            .map_err(|e| PushError::Rejected(format!("webhook url {:?}: {e}", settings.url)))?;
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(|e| PushError::Rejected(format!("building the HTTP client: {e}")))?;
        Ok(WebhookPush {
            client,
            url,
            settings,
        })
    }

    /// The pause before retry `n` (1-based).
    fn backoff(&self, n: u32) -> Duration {
        let factor = 1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.settings
            .backoff_base
            .saturating_mul(factor)
            .min(MAX_BACKOFF)
    }

    async fn attempt(&self, n: &Notification) -> Result<(), PushError> {
        let response = self
            .client
            .post(self.url.clone())
            .header("Idempotency-Key", &n.idempotency_key)
            .json(n)
            .send()
            .await
            .map_err(transport_error)?;
        classify(response.status())
    }

    async fn send_with_retries(&self, n: &Notification) -> Result<(), PushError> {
        // Without a key the receiver cannot dedupe, and a retry could notify twice.
        if n.idempotency_key.is_empty() {
            return Err(PushError::Rejected("idempotency key is required".into()));
        }
        let mut retry = 0;
        loop {
            match self.attempt(n).await {
                Ok(()) => return Ok(()),
                Err(e) if e.is_retryable() && retry < self.settings.max_retries => {
                    retry += 1;
                    let pause = self.backoff(retry);
                    tracing::debug!(key = %n.idempotency_key, error = %e, retry, ?pause, "webhook push failed; retrying");
                    metrics::counter!("cell_notifications_retries_total").increment(1);
                    tokio::time::sleep(pause).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// No HTTP answer: our timeout, or the network.
fn transport_error(e: reqwest::Error) -> PushError {
    if e.is_timeout() {
        PushError::Timeout
    } else if e.is_builder() {
        PushError::Rejected(format!("building the request: {e}"))
    } else {
        // Refused, reset, DNS, TLS: the receiver is unreachable from here right now.
        tracing::debug!(error = %e, "webhook receiver unreachable");
        PushError::Unavailable
    }
}

fn classify(status: StatusCode) -> Result<(), PushError> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::REQUEST_TIMEOUT => Err(PushError::Timeout),
        // 409: the same key is still being processed; 429: rate limited. Both succeed later.
        StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS => Err(PushError::Unavailable),
        s if s.is_server_error() => Err(PushError::Unavailable),
        s => Err(PushError::Rejected(format!("HTTP {s}"))),
    }
}

impl PushProvider for WebhookPush {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), PushError>> {
        Box::pin(self.send_with_retries(n))
    }

    fn name(&self) -> &'static str {
        "webhook"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(base_ms: u64) -> WebhookPush {
        WebhookPush::new(WebhookSettings {
            url: "http://127.0.0.1:1/hook".into(),
            timeout: Duration::from_millis(100),
            max_retries: 3,
            backoff_base: Duration::from_millis(base_ms),
        })
        .unwrap()
    }

    #[test]
    fn statuses_map_by_what_the_caller_can_do() {
        let s = |c| classify(StatusCode::from_u16(c).unwrap());
        assert_eq!(s(200), Ok(()));
        assert_eq!(s(202), Ok(()));
        assert_eq!(s(408), Err(PushError::Timeout));
        assert_eq!(s(409), Err(PushError::Unavailable));
        assert_eq!(s(429), Err(PushError::Unavailable));
        assert_eq!(s(500), Err(PushError::Unavailable));
        assert_eq!(s(503), Err(PushError::Unavailable));
        assert!(matches!(s(400), Err(PushError::Rejected(_))));
        assert!(matches!(s(404), Err(PushError::Rejected(_))));
        assert!(matches!(s(302), Err(PushError::Rejected(_))));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = push(100);
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(400));
        assert_eq!(p.backoff(40), MAX_BACKOFF);
    }

    #[test]
    fn only_http_urls_are_accepted() {
        for bad in ["not a url", "ftp://example.com/x", ""] {
            let r = WebhookPush::new(WebhookSettings {
                url: bad.into(),
                ..push(1).settings
            });
            assert!(matches!(r, Err(PushError::Rejected(_))), "{bad:?}");
        }
    }
}
