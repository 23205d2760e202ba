//! [`PaymentWorker`]: performs pending payment effects. Two loops share one settle step:
//!
//! - the consumer reads the event log from its durable cursor ([`super::CURSOR`]) and settles
//!   the orders of every event that can leave an effect pending (confirmed, rejected,
//!   cancelled), a batch at a time with bounded concurrency, then saves the cursor. A crash
//!   before the save replays the batch, which repeats nothing (keys and guarded writes);
//! - the retry scan settles the orders whose effect failed retryably once their retry time
//!   has come.
//!
//! Settling an order reads it, asks the provider for what its payment state says
//! ([`super::perform`]) and records the outcome ([`super::settle`]); when the order moved on
//! meanwhile, or the compensation left a void pending, the newer state is settled at once.

use super::PaymentWorkerConfig;
use super::effect::{Effect, perform};
use super::record::{CURSOR, Done, Policy, Settled, list_due, record_done, settle};
use crate::app::Clock;
use crate::events;
use domain::{EventKind, OrderEvent, OrderId, PaymentState};
use futures::StreamExt;
use payments::PaymentGateway;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use store::{Kv, LogId, LogPos, TxnError};
use tokio::sync::watch;

/// Events read per batch: bounds memory and the work between cursor saves.
const BATCH: usize = 512;
/// Settle passes per order and call: an order moves at most capture → refund (or capture →
/// failed → void) while it is being settled.
const PASSES: usize = 4;
/// Retry records settled per scan.
const SCAN_MAX: usize = 4096;
/// Least time between two batches of the consumer (see `consume`).
const BATCH_GAP: Duration = Duration::from_millis(20);
/// Successful effects recorded per transaction: bounds the transaction's size.
const RECORD_BATCH: usize = 64;
/// Pause after a store error before the batch is tried again.
const PAUSE: Duration = Duration::from_millis(500);

/// See the module doc.
pub struct PaymentWorker {
    kv: Arc<dyn Kv>,
    log: LogId,
    gateway: Arc<dyn PaymentGateway>,
    config: PaymentWorkerConfig,
    clock: Arc<dyn Clock>,
}

/// Whether an event can leave a payment effect pending.
fn may_leave_effect(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::OrderConfirmed | EventKind::OrderRejected | EventKind::OrderCancelled
    )
}

impl PaymentWorker {
    pub fn new(
        kv: Arc<dyn Kv>,
        log: LogId,
        gateway: Arc<dyn PaymentGateway>,
        config: PaymentWorkerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        PaymentWorker {
            kv,
            log,
            gateway,
            config,
            clock,
        }
    }

    fn policy(&self) -> Policy {
        Policy {
            schedule: self.config.schedule(),
            on_capture_failure: self.config.on_capture_failure,
        }
    }

    /// Settles order `id`: performs whatever its payment state asks for and records it,
    /// following the order as it moves. Returns the last outcome (`None`: no such order).
    /// `Err` only for a store failure (the caller retries later).
    pub async fn settle_order(&self, id: OrderId) -> Result<Option<Settled>, String> {
        let mut last = None;
        for _ in 0..PASSES {
            let s = match self.pass(id).await? {
                Pass::Gone => return Ok(last),
                Pass::Nothing(s) => return Ok(Some(last.unwrap_or(s))),
                Pass::Recorded(s) => s,
                Pass::Done(d) => self.record_done(vec![*d]).await?[0],
            };
            last = Some(s);
            match s {
                Settled::Recorded(_) | Settled::RetryAt(_) | Settled::Failed => return Ok(last),
                Settled::Moved(_) | Settled::Compensated => continue,
            }
        }
        Ok(last)
    }

    /// One pass over order `id`: reads it, performs what its payment state asks for, records
    /// the outcome unless the effect succeeded (those are recorded together, [`record_done`]).
    async fn pass(&self, id: OrderId) -> Result<Pass, String> {
        let Some((snapshot, order)) = self.read(id).await? else {
            return Ok(Pass::Gone);
        };
        if !order.payment_state.is_pending() {
            // Also clears a retry record left behind by an effect recorded elsewhere.
            let s = self
                .record(id, order.payment_state, Effect::Nothing)
                .await?;
            return Ok(Pass::Nothing(s));
        }
        let effect = perform(&*self.gateway, &order).await;
        let outcome = match &effect {
            Effect::Done(_) => "done",
            Effect::Retry(_) => "retry",
            Effect::Failed(_) => "failed",
            Effect::Nothing => "nothing",
        };
        metrics::counter!("cell_payment_effects_total", "state" => order.payment_state.as_str(), "outcome" => outcome)
            .increment(1);
        if let Effect::Done(to) = effect {
            return Ok(Pass::Done(Box::new(Done {
                snapshot,
                order,
                to,
            })));
        }
        Ok(Pass::Recorded(
            self.record(id, order.payment_state, effect).await?,
        ))
    }

    /// Records effects that succeeded in one transaction; an order that changed since it was
    /// read is recorded the guarded way. Returns each one's outcome, in order.
    async fn record_done(&self, done: Vec<Done>) -> Result<Vec<Settled>, String> {
        let all: Vec<(OrderId, PaymentState)> = done.iter().map(|d| (d.order.id, d.to)).collect();
        let stale = record_done(&*self.kv, done, self.clock.now())
            .await
            .map_err(|e| format!("recording payments: {e}"))?;
        let mut out = Vec::with_capacity(all.len());
        for (id, to) in all {
            match stale.iter().find(|d| d.order.id == id) {
                None => out.push(Settled::Recorded(to)),
                Some(d) => out.push(
                    self.record(id, d.order.payment_state, Effect::Done(to))
                        .await?,
                ),
            }
        }
        Ok(out)
    }

    /// The order's record as stored, and decoded (`None`: no such order).
    async fn read(&self, id: OrderId) -> Result<Option<(Vec<u8>, domain::Order)>, String> {
        let key = crate::orders::keys::order(id);
        let bytes = store::read(&*self.kv, move |txn| {
            let key = key.clone();
            Box::pin(async move { txn.get(&key).await.map_err(TxnError::<String>::Store) })
        })
        .await
        .map_err(|e| format!("reading order {id}: {e}"))?;
        let Some(bytes) = bytes else {
            return Ok(None);
        };
        let order = serde_json::from_slice(&bytes)
            .map_err(|e| format!("reading order {id}: corrupt record: {e}"))?;
        Ok(Some((bytes, order)))
    }

    async fn record(
        &self,
        id: OrderId,
        for_state: PaymentState,
        effect: Effect,
    ) -> Result<Settled, String> {
        settle(
            &*self.kv,
            self.log,
            id,
            for_state,
            effect,
            self.policy(),
            self.clock.now(),
        )
        .await
        .map_err(|e| format!("recording the payment of order {id}: {e}"))
    }

    /// Settles `ids` with bounded concurrency; `Err` if any hit a store failure. The effects
    /// that succeed on the first pass are recorded together, in one transaction; an order
    /// that needs more (it moved on, or its effect failed) is then settled on its own.
    async fn settle_all(&self, ids: impl IntoIterator<Item = OrderId>) -> Result<(), String> {
        let passes: Vec<_> = futures::stream::iter(ids)
            .map(|id| async move { (id, self.pass(id).await) })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        let (mut done, mut again) = (Vec::new(), Vec::new());
        for (id, pass) in passes {
            match pass? {
                Pass::Gone | Pass::Nothing(_) => {}
                Pass::Done(d) => done.push(*d),
                Pass::Recorded(s) => {
                    if matches!(s, Settled::Moved(_) | Settled::Compensated) {
                        again.push(id);
                    }
                }
            }
        }
        for chunk in done.chunks(RECORD_BATCH) {
            let ids: Vec<OrderId> = chunk.iter().map(|d| d.order.id).collect();
            let outcomes = self.record_done(chunk.to_vec()).await?;
            for (id, s) in ids.into_iter().zip(outcomes) {
                if matches!(s, Settled::Moved(_) | Settled::Compensated) {
                    again.push(id);
                }
            }
        }
        let results: Vec<_> = futures::stream::iter(again)
            .map(|id| self.settle_order(id))
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await;
        results.into_iter().try_for_each(|r| r.map(|_| ()))
    }

    /// Runs both loops until `shutdown` flips. Does nothing when effects are switched off
    /// (`perform_effects = false`, a benchmark's setting).
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        if !self.config.perform_effects {
            tracing::warn!(
                "payment worker disabled (perform_effects = false): payment effects stay pending"
            );
            return;
        }
        tracing::info!("payment worker started");
        // Nobody waits on a capture: the worker's writes (its own and the sandbox provider's)
        // ride along the store's commits a few at a time instead of lengthening the ones that
        // requests wait for (`store::priority`).
        store::priority::background(async {
            tokio::join!(self.consume(shutdown.clone()), self.scan(shutdown));
        })
        .await;
        tracing::info!("payment worker stopped");
    }

    async fn consume(&self, mut shutdown: watch::Receiver<bool>) {
        let mut cursor = loop {
            match events::load_cursor(&*self.kv, CURSOR).await {
                Ok(p) => break p,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the payment cursor failed; retrying");
                    if pause(&mut shutdown).await {
                        return;
                    }
                }
            }
        };
        loop {
            if *shutdown.borrow() {
                return;
            }
            let head = tokio::select! {
                h = self.kv.wait_for_events(self.log, cursor) => h,
                _ = shutdown.changed() => return,
            };
            if let Err(e) = head {
                tracing::warn!(error = %e, "waiting for events for payments failed");
                if pause(&mut shutdown).await {
                    return;
                }
                continue;
            }
            match self.consume_batch(cursor).await {
                Ok(next) => {
                    cursor = next;
                    // Let events gather: nobody waits on a capture, and a batch per store
                    // commit would save the cursor and record outcomes once per commit.
                    tokio::select! {
                        () = tokio::time::sleep(BATCH_GAP) => {}
                        _ = shutdown.changed() => return,
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "settling payments failed; the batch will be retried");
                    if pause(&mut shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    /// One batch of the consumer, without waiting: settles the orders of the events after
    /// `cursor` and saves the cursor past them. Returns the new cursor (`cursor` itself when
    /// nothing was read); `Err` leaves the cursor where it was, so the batch is read again.
    pub async fn consume_batch(&self, cursor: LogPos) -> Result<LogPos, String> {
        let batch = self
            .kv
            .read_events(self.log, cursor.next(), BATCH)
            .await
            .map_err(|e| format!("reading events for payments: {e}"))?;
        let Some(last) = batch.last().map(|e| e.pos) else {
            return Ok(cursor);
        };
        let ids: BTreeSet<OrderId> = batch
            .iter()
            .filter_map(|e| serde_json::from_slice::<OrderEvent>(&e.payload).ok())
            .filter(|ev| may_leave_effect(ev.kind))
            .map(|ev| ev.order_id)
            .collect();
        self.settle_all(ids).await?;
        events::save_cursor(&*self.kv, CURSOR, last)
            .await
            .map_err(|e| format!("saving the payment cursor: {e}"))?;
        metrics::gauge!("cell_event_consumer_position", "consumer" => CURSOR).set(last.0 as f64);
        Ok(last)
    }

    async fn scan(&self, mut shutdown: watch::Receiver<bool>) {
        let every = Duration::from_millis(self.config.scan_interval_ms);
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
            if let Err(e) = self.scan_once().await {
                tracing::warn!(error = %e, "settling due payments failed");
            }
        }
    }

    /// One pass of the retry scan: settles the orders whose retry time has come.
    pub async fn scan_once(&self) -> Result<usize, String> {
        let due = list_due(&*self.kv, self.clock.now(), SCAN_MAX)
            .await
            .map_err(|e| format!("listing due payments: {e}"))?;
        metrics::gauge!("cell_payment_effects_due").set(due.len() as f64);
        let n = due.len();
        self.settle_all(due.into_iter().map(|(id, _)| id)).await?;
        Ok(n)
    }
}

/// Waits [`PAUSE`]; `true` if shutdown came first.
async fn pause(shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(PAUSE) => false,
        _ = shutdown.changed() => true,
    }
}

/// What one pass over an order left (see `PaymentWorker::pass`).
enum Pass {
    /// No such order.
    Gone,
    /// Nothing was pending: the guarded record of "nothing".
    Nothing(Settled),
    /// The effect failed or the order moved on: recorded the guarded way.
    Recorded(Settled),
    /// The effect succeeded: to record.
    Done(Box<Done>),
}
