//! [`ResilientGateway`]: per-attempt timeout, retries with backoff on retryable errors, and a
//! circuit breaker, around any [`PaymentGateway`]. This is the gateway the cell uses.
//!
//! Every retry sends the same idempotency key, so a retry after a lost answer replays the
//! provider's first result instead of charging twice. The clock is read only here, at the
//! edge (`tokio::time::Instant`, so paused-time tests control it); the breaker and the
//! backoff schedule are pure functions of `now` and their inputs.

use crate::breaker::{Admission, CircuitBreaker, CircuitState};
use crate::config::PaymentsConfig;
use crate::error::{PaymentError, Result};
use crate::gateway::{
    Authorization, AuthorizeRequest, BoxFuture, Op, PaymentGateway, PaymentRecord,
};
use domain::Cents;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Metric names, in one place so dashboards and tests agree.
pub mod metric {
    /// Counter, labels `op` (the [`Op`](crate::Op) names, and `retrieve`) and `outcome` (`ok`, `declined`, `invalid`, `timeout`,
    /// `unavailable`, `provider_error`, `circuit_open`): one per call, after retries.
    pub const REQUESTS: &str = "cell_payment_requests_total";
    /// Histogram, label `op`: seconds per call including retries and backoff.
    pub const LATENCY: &str = "cell_payment_latency_seconds";
    /// Counter, label `op`: retries sent.
    pub const RETRIES: &str = "cell_payment_retries_total";
    /// Gauge: 1 while the circuit is not closed (open, or half-open waiting on its one
    /// trial), 0 when closed.
    pub const CIRCUIT_OPEN: &str = "cell_payment_circuit_open";
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Backoff before the first retry (before jitter); doubles for each further retry.
    pub base: Duration,
    /// Cap on the backoff before jitter.
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based): "equal jitter", i.e. half of
    /// `min(max, base × 2^(retry-1))` fixed plus up to the same again. The fixed half keeps a
    /// floor so retries never hammer a struggling provider; the random half spreads out the
    /// callers that failed together. `seed` picks the jitter: the wrapper hashes the
    /// idempotency key into it, so two orders spread apart while one order's schedule is
    /// reproducible.
    pub fn backoff(&self, retry: u32, seed: u64) -> Duration {
        let doublings = retry.saturating_sub(1).min(30);
        let exp = self.base.saturating_mul(1 << doublings).min(self.max);
        let half = exp / 2;
        let fraction = splitmix64(seed ^ u64::from(retry)) % 1_001;
        half + (exp - half).mul_f64(fraction as f64 / 1_000.0)
    }
}

/// A well-mixed 64-bit hash step (SplitMix64), enough to turn a seed into jitter.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn seed_of(key: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

/// See the module doc. Cheap to share: wrap it in an `Arc`.
pub struct ResilientGateway<G> {
    inner: G,
    timeout: Duration,
    retry: RetryPolicy,
    // A std mutex: held for a few comparisons, never across an `.await`.
    breaker: Mutex<CircuitBreaker>,
}

impl<G: PaymentGateway> ResilientGateway<G> {
    pub fn new(inner: G, config: &PaymentsConfig) -> Self {
        ResilientGateway {
            inner,
            timeout: config.timeout(),
            retry: RetryPolicy {
                max_retries: config.max_retries,
                base: config.backoff_base(),
                max: config.backoff_max(),
            },
            breaker: Mutex::new(CircuitBreaker::new(config.breaker())),
        }
    }

    /// The wrapped gateway (for example the sandbox, to read its ledger).
    pub fn inner(&self) -> &G {
        &self.inner
    }

    /// The circuit now, for readiness checks and the "order is being processed" decision.
    pub fn circuit_state(&self) -> CircuitState {
        self.lock_breaker().state(now())
    }

    fn lock_breaker(&self) -> MutexGuard<'_, CircuitBreaker> {
        self.breaker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish_circuit(&self, breaker: &CircuitBreaker, now: Instant) {
        let open = breaker.state(now) != CircuitState::Closed;
        metrics::gauge!(metric::CIRCUIT_OPEN).set(if open { 1.0 } else { 0.0 });
    }

    /// Runs `attempt` under the breaker, the timeout and the retry policy. `attempt` builds
    /// a fresh future per try from the same borrowed inputs, so every try sends the same
    /// idempotency key.
    async fn run<'a, T>(
        &'a self,
        op: &'static str,
        key: &'a str,
        attempt: impl Fn() -> BoxFuture<'a, Result<T>> + Send + 'a,
    ) -> Result<T> {
        let started = tokio::time::Instant::now();
        let mut retries = 0;
        let mut circuit_rejected = false;
        let result = loop {
            let admission = {
                let mut breaker = self.lock_breaker();
                let now = now();
                let admission = breaker.poll_admit(now);
                self.publish_circuit(&breaker, now);
                admission
            };
            if let Admission::Rejected { retry_after } = admission {
                tracing::debug!(%op, key, ?retry_after, "payment circuit open, failing fast");
                circuit_rejected = true;
                break Err(PaymentError::Unavailable);
            }

            let outcome = match tokio::time::timeout(self.timeout, attempt()).await {
                Ok(outcome) => outcome,
                Err(_elapsed) => Err(PaymentError::Timeout),
            };

            {
                let mut breaker = self.lock_breaker();
                let now = now();
                match &outcome {
                    Err(e) if e.is_provider_failure() => breaker.handle_failure(now),
                    _ => breaker.handle_success(now),
                }
                self.publish_circuit(&breaker, now);
            }

            match outcome {
                Err(e) if e.is_retryable() && retries < self.retry.max_retries => {
                    retries += 1;
                    let wait = self.retry.backoff(retries, seed_of(key));
                    tracing::warn!(%op, key, error = %e, retry = retries, ?wait, "payment call failed, retrying");
                    metrics::counter!(metric::RETRIES, "op" => op).increment(1);
                    tokio::time::sleep(wait).await;
                }
                other => break other,
            }
        };

        let outcome = match &result {
            Ok(_) => "ok",
            Err(_) if circuit_rejected => "circuit_open",
            Err(e) => e.outcome(),
        };
        metrics::counter!(metric::REQUESTS, "op" => op, "outcome" => outcome).increment(1);
        metrics::histogram!(metric::LATENCY, "op" => op).record(started.elapsed().as_secs_f64());
        if let Err(e) = &result
            && e.is_retryable()
        {
            tracing::warn!(%op, key, error = %e, retries, "payment call gave up");
        }
        result
    }
}

/// The edge: the only place this crate reads the clock. Tokio's clock, so tests that pause
/// time move the breaker's cooldown too. The sandbox's fault windows use it as well.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<G: PaymentGateway> PaymentGateway for ResilientGateway<G> {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(
            self.run(Op::Authorize.as_str(), &req.idempotency_key, move || {
                self.inner.authorize(req)
            }),
        )
    }

    fn capture<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.run(Op::Capture.as_str(), idempotency_key, move || {
            self.inner.capture(auth_id, amount, idempotency_key)
        }))
    }

    fn void<'a>(
        &'a self,
        auth_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.run(Op::Void.as_str(), idempotency_key, move || {
            self.inner.void(auth_id, idempotency_key)
        }))
    }

    fn refund<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.run(Op::Refund.as_str(), idempotency_key, move || {
            self.inner.refund(auth_id, amount, idempotency_key)
        }))
    }

    /// Under the same timeout, retries and breaker as the effects: a read that times out is
    /// as much a sign of a sick provider as a capture that does. The retry jitter is seeded
    /// by the authorization id (a read has no idempotency key).
    fn retrieve<'a>(&'a self, auth_id: &'a str) -> BoxFuture<'a, Result<Option<PaymentRecord>>> {
        Box::pin(self.run("retrieve", auth_id, move || self.inner.retrieve(auth_id)))
    }
}

#[cfg(test)]
#[path = "resilient_tests.rs"]
mod tests;
