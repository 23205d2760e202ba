//! Output: the side-by-side table (printed as it fills, then as Markdown) and the resolution
//! study behind `Config::resolution`'s default.

use crate::{Opts, geo_latencies, geo_upserts, load, pct, workload};

pub struct Row {
    what: String,
    geo: String,
    other: String,
    other_val: String,
    ratio: String,
}

pub struct Table(pub Vec<Row>);
impl Table {
    /// Rows `(what, geostore's figure, compared with, its figure)` in one unit; rates ("/s")
    /// are better higher, times and sizes lower.
    pub fn rows(&mut self, label: &str, unit: &str, rows: &[(&str, f64, &str, f64)]) {
        for &(what, geo, other, val) in rows {
            self.add(&format!("{what}, {label}"), geo, other, val, unit);
        }
    }

    pub fn add(&mut self, what: &str, geo: f64, other: &str, val: f64, unit: &str) {
        let higher_better = unit == "/s";
        let ratio = if higher_better { geo / val } else { val / geo };
        let row = Row {
            what: what.to_string(),
            geo: fmt(geo, unit),
            other: other.to_string(),
            other_val: fmt(val, unit),
            ratio: format!("{ratio:.1}×"),
        };
        println!(
            "  {:<44} geostore {:>12}  {:<26} {:>12}  → {}",
            row.what, row.geo, row.other, row.other_val, row.ratio
        );
        self.0.push(row);
    }
    pub fn print(&self) {
        println!("\n| workload | geostore | compared with | its figure | geostore advantage |");
        println!("|---|---:|---|---:|---:|");
        for r in &self.0 {
            println!(
                "| {} | {} | {} | {} | {} |",
                r.what, r.geo, r.other, r.other_val, r.ratio
            );
        }
    }
}

fn fmt(v: f64, unit: &str) -> String {
    match unit {
        "/s" if v >= 1e6 => format!("{:.2}M/s", v / 1e6),
        "/s" if v >= 1e4 => format!("{:.0}K/s", v / 1e3),
        "/s" => format!("{v:.0}/s"),
        "us" => format!("{v:.1} µs"),
        _ => format!("{v:.1} {unit}"),
    }
}

/// The resolution study behind `Config::resolution`'s default.
pub fn resolutions(o: &Opts, pings: usize, nq: usize) {
    println!(
        "\n| resolution | drivers | memory B/driver | upserts/s (1 writer) | nearest p50 µs | nearest p99 µs | p99 on-CPU µs |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for &n in &o.drivers {
        let w = workload(n, pings, nq / 2);
        for res in [
            h3o::Resolution::Eight,
            h3o::Resolution::Nine,
            h3o::Resolution::Ten,
            h3o::Resolution::Eleven,
        ] {
            let st = load(res, &w);
            let mem = st.memory_bytes() as f64 / n as f64;
            let up = geo_upserts(&st, &[&w.one]);
            let (mut lat, mut cpu, _) = geo_latencies(&st, &w.queries);
            println!(
                "| {} | {n} | {mem:.1} | {:.2}M | {:.1} | {:.1} | {:.1} |",
                u8::from(res),
                up / 1e6,
                pct(&mut lat, 0.5),
                pct(&mut lat, 0.99),
                pct(&mut cpu, 0.99)
            );
        }
    }
}
