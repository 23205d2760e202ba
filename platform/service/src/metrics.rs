//! The Prometheus recorder every binary installs, with its upkeep.

use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};
use std::time::Duration;

/// How often recorded histogram samples are folded into the exported summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Installs the global Prometheus recorder and spawns its upkeep on the current Tokio runtime.
/// Histogram samples pile up in the recorder until drained, by a scrape or by upkeep: without
/// it, every sample recorded (several per tracking push) stays in memory while nothing scrapes
/// `/metrics`, hundreds of MiB in a few minutes at 20K trackers.
pub fn install() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new().install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
