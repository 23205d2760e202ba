//! The target's own Prometheus metrics, scraped at start and end: the deltas say what the
//! server counted during the run, to compare with what the load generator saw.

use serde::Serialize;
use std::collections::BTreeMap;

/// Families reported by default.
pub const DEFAULT_FAMILIES: &[&str] = &[
    "cell_http_requests_total",
    "cell_orders_created_total",
    "cell_order_transitions_total",
    "cell_http_request_duration_seconds_sum",
    "cell_http_request_duration_seconds_count",
    "store_commit_seconds_sum",
    "store_commit_seconds_count",
    // The embedded store's single writer: commits (fsyncs), transactions, and its busy time.
    "cell_store_commits_total",
    "cell_store_transactions_total",
    "cell_store_run_microseconds_total",
    "cell_store_commit_microseconds_total",
    // The cell's menu cache: the hit rate of a `menu` run.
    "catalog_menu_cache_hits_total",
    "catalog_menu_cache_misses_total",
];

/// Parses Prometheus text exposition into `series → value` (series = name plus labels as
/// written). Comments, blank lines and unparsable lines are skipped; timestamps ignored.
pub fn parse(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The value follows the series; labels may contain spaces inside quotes.
        let split_at = match line.rfind('}') {
            Some(close) => close + 1,
            None => line.find(char::is_whitespace).unwrap_or(line.len()),
        };
        let (series, rest) = line.split_at(split_at);
        let Some(value) = rest.split_whitespace().next() else {
            continue;
        };
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => match v.parse::<f64>() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        out.insert(series.trim().to_string(), value);
    }
    out
}

/// The family (metric name) of a series.
pub fn family(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

/// What changed on the server during the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerDeltas {
    /// Whether both scrapes succeeded.
    pub scraped: bool,
    /// Sum of the deltas of every series of a family.
    pub families: BTreeMap<String, f64>,
    /// Non-zero deltas per series of the chosen families.
    pub series: BTreeMap<String, f64>,
}

/// Deltas `after - before` for the series of `families` (a series absent before counts
/// from 0: counters appear on first use).
pub fn deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    families: &[&str],
) -> ServerDeltas {
    let mut d = ServerDeltas {
        scraped: true,
        ..Default::default()
    };
    for f in families {
        d.families.insert((*f).to_string(), 0.0);
    }
    for (series, v) in after {
        let fam = family(series);
        if !families.contains(&fam) {
            continue;
        }
        let delta = v - before.get(series).copied().unwrap_or(0.0);
        *d.families.entry(fam.to_string()).or_default() += delta;
        if delta != 0.0 {
            d.series.insert(series.clone(), delta);
        }
    }
    d
}

impl ServerDeltas {
    /// The family totals, then the non-zero per-series deltas, for a table (empty when
    /// not scraped).
    pub fn rows(&self) -> Vec<(String, f64)> {
        if !self.scraped {
            return Vec::new();
        }
        self.families
            .iter()
            .chain(self.series.iter())
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}
