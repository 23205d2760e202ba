//! Draining a cell: it is marked draining and its regions move away; it becomes drained once
//! it owns no region and has no active order, which the health checker notices.

use super::Control;
use super::MoveReport;
use crate::error::RouterError;
use cellmap::{CellState, Change};
use domain::CellId;

impl Control {
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
}
