//! Order transitions. A transition that needs a payment effect (capture on accept, void on
//! reject, refund after capture) commits it as a pending payment state in the same
//! transaction and answers at once, whatever the provider is doing: the payment worker
//! (`crate::saga`) performs it with a key derived from the order id. The write is guarded by
//! the status it was decided on, and a retried commit returns its first outcome.

use super::Orders;
use super::once::WriteOp;
use super::repo::{self, RepoError};
use domain::machine::decide;
use domain::{Actor, Command, Order, OrderId, Transition, UnixMs};
use payments::PaymentError;

/// Why a transition failed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// How many times a transition is re-decided when the order moved under it.
const TRANSITION_ATTEMPTS: usize = 3;

impl Orders {
    /// Applies `cmd` for `actor`; its payment effect, if any, is left pending for the worker.
    pub async fn transition(
        &self,
        id: OrderId,
        cmd: Command,
        actor: Actor,
        now: UnixMs,
    ) -> Result<(Order, Transition), OrderError> {
        // One operation across the re-decisions below: an attempt that found the order moved
        // committed nothing, so its id is still free.
        let op = WriteOp::new(now);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let order = repo::get(&*self.kv, id)
                .await?
                .ok_or(RepoError::NotFound(id))?;
            // Decided here too, so a refused command is answered without a write.
            decide(&order, &cmd, &actor).map_err(RepoError::from)?;
            match repo::transition(
                &*self.kv,
                self.log,
                id,
                cmd.clone(),
                actor,
                Some(order.status),
                &op,
            )
            .await
            {
                Err(RepoError::Changed { .. }) if attempt < TRANSITION_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
                Ok((o, t)) => {
                    metrics::counter!("cell_order_transitions_total", "to" => o.status.as_str(), "event" => t.event.as_str()).increment(1);
                    return Ok((o, t));
                }
            }
        }
    }
}
