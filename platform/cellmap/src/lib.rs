//! The cell map: which city cell owns each H3 region (resolution
//! [`domain::REGION_RESOLUTION`], the unit restaurant ids embed), each cell's endpoints and
//! state, and a version bumped by every change.
//!
//! Pure data and rules, no I/O: the router persists it through the store trait and swaps it
//! atomically; cells receive it to hand drivers over and to refuse new work for regions they
//! no longer own. Every change goes through [`CellMap::apply`], the one place the rules live.
//! `testing` (feature `testing`): the one `CellInfo` fixture tests share.

mod endpoint;
mod model;
mod region;
#[cfg(feature = "testing")]
pub mod testing;

pub use endpoint::Endpoint;
pub use model::{AuditEntry, CellInfo, CellMap, CellState, Change, MapError};
pub use region::RegionKey;
