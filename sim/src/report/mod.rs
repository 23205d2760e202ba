//! What a simulated day produced, and the what-if comparison of two days (same seed, two
//! matching configurations): a side-by-side table and an HTML report with plots over the day.
//!
//! - [`summarize`]: one day's figures ([`Summary`]; the definitions are in `summary.rs`);
//! - [`table`] / [`markdown_table`]: A and B side by side, for a terminal or a README;
//! - [`html`]: one self-contained page with the table and plots per hour (inline SVG);
//!   `sim/report-screenshot.sh` renders it to a PNG with headless Chromium.

mod html;
mod summary;
mod table;
#[cfg(test)]
mod tests;

pub use html::html;
pub use summary::{Hourly, Percentiles, Summary, hourly, percentile, summarize};
pub use table::{Row, markdown_table, rows, table};

/// One simulated day's outcome, as the report needs it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DayRecord {
    /// Which configuration ran (e.g. "current matcher", "nearest only").
    pub label: String,
    pub seed: u64,
    /// Simulated start and end of the day, Unix ms.
    pub start_ms: i64,
    pub end_ms: i64,
    pub orders: Vec<OrderRecord>,
    pub drivers: Vec<DriverRecord>,
}

/// One order's timeline (Unix ms, simulated clock).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrderRecord {
    pub order: u64,
    pub placed_ms: i64,
    /// A driver accepted an offer.
    pub assigned_ms: Option<i64>,
    pub picked_up_ms: Option<i64>,
    pub delivered_ms: Option<i64>,
    pub cancelled_ms: Option<i64>,
    /// Offers made for this order (every round).
    pub offers: u32,
    /// The delivery time promised at placement; delivered after it = late.
    pub promised_ms: Option<i64>,
}

/// One driver's day: when they were on shift, and when they carried an order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DriverRecord {
    pub driver: u64,
    /// [start, end) of each shift.
    pub shifts: Vec<(i64, i64)>,
    /// [assigned, delivered or cancelled) of each order carried.
    pub busy: Vec<(i64, i64)>,
}
