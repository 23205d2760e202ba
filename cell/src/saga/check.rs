//! The payment checker: reads every order and the sandbox's ledger from a cell's store (after
//! the cell stopped) and checks the saga's promises — no order captured twice, none left with
//! a pending effect, and per settled order authorized = captured + voided and refunded ≤
//! captured, with the order's payment state agreeing with the provider's. `cell
//! check-payments` prints the [`PaymentReport`] and exits non-zero on any violation.

use domain::{Order, OrderStatus, PaymentState};
use payments::{AuthorizationStatus, LedgerEntry};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use store::{Kv, PageLimits, Pages};

/// Totals over the whole store, and every violation found (empty = all good).
#[derive(Debug, Default, Serialize)]
pub struct PaymentReport {
    pub orders: u64,
    /// Orders per `payment_status`.
    pub by_payment_state: BTreeMap<&'static str, u64>,
    /// Orders still waiting for the restaurant, their hold in place (not a violation).
    pub awaiting_restaurant: u64,
    /// Orders with a pending effect (`*_pending`): must be 0 once the worker settled.
    pub pending_effects: u64,
    /// Retry records left in the store: must be 0 once the worker settled.
    pub retry_records: u64,
    /// Sandbox authorizations.
    pub authorizations: u64,
    /// Authorizations no order refers to: placement authorizes before it writes the order, so
    /// a crash in between leaves one (its hold expires at a real provider). Reported, not a
    /// violation of the per-order rules.
    pub authorizations_without_order: u64,
    /// Captures per order (from the sandbox's counts): how many orders had 0, 1, 2, ...
    pub captures_per_order: BTreeMap<u32, u64>,
    pub captured_cents: i64,
    pub voided_cents: i64,
    pub refunded_cents: i64,
    pub violations: Vec<String>,
}

impl PaymentReport {
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

async fn all_orders(kv: &dyn Kv) -> Result<Vec<Order>, String> {
    let mut pages = Pages::prefix(&store::keys::pack(&("o",)), PageLimits::DEFAULT);
    let mut out = Vec::new();
    while let Some(page) = pages.next(kv).await.map_err(|e| e.to_string())? {
        for kv in page {
            out.push(serde_json::from_slice(&kv.value).map_err(|e| format!("order record: {e}"))?);
        }
    }
    Ok(out)
}

/// Checks the cell's store `kv` (scoped to the cell).
pub async fn check_payments(kv: &dyn Kv) -> Result<PaymentReport, String> {
    let orders = all_orders(kv).await?;
    let ledger: HashMap<String, LedgerEntry> = payments::load_ledger(kv)
        .await?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let mut r = PaymentReport {
        orders: orders.len() as u64,
        authorizations: ledger.len() as u64,
        retry_records: super::count_due(kv).await.map_err(|e| e.to_string())? as u64,
        ..PaymentReport::default()
    };
    if r.retry_records > 0 {
        r.violations
            .push(format!("{} retry records left", r.retry_records));
    }
    let mut referenced = 0u64;
    for o in &orders {
        *r.by_payment_state
            .entry(o.payment_state.as_str())
            .or_default() += 1;
        if o.payment_state.is_pending() {
            r.pending_effects += 1;
            r.violations.push(format!(
                "order {}: payment still {}",
                o.id,
                o.payment_state.as_str()
            ));
        }
        let Some(e) = ledger.get(&o.payment_ref) else {
            r.violations.push(format!(
                "order {}: authorization {:?} unknown to the provider",
                o.id, o.payment_ref
            ));
            continue;
        };
        referenced += 1;
        *r.captures_per_order.entry(e.effects.capture).or_default() += 1;
        if e.effects.capture > 1 {
            r.violations.push(format!(
                "order {}: captured {} times",
                o.id, e.effects.capture
            ));
        }
        let voided = if e.status == AuthorizationStatus::Voided {
            e.authorized
        } else {
            domain::Cents::ZERO
        };
        r.captured_cents += e.captured.0;
        r.voided_cents += voided.0;
        r.refunded_cents += e.refunded.0;
        if e.refunded > e.captured {
            r.violations.push(format!(
                "order {}: refunded {} > captured {}",
                o.id, e.refunded, e.captured
            ));
        }
        if o.payment_state == PaymentState::Authorized {
            if o.status == OrderStatus::Pending {
                r.awaiting_restaurant += 1;
            } else {
                r.violations.push(format!(
                    "order {}: {} but payment only authorized",
                    o.id, o.status
                ));
            }
            continue;
        }
        if !o.payment_state.is_pending() && e.authorized != e.captured + voided {
            r.violations.push(format!(
                "order {}: authorized {} != captured {} + voided {}",
                o.id, e.authorized, e.captured, voided
            ));
        }
        let agrees = match o.payment_state {
            PaymentState::Captured => e.status == AuthorizationStatus::Captured,
            PaymentState::Voided => e.status == AuthorizationStatus::Voided,
            PaymentState::Refunded => e.status == AuthorizationStatus::Refunded,
            // A failed effect is for an operator; the provider may be anywhere.
            _ => true,
        };
        if !agrees {
            r.violations.push(format!(
                "order {}: payment {} but the provider says {:?}",
                o.id,
                o.payment_state.as_str(),
                e.status
            ));
        }
    }
    r.authorizations_without_order = r.authorizations - referenced.min(r.authorizations);
    Ok(r)
}
