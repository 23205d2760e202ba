//! Event-log consumers. Everything after an order is written (matching, tracking pushes,
//! notifications) reads the cell's log through a cursor: durable consumers keep theirs in
//! the store (`("cursor", name)`, under the cell's subspace like every cell key), so a restart resumes where it stopped; live consumers
//! (tracking fan-out) start at the head. Consumers wake on commit, never poll.

use domain::OrderEvent;
use std::future::Future;
use std::sync::Arc;
use store::{Kv, LogId, LogPos};
use tokio::sync::watch;

/// Events read per batch: bounds memory and the work between cursor saves.
const BATCH: usize = 256;

fn cursor_key(name: &str) -> Vec<u8> {
    store::keys::pack(&("cursor", name))
}

/// The saved position of consumer `name` (0 when it never ran).
pub async fn load_cursor(kv: &dyn Kv, name: &'static str) -> Result<LogPos, store::StoreError> {
    let r = store::read(kv, move |txn| {
        Box::pin(async move {
            let v = txn.get(&cursor_key(name)).await?;
            Ok::<_, store::TxnError<()>>(v.and_then(|b| LogPos::from_bytes(&b)).unwrap_or_default())
        })
    })
    .await;
    match r {
        Ok(p) => Ok(p),
        Err(store::TxnError::Store(e)) => Err(e),
        Err(store::TxnError::Abort(())) => Ok(LogPos(0)),
    }
}

/// Saves the cursor of consumer `name`.
pub async fn save_cursor(
    kv: &dyn Kv,
    name: &'static str,
    pos: LogPos,
) -> Result<(), store::StoreError> {
    let r = store::transact(kv, move |txn| {
        Box::pin(async move {
            txn.set(&cursor_key(name), &pos.to_bytes());
            Ok::<_, store::TxnError<()>>(())
        })
    })
    .await;
    r.map_err(|e| match e {
        store::TxnError::Store(e) => e,
        store::TxnError::Abort(()) => store::StoreError::Closed,
    })
}

/// Where a consumer starts.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Its durable cursor (saved after each batch).
    Durable(&'static str),
    /// The current head: only new events (nothing saved).
    Head,
}

/// What one [`consume_batch`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// The position of the last event handled (or skipped as undecodable).
    pub cursor: LogPos,
    /// Events read (0: the consumer is caught up).
    pub read: usize,
    /// A handler failed: the events from that one on are read again next time.
    pub failed: bool,
}

/// One batch of a consumer, without waiting: reads the events after `cursor`, runs `handle`
/// on each in order until one fails, then saves the cursor when `start` is durable. The
/// loop of [`consume`] calls this after each wake-up; a simulator calls it on its own
/// schedule.
pub async fn consume_batch<F, Fut>(
    kv: &dyn Kv,
    log: LogId,
    start: Start,
    mut cursor: LogPos,
    handle: &mut F,
) -> Result<Batch, store::StoreError>
where
    F: FnMut(LogPos, OrderEvent) -> Fut + Send,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let name = match start {
        Start::Durable(n) => n,
        Start::Head => "live",
    };
    let events = kv.read_events(log, cursor.next(), BATCH).await?;
    let read = events.len();
    let mut failed = false;
    for e in events {
        match serde_json::from_slice::<OrderEvent>(&e.payload) {
            Ok(ev) => {
                if let Err(err) = handle(e.pos, ev).await {
                    tracing::warn!(consumer = name, pos = e.pos.0, error = %err, "handler failed; will retry");
                    failed = true;
                    break;
                }
            }
            // An event this version cannot read is skipped, loudly: blocking the log
            // forever would stop every order in the cell.
            Err(err) => {
                tracing::error!(consumer = name, pos = e.pos.0, error = %err, "undecodable event skipped")
            }
        }
        cursor = e.pos;
    }
    metrics::gauge!("cell_event_consumer_position", "consumer" => name).set(cursor.0 as f64);
    if read > 0
        && let Start::Durable(n) = start
        && let Err(e) = save_cursor(kv, n, cursor).await
    {
        tracing::warn!(consumer = name, error = %e, "saving cursor failed");
    }
    Ok(Batch {
        cursor,
        read,
        failed,
    })
}

/// Runs `handle` on every event after the start point, in order, until `shutdown` flips.
/// A handler error is logged and the batch retried after a pause: effects must be
/// idempotent (they are keyed by the event's position).
pub async fn consume<F, Fut>(
    kv: Arc<dyn Kv>,
    log: LogId,
    start: Start,
    mut handle: F,
    mut shutdown: watch::Receiver<bool>,
) where
    F: FnMut(LogPos, OrderEvent) -> Fut + Send,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let name = match start {
        Start::Durable(n) => n,
        Start::Head => "live",
    };
    let mut cursor = loop {
        let r = match start {
            Start::Durable(n) => load_cursor(&*kv, n).await,
            Start::Head => kv.log_head(log).await,
        };
        match r {
            Ok(p) => break p,
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "reading cursor failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    };
    loop {
        if *shutdown.borrow() {
            return;
        }
        let head = tokio::select! {
            h = kv.wait_for_events(log, cursor) => h,
            _ = shutdown.changed() => return,
        };
        if let Err(e) = head {
            tracing::warn!(consumer = name, error = %e, "waiting for events failed");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            continue;
        }
        let failed = match consume_batch(&*kv, log, start, cursor, &mut handle).await {
            Ok(b) => {
                cursor = b.cursor;
                b.failed
            }
            Err(e) => {
                tracing::warn!(consumer = name, error = %e, "reading events failed");
                true
            }
        };
        if failed {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}
