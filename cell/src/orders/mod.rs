//! Orders: key layout, the transactional repository, and the service that orchestrates
//! payments around state-machine transitions.

pub mod keys;
pub mod repo;
pub mod service;

#[cfg(test)]
mod tests;
