//! Background loops: health checks of every cell (status, load, map version; the map is
//! re-sent to a cell that holds an older one) and the map refresh (store or leader).
//!
//! Failure threshold: a cell is marked down after `health.failure_threshold` consecutive
//! failed checks (default 3 × 1 s) with no proxied request answered meanwhile (a busy cell
//! that answers traffic but is slow to answer checks stays in rotation), or at once when a
//! proxied request finds its port closed (connection refused); one successful check marks it
//! up again.

use crate::ops::Control;
use domain::UnixMs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

pub fn spawn(
    control: Arc<Control>,
    cfg: crate::config::HealthSection,
    shutdown: watch::Receiver<bool>,
) {
    let (c, mut stop) = (control.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(c.poll_interval()) => {
                    if let Err(e) = c.refresh().await {
                        tracing::warn!(error = %e, "map refresh failed");
                    }
                }
                _ = stop.changed() => return,
            }
        }
    });
    let mut stop = shutdown;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(cfg.interval_ms)) => {
                    check_all(&control, &cfg).await;
                }
                _ = stop.changed() => return,
            }
        }
    });
}

/// After a failed check of `t`, asks its standbys: one that answers the status as this cell
/// holds its lease now and becomes its endpoint (see `ops::failover`).
async fn find_standby_in_charge(
    control: &Control,
    t: &crate::table::Target,
    cfg: &crate::config::HealthSection,
) {
    for s in &t.info.standby_http {
        let status = tokio::time::timeout(
            Duration::from_millis(cfg.timeout_ms),
            control.cells.status(s),
        )
        .await;
        if let Ok(Ok(status)) = status {
            control.promote(t.info.id, s, &status).await;
            return;
        }
    }
}

async fn check_all(control: &Control, cfg: &crate::config::HealthSection) {
    let table = control.live.load_full();
    let checks = table.targets().map(|t| {
        let t = t.clone();
        let map = table.map.clone();
        async move {
            let status = tokio::time::timeout(
                Duration::from_millis(cfg.timeout_ms),
                control.cells.status(&t.info.http),
            )
            .await;
            let up_gauge = metrics::gauge!("router_cell_up", "cell" => t.info.name.clone());
            let now = UnixMs::now().0.max(0) as u64;
            // Proxied answers within the whole failure window count as being alive.
            let grace = cfg.interval_ms * u64::from(cfg.failure_threshold);
            match status {
                Ok(Ok(s)) => {
                    let h = &t.health;
                    h.ok(now);
                    h.active_orders.store(s.active_orders, Ordering::Relaxed);
                    h.drivers_online.store(s.drivers_online, Ordering::Relaxed);
                    h.restaurants.store(s.restaurants, Ordering::Relaxed);
                    h.map_version.store(s.map_version, Ordering::Relaxed);
                    *h.drain.lock().unwrap_or_else(|e| e.into_inner()) = s.drain.clone();
                    *h.drivers_sample.lock().unwrap_or_else(|e| e.into_inner()) =
                        s.drivers_sample.clone();
                    up_gauge.set(1.0);
                    control.drain_progress(t.info.id, s.active_orders).await;
                    if s.map_version < map.version {
                        match control.cells.push_map(&t.info.http, &map).await {
                            Ok(v) => h.map_version.store(v, Ordering::Relaxed),
                            Err(e) => {
                                tracing::warn!(cell = %t.info.name, error = %e, "map push failed")
                            }
                        }
                    }
                }
                Ok(Err(e)) => {
                    if t.health.failed(cfg.failure_threshold, now, grace) {
                        up_gauge.set(0.0);
                    }
                    tracing::debug!(cell = %t.info.name, error = %e, "health check failed");
                    find_standby_in_charge(control, &t, cfg).await;
                }
                Err(_) => {
                    if t.health.failed(cfg.failure_threshold, now, grace) {
                        up_gauge.set(0.0);
                    }
                    find_standby_in_charge(control, &t, cfg).await;
                }
            }
        }
    });
    futures::future::join_all(checks).await;
}
