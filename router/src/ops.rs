//! SRE operations on the map: add a cell, move a region, drain a cell, remove it. Only a
//! router that owns a store (not a follower) changes the map; one operation runs at a time
//! here, and the store's compare-and-set guards against other routers sharing it.
//!
//! Moving a region copies its catalog to the target first (idempotent, so a failed move is
//! simply rerun), then flips the map in one versioned, audited commit. Orders already placed
//! stay on the source: their ids name it, so their traffic keeps reaching it.

use crate::cells::{CellCallError, CellClient};
use crate::error::RouterError;
use crate::mapstore::{CommitError, MapStore};
use crate::table::Live;
use cellmap::{CellInfo, CellMap, CellState, Change, MapError, RegionKey};
use domain::{CellId, UnixMs};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

pub struct Control {
    pub live: Arc<Live>,
    store: Option<MapStore>,
    follow: Option<String>,
    pub cells: CellClient,
    op: tokio::sync::Mutex<()>,
    poll: Duration,
}

#[derive(Debug, Serialize)]
pub struct MoveReport {
    pub region: RegionKey,
    pub from: CellId,
    pub to: CellId,
    pub restaurants_copied: u64,
    pub version: u64,
}

impl From<CommitError> for RouterError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Map(MapError::UnknownCell(c)) => {
                RouterError::NotFound(format!("cell {c} is not in the map"))
            }
            CommitError::Map(m) => RouterError::Conflict(m.to_string()),
            CommitError::Conflict { .. } => RouterError::Conflict(e.to_string()),
            CommitError::Store(_) | CommitError::Corrupt(_) => RouterError::Internal(e.to_string()),
        }
    }
}

impl From<CellCallError> for RouterError {
    fn from(e: CellCallError) -> Self {
        RouterError::Upstream {
            cell: match &e {
                CellCallError::Unreachable { addr, .. } | CellCallError::Refused { addr, .. } => {
                    addr.clone()
                }
            },
            reason: e.to_string(),
        }
    }
}

impl Control {
    pub fn new(
        live: Arc<Live>,
        store: Option<MapStore>,
        follow: Option<String>,
        cells: CellClient,
        poll: Duration,
    ) -> Self {
        Self {
            live,
            store,
            follow,
            cells,
            op: tokio::sync::Mutex::new(()),
            poll,
        }
    }

    fn store(&self) -> Result<&MapStore, RouterError> {
        self.store
            .as_ref()
            .ok_or_else(|| RouterError::Follower(self.follow.clone().unwrap_or_default()))
    }

    pub async fn audit(&self, limit: usize) -> Result<Vec<cellmap::AuditEntry>, RouterError> {
        Ok(self.store()?.audit(limit).await?)
    }

    async fn commit(
        &self,
        expected: Option<u64>,
        change: Change,
        who: &str,
    ) -> Result<CellMap, RouterError> {
        let map = self
            .store()?
            .commit(expected, change, who.to_string(), UnixMs::now().0)
            .await?;
        self.live.install(map.clone());
        self.push_all(&map).await;
        Ok(map)
    }

    /// Sends `map` to every cell in it (best effort: the health checker re-sends to a cell
    /// that reports an older version).
    pub async fn push_all(&self, map: &CellMap) {
        let pushes = map.cells.values().map(|c| {
            let (client, addr) = (self.cells.clone(), c.http.clone());
            async move {
                if let Err(e) = client.push_map(&addr, map).await {
                    tracing::warn!(%addr, error = %e, "map push failed; the health check retries");
                }
            }
        });
        futures::future::join_all(pushes).await;
    }

    /// Registers the cell answering at `http`. Its id, name and QUIC endpoint come from the
    /// cell itself; `regions` default to every region it holds restaurants in that no other
    /// cell owns.
    pub async fn add_cell(
        &self,
        http: String,
        regions: Option<Vec<RegionKey>>,
        who: &str,
    ) -> Result<CellMap, RouterError> {
        let _op = self.op.lock().await;
        let status = self.cells.status(&http).await?;
        let id = CellId::new(u32::from(status.cell_id))
            .map_err(|e| RouterError::BadRequest(e.to_string()))?;
        let current = self.live.load().map.clone();
        let regions = match regions {
            Some(r) => r,
            None => self
                .cells
                .regions(&http)
                .await?
                .into_keys()
                .filter(|r| !current.regions.contains_key(r))
                .collect(),
        };
        let quic = status.quic.as_ref();
        let cell = CellInfo {
            id,
            name: status.name.clone(),
            http,
            quic: quic.map(|q| q.addr.clone()),
            quic_server_name: quic.map(|q| q.server_name.clone()),
            quic_ca_pem: quic.and_then(|q| q.ca_pem.clone()),
            quic_fingerprint: quic.map(|q| q.fingerprint.clone()),
            state: CellState::Active,
        };
        let change = match current.cell(id) {
            // Re-adding a known cell refreshes its endpoints (it restarted elsewhere).
            Some(_) => Change::UpdateEndpoints { cell },
            None => Change::AddCell { cell, regions },
        };
        self.commit(Some(current.version), change, who).await
    }

    /// Moves `region` to cell `to`: copy the catalog, then flip the map.
    pub async fn move_region(
        &self,
        region: RegionKey,
        to: CellId,
        who: &str,
    ) -> Result<MoveReport, RouterError> {
        let _op = self.op.lock().await;
        self.move_locked(region, to, who).await
    }

    async fn move_locked(
        &self,
        region: RegionKey,
        to: CellId,
        who: &str,
    ) -> Result<MoveReport, RouterError> {
        let table = self.live.load_full();
        let map = &table.map;
        let from = map
            .owner(region.0)
            .ok_or(RouterError::Conflict(format!(
                "region {region} belongs to no cell"
            )))?
            .clone();
        let target = table
            .target(to)
            .ok_or_else(|| RouterError::NotFound(format!("cell {to} is not in the map")))?;
        if !crate::table::takes_new_work(target) {
            return Err(RouterError::Conflict(format!(
                "cell {} is {:?} or down: it cannot take a region",
                target.info.name, target.info.state
            )));
        }
        if from.id == to {
            return Err(RouterError::Conflict(format!(
                "region {region} already belongs to cell {to}"
            )));
        }
        let copied = self
            .cells
            .copy_region(region, &from.http, &target.info.http)
            .await?;
        let next = self
            .commit(Some(map.version), Change::MoveRegion { region, to }, who)
            .await?;
        metrics::counter!("router_region_moves_total").increment(1);
        tracing::info!(%region, from = %from.name, to = %target.info.name, copied, version = next.version, "region moved");
        Ok(MoveReport {
            region,
            from: from.id,
            to,
            restaurants_copied: copied,
            version: next.version,
        })
    }

    /// Drains `cell` into `to`: mark it draining and move each of its regions; the health
    /// checker marks it drained once it has no active order ([`Control::drain_progress`]).
    pub async fn drain(
        &self,
        cell: CellId,
        to: CellId,
        who: &str,
    ) -> Result<Vec<MoveReport>, RouterError> {
        let mut moves = Vec::new();
        {
            let _op = self.op.lock().await;
            let map = self.live.load().map.clone();
            let info = map
                .cell(cell)
                .ok_or_else(|| RouterError::NotFound(format!("cell {cell} is not in the map")))?;
            if info.state == CellState::Active {
                self.commit(
                    Some(map.version),
                    Change::SetState {
                        cell,
                        state: CellState::Draining,
                    },
                    who,
                )
                .await?;
            } else if info.state == CellState::Drained {
                return Ok(moves);
            }
            for region in self.live.load().map.regions_of(cell) {
                moves.push(self.move_locked(region, to, who).await?);
            }
        }
        Ok(moves)
    }

    /// Called by the health checker with a cell's fresh `active_orders`: a draining cell
    /// that owns no region and has no active order left becomes drained. Living in the check
    /// loop (not in the request that started the drain) makes a drain survive a router restart.
    pub async fn drain_progress(&self, cell: CellId, active_orders: u64) {
        if self.store.is_none() || active_orders > 0 {
            return;
        }
        let map = self.live.load().map.clone();
        let draining = map
            .cell(cell)
            .is_some_and(|c| c.state == CellState::Draining);
        if !draining || !map.regions_of(cell).is_empty() {
            return;
        }
        // A move in progress holds the lock; the next check comes back.
        let Ok(_op) = self.op.try_lock() else { return };
        let change = Change::SetState {
            cell,
            state: CellState::Drained,
        };
        match self.commit(Some(map.version), change, "router:drain").await {
            Ok(_) => tracing::info!(%cell, "cell drained"),
            Err(e) => tracing::warn!(%cell, error = %e, "drain: marking drained failed; retrying"),
        }
    }

    /// Removes a drained cell from the map.
    pub async fn remove(&self, cell: CellId, who: &str) -> Result<CellMap, RouterError> {
        let _op = self.op.lock().await;
        self.commit(None, Change::RemoveCell { cell }, who).await
    }

    /// Keeps the live table current: reads the store (other routers may share it) or the
    /// leader's map, every `poll`.
    pub async fn refresh(&self) -> Result<bool, RouterError> {
        let map = match (&self.store, &self.follow) {
            (Some(s), _) => s.load().await?,
            (None, Some(url)) => self.cells.fetch_map(url).await?,
            (None, None) => return Ok(false),
        };
        Ok(self.live.install(map))
    }

    pub fn poll_interval(&self) -> Duration {
        self.poll
    }
}
