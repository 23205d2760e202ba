//! Moving a region copies its catalog to the target first (idempotent, so a failed move is
//! simply rerun), then flips the map in one versioned, audited commit. Orders already placed
//! stay on the source: their ids name it, so their traffic keeps reaching it.

use super::Control;
use crate::error::RouterError;
use cellmap::{Change, RegionKey};
use domain::CellId;
use serde::Serialize;

/// What a move did, as the admin API answers it.
#[derive(Debug, Serialize)]
pub struct MoveReport {
    pub region: RegionKey,
    pub from: CellId,
    pub to: CellId,
    pub restaurants_copied: u64,
    pub version: u64,
}

impl Control {
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

    /// The move itself, under the operation lock the caller holds (a drain moves every
    /// region of a cell under one).
    pub(super) async fn move_locked(
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
}
