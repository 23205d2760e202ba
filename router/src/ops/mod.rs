//! SRE operations on the map: add a cell, move a region, drain a cell, remove it, one file
//! each. Only a router that owns a store (not a follower) changes the map; one operation runs
//! at a time here, and the store's compare-and-set guards against other routers sharing it.
//!
//! This file holds [`Control`], which every operation goes through: the store, the one-at-a-time
//! lock, the commit (store, live table, push to every cell) and the map refresh loop's step.
//!
//! # Layout
//! - `add.rs`: [`Control::add_cell`], registering a cell from what it reports about itself.
//! - `move_region.rs`: [`Control::move_region`], copy a region's catalog, then flip the map.
//! - `drain.rs`: [`Control::drain`] and the health checker's [`Control::drain_progress`].
//! - `remove.rs`: [`Control::remove`], dropping a drained cell.
//! - `failover.rs`: [`Control::promote`], the health checker making a standby that took
//!   over the cell's endpoint.

mod add;
mod drain;
mod failover;
mod move_region;
mod remove;

#[cfg(test)]
mod drain_tests;

pub use move_region::MoveReport;

use crate::cells::{CellCallError, CellClient};
use crate::error::RouterError;
use crate::mapstore::{CommitError, MapStore};
use crate::table::Live;
use cellmap::{CellMap, Change, MapError};
use domain::UnixMs;
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
