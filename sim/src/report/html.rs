//! The what-if report as one self-contained HTML page: the comparison table and five plots
//! over the day (orders placed, delivery-time p50, wait-for-assignment p50, driver idle share,
//! late share, each per hour), A and B overlaid with a legend. The plots are inline SVG drawn
//! here; the page loads nothing (no scripts, stylesheets or fonts from elsewhere), so it opens
//! from a CI artefact or a mail attachment as it is.

use super::DayRecord;
use super::summary::{Hourly, hourly, hours};
use super::table::rows;
use std::fmt::Write;

const HOUR_MS: i64 = 3_600_000;

/// Plot geometry (SVG user units; the SVG scales to its box's width). Full-width plots are
/// `WIDE` wide, the one beside the table `NARROW`; the title and the legend take the first
/// `TOP` units, one line each.
const WIDE: f64 = 1200.0;
const NARROW: f64 = 640.0;
/// Heights: the full-width plots, and the one beside the table (as tall as the table).
const H: f64 = 250.0;
const H_NARROW: f64 = 400.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 24.0;
const TOP: f64 = 62.0;
const BOTTOM: f64 = 52.0;

/// A's and B's colours and strokes: blue solid with circles, orange dashed with squares, so
/// the two stay apart in grey print and for colour-blind readers.
const A_COLOUR: &str = "#1f5fa8";
const B_COLOUR: &str = "#e0701a";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step giving about five ticks from 0 to `max`, and the axis top (a multiple of it).
fn nice_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (step, (max / step).ceil() * step)
}

fn tick_label(v: f64, step: f64) -> String {
    if step >= 1.0 {
        format!("{v:.0}")
    } else if step >= 0.1 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One plot: what it shows and its two series (already in the plotted unit).
struct Plot<'a> {
    title: &'a str,
    y_label: &'a str,
    a: Vec<Option<f64>>,
    b: Vec<Option<f64>>,
    /// Cap for the axis (100 for percentages).
    cap: Option<f64>,
    /// Counts: ticks at whole numbers only.
    whole: bool,
}

/// The series' polylines, split where a value is missing (an hour with nothing to measure).
fn segments(v: &[Option<f64>], x: impl Fn(usize) -> f64, y: impl Fn(f64) -> f64) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, p) in v.iter().enumerate() {
        match p {
            Some(p) => {
                let _ = write!(cur, "{:.1},{:.1} ", x(i), y(*p));
            }
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn svg(plot: &Plot, labels: (&str, &str), start_ms: i64, n: usize, (w, h): (f64, f64)) -> String {
    let (pw, ph) = (w - LEFT - RIGHT, h - TOP - BOTTOM);
    let top_value = plot
        .a
        .iter()
        .chain(&plot.b)
        .flatten()
        .fold(0.0f64, |m, v| m.max(*v));
    let (mut step, mut y_max) = nice_axis(top_value);
    if plot.whole && step < 1.0 {
        (step, y_max) = (1.0, y_max.ceil().max(1.0));
    }
    if let Some(cap) = plot.cap {
        y_max = y_max.min(cap);
    }
    let x = |i: usize| LEFT + (i as f64 + 0.5) * pw / n as f64;
    let y = |v: f64| TOP + ph - (v / y_max).clamp(0.0, 1.05) * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {w} {h}" width="100%" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif" font-size="14">"#,
        t = esc(plot.title)
    );
    let _ = write!(
        s,
        r##"<text x="12" y="22" font-size="18" font-weight="600" fill="#222">{}</text>"##,
        esc(plot.title)
    );
    // Horizontal grid and y ticks.
    let mut v = 0.0;
    while v <= y_max + step * 1e-9 {
        let yy = y(v);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{:.1}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
            LEFT + pw,
            LEFT - 8.0,
            yy + 5.0,
            tick_label(v, step)
        );
        v += step;
    }
    // X ticks at hour boundaries, labelled with the simulated clock's hour (UTC).
    // About one label per 90 units at most, so they never run into each other, at a step
    // that divides the day.
    let room = (n as f64 / (pw / 90.0)).ceil() as usize;
    let every = [1, 2, 3, 4, 6, 12, 24]
        .into_iter()
        .find(|e| *e >= room)
        .unwrap_or(room);
    let first_hour = start_ms.div_euclid(HOUR_MS);
    for h in (0..=n).step_by(every) {
        let xx = LEFT + h as f64 * pw / n as f64;
        let hour = (first_hour + h as i64).rem_euclid(24);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" x2="{xx:.1}" y1="{:.1}" y2="{:.1}" stroke="#888"/><text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#444">{hour:02}:00</text>"##,
            TOP + ph,
            TOP + ph + 5.0,
            TOP + ph + 21.0
        );
    }
    // Axes and their labels.
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{:.1}" stroke="#444"/><line x1="{LEFT}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="#444"/>"##,
        TOP + ph,
        LEFT + pw,
        TOP + ph,
        TOP + ph
    );
    let _ = write!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">hour of the simulated day (UTC; a point is the hour starting there)</text>"##,
        LEFT + pw / 2.0,
        h - 10.0
    );
    let _ = write!(
        s,
        r##"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle" fill="#222">{}</text>"##,
        TOP + ph / 2.0,
        esc(plot.y_label)
    );
    // The series: B first, so A's solid line stays on top where they coincide.
    for (series, colour, dash, label, square) in [
        (
            &plot.b,
            B_COLOUR,
            r#" stroke-dasharray="8 5""#,
            labels.1,
            true,
        ),
        (&plot.a, A_COLOUR, "", labels.0, false),
    ] {
        for pts in segments(series, x, y) {
            let _ = write!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}/>"#,
                pts.trim_end()
            );
        }
        for (i, p) in series.iter().enumerate() {
            let Some(p) = p else { continue };
            let (cx, cy) = (x(i), y(*p));
            let tip = format!("{}, hour {}: {:.2}", esc(label), i, p);
            if square {
                let _ = write!(
                    s,
                    r#"<rect x="{:.1}" y="{:.1}" width="7" height="7" fill="{colour}"><title>{tip}</title></rect>"#,
                    cx - 3.5,
                    cy - 3.5
                );
            } else {
                let _ = write!(
                    s,
                    r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="3.5" fill="{colour}"><title>{tip}</title></circle>"#
                );
            }
        }
    }
    // Legend, on its own line under the title; each entry as wide as its label (about
    // 8 units a character at 14 px).
    let mut lx = LEFT;
    for (colour, dash, label) in [
        (A_COLOUR, "", labels.0),
        (B_COLOUR, r#" stroke-dasharray="8 5""#, labels.1),
    ] {
        let _ = write!(
            s,
            r##"<line x1="{lx:.1}" x2="{:.1}" y1="42" y2="42" stroke="{colour}" stroke-width="3"{dash}/><text x="{:.1}" y="47" fill="#222">{}</text>"##,
            lx + 30.0,
            lx + 38.0,
            esc(label)
        );
        lx += 38.0 + 8.0 * label.chars().count() as f64 + 28.0;
    }
    s.push_str("</svg>");
    s
}

fn minutes(v: &[Option<f64>]) -> Vec<Option<f64>> {
    v.iter().map(|x| x.map(|ms| ms / 60_000.0)).collect()
}

fn percent(v: &[Option<f64>]) -> Vec<Option<f64>> {
    v.iter().map(|x| x.map(|s| s * 100.0)).collect()
}

fn counts(v: &[usize]) -> Vec<Option<f64>> {
    v.iter().map(|n| Some(*n as f64)).collect()
}

/// Pads `v` with `None` to `n` hours (the two days may differ in length).
fn padded(mut v: Vec<Option<f64>>, n: usize) -> Vec<Option<f64>> {
    v.resize(n, None);
    v
}

fn label(d: &DayRecord, dflt: &str) -> String {
    if d.label.trim().is_empty() {
        dflt.to_owned()
    } else {
        format!("{dflt}: {}", d.label.trim())
    }
}

fn plots<'a>(ha: &Hourly, hb: &Hourly, n: usize) -> Vec<Plot<'a>> {
    vec![
        Plot {
            title: "Orders placed per hour",
            y_label: "orders placed",
            a: padded(counts(&ha.placed), n),
            b: padded(counts(&hb.placed), n),
            cap: None,
            whole: true,
        },
        Plot {
            title: "Delivery time p50, by the hour the order was placed",
            y_label: "minutes (delivered − placed)",
            a: padded(minutes(&ha.delivery_p50_ms), n),
            b: padded(minutes(&hb.delivery_p50_ms), n),
            cap: None,
            whole: false,
        },
        Plot {
            title: "Wait for assignment p50, by the hour the order was placed",
            y_label: "minutes (assigned − placed)",
            a: padded(minutes(&ha.wait_p50_ms), n),
            b: padded(minutes(&hb.wait_p50_ms), n),
            cap: None,
            whole: false,
        },
        Plot {
            title: "Driver idle share per hour (on shift, not carrying an order)",
            y_label: "% of on-shift time",
            a: padded(percent(&ha.idle_share), n),
            b: padded(percent(&hb.idle_share), n),
            cap: Some(100.0),
            whole: false,
        },
        Plot {
            title: "Late deliveries, by the hour the order was placed",
            y_label: "% of delivered orders late",
            a: padded(percent(&ha.late_share), n),
            b: padded(percent(&hb.late_share), n),
            cap: Some(100.0),
            whole: false,
        },
    ]
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;color:#222;margin:24px auto;max-width:1240px;padding:0 16px}\
h1{font-size:26px;margin:0 0 4px}p.sub{color:#555;margin:0 0 20px}\
table{border-collapse:collapse;margin:0 0 28px;font-size:15px}\
th,td{padding:4px 12px;border-bottom:1px solid #ddd}th{text-align:right;background:#f4f4f4}\
th:first-child,td:first-child{text-align:left}td{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
figure{margin:0 0 14px;border:1px solid #e4e4e4;border-radius:6px;padding:6px 6px 0}\
.top{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}.top table{margin:0 0 14px;width:590px}\
.top figure{flex:1 1 480px;max-width:800px}";

/// The what-if report comparing day `a` with day `b`.
pub fn html(a: &DayRecord, b: &DayRecord) -> String {
    let (la, lb) = (label(a, "A"), label(b, "B"));
    let n = hours(a).max(hours(b));
    let (ha, hb) = (hourly(a), hourly(b));
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>What-if dispatch: {} vs {}</title><style>{STYLE}</style></head><body>",
        esc(&la),
        esc(&lb)
    );
    let _ = write!(
        s,
        "<h1>What-if dispatch</h1><p class=\"sub\">The same simulated day (seed {} / {}) under two matching configurations: <b>{}</b> and <b>{}</b>. {} h from {} UTC.</p>",
        a.seed,
        b.seed,
        esc(&la),
        esc(&lb),
        n,
        clock(a.start_ms)
    );
    // The table, and beside it the day's demand (the plot that needs the least width).
    s.push_str("<div class=\"top\">");
    let _ = write!(
        s,
        "<table><thead><tr><th>metric</th><th>{}</th><th>{}</th><th>B vs A</th></tr></thead><tbody>",
        esc(&la),
        esc(&lb)
    );
    for r in rows(a, b) {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.metric),
            esc(&r.a),
            esc(&r.b),
            esc(&r.b_vs_a)
        );
    }
    s.push_str("</tbody></table>");
    for (i, p) in plots(&ha, &hb, n).iter().enumerate() {
        let size = if i == 0 {
            (NARROW, H_NARROW)
        } else {
            (WIDE, H)
        };
        s.push_str("<figure>");
        s.push_str(&svg(p, (&la, &lb), a.start_ms, n, size));
        s.push_str("</figure>");
        if i == 0 {
            s.push_str("</div>");
        }
    }
    s.push_str("</body></html>\n");
    s
}

/// `start_ms` as "YYYY-MM-DD HH:MM" (UTC), without a date library.
fn clock(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let mins = ms.rem_euclid(86_400_000) / 60_000;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        mins / 60,
        mins % 60
    )
}

#[cfg(test)]
pub(super) fn clock_for_tests(ms: i64) -> String {
    clock(ms)
}
