//! A deterministic city simulator: one process, one thread, one seed. It runs the cell's own
//! logic (order service, dispatch and matcher, tracking, notifications, payment saga) on
//! virtual time against the FoundationDB-semantics model store, with simulated providers,
//! network, drivers, customers and restaurants, and checks invariants after every step.

pub mod report;
