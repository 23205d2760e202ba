//! Matching orders to drivers (Flow 2), in two halves named for what they are:
//!
//! - `machine`: the sans-IO [`machine::Matcher`]. Every decision (who is offered what, when
//!   an offer expires, when the radius widens, when an order is flagged delayed) is made
//!   here, from the candidates and the time it is given. Tested without a runtime.
//! - `task`: the async side, methods of [`super::Dispatch`]: it asks the geostore for
//!   candidates, runs the tick and the loop, sends offers and writes transitions, as the
//!   machine's answers say.

pub mod machine;
mod match_config;
mod queue;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod scenario_tests;
mod task;
#[cfg(test)]
mod task_tests;
