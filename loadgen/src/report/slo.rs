//! Service-level objectives given on the command line, evaluated against the report.
//!
//! Syntax: `[op.]metric=value`, repeatable. Without `op.` the objective applies to every
//! operation that saw traffic. Metrics:
//!
//! | key                                  | meaning                               |
//! |--------------------------------------|---------------------------------------|
//! | `p50_ms`, `p90_ms`, `p99_ms`, `p999_ms`, `pNN.N_ms` | latency quantile at most N ms |
//! | `max_ms`                             | worst latency at most N ms            |
//! | `errors`                             | at most N failed requests             |
//! | `error_pct`                          | at most N % of finished requests fail |
//! | `min_rate`                           | at least N successful requests/s      |
//! | `loss_pct`                           | at most N % of pings lost (ping ops)  |
//!
//! Latency objectives without `op.` skip untimed ops (pings), and `loss_pct` without
//! `op.` applies only to ops that measure loss.

use super::OpReport;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SloMetric {
    /// Latency quantile in percent (99.9 for p99.9), in ms.
    Quantile(f64),
    MaxMs,
    Errors,
    ErrorPct,
    MinRate,
    LossPct,
}

impl SloMetric {
    /// Whether an objective without `op.` applies to `r`.
    fn applies_to(self, r: &OpReport) -> bool {
        match self {
            SloMetric::Quantile(_) | SloMetric::MaxMs => r.timed,
            SloMetric::LossPct => r.loss_pct.is_some(),
            _ => true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    pub op: Option<String>,
    pub metric: SloMetric,
    pub limit: f64,
    text: String,
}

impl fmt::Display for Slo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_metric(key: &str) -> Result<SloMetric, String> {
    Ok(match key {
        "max_ms" => SloMetric::MaxMs,
        "errors" => SloMetric::Errors,
        "error_pct" => SloMetric::ErrorPct,
        "min_rate" => SloMetric::MinRate,
        "loss_pct" => SloMetric::LossPct,
        "p999_ms" => SloMetric::Quantile(99.9),
        k => {
            let q = k
                .strip_prefix('p')
                .and_then(|k| k.strip_suffix("_ms"))
                .and_then(|n| n.parse::<f64>().ok())
                .filter(|q| *q > 0.0 && *q <= 100.0)
                .ok_or_else(|| {
                    format!(
                        "unknown SLO metric {k:?} (p50_ms, p90_ms, p99_ms, p999_ms, pNN.N_ms, \
                         max_ms, errors, error_pct, min_rate, loss_pct)"
                    )
                })?;
            SloMetric::Quantile(q)
        }
    })
}

impl FromStr for Slo {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| format!("SLO {s:?} is not key=value (e.g. p99_ms=2)"))?;
        let limit: f64 = value
            .trim()
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("SLO {s:?}: {value:?} is not a non-negative number"))?;
        let key = key.trim();
        // Metric names contain no dots except inside a quantile (p99.9_ms), so the op is
        // everything before the first dot that does not belong to the metric.
        let (op, metric) = match parse_metric(key) {
            Ok(m) => (None, m),
            Err(e) => match key.split_once('.') {
                Some((op, m)) if !op.is_empty() => (Some(op.to_string()), parse_metric(m)?),
                _ => return Err(e),
            },
        };
        Ok(Slo {
            op,
            metric,
            limit,
            text: s.trim().to_string(),
        })
    }
}

/// One objective checked against one operation.
#[derive(Debug, Clone, Serialize)]
pub struct SloResult {
    pub slo: String,
    pub op: String,
    /// None when the operation did not exist or saw no traffic.
    pub actual: Option<f64>,
    pub limit: f64,
    pub pass: bool,
}

fn actual(metric: SloMetric, r: &OpReport) -> Option<f64> {
    let finished = r.ok + r.errors;
    match metric {
        // Untimed ops (pings) have no latency to judge.
        SloMetric::Quantile(q) => (r.timed && r.ok > 0).then(|| r.quantile_ms(q / 100.0)),
        SloMetric::MaxMs => (r.timed && r.ok > 0).then_some(r.latency_ms.max),
        SloMetric::Errors => Some(r.errors as f64),
        SloMetric::ErrorPct => (finished > 0).then(|| 100.0 * r.errors as f64 / finished as f64),
        SloMetric::MinRate => Some(r.rate_ok_per_s),
        SloMetric::LossPct => r.loss_pct,
    }
}

fn check(metric: SloMetric, actual: Option<f64>, limit: f64) -> bool {
    match (metric, actual) {
        (_, None) => false,
        (SloMetric::MinRate, Some(a)) => a >= limit,
        (_, Some(a)) => a <= limit,
    }
}

/// Checks every objective; an objective without `op.` is checked against each operation
/// that was sent at least once.
pub fn evaluate(slos: &[Slo], ops: &[OpReport]) -> Vec<SloResult> {
    let mut out = Vec::new();
    for slo in slos {
        let targets: Vec<&OpReport> = match &slo.op {
            Some(name) => ops.iter().filter(|r| &r.op == name).collect(),
            None => ops
                .iter()
                .filter(|r| r.sent > 0 && slo.metric.applies_to(r))
                .collect(),
        };
        if targets.is_empty() {
            out.push(SloResult {
                slo: slo.to_string(),
                op: slo.op.clone().unwrap_or_else(|| "*".into()),
                actual: None,
                limit: slo.limit,
                pass: false,
            });
        }
        for r in targets {
            let a = actual(slo.metric, r);
            out.push(SloResult {
                slo: slo.to_string(),
                op: r.op.clone(),
                actual: a,
                limit: slo.limit,
                pass: check(slo.metric, a, slo.limit),
            });
        }
    }
    out
}

/// One line per verdict, for the text summaries.
pub fn render(results: &[SloResult]) -> String {
    let mut s = String::new();
    for v in results {
        s += &format!(
            "SLO {:<22} {:<10} actual {:>10}  {}\n",
            v.slo,
            v.op,
            v.actual.map_or("n/a".into(), |a| format!("{a:.3}")),
            if v.pass { "ok" } else { "MISSED" }
        );
    }
    s
}
