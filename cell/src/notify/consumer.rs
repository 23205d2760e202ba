//! The notification consumer: a durable reader of the cell's event log ([`CONSUMER`]) that
//! turns events into notifications ([`super::notifications_for`]) and sends them through a
//! [`PushProvider`], and the [`Overload`] switch that sheds it.
//!
//! Delivery is at least once from here and exactly once at the receiver: the cursor is saved
//! per batch, so a crash replays the tail of a batch, but every notification carries a key
//! derived from its log position, which the receiver dedupes.
//!
//! Failures: a permanent rejection is counted and skipped (one bad recipient must not stop
//! everyone's notifications); a retryable failure the provider gave up on fails the event, so
//! [`crate::events::consume`] keeps the cursor before it and retries after a pause — nothing
//! is lost while a provider is down, the consumer just falls behind (see the lag gauge).
//!
//! Metrics: `cell_notifications_total{kind,outcome}` (outcome: sent, rejected, unavailable,
//! timeout), `cell_notifications_lag` (log head − last handled position),
//! `cell_notifications_shed_seconds_total` (time spent holding events back while overloaded).

use super::messages::{needs_restaurant_name, notifications_for};
use super::provider::{Origin, PushError, PushProvider};
use crate::events::{self, Start};
use domain::OrderEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store::{Kv, LogId, LogPos};
use tokio::sync::watch;

/// The durable cursor's name in the store.
pub const CONSUMER: &str = "notifications";

/// How often the lag gauge is refreshed, and the shed counter advanced while paused.
const TICK: Duration = Duration::from_secs(1);

/// Set by the cell while it is overloaded. Notifications are the first work shed (the seed's
/// section 12: order placement and matching never are): while set, the consumer holds the
/// next event without sending or advancing its cursor, and catches up once it clears.
#[derive(Debug)]
pub struct Overload {
    tx: watch::Sender<bool>,
}

impl Default for Overload {
    fn default() -> Self {
        Overload {
            tx: watch::channel(false).0,
        }
    }
}

impl Overload {
    pub fn new() -> Self {
        Self::default()
    }

    /// Turns shedding on or off. Cheap and idempotent: call it from a load monitor on every
    /// sample.
    pub fn set(&self, overloaded: bool) {
        self.tx.send_if_modified(|v| {
            let changed = *v != overloaded;
            *v = overloaded;
            changed
        });
    }

    pub fn is_set(&self) -> bool {
        *self.tx.borrow()
    }

    /// Wakes on every change (for other work that wants to be shed too).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.tx.subscribe()
    }
}

/// State shared by the event handler and the lag sampler.
#[derive(Debug, Default)]
struct Progress {
    /// The last position handled (everything up to it was sent, rejected or notified nobody).
    /// A lock, not an atomic: positions are 128-bit (versionstamps on FoundationDB).
    handled: std::sync::Mutex<u128>,
    /// Total time spent paused by overload, in ms (the metric is in whole seconds).
    shed_ms: AtomicU64,
}

impl Progress {
    fn add_shed(&self, d: Duration) {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let total = self.shed_ms.fetch_add(ms, Ordering::Relaxed) + ms;
        metrics::counter!("cell_notifications_shed_seconds_total").absolute(total / 1000);
    }
}

/// Runs the notification consumer until `shutdown` flips (or its sender is dropped).
/// [`super::spawn`] is the usual way in; tests call this with their own provider.
pub async fn run(
    kv: Arc<dyn Kv>,
    log: LogId,
    provider: Arc<dyn PushProvider>,
    overload: Arc<Overload>,
    shutdown: watch::Receiver<bool>,
) {
    let progress = Arc::new(Progress::default());
    if let Ok(p) = events::load_cursor(&*kv, CONSUMER).await {
        *lock(&progress.handled) = p.0;
    }
    tracing::info!(provider = provider.name(), "notification consumer started");
    let handler = {
        let kv = kv.clone();
        let progress = progress.clone();
        // The handler watches shutdown too: `consume` does not interrupt a handler, and a
        // paused one would otherwise hold shutdown up until the overload clears.
        let shutdown = shutdown.clone();
        move |pos: LogPos, ev: OrderEvent| {
            let kv = kv.clone();
            let provider = provider.clone();
            let overload = overload.clone();
            let progress = progress.clone();
            let mut shutdown = shutdown.clone();
            async move {
                wait_until_clear(&overload, &mut shutdown, &progress).await?;
                handle(&*kv, log, &*provider, pos, &ev).await?;
                {
                    let mut h = lock(&progress.handled);
                    *h = (*h).max(pos.0);
                }
                Ok(())
            }
        }
    };
    // The sampler ends with the consumer: it is only dropped here, never detached.
    tokio::select! {
        () = events::consume(kv.clone(), log, Start::Durable(CONSUMER), handler, shutdown) => {}
        () = sample_lag(&*kv, log, &progress) => {}
    }
    tracing::info!("notification consumer stopped");
}

/// Sends the notifications of one event. `Err` makes the consumer retry this event later.
/// The consumer's handler; public so a simulator can run the consumer one batch at a time
/// ([`crate::events::consume_batch`]).
pub async fn handle(
    kv: &dyn Kv,
    log: LogId,
    provider: &dyn PushProvider,
    pos: LogPos,
    ev: &OrderEvent,
) -> Result<(), String> {
    let name = if needs_restaurant_name(ev.kind) {
        // A store error is retried (the text would be worse, not wrong, without the name,
        // but a store that cannot read will not let us save the cursor either).
        crate::orders::repo::get(kv, ev.order_id)
            .await
            .map_err(|e| format!("reading order {}: {e}", ev.order_id))?
            .map(|o| o.restaurant_name)
    } else {
        None
    };
    for n in notifications_for(Origin { log, pos }, ev, name.as_deref()) {
        let kind = n.kind.as_str();
        let outcome = match provider.send(&n).await {
            Ok(()) => "sent",
            Err(PushError::Rejected(why)) => {
                tracing::warn!(key = %n.idempotency_key, %why, "notification rejected; dropped");
                "rejected"
            }
            Err(e) => {
                metrics::counter!("cell_notifications_total", "kind" => kind, "outcome" => e.outcome())
                    .increment(1);
                return Err(format!("sending {}: {e}", n.idempotency_key));
            }
        };
        metrics::counter!("cell_notifications_total", "kind" => kind, "outcome" => outcome)
            .increment(1);
    }
    Ok(())
}

/// Returns once the cell is not overloaded; `Err` if shutdown comes first, so the consumer
/// stops without handling (or saving past) the held event.
async fn wait_until_clear(
    overload: &Overload,
    shutdown: &mut watch::Receiver<bool>,
    progress: &Progress,
) -> Result<(), String> {
    if !overload.is_set() {
        return Ok(());
    }
    let mut rx = overload.subscribe();
    let started = Instant::now();
    let mut counted = started;
    tracing::info!("cell overloaded: notifications paused");
    let result = loop {
        if !*rx.borrow_and_update() {
            break Ok(());
        }
        if *shutdown.borrow() {
            break Err("shutting down while notifications are shed".to_string());
        }
        tokio::select! {
            _ = rx.changed() => {}
            r = shutdown.changed() => if r.is_err() {
                break Err("shutdown sender dropped while shed".to_string());
            },
            // Advance the shed counter while paused, not only at the end.
            () = tokio::time::sleep(TICK) => {}
        }
        let now = Instant::now();
        progress.add_shed(now - counted);
        counted = now;
    };
    progress.add_shed(counted.elapsed());
    tracing::info!(paused = ?started.elapsed(), "notifications resumed");
    result
}

/// Keeps `cell_notifications_lag` current, also while the consumer is paused or stuck
/// (which is when it matters). Never returns: it ends when [`run`] drops it, after the
/// consumer itself stopped (so the consumer's last cursor save is never cut short).
async fn sample_lag(kv: &dyn Kv, log: LogId, progress: &Progress) {
    loop {
        if let Ok(head) = kv.log_head(log).await {
            let handled = *lock(&progress.handled);
            let lag = head.0.saturating_sub(handled);
            metrics::gauge!("cell_notifications_lag").set(lag as f64);
        }
        tokio::time::sleep(TICK).await;
    }
}

/// The progress lock guards a plain number: a panic elsewhere cannot leave it inconsistent.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
