//! Offers as fenced leases (issue 19, part 1). `lease` is the sans-IO state machine (time
//! passed in as `now`), `store` the one-transaction steps around it, `keys` their layout.
//! The matcher (`super::matching`) still decides who is offered what; these rows decide
//! whether an answer counts.

mod flow;
#[cfg(test)]
mod interleave_tests;
pub mod keys;
pub mod lease;
#[cfg(test)]
mod rules_tests;
pub mod store;
#[cfg(test)]
mod test_rig;

pub(crate) use flow::offer_error;
pub use lease::{Close, LeaseConfig, OfferId, Refusal};
pub use store::OfferError;
