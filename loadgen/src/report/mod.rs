//! The report: per-operation results built from the recorder, the server's metric
//! deltas, SLO verdicts, machine facts; rendered as a one-screen table and as JSON.

pub mod html;
pub mod machine;
pub mod metrics;
pub mod output;
pub mod slo;
pub mod stats;
pub mod summary;
#[cfg(test)]
mod tests;

use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use serde::Serialize;
use stats::{OpStats, rate};
use std::collections::BTreeMap;
use std::time::Duration;

/// Latency quantiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Quantiles {
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One operation's results over the steady-state window.
#[derive(Debug, Clone, Serialize)]
pub struct OpReport {
    pub op: String,
    /// Requests sent (whole run, ramp-up included).
    pub sent: u64,
    /// Steady state: 2xx responses.
    pub ok: u64,
    /// Steady state: all failures (statuses, timeouts, transport).
    pub errors: u64,
    /// Steady state: non-2xx responses by status.
    pub failed: BTreeMap<String, u64>,
    pub timed_out: u64,
    pub transport_errors: u64,
    /// Successful responses per second over `rate_window_s`.
    pub rate_ok_per_s: f64,
    /// The scheduled steady duration, or longer when answers came after it ended.
    pub rate_window_s: f64,
    /// From the intended send time (what a user waiting on a schedule sees).
    pub latency_ms: Quantiles,
    /// From the actual send time (the server plus the network only).
    pub service_ms: Quantiles,
    /// The latency histogram, HdrHistogram V2 deflate, base64: merge reports with any
    /// HdrHistogram implementation.
    pub latency_hist_b64: String,
    /// Share of what was sent that the server never counted, percent (ping ops only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_pct: Option<f64>,
    /// Whether the op has latencies (pings are fire-and-forget datagrams: counted, not
    /// timed); latency SLOs without an `op.` prefix skip untimed ops.
    pub timed: bool,
    #[serde(skip)]
    stats: OpStats,
}

impl OpReport {
    pub fn build(op: &str, sent: u64, stats: OpStats, window: Duration) -> Self {
        let mut buf = Vec::new();
        let hist = match V2DeflateSerializer::new().serialize(&stats.latency, &mut buf) {
            Ok(_) => base64::engine::general_purpose::STANDARD.encode(&buf),
            Err(_) => String::new(),
        };
        Self {
            op: op.to_string(),
            sent,
            ok: stats.ok,
            errors: stats.errors(),
            failed: stats
                .failed
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            timed_out: stats.timed_out,
            transport_errors: stats.transport,
            rate_ok_per_s: rate(stats.ok, window),
            rate_window_s: window.as_secs_f64(),
            latency_ms: Quantiles::of(&stats.latency),
            service_ms: Quantiles::of(&stats.service),
            latency_hist_b64: hist,
            loss_pct: None,
            timed: true,
            stats,
        }
    }

    /// An op that is counted but not timed (datagrams): `ok` handed to the network over
    /// `window`, `errors` failed sends.
    pub fn untimed(op: &str, sent: u64, ok: u64, errors: u64, window: Duration) -> Self {
        let stats = OpStats {
            ok,
            transport: errors,
            ..OpStats::new()
        };
        Self {
            timed: false,
            ..Self::build(op, sent, stats, window)
        }
    }

    /// Latency at quantile `q` (0..=1), ms.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.stats.latency_ms(q)
    }
}

/// The window an op's rate is computed over: the scheduled steady duration, or up to
/// the last answer when answers kept coming after the schedule ended (so a target that
/// fell behind shows the rate it really sustained).
pub fn steady_window(
    scheduled: Duration,
    steady_from: std::time::Instant,
    last_done: Option<std::time::Instant>,
) -> Duration {
    let answered = last_done.map_or(Duration::ZERO, |d| d.saturating_duration_since(steady_from));
    scheduled.max(answered)
}

/// Counts of one op during ramp-up (not in the summary or the SLOs).
#[derive(Debug, Clone, Serialize)]
pub struct RampCounts {
    pub op: String,
    pub ok: u64,
    pub errors: u64,
}

/// One second of the run, per op.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds since the start of the run.
    pub t_s: f64,
    pub ops: BTreeMap<String, TimelineOp>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineOp {
    pub ok_per_s: f64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl TimelinePoint {
    pub fn build(t: Duration, dt: Duration, ops: &[&str], stats: &[OpStats]) -> Self {
        let ops = ops
            .iter()
            .zip(stats)
            .filter(|(_, s)| s.completed() > 0)
            .map(|(name, s)| {
                (
                    (*name).to_string(),
                    TimelineOp {
                        ok_per_s: rate(s.ok, dt),
                        errors: s.errors(),
                        p50_ms: s.latency_ms(0.5),
                        p99_ms: s.latency_ms(0.99),
                        max_ms: s.latency_ms(1.0),
                    },
                )
            })
            .collect();
        Self {
            t_s: t.as_secs_f64(),
            ops,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub scenario: String,
    pub target: String,
    pub started_unix_s: u64,
    /// The options the run was started with.
    pub config: serde_json::Value,
    pub machine: machine::Machine,
    pub ramp_up_s: f64,
    /// Steady-state window the rates are computed over.
    pub steady_s: f64,
    pub ops: Vec<OpReport>,
    pub ramp: Vec<RampCounts>,
    /// Requests still unanswered when the run stopped waiting.
    pub unfinished: u64,
    /// Times the dispatcher had to wait for a free in-flight slot (latency still counts
    /// from the intended time).
    pub in_flight_cap_waits: u64,
    /// Worst lag of the dispatcher behind the schedule, ms.
    pub max_dispatch_lag_ms: f64,
    pub server: metrics::ServerDeltas,
    pub cpu: machine::CpuUse,
    pub slo: Vec<slo::SloResult>,
    pub error_samples: Vec<String>,
    pub timeline: Vec<TimelinePoint>,
}

impl Report {
    pub fn slo_passed(&self) -> bool {
        self.slo.iter().all(|r| r.pass)
    }

    /// The HTML page of this report.
    pub fn page(&self) -> html::Page<'_> {
        html::Page {
            title: format!("loadgen {} against {}", self.scenario, self.target),
            summary: String::new(),
            ops: &self.ops,
            timeline: &self.timeline,
            slo: &self.slo,
            server: self.server.rows(),
            cpu: &self.cpu,
            machine: &self.machine,
            facts: Vec::new(),
        }
    }
}
