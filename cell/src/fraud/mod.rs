//! Fraud flags (issue 15, item 6): an asynchronous scorer reads the cell's event log and
//! dispatch's signals, runs the rules of `[fraud.rules]` and stores what they flag, with its
//! evidence, in the cell's store; admins and support staff list and review the flags through
//! `GET /api/v1/admin/flags` and `POST /api/v1/admin/flags/{id}/review` (`crate::http::flags`).
//!
//! Why this shape:
//! - Scoring never slows an order down: it runs after the fact, from the log, through the
//!   durable cursor [`CONSUMER`] (`crate::events::consume`), like the notification consumer.
//!   A flag is written in the same transaction that marks its event applied, so a replay after
//!   a crash writes nothing twice.
//! - Spoofed pings and `delivered` taps are not in the log (a spoofed ping is refused, a tap's
//!   position is only in the geostore), so dispatch hands them over through a bounded queue
//!   ([`signals`]) that never blocks the ping path.
//! - The rules are pure functions ([`rules`]) of gathered facts and one rule's settings.
//!
//! Layout: `config` (`[fraud]`), `rules`, `flags` (the record, keys, listing, review),
//! `scorer` (the log consumer), `signals` (dispatch's queue and its writer).
//!
//! Metrics: `cell_fraud_flags_total{rule}`, `cell_fraud_flags_open` (gauge),
//! `cell_fraud_rule_skipped_total{rule}` (a rule that could not be evaluated, e.g. the
//! provider did not answer), `cell_fraud_signals_dropped_total`.

pub mod config;
pub mod flags;
pub mod rules;
pub mod scorer;
pub mod signals;

#[cfg(test)]
pub(crate) mod api_tests;
#[cfg(test)]
mod signals_tests;
#[cfg(test)]
pub(crate) mod tests;

pub use config::{FraudConfig, Rule, Rules};
pub use flags::{Decision, Flag, FlagError, FlagState, Review};
pub use rules::RuleKind;
pub use scorer::{CONSUMER, Scorer};
pub use signals::{Signal, SignalSink};

use crate::events::{self, Start};
use std::sync::Arc;
use store::{Kv, LogId};
use tokio::sync::watch;

/// Starts the scorer and the signal writer (when `[fraud] enabled`); returns the sink dispatch
/// sends its signals to.
pub fn spawn(
    kv: Arc<dyn Kv>,
    log: LogId,
    scorer: Scorer,
    cfg: &FraudConfig,
    shutdown: watch::Receiver<bool>,
) -> Option<SignalSink> {
    if !cfg.enabled {
        return None;
    }
    let (sink, rx) = signals::channel(cfg.signal_queue);
    tokio::spawn(signals::run(kv.clone(), cfg.clone(), rx, shutdown.clone()));
    let scorer = Arc::new(scorer);
    {
        let kv = kv.clone();
        tokio::spawn(async move {
            if let Ok(open) = flags::open_count(&*kv).await {
                metrics::gauge!("cell_fraud_flags_open").set(open as f64);
            }
        });
    }
    tokio::spawn(events::consume(
        kv,
        log,
        Start::Durable(CONSUMER),
        move |pos, ev| {
            let scorer = scorer.clone();
            async move { scorer.handle(pos, &ev).await.map(|_| ()) }
        },
        shutdown,
    ));
    Some(sink)
}
