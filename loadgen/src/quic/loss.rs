//! Server-side accounting of pings: what the cell counted between two `/metrics` scrapes,
//! compared with what the load generator sent.
//!
//! - `cell_quic_datagrams_total{outcome}`: datagrams the QUIC gateway read, by outcome
//!   (`ok`, `undecodable`, `wrong_driver`, and the ping rejections). Their sum is what
//!   **arrived** at the gateway.
//! - `cell_pings_total`: pings the dispatch **accepted** (stored in the geostore).
//! - `cell_pings_rejected_total{reason}`: pings the dispatch refused (`from_future`,
//!   `too_old`, `spoofed`, `invalid`).
//!
//! Loss is `sent − accepted`; of that, `sent − arrived` never reached the gateway (dropped
//! by the client's or the server's buffers or the kernel), and `arrived − accepted` was
//! refused. The figures are only exact when nothing else pings the cell during the run;
//! a negative value (clamped to 0 here) says something else did.
//!
//! Loss per driver, from the cell's own per-driver counters, is in [`super::seen`]; these
//! totals stay in the report as the cross-check (and the only figure against a cell
//! without that endpoint).

use serde::Serialize;
use std::collections::BTreeMap;

use crate::report::metrics::family;

/// The metric families the ping scenarios scrape.
pub const FAMILIES: &[&str] = &[
    "cell_pings_total",
    "cell_pings_rejected_total",
    "cell_quic_datagrams_total",
    "cell_quic_connections",
    "cell_tracking_ping_to_push_seconds_sum",
    "cell_tracking_ping_to_push_seconds_count",
];

/// What the server counted during the run.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServerPings {
    /// Both scrapes succeeded.
    pub scraped: bool,
    /// Sum of `cell_quic_datagrams_total` deltas: datagrams the gateway read.
    pub arrived: u64,
    /// `cell_pings_total` delta: pings stored.
    pub accepted: u64,
    /// `cell_pings_rejected_total` delta per reason.
    pub rejected: BTreeMap<String, u64>,
    /// `cell_quic_datagrams_total` delta per outcome.
    pub datagrams: BTreeMap<String, u64>,
}

/// The value of label `name` in a series like `x{a="1",outcome="ok"}`.
pub(super) fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let inner = series.split_once('{')?.1.strip_suffix('}')?;
    inner.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

fn delta(before: &BTreeMap<String, f64>, series: &str, after: f64) -> u64 {
    (after - before.get(series).copied().unwrap_or(0.0)).max(0.0) as u64
}

impl ServerPings {
    /// The deltas between two scrapes (series absent before count from 0).
    pub fn from_scrapes(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> Self {
        let mut s = Self {
            scraped: true,
            ..Self::default()
        };
        for (series, &v) in after {
            match family(series) {
                "cell_pings_total" => s.accepted += delta(before, series, v),
                "cell_pings_rejected_total" => {
                    let r = label(series, "reason").unwrap_or("?").to_string();
                    *s.rejected.entry(r).or_default() += delta(before, series, v);
                }
                "cell_quic_datagrams_total" => {
                    let d = delta(before, series, v);
                    let o = label(series, "outcome").unwrap_or("?").to_string();
                    *s.datagrams.entry(o).or_default() += d;
                    s.arrived += d;
                }
                _ => {}
            }
        }
        s
    }

    /// Rows for the HTML report's server table.
    pub fn rows(&self) -> Vec<(String, f64)> {
        if !self.scraped {
            return Vec::new();
        }
        let mut v = vec![
            (
                "pings arrived at the gateway".to_string(),
                self.arrived as f64,
            ),
            (
                "cell_pings_total (accepted)".to_string(),
                self.accepted as f64,
            ),
        ];
        v.extend(self.rejected.iter().map(|(k, n)| {
            (
                format!("cell_pings_rejected_total{{reason={k}}}"),
                *n as f64,
            )
        }));
        v.extend(self.datagrams.iter().map(|(k, n)| {
            (
                format!("cell_quic_datagrams_total{{outcome={k}}}"),
                *n as f64,
            )
        }));
        v
    }

    /// Total rejected by the dispatch.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }
}

/// Sent against received.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Loss {
    pub sent: u64,
    pub arrived: u64,
    pub accepted: u64,
    /// `sent − accepted` (0 if negative).
    pub lost: u64,
    /// `sent − arrived`: never read by the gateway.
    pub lost_in_transit: u64,
    /// `arrived − accepted`: read but refused.
    pub refused: u64,
    /// `lost / sent`, percent (0 when nothing was sent).
    pub loss_pct: f64,
    /// True when the server counted more than was sent: another client was active.
    pub foreign_traffic: bool,
}

impl Loss {
    pub fn new(sent: u64, server: &ServerPings) -> Self {
        let lost = sent.saturating_sub(server.accepted);
        Self {
            sent,
            arrived: server.arrived,
            accepted: server.accepted,
            lost,
            lost_in_transit: sent.saturating_sub(server.arrived),
            refused: server.arrived.saturating_sub(server.accepted),
            loss_pct: if sent == 0 {
                0.0
            } else {
                lost as f64 * 100.0 / sent as f64
            },
            foreign_traffic: server.arrived > sent || server.accepted > sent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::metrics::parse;

    const BEFORE: &str = "cell_pings_total 100\n\
        cell_pings_rejected_total{reason=\"too_old\"} 1\n\
        cell_quic_datagrams_total{outcome=\"ok\"} 100\n";
    const AFTER: &str = "# TYPE cell_pings_total counter\ncell_pings_total 1080\n\
        cell_pings_rejected_total{reason=\"too_old\"} 6\n\
        cell_pings_rejected_total{reason=\"spoofed\"} 2\n\
        cell_quic_datagrams_total{outcome=\"ok\"} 1080\n\
        cell_quic_datagrams_total{outcome=\"from_future\"} 7\n\
        cell_http_requests_total{route=\"x\"} 5\n";

    #[test]
    fn deltas_from_scrapes() {
        let s = ServerPings::from_scrapes(&parse(BEFORE), &parse(AFTER));
        assert!(s.scraped);
        assert_eq!(s.accepted, 980);
        assert_eq!(s.arrived, 987);
        assert_eq!(s.rejected["too_old"], 5);
        assert_eq!(s.rejected["spoofed"], 2);
        assert_eq!(s.rejected_total(), 7);
        assert_eq!(s.datagrams["from_future"], 7);
    }

    #[test]
    fn loss_math() {
        let s = ServerPings::from_scrapes(&parse(BEFORE), &parse(AFTER));
        let l = Loss::new(1000, &s);
        assert_eq!(l.lost, 20);
        assert_eq!(l.lost_in_transit, 13);
        assert_eq!(l.refused, 7);
        assert_eq!(l.lost_in_transit + l.refused, l.lost);
        assert!((l.loss_pct - 2.0).abs() < 1e-9);
        assert!(!l.foreign_traffic);
        // Someone else pinged too: clamped, flagged.
        let l = Loss::new(900, &s);
        assert_eq!((l.lost, l.lost_in_transit), (0, 0));
        assert!(l.foreign_traffic);
        assert_eq!(Loss::new(0, &ServerPings::default()).loss_pct, 0.0);
    }

    #[test]
    fn labels() {
        assert_eq!(label("a{x=\"1\",outcome=\"ok\"}", "outcome"), Some("ok"));
        assert_eq!(label("a", "outcome"), None);
    }
}
