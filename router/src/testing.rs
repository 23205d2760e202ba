//! Fixtures for the router's unit tests: the cell fixture is cellmap's, shared with the cell's
//! tests.

pub use cellmap::testing::cell_info;
