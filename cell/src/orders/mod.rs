//! Orders: key layout, the transactional repository, and the service that orchestrates
//! payments around state-machine transitions.

pub mod keys;
pub mod repo;

#[cfg(test)]
mod tests;
