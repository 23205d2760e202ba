//! [`Ownership`]: this cell's view of who owns which region, from the router's latest cell
//! map. The REST cell-ops endpoint and the handover pass read and replace the map; order
//! placement asks it whether a restaurant's region moved to another cell. Shared by
//! reference count, so placement needs no HTTP state to ask.

use arc_swap::ArcSwap;
use cellmap::{CellInfo, CellMap};
use domain::RegionId;
use std::sync::Arc;

/// The router's latest cell map and this cell's id in it.
pub struct Ownership {
    /// This cell's id, as the map names cells.
    me: u32,
    /// The map pushed last (empty, version 0, until the router pushes one). Read on every
    /// placement, replaced on a push: a lock-free swap.
    map: ArcSwap<CellMap>,
}

impl Ownership {
    /// No map yet: every region counts as this cell's until the router says otherwise.
    pub fn new(me: u32) -> Self {
        Self {
            me,
            map: ArcSwap::from_pointee(CellMap::default()),
        }
    }

    /// The cell map held now.
    pub fn map(&self) -> Arc<CellMap> {
        self.map.load_full()
    }

    /// Keeps `map` unless a newer one is already held (pushes can race); returns the version
    /// now held.
    pub fn set_map(&self, map: CellMap) -> u64 {
        let map = Arc::new(map);
        let held = self.map.rcu(|cur| {
            if map.version > cur.version {
                map.clone()
            } else {
                cur.clone()
            }
        });
        let version = held.version.max(map.version);
        metrics::gauge!("cell_map_version").set(version as f64);
        version
    }

    /// The other cell that owns `region` in the current map, if any (never one without a
    /// map).
    pub fn owned_elsewhere(&self, region: RegionId) -> Option<CellInfo> {
        let map = self.map.load();
        map.owner(region)
            .filter(|c| u32::from(c.id.get()) != self.me)
            .cloned()
    }
}
