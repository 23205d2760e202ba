//! `drivesim`'s counters, its reconnect times and its status JSON (`--status-json`), for
//! scripts such as `loadgen/bench/ops.sh` that restart a cell under the simulated drivers.
//!
//! A reconnect is timed from the moment a driver's connection ended (the cell closed it, or
//! it failed) to the next successful `Hello` (the `HelloAck`): backoff, failed attempts while
//! the cell is down, and the handshake all count, as a driver would feel them. A handover
//! (the cell sent the driver elsewhere) is timed the same way but kept apart, since it is a
//! planned move rather than a loss.

use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Counters every task adds to; the status line and the status JSON read them.
#[derive(Default)]
pub(super) struct Stats {
    pub(super) connected: AtomicU64,
    pub(super) connects: AtomicU64,
    pub(super) connect_failures: AtomicU64,
    pub(super) pings: AtomicU64,
    pub(super) offers: AtomicU64,
    pub(super) declined: AtomicU64,
    pub(super) assigned: AtomicU64,
    pub(super) cancelled: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) handovers: AtomicU64,
    /// Sessions the cell closed with `token_expired`, resumed with a fresh token.
    pub(super) reauths: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) orders_placed: AtomicU64,
    pub(super) orders_failed: AtomicU64,
    /// Accepted offers given up because the connection ended before the assignment came
    /// and the router could not say whether the cell assigned them.
    pub(super) jobs_forgotten: AtomicU64,
    /// Accepted offers whose assignment was lost with the connection, found assigned
    /// through the router after the reconnect and delivered.
    pub(super) jobs_resumed: AtomicU64,
    /// Unacknowledged delivery progress sent again after a reconnect.
    pub(super) resent: AtomicU64,
    pub(super) last_error: std::sync::Mutex<String>,
    pub(super) reconnects: std::sync::Mutex<Vec<Reconnect>>,
}

impl Stats {
    pub(super) fn error(&self, what: impl std::fmt::Display) {
        self.errors.fetch_add(1, Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = what.to_string();
    }

    pub(super) fn line(&self, drivers: u64) -> String {
        let g = |c: &AtomicU64| c.load(Relaxed);
        let mut s = format!(
            "drivers {}/{drivers} connected · offers {} (declined {}) · assigned {} · delivered {} · cancelled {}",
            g(&self.connected),
            g(&self.offers),
            g(&self.declined),
            g(&self.assigned),
            g(&self.delivered),
            g(&self.cancelled),
        );
        if g(&self.reauths) > 0 {
            s += &format!(" · re-authenticated {}", g(&self.reauths));
        }
        if g(&self.handovers) > 0 {
            s += &format!(" · handovers {}", g(&self.handovers));
        }
        if g(&self.orders_placed) + g(&self.orders_failed) > 0 {
            s += &format!(
                " · orders {} placed, {} failed",
                g(&self.orders_placed),
                g(&self.orders_failed)
            );
        }
        s += &reconnect_line(self);
        let errors = g(&self.errors) + g(&self.connect_failures);
        if errors > 0 {
            let last = self.last_error.lock().unwrap_or_else(|p| p.into_inner());
            s += &format!(" · errors {errors} (last: {last})");
        }
        s
    }
}

/// Why a driver was reconnecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cause {
    /// The connection ended without a handover (cell stopped, network, error).
    Lost,
    /// The cell handed the driver over to another cell.
    Handover,
}

impl Cause {
    fn name(self) -> &'static str {
        match self {
            Cause::Lost => "lost",
            Cause::Handover => "handover",
        }
    }
}

/// One reconnect: when it completed (Unix ms), how long it took (ms), why.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reconnect {
    pub done_unix_ms: u64,
    pub took_ms: u64,
    pub cause: Cause,
}

/// A driver's pending reconnect: set when its connection ends, completed on the next Hello.
#[derive(Default)]
pub(super) struct Pending(Option<(Instant, Cause)>);

impl Pending {
    /// The connection ended at `at`; a later loss while already reconnecting keeps the first.
    pub fn lost(&mut self, at: Instant, cause: Cause) {
        if self.0.is_none() {
            self.0 = Some((at, cause));
        }
    }

    /// A `Hello` succeeded at `at` (`now_unix_ms` the same moment on the wall clock).
    pub fn connected(&mut self, stats: &Stats, at: Instant, now_unix_ms: u64) {
        if let Some((since, cause)) = self.0.take() {
            let took_ms = at.saturating_duration_since(since).as_millis() as u64;
            stats
                .reconnects
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Reconnect {
                    done_unix_ms: now_unix_ms,
                    took_ms,
                    cause,
                });
        }
    }
}

/// The `q` quantile (0..=1) of sorted `v` (nearest rank), 0 when empty.
fn quantile(v: &[u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Count, p50, p99 and max of the reconnects with `cause`, in ms.
fn summary(all: &[Reconnect], cause: Cause) -> Value {
    let mut v: Vec<u64> = all
        .iter()
        .filter(|r| r.cause == cause)
        .map(|r| r.took_ms)
        .collect();
    v.sort_unstable();
    json!({
        "count": v.len(),
        "p50_ms": quantile(&v, 0.50),
        "p99_ms": quantile(&v, 0.99),
        "max_ms": v.last().copied().unwrap_or(0),
    })
}

/// The one-line reconnect summary for the status line ("" before any reconnect).
pub(super) fn reconnect_line(stats: &Stats) -> String {
    let all = stats.reconnects.lock().unwrap_or_else(|p| p.into_inner());
    let s = summary(&all, Cause::Lost);
    if s["count"] == 0 {
        return String::new();
    }
    format!(
        " · reconnects {} (p99 {} ms, max {} ms)",
        s["count"], s["p99_ms"], s["max_ms"]
    )
}

/// Everything counted so far, with every reconnect (a script picks a time window from it).
pub(super) fn status_json(stats: &Stats, drivers: u64, elapsed_s: f64, now_unix_ms: u64) -> Value {
    let g = |c: &AtomicU64| c.load(Relaxed);
    let all = stats.reconnects.lock().unwrap_or_else(|p| p.into_inner());
    json!({
        "at_unix_ms": now_unix_ms,
        "elapsed_s": elapsed_s,
        "drivers": drivers,
        "connected": g(&stats.connected),
        "connects": g(&stats.connects),
        "connect_failures": g(&stats.connect_failures),
        "offers": g(&stats.offers),
        "declined": g(&stats.declined),
        "assigned": g(&stats.assigned),
        "delivered": g(&stats.delivered),
        "cancelled": g(&stats.cancelled),
        "handovers": g(&stats.handovers),
        "reauths": g(&stats.reauths),
        "errors": g(&stats.errors),
        "jobs_forgotten": g(&stats.jobs_forgotten),
        "jobs_resumed": g(&stats.jobs_resumed),
        "resent": g(&stats.resent),
        "last_error": *stats.last_error.lock().unwrap_or_else(|p| p.into_inner()),
        "reconnect": {
            "lost": summary(&all, Cause::Lost),
            "handover": summary(&all, Cause::Handover),
            "events": all.iter().map(|r| json!([r.done_unix_ms, r.took_ms, r.cause.name()])).collect::<Vec<_>>(),
        },
    })
}

/// Writes `v` to `path` whole (a temporary file renamed over it), so a reader never sees
/// half a file.
pub(super) fn write(path: &Path, v: &Value) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, v.to_string())?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.99), 0);
    }

    #[test]
    fn a_reconnect_is_timed_from_the_first_loss_to_the_next_hello() {
        let stats = Stats::default();
        let mut p = Pending::default();
        let t0 = Instant::now();
        p.lost(t0, Cause::Lost);
        // A failed attempt meanwhile does not restart the clock.
        p.lost(t0 + std::time::Duration::from_millis(500), Cause::Lost);
        p.connected(&stats, t0 + std::time::Duration::from_millis(2300), 42);
        // A connect with nothing pending (the first one) is not a reconnect.
        p.connected(&stats, t0 + std::time::Duration::from_millis(9000), 43);
        let j = status_json(&stats, 1, 1.0, 44);
        assert_eq!(j["reconnect"]["lost"]["count"], 1, "{j}");
        assert_eq!(j["reconnect"]["lost"]["p99_ms"], 2300, "{j}");
        assert_eq!(j["reconnect"]["handover"]["count"], 0, "{j}");
        assert_eq!(
            j["reconnect"]["events"][0],
            json!([42, 2300, "lost"]),
            "{j}"
        );
    }
}
