//! Payment reconciliation (issue 15, item 3): a periodic job compares each recent order's
//! payment with the provider's record ([`payments::PaymentGateway::retrieve`]), repairs the
//! store where the provider is the authority and reports the rest as drift, listed at
//! `GET /api/v1/admin/payments/drift`.
//!
//! Each pass ([`pass`], given `now`) reads a bounded batch of orders from a durable cursor,
//! in order-id order (Snowflakes: creation order), starting no earlier than `window_ms` ago,
//! and wraps to the window's start once it reaches the newest order. Orders updated less than
//! `min_age_ms` ago are left for a later pass: a transition between its provider call and its
//! commit would look like drift. Per order, one transaction writes the repair (when the order
//! is still as compared), the drift records and the cursor, so a crash repeats nothing.
//!
//! What is repaired and what is only reported: see `compare`. Metrics:
//! `cell_payment_drift_total{kind}` (drift found for the first time),
//! `cell_payment_drift_open` (gauge: drift neither repaired nor resolved),
//! `cell_payment_reconciled_total` (orders compared).

pub mod compare;
pub mod drift;

#[cfg(test)]
mod tests;

pub use compare::{DriftKind, Finding, OrderView, ProviderView, compare};
pub use drift::{Drift, DriftError, Page};

use domain::ids::SNOWFLAKE_EPOCH_MS;
use domain::{Order, OrderId, UnixMs};
use payments::PaymentGateway;
use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use std::sync::Arc;
use std::time::Duration;
use store::{Kv, RangeRequest, TxnError};
use tokio::sync::watch;

/// `[reconcile]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcileConfig {
    pub enabled: bool,
    /// Time between passes.
    pub interval_ms: u64,
    /// How far back orders are compared ("recent orders").
    pub window_ms: u64,
    /// Orders compared per pass, at most: one provider read each. 200 a minute is far below
    /// any provider's read limit and covers a day of a busy city's orders in a few hours.
    pub batch: usize,
    /// Orders updated more recently than this are left for a later pass.
    pub min_age_ms: u64,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        ReconcileConfig {
            enabled: true,
            interval_ms: 60_000,
            window_ms: 24 * 3_600_000,
            batch: 200,
            min_age_ms: 300_000,
        }
    }
}

impl Validate for ReconcileConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(self.interval_ms >= 1_000, "interval_ms", || {
            format!("must be at least 1000 (got {})", self.interval_ms)
        });
        s.ensure(self.window_ms > 0, "window_ms", || {
            "must be greater than 0 (got 0)".into()
        });
        s.ensure((1..=10_000).contains(&self.batch), "batch", || {
            format!("must be 1..=10000 (got {})", self.batch)
        });
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Orders compared with the provider.
    pub compared: usize,
    /// Drift found for the first time, by kind.
    pub new_drift: Vec<(OrderId, DriftKind)>,
    /// Orders whose payment state was corrected.
    pub repaired: Vec<OrderId>,
    /// The provider could not be read: the pass stopped there (the cursor stays before it).
    pub provider_unavailable: bool,
}

/// The smallest order id created at or after `ms`.
fn first_id_at(ms: i64) -> u64 {
    (u64::try_from(ms.saturating_sub(SNOWFLAKE_EPOCH_MS)).unwrap_or(0)) << 22
}

fn order_key(id: u64) -> Vec<u8> {
    crate::orders::keys::order(OrderId(id))
}

type TxnResult<T> = Result<T, TxnError<()>>;

fn flatten<T>(r: TxnResult<T>) -> Result<T, store::StoreError> {
    r.map_err(|e| match e {
        TxnError::Store(e) => e,
        TxnError::Abort(()) => store::StoreError::Closed,
    })
}

/// One pass at `now`. See the module doc.
pub async fn pass(
    kv: &dyn Kv,
    payments: &dyn PaymentGateway,
    cfg: &ReconcileConfig,
    now: UnixMs,
) -> Result<PassReport, store::StoreError> {
    let window_start = first_id_at(
        now.0
            .saturating_sub(i64::try_from(cfg.window_ms).unwrap_or(i64::MAX)),
    );
    let batch = cfg.batch;
    let orders: Vec<Order> = flatten(
        store::read(kv, move |txn| {
            Box::pin(async move {
                let cursor = txn
                    .get(&drift::cursor_key())
                    .await?
                    .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(0);
                let from = window_start.max(cursor.saturating_add(1));
                let req = RangeRequest {
                    begin: order_key(from),
                    end: store::keys::prefix_end(&store::keys::pack(&("o",))),
                    limit: batch,
                    reverse: false,
                };
                let rows = txn.get_range(req).await?;
                Ok(rows
                    .iter()
                    .filter_map(|r| serde_json::from_slice(&r.value).ok())
                    .collect())
            })
        })
        .await,
    )?;
    let wrap = orders.len() < batch;
    let min_age = i64::try_from(cfg.min_age_ms).unwrap_or(i64::MAX);
    let mut report = PassReport::default();
    for order in &orders {
        let settled = now.0.saturating_sub(order.updated_at.0) >= min_age;
        // An order without a provider reference never reached the provider.
        let findings = if settled && !order.payment_ref.is_empty() {
            let record = match payments.retrieve(&order.payment_ref).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(order_id = %order.id, error = %e, "reconciliation: provider unreadable; pass stopped");
                    report.provider_unavailable = true;
                    return Ok(report);
                }
            };
            report.compared += 1;
            metrics::counter!("cell_payment_reconciled_total").increment(1);
            let found = compare(order, record.as_ref());
            let provider = compare::provider_summary(record.as_ref());
            Some((found, provider))
        } else {
            None
        };
        let (new, repaired, open) = commit(kv, order, findings, now).await?;
        if let Some(open) = open {
            metrics::gauge!("cell_payment_drift_open").set(open as f64);
        }
        for k in &new {
            metrics::counter!("cell_payment_drift_total", "kind" => k.as_str()).increment(1);
            tracing::warn!(order_id = %order.id, kind = k.as_str(), "payment drift");
            report.new_drift.push((order.id, *k));
        }
        if repaired {
            report.repaired.push(order.id);
        }
    }
    if wrap {
        // The newest order was reached: the next pass starts at the window again.
        flatten(
            store::transact(kv, |txn| {
                Box::pin(async move {
                    txn.set(&drift::cursor_key(), &0u64.to_be_bytes());
                    Ok(())
                })
            })
            .await,
        )?;
    }
    Ok(report)
}

/// One order's transaction: the repair (if the order is unchanged since compared), the drift
/// records, the cursor. `findings` is `None` for an order skipped this pass (only the cursor
/// moves).
async fn commit(
    kv: &dyn Kv,
    order: &Order,
    findings: Option<(Vec<Finding>, Option<ProviderView>)>,
    now: UnixMs,
) -> Result<(Vec<DriftKind>, bool, Option<u64>), store::StoreError> {
    let order = Arc::new(order.clone());
    let findings = Arc::new(findings);
    flatten(
        store::transact(kv, move |txn| {
            let (order, findings) = (order.clone(), findings.clone());
            Box::pin(async move {
                txn.set(&drift::cursor_key(), &order.id.0.to_be_bytes());
                let Some((found, provider)) = findings.as_ref() else {
                    return Ok((Vec::new(), false, None));
                };
                let key = order_key(order.id.0);
                let current: Option<Order> = txn
                    .get(&key)
                    .await?
                    .and_then(|b| serde_json::from_slice(&b).ok());
                let unchanged = current.as_ref().is_some_and(|c| {
                    c.payment_state == order.payment_state && c.updated_at == order.updated_at
                });
                let mut repaired = false;
                let mut records = Vec::new();
                for f in found {
                    let fix = f.repair.filter(|_| unchanged);
                    if let (Some(state), Some(c)) = (fix, current.as_ref()) {
                        let mut c = c.clone();
                        c.payment_state = state;
                        c.updated_at = now;
                        txn.set(&key, &serde_json::to_vec(&c).expect("an order serializes"));
                        repaired = true;
                    }
                    records.push(Drift {
                        order_id: order.id.to_string(),
                        kind: f.kind,
                        repaired: fix.is_some(),
                        resolved: false,
                        order: OrderView::of(&order),
                        provider: provider.clone(),
                        first_seen: now.0,
                        last_seen: now.0,
                        seen: 1,
                    });
                }
                let (new, open) = drift::record::<()>(txn, order.id, &records, now.0).await?;
                Ok((new, repaired, Some(open)))
            })
        })
        .await,
    )
}

/// Runs a pass every `interval_ms` until `shutdown` flips. The clock is read by the caller's
/// `now` function (the cell's `app::Clock`).
pub async fn run(
    kv: Arc<dyn Kv>,
    payments: Arc<dyn PaymentGateway>,
    cfg: ReconcileConfig,
    now: impl Fn() -> UnixMs + Send,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Ok(open) = drift::open_count(&*kv).await {
        metrics::gauge!("cell_payment_drift_open").set(open as f64);
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(cfg.interval_ms)) => {}
            _ = shutdown.changed() => return,
        }
        match pass(&*kv, &*payments, &cfg, now()).await {
            Ok(r) if !r.new_drift.is_empty() || !r.repaired.is_empty() => {
                tracing::info!(
                    compared = r.compared,
                    new_drift = r.new_drift.len(),
                    repaired = r.repaired.len(),
                    "reconciliation pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reconciliation pass failed"),
        }
    }
}
