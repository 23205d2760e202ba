//! The payment saga: capture, void and refund as durable effects.
//!
//! A transition that needs a payment effect (accept → capture, reject → void, cancel → void or
//! refund) commits it as a pending payment state (`capture_pending`, `void_pending`,
//! `refund_pending`) in the same transaction as the transition, and answers at once. The
//! [`PaymentWorker`] performs it: an event-log consumer with a durable cursor (`"payments"`)
//! settles the orders of each batch, and a retry scan picks up the ones whose effect failed
//! retryably, with exponential backoff and jitter ([`schedule`]) for a configurable period
//! (default 24 h). Every provider call carries the idempotency key order id + operation, and
//! every outcome is written guarded by the payment state it was performed for, so a crash at
//! any point repeats nothing at the provider or in the store.
//!
//! A capture that fails for good (declined, authorization expired or refused) follows the
//! configured compensation ([`OnCaptureFailure`]): cancel with reason `payment_failed` (which
//! voids the hold) and append a `payment_failed` event, which the notification consumer turns
//! into pushes to the customer and the restaurant and the tracking fan-out sends over
//! WebSockets.
//!
//! # Layout
//! - `schedule`: the retry schedule, pure: the next attempt from the previous one and `now`.
//! - `effect`: what the provider is asked for a payment state, and how its answer is classed.
//! - `record`: the store writes: outcome, retry record, compensation (one transaction each).
//! - `worker`: the consumer, the retry scan and their wiring.
//! - `check`: the whole-store payment checker behind `cell check-payments`.

pub mod check;
mod effect;
mod record;
pub mod schedule;
mod worker;

#[cfg(test)]
mod worker_tests;

pub use effect::{Effect, perform};
pub use record::{
    CURSOR, Done, Due, PAYMENT_FAILED, Policy, Settled, count_due, list_due, record_done, settle,
};
pub use worker::PaymentWorker;

use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use std::time::Duration;

/// What a capture that failed for good leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCaptureFailure {
    /// Cancel the order with reason `payment_failed` (the hold is voided) and tell the customer
    /// and the restaurant.
    #[default]
    Cancel,
    /// Mark the payment `failed`, tell the customer and the restaurant, and leave the order as
    /// it is for an operator.
    Hold,
}

/// `[payment_worker]`: how the payment worker performs pending effects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PaymentWorkerConfig {
    /// Whether the worker runs. `false` leaves every effect pending (captures are never made):
    /// only for the `loadgen/bench/saga-overhead.sh` benchmark, which measures accept latency
    /// with and without the worker's effects. Never turn it off in a real cell.
    pub perform_effects: bool,
    /// Orders settled at once (provider calls in flight).
    pub concurrency: usize,
    /// First durable retry after this long (before jitter); doubles per retry.
    pub retry_base_ms: u64,
    /// Cap on the wait between durable retries (before jitter).
    pub retry_max_ms: u64,
    /// How long an effect is retried before it counts as failed for good (default 24 h).
    pub retry_period_ms: u64,
    /// How often the retry scan looks for effects that are due.
    pub scan_interval_ms: u64,
    /// The compensation for a capture that failed for good.
    pub on_capture_failure: OnCaptureFailure,
}

impl Default for PaymentWorkerConfig {
    fn default() -> Self {
        PaymentWorkerConfig {
            perform_effects: true,
            // Enough to keep up with 1,000 accepts/s on a provider answering in tens of ms.
            concurrency: 64,
            retry_base_ms: 1_000,
            retry_max_ms: 5 * 60 * 1_000,
            retry_period_ms: 24 * 60 * 60 * 1_000,
            scan_interval_ms: 1_000,
            on_capture_failure: OnCaptureFailure::Cancel,
        }
    }
}

impl PaymentWorkerConfig {
    pub fn schedule(&self) -> schedule::Schedule {
        schedule::Schedule {
            base: Duration::from_millis(self.retry_base_ms),
            max: Duration::from_millis(self.retry_max_ms),
            period: Duration::from_millis(self.retry_period_ms),
        }
    }
}

impl Validate for PaymentWorkerConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(
            (1..=1024).contains(&self.concurrency),
            "concurrency",
            || format!("must be 1-1024 (got {})", self.concurrency),
        );
        s.ensure(self.retry_base_ms > 0, "retry_base_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
        s.ensure(
            self.retry_max_ms >= self.retry_base_ms,
            "retry_max_ms",
            || {
                format!(
                    "must be at least retry_base_ms = {} (got {})",
                    self.retry_base_ms, self.retry_max_ms
                )
            },
        );
        s.ensure(self.scan_interval_ms > 0, "scan_interval_ms", || {
            "must be greater than 0 (got 0)".to_owned()
        });
    }
}
