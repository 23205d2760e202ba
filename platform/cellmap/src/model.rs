//! The map itself and the rules every change must follow.

use crate::RegionKey;
use domain::{CellId, RegionId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether a cell takes new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    /// Owns regions and takes new orders for them.
    Active,
    /// Its regions are moving away; orders already on it finish there.
    Draining,
    /// No regions and no active orders left: safe to remove.
    Drained,
}

/// One city cell and where to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellInfo {
    pub id: CellId,
    pub name: String,
    /// The cell's REST + WebSocket listener: `host:port` (plain HTTP) or `https://host:port`
    /// (see [`crate::Endpoint`]).
    pub http: String,
    /// `host:port` of the QUIC driver gateway.
    #[serde(default)]
    pub quic: Option<String>,
    /// TLS server name drivers verify.
    #[serde(default)]
    pub quic_server_name: Option<String>,
    /// PEM of the CA that signed the gateway's certificate (dev mode), for driver apps.
    #[serde(default)]
    pub quic_ca_pem: Option<String>,
    /// SHA-256 of the gateway's leaf certificate, `AB:CD:…`.
    #[serde(default)]
    pub quic_fingerprint: Option<String>,
    pub state: CellState,
    /// Standby instances of the cell (`host:port` or `https://host:port`): when `http` stops
    /// answering, the router's health check looks for the one that took the cell's lease
    /// and makes it `http` (the old endpoint becomes a standby: it may come back as one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub standby_http: Vec<String>,
}

/// One change to the map. The audit log records these verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// A new cell, owning `regions` (which nobody may own yet).
    AddCell {
        cell: CellInfo,
        regions: Vec<RegionKey>,
    },
    /// New endpoints for an existing cell (a restart on other ports); state and regions stay.
    UpdateEndpoints {
        cell: CellInfo,
    },
    /// `region` now belongs to `to` (which must be active).
    MoveRegion {
        region: RegionKey,
        to: CellId,
    },
    SetState {
        cell: CellId,
        state: CellState,
    },
    /// Only a drained cell can go.
    RemoveCell {
        cell: CellId,
    },
}

/// Why a change was refused. The map is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    #[error("cell {0} is already in the map")]
    CellExists(CellId),
    #[error("cell {0} is not in the map")]
    UnknownCell(CellId),
    #[error("cell id {0} is out of range (0..=1023)")]
    BadCellId(u16),
    #[error("region {region} already belongs to cell {owner}")]
    RegionOwned { region: RegionKey, owner: CellId },
    #[error("region {0} belongs to no cell")]
    UnownedRegion(RegionKey),
    #[error("region {region} already belongs to cell {cell}")]
    AlreadyThere { region: RegionKey, cell: CellId },
    #[error("cell {cell} is {state:?}, not active: it takes no new regions")]
    NotActive { cell: CellId, state: CellState },
    #[error("cell {cell} cannot go from {from:?} to {to:?}")]
    BadState {
        cell: CellId,
        from: CellState,
        to: CellState,
    },
    #[error("cell {cell} still owns {regions} region(s)")]
    StillOwns { cell: CellId, regions: usize },
    #[error(
        "cell {0} has an empty name, or an HTTP endpoint that is not host:port or https://host:port"
    )]
    Incomplete(CellId),
}

/// The versioned map. Version 0 is the empty map nobody wrote yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellMap {
    pub version: u64,
    pub cells: BTreeMap<CellId, CellInfo>,
    pub regions: BTreeMap<RegionKey, CellId>,
}

/// Who changed what, when: one per version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub version: u64,
    pub at_ms: i64,
    pub who: String,
    pub change: Change,
}

impl CellMap {
    /// The cell owning `region`, if any.
    pub fn owner(&self, region: RegionId) -> Option<&CellInfo> {
        self.regions
            .get(&RegionKey(region))
            .and_then(|id| self.cells.get(id))
    }

    pub fn cell(&self, id: CellId) -> Option<&CellInfo> {
        self.cells.get(&id)
    }

    /// The regions `cell` owns, in key order.
    pub fn regions_of(&self, cell: CellId) -> Vec<RegionKey> {
        self.regions
            .iter()
            .filter(|(_, c)| **c == cell)
            .map(|(r, _)| *r)
            .collect()
    }

    /// The map after `change`, at the next version; `self` is untouched either way.
    pub fn apply(&self, change: &Change) -> Result<CellMap, MapError> {
        let mut next = self.clone();
        match change {
            Change::AddCell { cell, regions } => {
                check_info(cell)?;
                if self.cells.contains_key(&cell.id) {
                    return Err(MapError::CellExists(cell.id));
                }
                for r in regions {
                    if let Some(owner) = self.regions.get(r) {
                        return Err(MapError::RegionOwned {
                            region: *r,
                            owner: *owner,
                        });
                    }
                    next.regions.insert(*r, cell.id);
                }
                next.cells.insert(cell.id, cell.clone());
            }
            Change::UpdateEndpoints { cell } => {
                check_info(cell)?;
                let old = self
                    .cells
                    .get(&cell.id)
                    .ok_or(MapError::UnknownCell(cell.id))?;
                let mut updated = cell.clone();
                updated.state = old.state;
                next.cells.insert(cell.id, updated);
            }
            Change::MoveRegion { region, to } => {
                let owner = *self
                    .regions
                    .get(region)
                    .ok_or(MapError::UnownedRegion(*region))?;
                if owner == *to {
                    return Err(MapError::AlreadyThere {
                        region: *region,
                        cell: *to,
                    });
                }
                let target = self.cells.get(to).ok_or(MapError::UnknownCell(*to))?;
                if target.state != CellState::Active {
                    return Err(MapError::NotActive {
                        cell: *to,
                        state: target.state,
                    });
                }
                next.regions.insert(*region, *to);
            }
            Change::SetState { cell, state } => {
                let info = self.cells.get(cell).ok_or(MapError::UnknownCell(*cell))?;
                let owned = self.regions_of(*cell).len();
                let allowed = match (info.state, *state) {
                    (CellState::Active, CellState::Draining) => true,
                    // Undo a drain that has not finished.
                    (CellState::Draining, CellState::Active) => true,
                    (CellState::Draining, CellState::Drained) => {
                        if owned > 0 {
                            return Err(MapError::StillOwns {
                                cell: *cell,
                                regions: owned,
                            });
                        }
                        true
                    }
                    // A drained cell can be put back to work.
                    (CellState::Drained, CellState::Active) => true,
                    _ => false,
                };
                if !allowed {
                    return Err(MapError::BadState {
                        cell: *cell,
                        from: info.state,
                        to: *state,
                    });
                }
                next.cells.get_mut(cell).expect("checked above").state = *state;
            }
            Change::RemoveCell { cell } => {
                let info = self.cells.get(cell).ok_or(MapError::UnknownCell(*cell))?;
                if info.state != CellState::Drained {
                    return Err(MapError::BadState {
                        cell: *cell,
                        from: info.state,
                        to: CellState::Drained,
                    });
                }
                next.cells.remove(cell);
            }
        }
        next.version = self.version + 1;
        Ok(next)
    }
}

fn check_info(cell: &CellInfo) -> Result<(), MapError> {
    if cell.id.get() > CellId::MAX {
        return Err(MapError::BadCellId(cell.id.get()));
    }
    if cell.name.trim().is_empty()
        || std::iter::once(&cell.http)
            .chain(&cell.standby_http)
            .any(|e| crate::Endpoint::parse(e).is_none())
    {
        return Err(MapError::Incomplete(cell.id));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u32) -> CellId {
        CellId::new(n).unwrap()
    }

    fn info(n: u32) -> CellInfo {
        CellInfo {
            id: id(n),
            name: format!("c{n}"),
            http: format!("127.0.0.1:{}", 8080 + n),
            quic: None,
            quic_server_name: None,
            quic_ca_pem: None,
            quic_fingerprint: None,
            standby_http: Vec::new(),
            state: CellState::Active,
        }
    }

    fn region(lat: f64, lng: f64) -> RegionKey {
        RegionKey(RegionId::from_latlng(lat, lng).unwrap())
    }

    #[test]
    fn add_move_drain_remove() {
        let (a, b) = (region(52.52, 13.40), region(48.14, 11.58));
        let m = CellMap::default()
            .apply(&Change::AddCell {
                cell: info(1),
                regions: vec![a],
            })
            .unwrap()
            .apply(&Change::AddCell {
                cell: info(2),
                regions: vec![b],
            })
            .unwrap();
        assert_eq!(m.version, 2);
        assert_eq!(m.owner(a.0).unwrap().id, id(1));
        // Overlapping coverage is refused and changes nothing.
        let clash = m.apply(&Change::AddCell {
            cell: info(3),
            regions: vec![b],
        });
        assert_eq!(
            clash,
            Err(MapError::RegionOwned {
                region: b,
                owner: id(2)
            })
        );
        // Draining with regions left cannot end in drained.
        let m = m
            .apply(&Change::SetState {
                cell: id(1),
                state: CellState::Draining,
            })
            .unwrap();
        assert!(matches!(
            m.apply(&Change::SetState {
                cell: id(1),
                state: CellState::Drained
            }),
            Err(MapError::StillOwns { .. })
        ));
        // A draining cell takes no regions.
        assert!(matches!(
            m.apply(&Change::MoveRegion {
                region: b,
                to: id(1)
            }),
            Err(MapError::NotActive { .. })
        ));
        let m = m
            .apply(&Change::MoveRegion {
                region: a,
                to: id(2),
            })
            .unwrap();
        assert_eq!(m.owner(a.0).unwrap().id, id(2));
        assert!(matches!(
            m.apply(&Change::RemoveCell { cell: id(1) }),
            Err(MapError::BadState { .. })
        ));
        let m = m
            .apply(&Change::SetState {
                cell: id(1),
                state: CellState::Drained,
            })
            .unwrap()
            .apply(&Change::RemoveCell { cell: id(1) })
            .unwrap();
        assert_eq!(m.version, 6);
        assert!(m.cell(id(1)).is_none());
        let mut want = vec![a, b];
        want.sort();
        assert_eq!(m.regions_of(id(2)), want);
    }

    #[test]
    fn serializes_with_h3_region_keys() {
        let a = region(52.52, 13.40);
        let m = CellMap::default()
            .apply(&Change::AddCell {
                cell: info(1),
                regions: vec![a],
            })
            .unwrap();
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["regions"][a.to_string()], 1);
        let back: CellMap = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    proptest! {
        /// Whatever sequence of changes is tried, every owned region points at a cell in the
        /// map, no drained cell owns a region, and the version counts the accepted changes.
        #[test]
        fn invariants_hold(ops in proptest::collection::vec((0u8..5, 1u32..5, 0usize..4), 1..60)) {
            let regions = [region(52.52, 13.40), region(52.40, 13.20), region(48.14, 11.58), region(50.11, 8.68)];
            let mut m = CellMap::default();
            let mut accepted = 0;
            for (op, c, r) in ops {
                let change = match op {
                    0 => Change::AddCell { cell: info(c), regions: vec![regions[r]] },
                    1 => Change::MoveRegion { region: regions[r], to: id(c) },
                    2 => Change::SetState { cell: id(c), state: CellState::Draining },
                    3 => Change::SetState { cell: id(c), state: CellState::Drained },
                    _ => Change::RemoveCell { cell: id(c) },
                };
                if let Ok(next) = m.apply(&change) {
                    accepted += 1;
                    m = next;
                }
                for (region, owner) in &m.regions {
                    let cell = m.cell(*owner);
                    prop_assert!(cell.is_some(), "{region} points at a missing cell");
                    prop_assert_ne!(cell.unwrap().state, CellState::Drained);
                }
            }
            prop_assert_eq!(m.version, accepted);
        }
    }
}
