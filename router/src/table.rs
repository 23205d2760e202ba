//! The routing table every request reads: the current cell map plus each cell's health,
//! swapped atomically on change (`ArcSwap`), so lookups never take a lock.

use crate::route::Hint;
use arc_swap::ArcSwap;
use cellmap::{CellInfo, CellMap, CellState};
use domain::CellId;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// What the health checker last learnt about a cell.
#[derive(Debug, Default)]
pub struct CellHealth {
    /// Starts up: a new cell is routed to until checks say otherwise.
    down: AtomicBool,
    failures: AtomicU32,
    pub active_orders: AtomicU64,
    pub drivers_online: AtomicU64,
    pub restaurants: AtomicU64,
    /// Map version the cell reported holding.
    pub map_version: AtomicU64,
    pub last_ok_ms: AtomicU64,
    /// When a proxied request last got an answer: traffic that flows is proof of life, so a
    /// health check that times out on a busy cell does not take it out of rotation.
    last_answer_ms: AtomicU64,
    /// A draining cell's last reported progress.
    pub drain: std::sync::Mutex<Option<cellapi::DrainProgress>>,
    /// The last reported sample of driver positions (the operations console's map).
    pub drivers_sample: std::sync::Mutex<Vec<cellapi::DriverDot>>,
}

impl CellHealth {
    pub fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// Records a successful check.
    pub fn ok(&self, now_ms: u64) {
        self.failures.store(0, Ordering::Relaxed);
        self.down.store(false, Ordering::Relaxed);
        self.last_ok_ms.store(now_ms, Ordering::Relaxed);
    }

    /// A proxied request got an answer from the cell.
    pub fn answered(&self, now_ms: u64) {
        // Skips the store when it would not change by much: this is on every request.
        if now_ms.saturating_sub(self.last_answer_ms.load(Ordering::Relaxed)) >= 10 {
            self.last_answer_ms.store(now_ms, Ordering::Relaxed);
        }
    }

    /// Records a failed check; returns whether the cell is now considered down. A failure
    /// while proxied requests were answered within `grace_ms` does not count.
    pub fn failed(&self, threshold: u32, now_ms: u64, grace_ms: u64) -> bool {
        if now_ms.saturating_sub(self.last_answer_ms.load(Ordering::Relaxed)) < grace_ms {
            return !self.is_up();
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= threshold {
            self.down.store(true, Ordering::Relaxed);
        }
        !self.is_up()
    }

    /// A connection to the cell was refused: no need to wait for the checker.
    pub fn mark_down(&self) {
        self.down.store(true, Ordering::Relaxed);
    }
}

/// One cell as the proxy sees it.
#[derive(Debug)]
pub struct Target {
    pub info: CellInfo,
    pub health: Arc<CellHealth>,
}

/// A snapshot: the map and a target per cell.
#[derive(Debug, Default)]
pub struct Table {
    pub map: Arc<CellMap>,
    targets: HashMap<CellId, Arc<Target>>,
}

/// Why a request has nowhere to go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unroutable {
    #[error("no cell serves this area yet")]
    NoCell,
    #[error("cell {0} is not in the map")]
    UnknownCell(CellId),
    #[error(
        "the request names no place, restaurant or order; pass lat/lng or use a token with a home cell"
    )]
    NoHome,
    #[error("cell {name} is unavailable")]
    Down { name: String },
}

impl Table {
    pub fn target(&self, id: CellId) -> Option<&Arc<Target>> {
        self.targets.get(&id)
    }

    pub fn targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        self.targets.values()
    }

    /// The cell for `hint` (never [`Hint::Body`] or [`Hint::Local`], resolved before), if it
    /// is up.
    pub fn resolve(&self, hint: Hint, home: Option<CellId>) -> Result<&Arc<Target>, Unroutable> {
        let t = self.owner(hint, home)?;
        if !t.health.is_up() {
            return Err(Unroutable::Down {
                name: t.info.name.clone(),
            });
        }
        Ok(t)
    }

    /// The cell for `hint`, up or down: a held request tries it anyway (see
    /// [`crate::hold`]), since a restarted cell answers before the checker notices.
    pub fn owner(&self, hint: Hint, home: Option<CellId>) -> Result<&Arc<Target>, Unroutable> {
        Ok(match hint {
            Hint::Region(r) => {
                let owner = self.map.owner(r).ok_or(Unroutable::NoCell)?;
                self.targets.get(&owner.id).ok_or(Unroutable::NoCell)?
            }
            Hint::Cell(c) => self.targets.get(&c).ok_or(Unroutable::UnknownCell(c))?,
            Hint::Home => {
                let c = home.ok_or(Unroutable::NoHome)?;
                self.targets.get(&c).ok_or(Unroutable::UnknownCell(c))?
            }
            Hint::Body(_) | Hint::Local(_) => unreachable!("resolved by the caller"),
        })
    }
}

/// The live table, replaced whole on every map change.
#[derive(Default)]
pub struct Live {
    table: ArcSwap<Table>,
}

impl Live {
    pub fn load(&self) -> arc_swap::Guard<Arc<Table>> {
        self.table.load()
    }

    pub fn load_full(&self) -> Arc<Table> {
        self.table.load_full()
    }

    pub fn version(&self) -> u64 {
        self.table.load().map.version
    }

    /// Installs `map` if it is newer than the current one; health carries over per cell
    /// unless the cell's endpoint changed (a restart elsewhere, a standby promoted): what was
    /// learnt about the old address says nothing about the new one.
    pub fn install(&self, map: CellMap) -> bool {
        let cur = self.table.load_full();
        if map.version <= cur.map.version && cur.map.version != 0 {
            return false;
        }
        let targets = map
            .cells
            .values()
            .map(|info| {
                let health = cur
                    .targets
                    .get(&info.id)
                    .filter(|t| t.info.http == info.http)
                    .map(|t| t.health.clone())
                    .unwrap_or_default();
                (
                    info.id,
                    Arc::new(Target {
                        info: info.clone(),
                        health,
                    }),
                )
            })
            .collect();
        metrics::gauge!("router_map_version").set(map.version as f64);
        self.table.store(Arc::new(Table {
            map: Arc::new(map),
            targets,
        }));
        true
    }
}

/// Whether a cell takes new work for its regions.
pub fn takes_new_work(t: &Target) -> bool {
    t.info.state == CellState::Active && t.health.is_up()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellmap::{Change, RegionKey};
    use domain::RegionId;

    #[test]
    fn resolves_and_keeps_health_across_versions() {
        let region = RegionId::from_latlng(52.5, 13.4).unwrap();
        let info = crate::testing::cell_info(1, "berlin");
        let m1 = CellMap::default()
            .apply(&Change::AddCell {
                cell: info.clone(),
                regions: vec![RegionKey(region)],
            })
            .unwrap();
        let live = Live::default();
        assert!(live.install(m1.clone()));
        assert!(!live.install(m1.clone()), "same version is not reinstalled");
        let t = live.load();
        assert_eq!(
            t.resolve(Hint::Region(region), None).unwrap().info.name,
            "berlin"
        );
        assert_eq!(t.resolve(Hint::Home, None).unwrap_err(), Unroutable::NoHome);
        let other = RegionId::from_latlng(48.1, 11.5).unwrap();
        assert_eq!(
            t.resolve(Hint::Region(other), None).unwrap_err(),
            Unroutable::NoCell
        );
        let h = t.target(info.id).unwrap().health.clone();
        // Answers to proxied requests keep a cell up through failed checks.
        h.answered(1_000);
        assert!(!h.failed(2, 1_500, 3_000));
        assert!(!h.failed(2, 1_600, 3_000));
        assert!(!h.failed(2, 5_000, 3_000));
        assert!(h.failed(2, 5_100, 3_000));
        assert!(matches!(
            t.resolve(Hint::Cell(info.id), None),
            Err(Unroutable::Down { .. })
        ));
        // A new version keeps what the checker learnt.
        let m2 = m1
            .apply(&Change::SetState {
                cell: info.id,
                state: CellState::Draining,
            })
            .unwrap();
        assert!(live.install(m2));
        assert!(!live.load().target(info.id).unwrap().health.is_up());
        h.ok(5);
        assert!(live.load().resolve(Hint::Cell(info.id), None).is_ok());
    }
}
