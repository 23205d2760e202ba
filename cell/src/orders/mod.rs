//! Orders: key layout, the transactional repository, and [`Orders`], the order flows of the
//! cell. Every caller (the REST handlers, the driver gateway, matching, a simulator) goes
//! through [`Orders`], so a flow lives in one place whatever transport asked for it.
//!
//! # Layout
//! - `keys`: the store key layout of orders, their history, indexes and idempotency records.
//! - `ids`: order and delivery ids, never reissued across restarts (a persisted high-water
//!   mark leased in steps).
//! - `repo`: the repository; every write is one store transaction.
//! - `place`: placement (Flow 1) as one call, [`Orders::place`]: idempotent replay, pricing
//!   from the menu, the region-moved refusal, payment authorization, creation. Also
//!   [`Orders::quote`], the one pricing function.
//! - `queue`: the authorization queue of orders placed while the provider was unreachable
//!   (`payment_pending`), its durable entries and [`Orders::drain_payment_queue`].
//! - `limit`: the per-customer order placement limit, derived from the stored orders.
//! - `cells_tests.rs`: two cells on one store, isolated by their subspaces.
//! - `transition`: [`Orders::transition`], a state-machine transition with the payment
//!   effect it requires (capture, void, refund) run first.
//! - `once`: [`once::WriteOp`], the transaction id that makes a retried commit of an order
//!   write return its first outcome; the purge of old ids.

pub mod ids;
pub mod keys;
pub mod limit;
pub mod once;
pub mod place;
pub mod queue;
pub mod repo;
pub mod transition;

pub use limit::OrderLimit;
pub use once::WriteOp;
pub use place::{PlaceError, PlaceOrder, Placed, Pricing, fingerprint};
pub use queue::{QueueConfig, QueuePass};
pub use transition::OrderError;

use crate::ownership::Ownership;
use domain::SnowflakeGen;
use payments::PaymentGateway;
use std::sync::{Arc, Mutex};
use store::{Kv, LogId};

/// The order flows of one cell, with everything they need injected at startup.
pub struct Orders {
    kv: Arc<dyn Kv>,
    /// The cell's event log, written in the same transaction as every order change.
    log: LogId,
    /// Order and delivery ids: Snowflakes of this cell, leased from a persisted mark
    /// (`ids.rs`).
    ids: Mutex<SnowflakeGen>,
    /// One lease renewal at a time, so a burst of placements writes the mark once.
    renewing: tokio::sync::Mutex<()>,
    payments: Arc<dyn PaymentGateway>,
    /// The cell's currency, for payment authorizations.
    currency: String,
    /// Menus and pricing settings: placement prices carts itself, never trusting the client.
    pricing: Pricing,
    /// Who owns which region: placement refuses orders of regions moved to another cell.
    ownership: Arc<Ownership>,
    /// Orders a customer may place per window.
    order_limit: OrderLimit,
    /// How long placement waits for the provider before it queues the order.
    placement_wait: std::time::Duration,
    /// Seals the delivery address's personal fields under the customer's key at placement.
    vault: Arc<crate::personal::Vault>,
}

impl Orders {
    // Every collaborator is required (the vault too: no order is written unsealed), so a
    // builder would only move the list.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kv: Arc<dyn Kv>,
        log: LogId,
        ids: SnowflakeGen,
        payments: Arc<dyn PaymentGateway>,
        currency: String,
        pricing: Pricing,
        ownership: Arc<Ownership>,
        vault: Arc<crate::personal::Vault>,
    ) -> Self {
        Self {
            kv,
            log,
            ids: Mutex::new(ids),
            renewing: tokio::sync::Mutex::new(()),
            payments,
            currency,
            pricing,
            ownership,
            order_limit: OrderLimit::default(),
            placement_wait: QueueConfig::default().placement_wait(),
            vault,
        }
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    /// Opens and seals customers' personal data.
    pub fn vault(&self) -> &Arc<crate::personal::Vault> {
        &self.vault
    }

    pub fn log(&self) -> LogId {
        self.log
    }

    /// The payment gateway: placement authorizes through it, the payment worker performs the
    /// pending effects through it, reconciliation and the fraud scorer read from it.
    pub fn payments(&self) -> &Arc<dyn PaymentGateway> {
        &self.payments
    }
}

#[cfg(test)]
mod cells_tests;
#[cfg(test)]
mod once_tests;
#[cfg(test)]
pub(crate) mod place_tests;
#[cfg(test)]
pub(crate) mod test_stores;
#[cfg(test)]
mod tests;
