//! Adding a cell: the router asks the cell who it is (id, name, QUIC endpoint) and which
//! regions it holds, so an SRE names only its address.

use super::Control;
use crate::error::RouterError;
use cellmap::{CellInfo, CellMap, CellState, Change, RegionKey};
use domain::CellId;

impl Control {
    /// Registers the cell answering at `http`. Its id, name and QUIC endpoint come from the
    /// cell itself; `regions` default to every region it holds restaurants in that no other
    /// cell owns.
    pub async fn add_cell(
        &self,
        http: String,
        regions: Option<Vec<RegionKey>>,
        standby_http: Vec<String>,
        who: &str,
    ) -> Result<CellMap, RouterError> {
        let _op = self.op.lock().await;
        // A malformed endpoint, or an https one this router has no CA for, is the caller's
        // to fix: 400 naming it, not a 503 as if the cell were down.
        for e in std::iter::once(&http).chain(&standby_http) {
            self.cells
                .check_endpoint(e)
                .map_err(RouterError::BadRequest)?;
        }
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
            standby_http,
        };
        let change = match current.cell(id) {
            // Re-adding a known cell refreshes its endpoints (it restarted elsewhere).
            Some(_) => Change::UpdateEndpoints { cell },
            None => Change::AddCell { cell, regions },
        };
        self.commit(Some(current.version), change, who).await
    }
}
