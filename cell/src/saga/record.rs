//! The payment worker's store writes, one transaction each, always guarded by the payment
//! state the effect was performed for: if the order moved on meanwhile (a cancel turned a
//! pending capture into a pending refund), nothing is recorded and the newer state is settled
//! on its own.
//!
//! Keys (under the cell's subspace): `("paydue", order_id)` → [`Due`] JSON, an effect waiting
//! for a durable retry; the consumer's cursor is `("cursor", "payments")` (`crate::events`).

use super::OnCaptureFailure;
use super::effect::Effect;
use super::schedule::{Attempts, Next, Schedule};
use crate::orders::repo::{self, RepoError, TxnResult};
use domain::{Actor, Command, EventKind, OrderId, PaymentState, UnixMs};
use store::keys::pack;
use store::{Kv, LogId, PageLimits, Pages, TxnError};

/// The payment worker's durable cursor in the event log.
pub const CURSOR: &str = "payments";

/// The reason a compensated order is cancelled with.
pub const PAYMENT_FAILED: &str = "payment_failed";

/// A retry record: an effect that failed retryably and when to try it next.
pub type Due = Attempts;

fn due_key(id: OrderId) -> Vec<u8> {
    pack(&("paydue", id.0))
}

/// What [`settle`] recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// The effect's result is the order's payment state now.
    Recorded(PaymentState),
    /// The order's payment state was no longer the one the effect was performed for (or had
    /// nothing pending): nothing written but a stale retry record cleared.
    Moved(PaymentState),
    /// A retryable failure: tried again at this time.
    RetryAt(UnixMs),
    /// A capture failed for good: the payment is `failed` and the compensation ran (the
    /// order is cancelled with `payment_failed` and its hold is being voided, or held for an
    /// operator), and a `payment_failed` event tells the customer and the restaurant.
    Compensated,
    /// A void or refund failed for good: the payment is `failed`, for an operator.
    Failed,
}

/// Everything [`settle`] needs besides the order and the effect.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub schedule: Schedule,
    pub on_capture_failure: OnCaptureFailure,
}

/// Records `effect`, performed for order `id` in payment state `performed_for`, at `now`.
pub async fn settle(
    kv: &dyn Kv,
    log: LogId,
    id: OrderId,
    performed_for: PaymentState,
    effect: Effect,
    policy: Policy,
    now: UnixMs,
) -> Result<Settled, RepoError> {
    let r = store::transact(kv, move |txn| {
        let effect = effect.clone();
        Box::pin(async move {
            let Some(mut order) = repo::load(txn, id).await? else {
                return Err(TxnError::Abort(RepoError::NotFound(id)));
            };
            let key = due_key(id);
            let due: Option<Due> = match txn.get(&key).await? {
                Some(b) => serde_json::from_slice(&b).ok(),
                None => None,
            };
            let current = order.payment_state;
            if current != performed_for || effect == Effect::Nothing {
                if !current.is_pending() && due.is_some() {
                    txn.clear(&key);
                }
                return Ok(Settled::Moved(current));
            }
            let why = match effect {
                Effect::Nothing => unreachable!("handled above"),
                Effect::Done(to) => {
                    order.payment_state = to;
                    order.updated_at = now;
                    txn.set(&crate::orders::keys::order(id), &repo::to_json(&order));
                    txn.clear(&key);
                    return Ok(Settled::Recorded(to));
                }
                Effect::Retry(why) => match policy.schedule.after_failure(id, due, now) {
                    Next::RetryAt(a) => {
                        txn.set(&key, &repo::to_json(&a));
                        tracing::info!(order_id = %id, failures = a.failures, error = %why, "payment effect will be retried");
                        return Ok(Settled::RetryAt(a.next_at));
                    }
                    Next::GiveUp => format!("retry period over; last error: {why}"),
                },
                Effect::Failed(why) => why,
            };
            txn.clear(&key);
            fail(txn, log, order, performed_for, policy, &why, now).await
        })
    })
    .await;
    Ok(r?)
}

/// An effect that succeeded, to record with [`record_done`]: the order as read before the
/// effect (`snapshot`, its stored bytes; `order`, decoded) and the payment state it now has.
#[derive(Debug, Clone)]
pub struct Done {
    pub snapshot: Vec<u8>,
    pub order: domain::Order,
    pub to: PaymentState,
}

/// Records effects that succeeded, many in one transaction, with each order's new record
/// encoded before it: the writer only checks that each order is still its snapshot (a byte
/// comparison), then writes. The writer runs every transaction's body in turn, so decoding and
/// encoding orders there, one transaction each, would lengthen the commits requests wait for.
/// Returns the ones whose order changed since the snapshot (nothing written for them): the
/// caller records those the guarded way ([`settle`]).
pub async fn record_done(
    kv: &dyn Kv,
    done: Vec<Done>,
    now: UnixMs,
) -> Result<Vec<Done>, RepoError> {
    // Per order: its key, its retry record's key, the snapshot, the new record.
    type Write = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
    let writes: Vec<Write> = done
        .iter()
        .map(|d| {
            debug_assert!(d.order.payment_state.is_pending());
            let mut order = d.order.clone();
            order.payment_state = d.to;
            order.updated_at = now;
            let key = crate::orders::keys::order(order.id);
            (
                key,
                due_key(order.id),
                d.snapshot.clone(),
                repo::to_json(&order),
            )
        })
        .collect();
    let stale = store::transact(kv, move |txn| {
        let writes = writes.clone();
        Box::pin(async move {
            let mut stale = Vec::new();
            for (i, (key, due, snapshot, next)) in writes.iter().enumerate() {
                if txn.get(key).await?.as_deref() != Some(snapshot.as_slice()) {
                    stale.push(i);
                    continue;
                }
                txn.set(key, next);
                txn.clear(due);
            }
            Ok::<_, TxnError<RepoError>>(stale)
        })
    })
    .await?;
    let mut done: Vec<Option<Done>> = done.into_iter().map(Some).collect();
    Ok(stale.into_iter().filter_map(|i| done[i].take()).collect())
}

/// Marks the payment failed and, for a capture, runs the compensation.
async fn fail(
    txn: &dyn store::Txn,
    log: LogId,
    mut order: domain::Order,
    performed_for: PaymentState,
    policy: Policy,
    why: &str,
    now: UnixMs,
) -> TxnResult<Settled> {
    let id = order.id;
    tracing::warn!(order_id = %id, state = performed_for.as_str(), error = %why, "payment effect failed for good");
    order.payment_state = PaymentState::Failed;
    order.updated_at = now;
    txn.set(&crate::orders::keys::order(id), &repo::to_json(&order));
    if performed_for != PaymentState::CapturePending {
        return Ok(Settled::Failed);
    }
    if policy.on_capture_failure == OnCaptureFailure::Cancel {
        let cancel = Command::Cancel {
            reason: PAYMENT_FAILED.into(),
        };
        match repo::transition_in(txn, log, id, &cancel, Actor::System, None, now).await {
            Ok(_) => {}
            // Past pickup an order cannot be cancelled: it stays `failed` for an operator.
            Err(TxnError::Abort(RepoError::Transition(e))) => {
                tracing::warn!(order_id = %id, error = %e, "order cannot be cancelled; payment left failed");
            }
            Err(e) => return Err(e),
        }
    }
    let Some(order) = repo::load(txn, id).await? else {
        return Err(TxnError::Abort(RepoError::NotFound(id)));
    };
    let seq = repo::next_history_seq(txn, id).await?;
    repo::record_step(
        txn,
        log,
        &order,
        seq,
        EventKind::PaymentFailed,
        Actor::System,
        now,
    );
    Ok(Settled::Compensated)
}

/// Retry records due at `now` (at most `max`), read page by page.
pub async fn list_due(
    kv: &dyn Kv,
    now: UnixMs,
    max: usize,
) -> Result<Vec<(OrderId, Due)>, store::StoreError> {
    let mut pages = Pages::prefix(&pack(&("paydue",)), PageLimits::DEFAULT);
    let mut out = Vec::new();
    while let Some(page) = pages.next(kv).await? {
        for kv in page {
            let Ok((_, id)) = store::keys::unpack::<(String, u64)>(&kv.key) else {
                continue;
            };
            if let Ok(due) = serde_json::from_slice::<Due>(&kv.value)
                && due.next_at <= now
            {
                out.push((OrderId(id), due));
                if out.len() >= max {
                    return Ok(out);
                }
            }
        }
    }
    Ok(out)
}

/// Every retry record (for the checker and tests).
pub async fn count_due(kv: &dyn Kv) -> Result<usize, store::StoreError> {
    Ok(list_due(kv, UnixMs(i64::MAX), usize::MAX).await?.len())
}
