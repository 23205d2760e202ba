//! The authorization queue: orders placed while the payment provider could not be reached
//! (timeout, outage, open circuit) are written as `payment_pending`, answered 202 ("Order is
//! being processed"), and authorized here once the provider is back.
//!
//! The queue is durable by construction: its entries are store keys `("pq", order_id)`
//! holding the authorization request to resend, written in the same transaction as the
//! order (`repo::create_with`) and cleared in the same transaction as whatever transition
//! moves the order out of `payment_pending` (`repo::transition_in`). Order ids are Snowflakes
//! (time first), so a prefix scan lists the queue oldest first and gives each entry's age
//! without reading the order. No cursor is needed: the entries *are* the work left, so a
//! restart or a standby's takeover resumes exactly where the last pass stopped.
//!
//! One pass ([`Orders::drain_payment_queue`], `now` passed in) walks the queue oldest first:
//! - older than `max_age_ms`: cancelled with reason [`REASON_EXPIRED`] (the customer gets the
//!   usual `order_cancelled` push);
//! - authorized: `payment_pending → pending` with the `order_created` event, so the
//!   restaurant, notifications and tracking see a new order exactly as after a normal
//!   placement;
//! - declined: cancelled with reason [`REASON_DECLINED`] (and a push);
//! - still unreachable: the pass stops asking (entries behind it only expire), so a provider
//!   that is down costs one failed call per pass, and the order of authorization stays oldest
//!   first.
//!
//! The authorization resends the request the placement sent, with the same idempotency key
//! (`order-<id>-authorize`): a hold the provider made although the placement timed out is
//! found, never made twice. An order cancelled by its customer while its authorization was
//! in flight gets that hold voided (key `order-<id>-void`). An order that expires while the
//! provider is still down may hold funds the provider took during a timed-out call; nothing
//! can release them until the provider answers, so that is left to reconciliation.

use super::Orders;
use super::keys;
use super::once::WriteOp;
use super::repo::{self, RepoError};
use domain::{Actor, Command, OrderId, OrderStatus, UnixMs};
use futures::StreamExt;
use payments::{AuthorizeRequest, Op, PaymentError, idempotency_key};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use store::{Kv, RangeRequest};

/// Cancel reason of an order the provider could not authorize within the queue age.
pub const REASON_EXPIRED: &str = "payment_unavailable";
/// Cancel reason of a queued order whose authorization was declined.
pub const REASON_DECLINED: &str = "payment_declined";
/// Cancel reason of a queued order the provider called an invalid request.
pub const REASON_INVALID: &str = "payment_invalid";

/// Entries read per page of a pass: one short read transaction each.
const PAGE: usize = 500;

/// `[payment_queue]` in the cell config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// A queued order not authorized this long after placement is cancelled (the issue's
    /// 10 minutes: longer than a customer keeps waiting for a confirmation).
    pub max_age_ms: u64,
    /// Pause between passes over the queue. An empty queue costs one range read per pass.
    pub poll_interval_ms: u64,
    /// Authorizations in flight at once during a pass (started oldest first): after a long
    /// outage thousands of orders wait, and one at a time each pays a store commit.
    pub concurrency: usize,
    /// The longest placement waits for the provider before it queues the order instead.
    /// Below `http.request_timeout_ms`: a provider that hangs (each attempt up to
    /// `payments.timeout_ms`, with retries) must not turn placement into a 504.
    pub placement_wait_ms: u64,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_age_ms: 600_000,
            poll_interval_ms: 1_000,
            concurrency: 16,
            placement_wait_ms: 6_000,
        }
    }
}

impl QueueConfig {
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn placement_wait(&self) -> Duration {
        Duration::from_millis(self.placement_wait_ms)
    }
}

impl service::config::Validate for QueueConfig {
    fn validate(&self, s: &mut service::config::Section<'_>) {
        s.ensure(self.max_age_ms >= 1_000, "max_age_ms", || {
            format!("must be at least 1000 (got {})", self.max_age_ms)
        });
        s.ensure(
            (10..=60_000).contains(&self.poll_interval_ms),
            "poll_interval_ms",
            || format!("must be 10..=60000 (got {})", self.poll_interval_ms),
        );
        s.ensure((1..=256).contains(&self.concurrency), "concurrency", || {
            format!("must be 1..=256 (got {})", self.concurrency)
        });
        s.ensure(
            (100..=60_000).contains(&self.placement_wait_ms),
            "placement_wait_ms",
            || format!("must be 100..=60000 (got {})", self.placement_wait_ms),
        );
    }
}

/// Whether a placement that got `e` from the provider queues the order instead of failing:
/// the provider did not answer (timeout, outage, open circuit) or answered something we
/// cannot read. A decline (402) or an invalid request (400) is the customer's to fix.
pub fn queues(e: &PaymentError) -> bool {
    match e {
        PaymentError::Timeout | PaymentError::Unavailable | PaymentError::Provider(_) => true,
        PaymentError::Declined { .. } | PaymentError::Invalid(_) => false,
    }
}

/// What one pass did, entry by entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuePass {
    /// Authorized and moved on to `pending`.
    pub authorized: u64,
    /// Cancelled: declined, or refused as invalid, by the provider.
    pub declined: u64,
    /// Cancelled: older than the queue age.
    pub expired: u64,
    /// Left the queue by another way while this pass worked on them (the customer cancelled).
    pub raced: u64,
    /// Still queued: the provider did not answer, or the store write failed (retried next pass).
    pub waiting: u64,
}

/// The outcome of one entry.
enum Outcome {
    Authorized,
    Declined,
    Expired,
    Raced,
    Waiting,
}

/// A page of the queue, oldest first, after `after`.
pub async fn list(
    kv: &dyn Kv,
    after: Option<OrderId>,
    limit: usize,
) -> Result<Vec<(OrderId, AuthorizeRequest)>, RepoError> {
    Ok(store::read(kv, move |txn| {
        Box::pin(async move {
            let mut range = RangeRequest::prefix(&keys::payment_queue_prefix()).limit(limit);
            if let Some(a) = after {
                range.begin = store::paging::after(&keys::payment_queue(a));
            }
            let rows = txn.get_range(range).await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let Some(id) = keys::trailing_order_id(&row.key) else {
                    continue;
                };
                let req = serde_json::from_slice(&row.value).map_err(|e| {
                    store::TxnError::Store(store::StoreError::Corrupt {
                        key: format!("{:?}", row.key),
                        reason: e.to_string(),
                    })
                })?;
                out.push((id, req));
            }
            Ok::<_, store::TxnError<RepoError>>(out)
        })
    })
    .await?)
}

impl Orders {
    /// One pass over the authorization queue, oldest first (see the module doc).
    pub async fn drain_payment_queue(
        &self,
        cfg: &QueueConfig,
        now: UnixMs,
    ) -> Result<QueuePass, RepoError> {
        let down = AtomicBool::new(false);
        let mut pass = QueuePass::default();
        let mut after = None;
        loop {
            let page = list(&*self.kv, after, PAGE).await?;
            let full = page.len() == PAGE;
            after = page.last().map(|(id, _)| *id);
            let down = &down;
            let outcomes: Vec<Outcome> = futures::stream::iter(page)
                .map(|(id, req)| self.process_queued(id, req, cfg, now, down))
                .buffered(cfg.concurrency.max(1))
                .collect()
                .await;
            for o in outcomes {
                let (field, label) = match o {
                    Outcome::Authorized => (&mut pass.authorized, "authorized"),
                    Outcome::Declined => (&mut pass.declined, "declined"),
                    Outcome::Expired => (&mut pass.expired, "expired"),
                    Outcome::Raced => (&mut pass.raced, "raced"),
                    Outcome::Waiting => {
                        pass.waiting += 1;
                        continue;
                    }
                };
                *field += 1;
                metrics::counter!("cell_payment_queue_total", "outcome" => label).increment(1);
            }
            if !full {
                break;
            }
        }
        metrics::gauge!("cell_payment_queue_depth").set(pass.waiting as f64);
        Ok(pass)
    }

    async fn process_queued(
        &self,
        id: OrderId,
        req: AuthorizeRequest,
        cfg: &QueueConfig,
        now: UnixMs,
        down: &AtomicBool,
    ) -> Outcome {
        let age_ms = now.0.saturating_sub(id.created_ms());
        if u64::try_from(age_ms).unwrap_or(0) > cfg.max_age_ms {
            return self
                .cancel_queued(id, REASON_EXPIRED, Outcome::Expired, now)
                .await;
        }
        if down.load(Ordering::Relaxed) {
            return Outcome::Waiting;
        }
        match self.payments.authorize(&req).await {
            Ok(auth) => self.finish_queued(id, auth.id, now).await,
            Err(PaymentError::Declined { code, .. }) => {
                tracing::info!(order_id = %id, %code, "queued order declined");
                self.cancel_queued(id, REASON_DECLINED, Outcome::Declined, now)
                    .await
            }
            Err(PaymentError::Invalid(m)) => {
                tracing::warn!(order_id = %id, reason = %m, "queued authorization refused as invalid");
                self.cancel_queued(id, REASON_INVALID, Outcome::Declined, now)
                    .await
            }
            Err(e) => {
                tracing::debug!(order_id = %id, error = %e, "provider still unreachable; the queue waits");
                down.store(true, Ordering::Relaxed);
                Outcome::Waiting
            }
        }
    }

    /// Moves an authorized order on to `pending`; voids the hold when the order left the
    /// queue meanwhile.
    async fn finish_queued(&self, id: OrderId, payment_ref: String, now: UnixMs) -> Outcome {
        let cmd = Command::AuthorizePayment {
            payment_ref: payment_ref.clone(),
        };
        let expect = Some(OrderStatus::PaymentPending);
        let op = WriteOp::new(now);
        match repo::transition(&*self.kv, self.log, id, cmd, Actor::System, expect, &op).await {
            Ok(_) => Outcome::Authorized,
            Err(RepoError::Changed { .. } | RepoError::Transition(_)) => {
                let key = idempotency_key(id, Op::Void);
                if let Err(e) = self.payments.void(&payment_ref, &key).await {
                    tracing::warn!(order_id = %id, error = %e, "could not void the hold of an order cancelled while queued");
                }
                Outcome::Raced
            }
            Err(e) => {
                tracing::warn!(order_id = %id, error = %e, "could not record a queued authorization; next pass");
                Outcome::Waiting
            }
        }
    }

    async fn cancel_queued(
        &self,
        id: OrderId,
        reason: &str,
        done: Outcome,
        now: UnixMs,
    ) -> Outcome {
        let cmd = Command::Cancel {
            reason: reason.to_owned(),
        };
        let expect = Some(OrderStatus::PaymentPending);
        let op = WriteOp::new(now);
        match repo::transition(&*self.kv, self.log, id, cmd, Actor::System, expect, &op).await {
            Ok(_) => done,
            Err(RepoError::Changed { .. } | RepoError::Transition(_)) => Outcome::Raced,
            Err(e) => {
                tracing::warn!(order_id = %id, error = %e, "could not cancel a queued order; next pass");
                Outcome::Waiting
            }
        }
    }
}

/// The queue's worker: a pass every `poll_interval_ms` until `shutdown` flips. Only the
/// outermost layer reads the clock; the pass takes `now`.
pub async fn run(
    orders: std::sync::Arc<Orders>,
    cfg: QueueConfig,
    clock: std::sync::Arc<dyn crate::app::Clock>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match orders.drain_payment_queue(&cfg, clock.now()).await {
            Ok(pass) if pass != QueuePass::default() => {
                tracing::debug!(?pass, "payment queue pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "payment queue pass failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(cfg.poll_interval()) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
