//! Payments for the cell: the [`PaymentGateway`] trait, two providers behind it, and the
//! [`ResilientGateway`] wrapper that adds the seed's section 12 behaviour (5 s timeout, 2
//! retries with backoff, a circuit breaker).
//!
//! The order service holds one `ResilientGateway` (see [`gateway_from_config`]) and calls
//! `authorize` at placement, then `capture`, `void` or `refund` as the order state machine's
//! [`PaymentAction`](domain::PaymentAction) says. Every call carries
//! [`idempotency_key`]`(order_id, op)`, so any retry — ours, the cell's after a restart, a
//! replayed event — performs the effect at most once at the provider.
//!
//! What the caller does with an error: [`PaymentError::Declined`] → tell the customer
//! (HTTP 402, no order written); [`PaymentError::Invalid`] / [`PaymentError::Provider`] →
//! a bug or a config problem, log it; [`PaymentError::is_retryable`] errors (`Timeout`,
//! `Unavailable`, including an open circuit) → keep the order pending and try again later
//! with the same key ("Order is being processed").
//!
//! # Layout
//! - `error`: [`PaymentError`] and [`Result`].
//! - `gateway`: the trait, [`AuthorizeRequest`], [`Authorization`], [`Op`] and
//!   [`idempotency_key`].
//! - `sandbox`: [`SandboxGateway`], a provider with Stripe-test-mode magic cards, real
//!   idempotency records, an effect ledger kept in the cell's store, and fault modes.
//! - `stripe`: [`StripeGateway`], the HTTP client for a Stripe-style REST API.
//! - `breaker`: [`CircuitBreaker`], sans-IO: every method takes `now`.
//! - `resilient`: [`ResilientGateway`], timeout + retries + breaker + metrics; the only
//!   place that reads the clock.
//! - `config`: [`PaymentsConfig`], `deny_unknown_fields`, durations as `*_ms`.
//!
//! Tests sit next to the code (`*_tests.rs` for the long ones); `tests/stripe_http.rs`
//! drives [`StripeGateway`] against an in-process axum server that serves the sandbox
//! behind Stripe-shaped routes.

pub mod breaker;
pub mod config;
pub mod error;
pub mod gateway;
pub mod resilient;
pub mod sandbox;
pub mod stripe;

pub use breaker::{Admission, BreakerConfig, CircuitBreaker, CircuitState};
pub use config::{
    PaymentsConfig, ProviderConfig, STRIPE_SECRET_KEY_ENV, STRIPE_SECRET_KEYS, SandboxConfig,
    StripeConfig,
};
pub use error::{PaymentError, Result};
pub use gateway::{
    Authorization, AuthorizationStatus, AuthorizeRequest, BoxFuture, Op, PaymentGateway,
    PaymentRecord, idempotency_key,
};
pub use resilient::{ResilientGateway, RetryPolicy};
pub use sandbox::{
    Effects, FaultPatch, FaultState, LedgerEntry, SandboxGateway, SandboxStats, load_ledger,
};
pub use stripe::StripeGateway;

use std::sync::Arc;

/// The configured provider behind the resilient wrapper, with a memory-only sandbox. Fails
/// on an invalid config (every problem listed) or an HTTP client that cannot be built.
pub fn gateway_from_config(
    config: &PaymentsConfig,
) -> Result<ResilientGateway<Arc<dyn PaymentGateway>>> {
    check(config)?;
    let provider: Arc<dyn PaymentGateway> = match &config.provider {
        ProviderConfig::Sandbox(sandbox) => Arc::new(SandboxGateway::new(sandbox)),
        ProviderConfig::Stripe(stripe) => Arc::new(StripeGateway::new(stripe)?),
    };
    Ok(ResilientGateway::new(provider, config))
}

/// What the cell holds: the resilient gateway, and the sandbox behind it when the provider is
/// the sandbox (for its fault endpoint and checker).
pub struct OpenedGateway {
    pub gateway: ResilientGateway<Arc<dyn PaymentGateway>>,
    pub sandbox: Option<Arc<SandboxGateway>>,
}

/// Like [`gateway_from_config`], but a sandbox keeps its state in `kv` (the cell's store), so
/// a restart loses nothing.
pub async fn open_gateway(
    config: &PaymentsConfig,
    kv: Arc<dyn store::Kv>,
) -> Result<OpenedGateway> {
    check(config)?;
    let (provider, sandbox): (Arc<dyn PaymentGateway>, _) = match &config.provider {
        ProviderConfig::Sandbox(cfg) => {
            let sandbox = Arc::new(SandboxGateway::open(cfg, kv).await?);
            (sandbox.clone(), Some(sandbox))
        }
        ProviderConfig::Stripe(stripe) => (Arc::new(StripeGateway::new(stripe)?), None),
    };
    Ok(OpenedGateway {
        gateway: ResilientGateway::new(provider, config),
        sandbox,
    })
}

fn check(config: &PaymentsConfig) -> Result<()> {
    let mut problems = service::config::Problems::new();
    problems.validate("payments", config);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(PaymentError::Invalid(list.join("; ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{Cents, OrderId};

    #[tokio::test]
    async fn the_default_config_builds_a_working_sandbox() {
        let gw = gateway_from_config(&PaymentsConfig::default()).unwrap();
        let order = OrderId(42);
        let req = AuthorizeRequest {
            amount: Cents(1234),
            currency: "usd".into(),
            payment_method_id: sandbox::PM_VISA.into(),
            customer_ref: "cus_42".into(),
            idempotency_key: idempotency_key(order, Op::Authorize),
        };
        let auth = gw.authorize(&req).await.unwrap();
        let key = idempotency_key(order, Op::Capture);
        let cap = gw.capture(&auth.id, Cents(1234), &key).await.unwrap();
        assert_eq!(cap.status, AuthorizationStatus::Captured);
    }

    #[test]
    fn an_invalid_config_is_refused() {
        let cfg = PaymentsConfig {
            timeout_ms: 0,
            ..PaymentsConfig::default()
        };
        assert!(matches!(
            gateway_from_config(&cfg),
            Err(PaymentError::Invalid(_))
        ));
    }
}
