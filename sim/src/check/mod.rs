//! The invariant checkers, written apart from the code under test: they read what the store
//! holds (orders, their status history, the event log) and what the simulation itself saw
//! (what the cell acknowledged to each app, what the providers were asked to do), never the
//! cell's in-memory state.
//!
//! After every step that touched the cell, [`Checker::step`] reads the log from its own
//! cursor and checks every order an event touched ([`order`]). At the end,
//! [`Checker::finish`] checks what only holds once things have settled ([`finish`]).

mod finish;
mod order;

use crate::providers::SimPayments;
use domain::{DriverId, OrderId, OrderStatus};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use store::{Kv, LogId, LogPos};

pub use finish::quiescent;

/// A broken invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub invariant: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

pub(crate) fn broken(invariant: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { invariant, detail })
}

/// Store reads are retried: the checkers run on the faulty store too.
const READ_TRIES: usize = 8;

#[derive(Debug, Default)]
pub struct Checker {
    cursor: LogPos,
    legal: BTreeSet<(OrderStatus, OrderStatus)>,
    /// Driver → their active orders, as the store last showed them.
    active: BTreeMap<DriverId, BTreeSet<OrderId>>,
    driver_of: BTreeMap<OrderId, DriverId>,
    /// Orders whose payment effect was pending when last read.
    pay_pending: BTreeSet<OrderId>,
    outcome: BTreeMap<OrderId, OrderStatus>,
}

impl Checker {
    pub fn new() -> Self {
        Self {
            legal: order::legal_moves(),
            ..Self::default()
        }
    }

    /// (delivered, cancelled) so far.
    pub fn outcomes(&self) -> (u64, u64) {
        let n = |s| self.outcome.values().filter(|v| **v == s).count() as u64;
        (n(OrderStatus::Delivered), n(OrderStatus::Cancelled))
    }

    pub fn pay_pending(&self) -> &BTreeSet<OrderId> {
        &self.pay_pending
    }

    /// Checks every order the log says changed since the last call.
    pub async fn step(&mut self, kv: &dyn Kv, pay: &SimPayments) -> Result<(), Violation> {
        let mut touched = BTreeSet::new();
        let mut cursor = self.cursor;
        loop {
            let mut batch = None;
            for _ in 0..READ_TRIES {
                if let Ok(b) = kv
                    .read_events(LogId(crate::node::CELL), cursor.next(), 1_000)
                    .await
                {
                    batch = Some(b);
                    break;
                }
            }
            // The store would not answer: look again after the next step.
            let Some(batch) = batch else { return Ok(()) };
            let Some(last) = batch.last().map(|e| e.pos) else {
                break;
            };
            for e in &batch {
                if let Ok(ev) = serde_json::from_slice::<domain::OrderEvent>(&e.payload) {
                    touched.insert(ev.order_id);
                }
            }
            cursor = last;
        }
        let mut views = Vec::new();
        for id in &touched {
            let mut got = None;
            for _ in 0..READ_TRIES {
                if let Ok(v) = cell::orders::repo::get_with_history(kv, *id).await {
                    got = Some(v);
                    break;
                }
            }
            let Some(view) = got else { return Ok(()) };
            let Some((o, h)) = view else {
                return broken("log names a missing order", format!("order {id}"));
            };
            order::check(&self.legal, &o, &h, pay.ledger_of(o.id).as_ref())?;
            views.push(o);
        }
        self.cursor = cursor;
        for o in &views {
            self.update_views(o);
        }
        for o in &views {
            if let Some(d) = o.driver_id
                && let Some(set) = self.active.get(&d)
                && set.len() > 1
            {
                return broken(
                    "a driver with two active orders",
                    format!("driver {d} carries {set:?}"),
                );
            }
        }
        Ok(())
    }

    fn update_views(&mut self, o: &domain::Order) {
        if let Some(d) = self.driver_of.remove(&o.id)
            && let Some(set) = self.active.get_mut(&d)
        {
            set.remove(&o.id);
        }
        if let Some(d) = o.driver_id
            && o.status.is_active()
        {
            self.driver_of.insert(o.id, d);
            self.active.entry(d).or_default().insert(o.id);
        }
        if o.payment_state.is_pending() {
            self.pay_pending.insert(o.id);
        } else {
            self.pay_pending.remove(&o.id);
        }
        if o.status.is_terminal() {
            self.outcome.insert(o.id, o.status);
        }
    }

    /// The checks that hold once faults stopped and the city settled.
    pub async fn finish(
        &mut self,
        kv: &dyn Kv,
        pay: &SimPayments,
        shown: &[crate::providers::Shown],
        acked: &[OrderId],
        trackers_open: &[OrderId],
    ) -> Result<(), Violation> {
        finish::check(kv, pay, shown, acked, trackers_open).await
    }
}
