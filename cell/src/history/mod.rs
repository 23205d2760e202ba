//! Location history (issue 20): each delivery's path, from assignment to delivered or
//! cancelled, at a few bytes per ping, encrypted per day, purged after the retention, and
//! readable by staff only with an audited reason.
//!
//! # Layout
//! - `recorder`: [`recorder::Recorder`], the in-memory buffers the ping path appends to
//!   (`Dispatch::session_ping` after the gateway's checks, for the carried order only).
//! - `flush`: seals buffers every `segment_ms` and writes segments in group-committed store
//!   transactions (at most [`flush::MAX_COMMITS_PER_S`]); a finished delivery's segments are
//!   compacted into one block in the same transaction as its last segment.
//! - `crate::envelope` (was `history::crypto`): AES-256-GCM under per-day data keys, wrapped by
//!   the key-encryption key, kept in a [`crypto::KeyStore`] file apart from the data store;
//!   customers' data keys live there too (`crate::personal`).
//! - `purge`: retention (a day's key destroyed first, then its key range cleared in batches)
//!   and dispute holds (a held path is re-sealed under its own key before its day key goes).
//! - `audit`: the append-only, hash-chained audit log and its verifier.
//! - `view`: the dispute view (GeoJSON, encoded polyline, status timeline, distance to the
//!   dropoff at `delivered`).
//! - `keys`: the store key layout; `config`: `[history]`.
//!
//! Time is passed in (`now`); only [`run`], the background task, reads the app's clock.

pub mod audit;
pub mod config;

pub mod flush;
pub mod keys;
pub mod purge;
pub mod recorder;
pub mod view;

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod tests;

pub use config::HistoryConfig;

use crate::app::Clock;
use crate::envelope::{self as crypto, KeyError, KeyRing};
use domain::{DeliveryId, OrderId, UnixMs};
use parking_lot::Mutex;
use recorder::{Recorder, Sealed};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use store::Kv;
use tokio::sync::{Notify, watch};

/// Milliseconds in a UTC day.
pub const DAY_MS: i64 = 86_400_000;

/// The UTC day (days since 1970-01-01) of `t`.
pub fn day_of(t: UnixMs) -> u32 {
    u32::try_from(t.0.div_euclid(DAY_MS)).unwrap_or(0)
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("stored path of delivery {0} does not decode: {1}")]
    Corrupt(DeliveryId, String),
    #[error("no recorded path for delivery {0}")]
    NotFound(DeliveryId),
    #[error("the path of delivery {0} was purged")]
    Purged(DeliveryId),
}

impl<E: Into<HistoryError>> From<store::TxnError<E>> for HistoryError {
    fn from(e: store::TxnError<E>) -> Self {
        match e {
            store::TxnError::Store(s) => HistoryError::Store(s),
            store::TxnError::Abort(e) => e.into(),
        }
    }
}

/// `("hx", delivery)`: where a delivery's path is and what comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathIndex {
    /// The day the path started: all its parts are in this day's range.
    pub day: u32,
    pub order: u64,
    pub next_part: u32,
    /// Its segments were compacted into one block (the delivery ended).
    pub compacted: bool,
}

/// A dispute hold: the delivery's path is kept past the purge until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Hold {
    pub delivery_id: String,
    pub reason: String,
    /// Milliseconds since the Unix epoch.
    pub expires_at: i64,
    pub placed_at: i64,
    /// Who placed it: the token's name (or its role when it has none) and role.
    pub placed_by: String,
    pub role: String,
}

/// The history service of a cell: the recorder the ping path feeds, the store and the keys.
pub struct History {
    cfg: HistoryConfig,
    cell: u16,
    kv: Arc<dyn Kv>,
    keys: Arc<KeyRing>,
    recorder: Recorder,
    /// Segments whose write failed, tried again first at the next flush.
    pending: Mutex<Vec<Sealed>>,
    /// The index of every active path this process wrote (`flush::write_batch`).
    indexes: Mutex<std::collections::HashMap<DeliveryId, PathIndex>>,
    /// Woken when a delivery ends, so its path is compacted promptly.
    ended: Notify,
}

impl History {
    pub fn new(cfg: HistoryConfig, cell: u16, kv: Arc<dyn Kv>, keys: Arc<KeyRing>) -> Self {
        Self {
            cfg,
            cell,
            kv,
            keys,
            recorder: Recorder::new(),
            pending: Mutex::new(Vec::new()),
            indexes: Mutex::new(std::collections::HashMap::new()),
            ended: Notify::new(),
        }
    }

    /// Opens the cell's key-encryption key and key store as `[history]` says (demo mode makes
    /// a key-encryption key in the data directory when there is none), with the customer key
    /// cache `[privacy]` bounds. Customer data keys live there too (`crate::personal`).
    pub fn open_keys(
        cfg: &HistoryConfig,
        privacy: &crate::personal::PrivacyConfig,
        cell: u16,
        data_dir: &std::path::Path,
        demo: bool,
    ) -> Result<Arc<KeyRing>, KeyError> {
        let kek = if demo && cfg.kek_file.as_os_str().is_empty() {
            crypto::Kek::load_or_generate(&cfg.kek_path(data_dir))?
        } else {
            crypto::Kek::load(&cfg.kek_file)?
        };
        let mut earlier = Vec::new();
        for entry in &cfg.previous_kek_files {
            // Checked by validation; a bad entry is skipped rather than guessed at.
            if let Some((v, path)) = config::parse_previous(entry) {
                earlier.push((v, crypto::Kek::load(&path)?));
            }
        }
        let keks = crypto::Keks::rotated((cfg.kek_version, kek), earlier);
        let store = crypto::RedbKeyStore::open_shared(&cfg.key_store_path(data_dir))?;
        Ok(Arc::new(KeyRing::with_keks(
            cell,
            keks,
            store,
            privacy.cache_limits(),
        )))
    }

    pub fn config(&self) -> &HistoryConfig {
        &self.cfg
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    pub fn cell(&self) -> u16 {
        self.cell
    }

    /// An accepted ping of the driver assigned to `delivery` (the ping path: memory only).
    pub fn record(
        &self,
        delivery: DeliveryId,
        order: OrderId,
        fix: &crate::dispatch::GpsFix,
        now: UnixMs,
    ) {
        let f = pathcodec::Fix {
            t_ms: i64::try_from(fix.ts_ms).unwrap_or(i64::MAX),
            lat: fix.lat,
            lng: fix.lng,
            heading_deg: fix.heading,
            speed_mps: fix.speed,
        };
        self.recorder.record(delivery, order, &f, now);
    }

    /// `delivery` was delivered or cancelled.
    pub fn finish(&self, delivery: DeliveryId) {
        if self.recorder.finish(delivery) {
            self.ended.notify_one();
        }
    }

    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

/// The background task: flushes every `segment_ms` (and promptly when a delivery ends),
/// purges every `purge_interval_ms`, flushes once more when asked to stop.
pub async fn run(history: Arc<History>, clock: Arc<dyn Clock>, mut stop: watch::Receiver<bool>) {
    let segment = std::time::Duration::from_millis(history.cfg.segment_ms);
    let purge_every = history.cfg.purge_interval_ms as i64;
    let mut ticks = tokio::time::interval(segment);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: nothing is buffered yet.
    ticks.tick().await;
    let mut last_purge = i64::MIN;
    loop {
        let only_finished = tokio::select! {
            _ = ticks.tick() => false,
            _ = history.ended.notified() => {
                // Let other deliveries that end now join the same transaction.
                tokio::time::sleep(flush::MIN_COMMIT_GAP).await;
                true
            }
            _ = stop.changed() => break,
        };
        let now = clock.now();
        if let Err(e) = history.flush(only_finished, now).await {
            tracing::warn!(error = %e, "could not write location history; kept for the next flush");
        }
        if now.0.saturating_sub(last_purge) >= purge_every {
            last_purge = now.0;
            match history.purge(now).await {
                Ok(r) if r.days > 0 || r.holds_expired > 0 => {
                    tracing::info!(
                        days = r.days,
                        keys = r.keys_cleared,
                        held = r.holds_resealed,
                        expired = r.holds_expired,
                        "purged location history"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "location history purge failed; retried at the next interval")
                }
            }
        }
    }
    if let Err(e) = history.flush(false, clock.now()).await {
        tracing::warn!(error = %e, "could not write location history while stopping");
    }
}
