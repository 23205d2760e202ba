//! Failover: when a cell's endpoint stops answering, the health checker asks the cell's
//! standby instances ([`cellmap::CellInfo::standby_http`]) who they are. Only the instance
//! holding the cell's lease serves its status (a standby answers 503 `cell.standby`), so the
//! one that answers as this cell has taken over: [`Control::promote`] makes it the cell's
//! endpoint in the map (with its QUIC gateway, so `drivers/cell` sends drivers there), and
//! the old endpoint becomes a standby, ready to be promoted back if it returns as one.
//!
//! Each attempt reads the endpoints again and re-resolves, so the router's held requests
//! (`crate::hold`) reach the new instance as soon as the map changes.

use super::Control;
use cellapi::CellStatus;
use cellmap::{CellInfo, Change};
use domain::CellId;

impl Control {
    /// Makes `http` (a standby of `cell` that answered `status` as that cell) the cell's
    /// endpoint. A no-op on a follower, or when the map changed meanwhile.
    pub async fn promote(&self, cell: CellId, http: &str, status: &CellStatus) {
        if self.store.is_none() || status.cell_id != cell.get() {
            return;
        }
        // A move in progress holds the lock; the next failed check comes back.
        let Ok(_op) = self.op.try_lock() else { return };
        let map = self.live.load().map.clone();
        let Some(old) = map.cell(cell) else {
            return;
        };
        if old.http == http || !old.standby_http.iter().any(|s| s == http) {
            return;
        }
        let quic = status.quic.as_ref();
        let standby_http = old
            .standby_http
            .iter()
            .filter(|s| *s != http)
            .cloned()
            .chain(std::iter::once(old.http.clone()))
            .collect();
        let info = CellInfo {
            id: cell,
            name: status.name.clone(),
            http: http.to_owned(),
            quic: quic.map(|q| q.addr.clone()),
            quic_server_name: quic.map(|q| q.server_name.clone()),
            quic_ca_pem: quic.and_then(|q| q.ca_pem.clone()),
            quic_fingerprint: quic.map(|q| q.fingerprint.clone()),
            state: old.state,
            standby_http,
        };
        let change = Change::UpdateEndpoints { cell: info };
        match self
            .commit(Some(map.version), change, "router:failover")
            .await
        {
            Ok(m) => {
                metrics::counter!("router_failovers_total", "cell" => status.name.clone())
                    .increment(1);
                tracing::warn!(%cell, from = %old.http, to = %http, version = m.version, "cell failed over to its standby");
            }
            Err(e) => {
                tracing::warn!(%cell, error = %e, "failover: updating the map failed; retrying")
            }
        }
    }
}
