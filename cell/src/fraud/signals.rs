//! Dispatch signals: what the fraud rules need from the driver side that the event log does
//! not carry — a ping refused as spoofed (it is never stored, so no event exists) and where
//! the driver was when they tapped `delivered`. Dispatch sends them without waiting through a
//! bounded [`SignalSink`]; [`run`] turns each into a flag in the store.
//!
//! A full queue drops the signal (`cell_fraud_signals_dropped_total`): the ping path must
//! never wait on the store. Signals in the queue when the cell stops are lost; the flags
//! already written are not.

use super::config::FraudConfig;
use super::flags::{self, Flag};
use super::rules::{self, RuleKind};
use domain::{DriverId, OrderId, UnixMs};
use serde_json::json;
use std::sync::Arc;
use store::{Kv, TxnError};
use tokio::sync::{mpsc, watch};

/// One signal from dispatch.
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// A ping refused for an implausible speed since the driver's previous one.
    Spoofed {
        driver: DriverId,
        lat: f64,
        lng: f64,
        implied_mps: f64,
        /// The ping's own time (driver clock).
        ts_ms: u64,
        at: UnixMs,
    },
    /// A driver tapped `delivered`; `tap` is their last known position then.
    DeliveredTap {
        driver: DriverId,
        order: OrderId,
        tap: Option<(f64, f64)>,
        dropoff: (f64, f64),
        at: UnixMs,
    },
}

/// Dispatch's end of the queue. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SignalSink(mpsc::Sender<Signal>);

impl SignalSink {
    /// Queues `s`, or drops and counts it when the queue is full (never waits).
    pub fn send(&self, s: Signal) {
        if self.0.try_send(s).is_err() {
            metrics::counter!("cell_fraud_signals_dropped_total").increment(1);
        }
    }
}

/// A queue of `capacity` signals.
pub fn channel(capacity: usize) -> (SignalSink, mpsc::Receiver<Signal>) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (SignalSink(tx), rx)
}

/// The flag a signal raises under `cfg`, if any. Pure.
pub fn flag_for(s: &Signal, cfg: &FraudConfig) -> Option<Flag> {
    match *s {
        Signal::Spoofed {
            driver,
            lat,
            lng,
            implied_mps,
            ts_ms,
            at,
        } => {
            let r = RuleKind::GpsSpoof;
            cfg.rules.on(r).then(|| {
                let e = json!({"implied_mps": implied_mps.round(), "lat": lat, "lng": lng, "ping_ts_ms": ts_ms});
                Flag::new(format!("s{driver}.{ts_ms}"), r, format!("driver:{driver}"), None, e, at)
            })
        }
        Signal::DeliveredTap {
            driver,
            order,
            tap,
            dropoff,
            at,
        } => {
            let r = RuleKind::DeliveredFar;
            if !cfg.rules.on(r) {
                return None;
            }
            let e = rules::delivered_far(order, tap?, dropoff, cfg.rules.get(r))?;
            Some(Flag::new(
                format!("d{order}"),
                r,
                format!("driver:{driver}"),
                Some(order),
                e,
                at,
            ))
        }
    }
}

/// Stores `flag` unless already stored; the open count after it when written.
pub async fn store_flag(kv: &dyn Kv, flag: Flag) -> Result<Option<u64>, store::StoreError> {
    let flag = Arc::new(flag);
    let r = store::transact(kv, move |txn| {
        let flag = flag.clone();
        Box::pin(async move {
            if !flags::insert::<()>(txn, &flag).await? {
                return Ok(None);
            }
            let open = txn
                .get(&flags::open_key())
                .await?
                .and_then(|b| b.try_into().ok().map(u64::from_be_bytes));
            Ok::<_, TxnError<()>>(Some(open.unwrap_or(0)))
        })
    })
    .await;
    r.map_err(|e| match e {
        TxnError::Store(e) => e,
        TxnError::Abort(()) => store::StoreError::Closed,
    })
}

/// Turns signals into flags until `shutdown` flips or every sink is dropped.
pub async fn run(
    kv: Arc<dyn Kv>,
    cfg: FraudConfig,
    mut rx: mpsc::Receiver<Signal>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let s = tokio::select! {
            s = rx.recv() => match s { Some(s) => s, None => return },
            _ = shutdown.changed() => return,
        };
        let Some(flag) = flag_for(&s, &cfg) else {
            continue;
        };
        let rule = flag.rule;
        // A store that fails now is tried a few times; a signal is not worth holding the
        // queue (and dropping newer ones) for longer.
        for attempt in 0..3 {
            match store_flag(&*kv, flag.clone()).await {
                Ok(Some(open)) => {
                    metrics::counter!("cell_fraud_flags_total", "rule" => rule.as_str())
                        .increment(1);
                    metrics::gauge!("cell_fraud_flags_open").set(open as f64);
                    tracing::info!(flag = %flag.id, rule = rule.as_str(), subject = %flag.subject, "fraud flag raised");
                    break;
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "storing a fraud flag failed");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
        }
    }
}
