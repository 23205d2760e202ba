//! Removing a cell from the map; the map's rules refuse a cell that is not drained yet.

use super::Control;
use crate::error::RouterError;
use cellmap::{CellMap, Change};
use domain::CellId;

impl Control {
    /// Removes a drained cell from the map.
    pub async fn remove(&self, cell: CellId, who: &str) -> Result<CellMap, RouterError> {
        let _op = self.op.lock().await;
        self.commit(None, Change::RemoveCell { cell }, who).await
    }
}
