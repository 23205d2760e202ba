//! The HTML report: one self-contained file (inline CSS and SVG, no scripts, no network)
//! with, per operation, latency over time (p50 and p99 per second) and rate over time,
//! then the summary table, SLO verdicts, the server's metric deltas and CPU per process.

use super::machine::{CpuUse, Machine};
use super::slo::SloResult;
use super::summary::ms;
use super::{OpReport, TimelinePoint};
use std::collections::BTreeSet;
use std::fmt::Write;

/// Everything a report page shows.
pub struct Page<'a> {
    pub title: String,
    /// The text summary, shown verbatim (what the terminal showed).
    pub summary: String,
    pub ops: &'a [OpReport],
    pub timeline: &'a [TimelinePoint],
    pub slo: &'a [SloResult],
    /// Server metric deltas over the run (`name`, delta).
    pub server: Vec<(String, f64)>,
    pub cpu: &'a CpuUse,
    pub machine: &'a Machine,
    /// Further facts (`label`, value), e.g. loss.
    pub facts: Vec<(String, String)>,
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A series of points on a chart.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A value rounded for an axis label.
fn tick(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

const W: f64 = 460.0;
const H: f64 = 180.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 26.0;
const TOP: f64 = 22.0;

/// An SVG line chart: x from 0 to the largest x, y from 0 to the largest y (a little
/// headroom), four labelled gridlines, one polyline per series, a legend.
pub fn line_chart(title: &str, y_unit: &str, series: &[Series]) -> String {
    let all = series.iter().flat_map(|s| s.points.iter());
    let x_max = all.clone().map(|p| p.0).fold(0.0f64, f64::max).max(1.0);
    let y_max = all.map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.1;
    let (pw, ph) = (W - LEFT - 10.0, H - TOP - BOTTOM);
    let x = |v: f64| LEFT + v / x_max * pw;
    let y = |v: f64| TOP + ph - v / y_max * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" width="{W}" height="{H}" viewBox="0 0 {W} {H}" role="img"><title>{t}</title><text x="{LEFT}" y="14" class="ct">{t}</text>"#,
        t = esc(title)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{x2:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{lx:.1}" y="{ty:.1}" class="ax" text-anchor="end">{l}</text>"##,
            x2 = LEFT + pw,
            yy = y(v),
            lx = LEFT - 4.0,
            ty = y(v) + 4.0,
            l = tick(v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{LEFT}" y="{by:.1}" class="ax">0 s</text><text x="{rx:.1}" y="{by:.1}" class="ax" text-anchor="end">{xm:.0} s</text><text x="6" y="{my:.1}" class="ax">{u}</text>"#,
        by = H - 8.0,
        rx = LEFT + pw,
        xm = x_max,
        my = TOP - 6.0,
        u = esc(y_unit)
    );
    for (i, ser) in series.iter().enumerate() {
        let pts: Vec<String> = ser
            .points
            .iter()
            .map(|&(a, b)| format!("{:.1},{:.1}", x(a), y(b)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.5" points="{p}"/><text x="{lx:.1}" y="14" class="ax" fill="{c}">{n}</text>"#,
            c = esc(ser.color),
            p = pts.join(" "),
            lx = W - 150.0 + 70.0 * i as f64,
            n = esc(ser.name)
        );
    }
    s.push_str("</svg>");
    s
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}pre{background:#f8f8f8;padding:10px;overflow:auto}\
.chart{margin:4px 12px 4px 0;border:1px solid #eee}.ct{font-weight:600;font-size:12px}.ax{font-size:11px;fill:#555}\
.ok{color:#070}.miss{color:#b00;font-weight:600}";

impl Page<'_> {
    /// The plots of one op from the timeline: latency (when timed) and rate.
    fn op_charts(&self, op: &str) -> String {
        let mut p50 = Vec::new();
        let mut p99 = Vec::new();
        let mut rate = Vec::new();
        for t in self.timeline {
            if let Some(o) = t.ops.get(op) {
                p50.push((t.t_s, o.p50_ms));
                p99.push((t.t_s, o.p99_ms));
                rate.push((t.t_s, o.ok_per_s));
            }
        }
        let timed = self.ops.iter().find(|o| o.op == op).is_none_or(|o| o.timed);
        let mut s = String::new();
        if timed {
            s += &line_chart(
                &format!("{op}: latency per second"),
                "ms",
                &[
                    Series {
                        name: "p50",
                        color: "#1f77b4",
                        points: p50,
                    },
                    Series {
                        name: "p99",
                        color: "#d62728",
                        points: p99,
                    },
                ],
            );
        }
        s += &line_chart(
            &format!("{op}: rate"),
            "per s",
            &[Series {
                name: "ok/s",
                color: "#2ca02c",
                points: rate,
            }],
        );
        s
    }

    /// The whole document.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body><h1>{t}</h1>",
            t = esc(&self.title)
        );
        let passed = self.slo.iter().all(|r| r.pass);
        if !self.slo.is_empty() {
            let _ = write!(
                s,
                "<p class=\"{}\">SLOs: {}</p>",
                if passed { "ok" } else { "miss" },
                if passed { "all met" } else { "MISSED" }
            );
        }
        // Plots, one row per op that has a timeline.
        let names: BTreeSet<&str> = self
            .timeline
            .iter()
            .flat_map(|t| t.ops.keys().map(String::as_str))
            .collect();
        s += "<h2>Over time</h2>";
        for op in self
            .ops
            .iter()
            .map(|o| o.op.as_str())
            .filter(|o| names.contains(o))
        {
            let _ = write!(s, "<div>{}</div>", self.op_charts(op));
        }
        s += "<h2>Summary</h2><table><tr><th>op</th><th>sent</th><th>ok</th><th>ok/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>errors</th><th>loss %</th></tr>";
        for o in self.ops.iter().filter(|o| o.sent + o.ok + o.errors > 0) {
            let l = &o.latency_ms;
            let q = |v: f64| if o.timed { ms(v) } else { "–".into() };
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&o.op),
                o.sent,
                o.ok,
                o.rate_ok_per_s,
                q(l.p50),
                q(l.p90),
                q(l.p99),
                q(l.p999),
                q(l.max),
                o.errors,
                o.loss_pct.map_or("–".into(), |v| format!("{v:.3}"))
            );
        }
        s += "</table>";
        if !self.slo.is_empty() {
            s += "<h2>SLOs</h2><table><tr><th>objective</th><th>op</th><th>actual</th><th>limit</th><th>verdict</th></tr>";
            for r in self.slo {
                let _ = write!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                    esc(&r.slo),
                    esc(&r.op),
                    r.actual.map_or("n/a".into(), |a| format!("{a:.3}")),
                    r.limit,
                    if r.pass { "ok" } else { "miss" },
                    if r.pass { "met" } else { "MISSED" }
                );
            }
            s += "</table>";
        }
        if !self.facts.is_empty() {
            s += "<h2>Facts</h2><table>";
            for (k, v) in &self.facts {
                let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", esc(k), esc(v));
            }
            s += "</table>";
        }
        s += "<h2>Server metrics (end − start)</h2>";
        if self.server.is_empty() {
            s += "<p>/metrics not scraped</p>";
        } else {
            s += "<table><tr><th>metric</th><th>delta</th></tr>";
            for (k, v) in &self.server {
                let _ = write!(s, "<tr><td>{}</td><td>{v:.3}</td></tr>", esc(k));
            }
            s += "</table>";
        }
        let _ = write!(
            s,
            "<h2>CPU and machine</h2><table><tr><th>process</th><th>cores used</th></tr><tr><td>loadgen</td><td>{:.2}</td></tr><tr><td>target</td><td>{}</td></tr></table><p>{} × {}; load average {} → {}</p>",
            self.cpu.loadgen_cores,
            self.cpu
                .target_cores
                .map_or("– (no --target-pid)".into(), |c| format!("{c:.2}")),
            self.machine.cores,
            esc(&self.machine.cpu_model),
            esc(&self.machine.loadavg_start),
            esc(&self.machine.loadavg_end)
        );
        let _ = writeln!(
            s,
            "<h2>Text summary</h2><pre>{}</pre></body></html>",
            esc(&self.summary)
        );
        s
    }
}
