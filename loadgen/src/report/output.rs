//! What every scenario takes for its outputs (JSON and HTML reports, SLOs, the progress
//! display) and writes at the end, so each scenario reports the same way.

use super::html::Page;
use super::slo::Slo;
use crate::driver::ProgressMode;
use anyhow::Context;
use serde::Serialize;
use std::path::PathBuf;

/// Report files, objectives and progress display, shared by every scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Write the JSON report here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Write a self-contained HTML report here (inline SVG plots; no network needed).
    #[arg(long)]
    pub report_html: Option<PathBuf>,
    /// Objective `[op.]metric=value`, repeatable: p99_ms=2, search.p99_ms=2, errors=0,
    /// error_pct=0.1, min_rate=4900, max_ms=50, loss_pct=0.5. Exit status 2 when one is
    /// missed.
    #[arg(long, value_parser = |s: &str| s.parse::<Slo>())]
    pub slo: Vec<Slo>,
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
}

impl Default for OutputArgs {
    fn default() -> Self {
        Self {
            report_json: None,
            report_html: None,
            slo: Vec::new(),
            progress: ProgressMode::Auto,
        }
    }
}

impl OutputArgs {
    /// Prints the summary and writes the reports that were asked for.
    pub fn emit<R: Serialize>(
        &self,
        summary: &str,
        json: &R,
        mut page: Page,
    ) -> anyhow::Result<()> {
        print!("{summary}");
        if let Some(p) = &self.report_json {
            std::fs::write(p, serde_json::to_vec_pretty(json)?)
                .with_context(|| format!("writing {}", p.display()))?;
            println!("report: {}", p.display());
        }
        if let Some(p) = &self.report_html {
            page.summary = summary.to_string();
            std::fs::write(p, page.render()).with_context(|| format!("writing {}", p.display()))?;
            println!("html report: {}", p.display());
        }
        Ok(())
    }
}
