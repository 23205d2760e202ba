//! Fixtures for tests that need a cell in the map (feature `testing`).

use crate::{CellInfo, CellState};
use domain::CellId;

/// An active cell `n` called `name`, without a QUIC gateway. Its HTTP address is never
/// dialled: tests using it exercise the map and ownership, not the cell.
pub fn cell_info(n: u32, name: &str) -> CellInfo {
    CellInfo {
        id: CellId::new(n).unwrap(),
        name: name.into(),
        http: "127.0.0.1:1".into(),
        quic: None,
        quic_server_name: None,
        quic_ca_pem: None,
        quic_fingerprint: None,
        standby_http: Vec::new(),
        state: CellState::Active,
    }
}
