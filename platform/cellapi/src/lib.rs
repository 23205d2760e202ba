//! The admin contract between a cell and the router, written once: the JSON the cell's admin
//! endpoints send and accept, the paths they live at, and the limits both sides must agree
//! on. The cell's handlers serve these types and the router's `CellClient` decodes the same
//! ones, so a change to the contract is a change here, and a side that drifts stops compiling.
//!
//! Pure data: no I/O, no HTTP client or server, no store. The types derive `utoipa::ToSchema`
//! because the cell's OpenAPI document includes them.
//!
//! # Layout
//! - `paths`: the endpoint paths (as the cell registers them) and URL builders for the router.
//! - `status`: [`CellStatus`] (health and load, polled by the router), [`QuicInfo`] (where
//!   drivers reach the cell) and [`MapAck`] (the answer to a cell-map push; the pushed body is
//!   [`cellmap::CellMap`] itself).
//! - `regions`: what a region move reads and writes: [`RegionsResponse`], [`ExportQuery`],
//!   [`ExportPage`], [`ImportRequest`], [`ImportResponse`], each page made of [`RegionEntry`].
//!   Entries are generic: the cell reads typed catalog records, the router passes them through
//!   unparsed as [`RawJson`].
//!
//! The tests pin the JSON field names each side relies on, so a renamed field fails here first.

pub mod paths;
mod regions;
mod status;

pub use regions::{
    DEFAULT_EXPORT_PAGE, ExportPage, ExportQuery, ImportRequest, ImportResponse, MAX_EXPORT_PAGE,
    RawJson, RegionEntry, RegionsResponse,
};
pub use status::{CellStatus, DrainProgress, DriverDot, MAX_DRIVER_SAMPLE, MapAck, QuicInfo};

/// Largest request body a cell accepts on its admin routes. Import pages carry whole menus (a
/// demo restaurant with its menu is ~17 KiB), far above the public API's request limit; only
/// admins reach these routes. The router sizes its copy pages to stay under it.
pub const MAX_ADMIN_BODY_BYTES: usize = 32 * 1024 * 1024;
