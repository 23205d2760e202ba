//! Location history on a simulated city day (issue 20): the cell's own recorder, flush and
//! compaction ([`cell::history`]) fed by the simulated drivers' accepted pings, then the
//! figures the issue asks for:
//! - stored bytes per ping, all-in (ciphertext, nonce, tag and header of each delivery's
//!   compacted block, plus its store key), median over deliveries, next to the seed's 50 B;
//! - the same for time, latitude and longitude alone (the plaintext re-encoded with heading
//!   and speed held constant, which then cost one byte each: those bytes are subtracted);
//! - bytes handed to the store (every segment and compaction) over bytes finally stored;
//! - disk bytes per ping: the final path records written to a fresh redb file, against an
//!   empty one made in the same run.

use crate::config::{HOUR_MS, SimConfig};
use crate::day::CitySize;
use crate::world::World;
use domain::UnixMs;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use store::{Kv, PageLimits, Pages, TxnError};

impl World {
    /// `Ev::HistoryFlush`: seals and writes the buffered paths, then comes back.
    pub(crate) fn flush_history(&mut self) {
        let Some(h) = self.history.clone() else {
            return;
        };
        self.at(h.config().segment_ms as i64, crate::world::Ev::HistoryFlush);
        match self.block(h.flush(false, UnixMs(self.now))) {
            Ok(s) => self.history_handed += s.bytes as u64,
            Err(e) => self.log(|| format!("history flush error {e}")),
        }
    }
}

/// What [`run`] measured.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryFigures {
    pub seed: u64,
    pub deliveries: usize,
    pub pings: u64,
    /// Median over deliveries of stored bytes per ping, all-in.
    pub median_bytes_per_ping: f64,
    /// Median over deliveries of bytes per ping for time, lat and lng.
    pub median_core_bytes_per_ping: f64,
    pub bytes_handed: u64,
    pub bytes_stored: u64,
    pub handed_over_stored: f64,
    pub disk_bytes_per_ping: f64,
}

/// Runs `size.hours` of the day of `seed` from `start_hour` with history on and measures it.
pub fn run(seed: u64, size: CitySize, start_hour: f64) -> Result<HistoryFigures, String> {
    let cfg = SimConfig {
        orders_per_day: size.orders_per_day,
        drivers: size.drivers,
        restaurants: size.restaurants,
        start_hour,
        hours: size.hours,
        history: true,
        ..SimConfig::small(seed)
    };
    let mut w = World::new(cfg).map_err(|e| e.to_string())?;
    w.run()
        .map_err(|f| format!("SIM_SEED={} SIM_STEP={}: {}", f.seed, f.step, f.violation))?;
    // Whatever is still buffered (deliveries ended since the last interval) is written.
    let h = w.history.clone().ok_or("history is on")?;
    let now = UnixMs(w.now + HOUR_MS);
    let last = w.block(h.flush(false, now)).map_err(|e| e.to_string())?;
    w.history_handed += last.bytes as u64;
    measure(&w, &h, seed)
}

fn measure(
    w: &World,
    h: &Arc<cell::history::History>,
    seed: u64,
) -> Result<HistoryFigures, String> {
    let kv = w.kv.clone();
    // Every path record: (delivery → (key + value bytes, value bytes)).
    let mut per: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut records = Vec::new();
    let mut pages = Pages::prefix(&cell::history::keys::paths_prefix(), PageLimits::DEFAULT);
    while let Some(page) = w.block(pages.next(&*kv)).map_err(|e| e.to_string())? {
        for r in page {
            let Some((_, d, _)) = cell::history::keys::parse_path(&r.key) else {
                continue;
            };
            let e = per.entry(d.0).or_default();
            e.0 += (r.key.len() + r.value.len()) as u64;
            e.1 += r.value.len() as u64;
            records.push((r.key, r.value));
        }
    }
    let (mut all, mut core) = (Vec::new(), Vec::new());
    let mut pings = 0u64;
    for (&d, &(bytes, _)) in &per {
        let (idx, fixes) = w
            .block(h.read_path(domain::DeliveryId(d)))
            .map_err(|e| format!("delivery {d}: {e}"))?;
        // Ongoing paths at the day's end are still segments: counted in totals only.
        let n = fixes.len();
        pings += n as u64;
        if !idx.compacted || n < 2 {
            continue;
        }
        all.push(bytes as f64 / n as f64);
        let flat: Vec<pathcodec::Fix> = fixes
            .iter()
            .map(|f| pathcodec::Fix {
                heading_deg: 0.0,
                speed_mps: 0.0,
                ..*f
            })
            .collect();
        let plain = pathcodec::encode(d, 0, &flat).len() - 2 * n;
        core.push(plain as f64 / n as f64);
    }
    if all.is_empty() {
        return Err("no delivery finished with a recorded path".into());
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let stored: u64 = per.values().map(|p| p.1).sum();
    let disk = disk_bytes(records)?;
    Ok(HistoryFigures {
        seed,
        deliveries: all.len(),
        pings,
        median_bytes_per_ping: median(&mut all),
        median_core_bytes_per_ping: median(&mut core),
        bytes_handed: w.history_handed,
        bytes_stored: stored,
        handed_over_stored: w.history_handed as f64 / stored.max(1) as f64,
        disk_bytes_per_ping: disk as f64 / pings.max(1) as f64,
    })
}

/// Bytes a fresh redb file grows by when it holds `records`, against an empty one.
fn disk_bytes(records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<u64, String> {
    let size = |records: Vec<(Vec<u8>, Vec<u8>)>| -> Result<u64, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| e.to_string())?;
        {
            let kv = store::RedbStore::open(dir.path(), store::RedbOptions::default())
                .map_err(|e| e.to_string())?;
            let records = Arc::new(records);
            rt.block_on(store::transact(&kv as &dyn Kv, move |txn| {
                let records = records.clone();
                Box::pin(async move {
                    for (k, v) in records.iter() {
                        txn.set(k, v);
                    }
                    Ok::<_, TxnError<()>>(())
                })
            }))
            .map_err(|e| format!("{e:?}"))?;
        }
        std::fs::metadata(dir.path().join(store::redb::FILE_NAME))
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    };
    let empty = size(Vec::new())?;
    Ok(size(records)?.saturating_sub(empty))
}
