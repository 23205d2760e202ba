//! Trace files for `record` and `replay`: one ping per line, CSV, with a header.
//!
//! ```text
//! driver,ts_ms,lat,lng,heading,speed
//! 1000001,0,52.5211300,13.4012200,87.5,9.80
//! 1000002,12,52.5100410,13.3890010,270.0,11.20
//! ```
//!
//! - `driver`: the driver id (a positive integer): the token's `sub` and the ping's
//!   `driver_id` on replay, so one trace driver is one authenticated connection.
//! - `ts_ms`: milliseconds since the start of the trace (not wall-clock time). Replay sends
//!   the line at `ts_ms / speed` after its start and stamps the ping with the real send
//!   time, so the cell's "not from the future, not older than 30 s" checks hold for any
//!   trace age.
//! - `lat`, `lng`: degrees (WGS84); `heading`: degrees clockwise from north; `speed`: m/s.
//!
//! Lines are in `ts_ms` order (`record` writes them so; the reader sorts if not). Blank
//! lines and lines starting with `#` are ignored; the header line is optional.

use anyhow::{Context, bail};
use std::io::{BufRead, Write};

/// The header line `record` writes.
pub const HEADER: &str = "driver,ts_ms,lat,lng,heading,speed";

/// One ping of a trace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceRow {
    pub driver: u64,
    pub ts_ms: u64,
    pub lat: f64,
    pub lng: f64,
    pub heading: f32,
    pub speed: f32,
}

impl TraceRow {
    /// Parses one data line.
    pub fn parse(line: &str) -> anyhow::Result<Self> {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() != 6 {
            bail!("expected 6 fields ({HEADER}), got {}", f.len());
        }
        let row = Self {
            driver: f[0].parse().context("driver")?,
            ts_ms: f[1].parse().context("ts_ms")?,
            lat: f[2].parse().context("lat")?,
            lng: f[3].parse().context("lng")?,
            heading: f[4].parse().context("heading")?,
            speed: f[5].parse().context("speed")?,
        };
        if row.driver == 0 {
            bail!("driver must be positive");
        }
        if !(row.lat.abs() <= 90.0 && row.lng.abs() <= 180.0) {
            bail!("coordinates out of range");
        }
        Ok(row)
    }

    /// Writes the row as one CSV line (7 decimals ≈ 1 cm).
    pub fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{},{},{:.7},{:.7},{:.1},{:.2}",
            self.driver, self.ts_ms, self.lat, self.lng, self.heading, self.speed
        )
    }
}

/// Reads a whole trace, sorted by `ts_ms` (stable, so a driver's own order is kept).
pub fn read(input: impl BufRead) -> anyhow::Result<Vec<TraceRow>> {
    let mut rows = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("line {}", i + 1))?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || (i == 0 && t.starts_with("driver")) {
            continue;
        }
        rows.push(TraceRow::parse(t).with_context(|| format!("line {}: {t:?}", i + 1))?);
    }
    rows.sort_by_key(|r| r.ts_ms);
    Ok(rows)
}

/// Writes a header and `rows` (sorted by `ts_ms` first).
pub fn write(out: impl Write, rows: &mut [TraceRow]) -> std::io::Result<()> {
    rows.sort_by_key(|r| r.ts_ms);
    let mut out = std::io::BufWriter::new(out);
    writeln!(out, "{HEADER}")?;
    for r in rows.iter() {
        r.write(&mut out)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_order() {
        let mut rows = vec![
            TraceRow {
                driver: 2,
                ts_ms: 20,
                lat: 52.5,
                lng: 13.4,
                heading: 90.0,
                speed: 10.0,
            },
            TraceRow {
                driver: 1,
                ts_ms: 0,
                lat: -33.8688197,
                lng: 151.2092955,
                heading: 359.5,
                speed: 0.0,
            },
        ];
        let mut buf = Vec::new();
        write(&mut buf, &mut rows).unwrap();
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with("driver,ts_ms,lat,lng,heading,speed\n1,0,"));
        let back = read(&buf[..]).unwrap();
        assert_eq!(back, rows);
    }

    #[test]
    fn comments_blank_lines_no_header_unsorted() {
        let text = "# a comment\n\n5,100,1.0,2.0,3.0,4.0\n5,50,1.0,2.0,3.0,4.0\n";
        let rows = read(text.as_bytes()).unwrap();
        assert_eq!(
            rows.iter().map(|r| r.ts_ms).collect::<Vec<_>>(),
            vec![50, 100]
        );
    }

    #[test]
    fn rejects_bad_lines() {
        for bad in [
            "1,2,3",
            "x,0,1,2,3,4",
            "0,0,1,2,3,4",
            "1,-5,1,2,3,4",
            "1,0,91,2,3,4",
            "1,0,1,2,3,4,5",
        ] {
            let err = read(format!("{HEADER}\n{bad}\n").as_bytes()).unwrap_err();
            assert!(format!("{err:#}").contains("line 2"), "{bad}: {err:#}");
        }
    }
}
