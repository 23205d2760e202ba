//! The side-by-side comparison of two days as rows (metric, A, B, B vs A), rendered as an
//! aligned plain-text table for a terminal, as a Markdown table for the README, or as the
//! rows the HTML report lays out. Durations show in minutes and compare as a ratio, shares in
//! percent and compare as a difference in percentage points, counts compare as a difference.

use super::DayRecord;
use super::summary::{Summary, summarize};

/// How a row's values are shown and compared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// Milliseconds shown as minutes; B vs A as a ratio.
    Minutes,
    /// A plain number; B vs A as a ratio.
    Number,
    /// 0..=1 shown as percent; B vs A in percentage points.
    Share,
    /// A count; B vs A as a difference.
    Count,
}

/// One row of the comparison, already formatted.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: String,
    pub a: String,
    pub b: String,
    pub b_vs_a: String,
}

fn fmt(kind: Kind, v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) => match kind {
            Kind::Minutes => format!("{:.1} min", v / 60_000.0),
            Kind::Number => format!("{v:.2}"),
            Kind::Share => format!("{:.1} %", v * 100.0),
            Kind::Count => format!("{v:.0}"),
        },
    }
}

fn compare(kind: Kind, a: Option<f64>, b: Option<f64>) -> String {
    let (Some(a), Some(b)) = (a, b) else {
        return "–".into();
    };
    match kind {
        Kind::Minutes | Kind::Number if a == 0.0 => if b == 0.0 { "×1.00" } else { "–" }.into(),
        Kind::Minutes | Kind::Number => format!("×{:.2}", b / a),
        Kind::Share => format!("{:+.1} pp", (b - a) * 100.0),
        Kind::Count => format!("{:+.0}", b - a),
    }
}

fn count(n: usize) -> Option<f64> {
    Some(n as f64)
}

/// A row's name, how it shows, and where its value comes from.
type Spec = (&'static str, Kind, fn(&Summary) -> Option<f64>);

fn rows_of(a: &Summary, b: &Summary) -> Vec<Row> {
    let specs: Vec<Spec> = vec![
        ("orders placed", Kind::Count, |s| count(s.placed)),
        ("delivered", Kind::Count, |s| count(s.delivered)),
        ("cancelled", Kind::Count, |s| count(s.cancelled)),
        ("never assigned", Kind::Count, |s| count(s.never_assigned)),
        ("delivery time p50", Kind::Minutes, |s| {
            s.delivery_time_ms.p50
        }),
        ("delivery time p90", Kind::Minutes, |s| {
            s.delivery_time_ms.p90
        }),
        ("delivery time p99", Kind::Minutes, |s| {
            s.delivery_time_ms.p99
        }),
        ("wait for assignment p50", Kind::Minutes, |s| {
            s.wait_for_assignment_ms.p50
        }),
        ("wait for assignment p90", Kind::Minutes, |s| {
            s.wait_for_assignment_ms.p90
        }),
        ("wait for assignment p99", Kind::Minutes, |s| {
            s.wait_for_assignment_ms.p99
        }),
        ("offers per order (mean)", Kind::Number, |s| s.offers_mean),
        ("offers per order (p90)", Kind::Number, |s| s.offers_p90),
        ("driver idle share", Kind::Share, |s| s.idle_share),
        ("late deliveries", Kind::Count, |s| count(s.late)),
        ("late share", Kind::Share, |s| s.late_share),
        ("orders per driver-hour", Kind::Number, |s| {
            s.orders_per_driver_hour
        }),
    ];
    specs
        .into_iter()
        .map(|(name, kind, get)| Row {
            metric: name.into(),
            a: fmt(kind, get(a)),
            b: fmt(kind, get(b)),
            b_vs_a: compare(kind, get(a), get(b)),
        })
        .collect()
}

/// The comparison's rows for days `a` and `b`.
pub fn rows(a: &DayRecord, b: &DayRecord) -> Vec<Row> {
    rows_of(&summarize(a), &summarize(b))
}

/// The column headers: the metric, then each day's label (or "A"/"B" without one).
fn headers(a: &DayRecord, b: &DayRecord) -> [String; 4] {
    let name = |d: &DayRecord, dflt: &str| {
        if d.label.trim().is_empty() {
            dflt.to_owned()
        } else {
            format!("{dflt}: {}", d.label.trim())
        }
    };
    ["metric".into(), name(a, "A"), name(b, "B"), "B vs A".into()]
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// An aligned plain-text table: metric left-aligned, figures right-aligned.
pub fn table(a: &DayRecord, b: &DayRecord) -> String {
    let head = headers(a, b);
    let body: Vec<[String; 4]> = rows(a, b)
        .into_iter()
        .map(|r| [r.metric, r.a, r.b, r.b_vs_a])
        .collect();
    let mut w = head.clone().map(|h| width(&h));
    for r in &body {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(width(c));
        }
    }
    let line = |r: &[String; 4]| {
        let mut s = format!("{}{}", r[0], " ".repeat(w[0] - width(&r[0])));
        for i in 1..4 {
            s.push_str("  ");
            s.push_str(&" ".repeat(w[i] - width(&r[i])));
            s.push_str(&r[i]);
        }
        s.trim_end().to_owned()
    };
    let mut out = line(&head);
    out.push('\n');
    out.push_str(&"-".repeat(w.iter().sum::<usize>() + 6));
    out.push('\n');
    for r in &body {
        out.push_str(&line(r));
        out.push('\n');
    }
    out
}

/// The same table in Markdown (figures right-aligned), to paste into a README.
pub fn markdown_table(a: &DayRecord, b: &DayRecord) -> String {
    let cell = |s: &str| s.replace('|', "\\|");
    let head = headers(a, b);
    let mut out = format!(
        "| {} | {} | {} | {} |\n|:--|--:|--:|--:|\n",
        cell(&head[0]),
        cell(&head[1]),
        cell(&head[2]),
        cell(&head[3])
    );
    for r in rows(a, b) {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&r.metric),
            cell(&r.a),
            cell(&r.b),
            cell(&r.b_vs_a)
        ));
    }
    out
}
