//! The matching queue's order: time waited plus a value bonus capped at V.

use super::machine::{JobSpec, MatchConfig};
use domain::OrderId;

/// A job's place in the queue. Priority at time t is (t − arrived) + bonus, with the bonus
/// (from the order's value) capped at V; since t is common to all jobs, ordering by priority
/// is ordering by `arrived − bonus` ascending, a key that never changes while the job waits:
/// no re-sorting as time passes. Ties go to the oldest, then the smaller id. An order that
/// arrived more than V after another has a larger key whatever the values: nobody starves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct QueueKey {
    effective: i64,
    arrived: i64,
    pub(super) order: OrderId,
}

impl QueueKey {
    pub(super) fn of(spec: &JobSpec, cfg: &MatchConfig) -> Self {
        QueueKey {
            effective: spec
                .arrived
                .0
                .saturating_sub(cfg.value_bonus_ms(spec.value)),
            arrived: spec.arrived.0,
            order: spec.order,
        }
    }
}
