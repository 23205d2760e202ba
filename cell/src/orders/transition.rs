//! Order transitions with their payment effects. A transition that needs one (capture on
//! accept, void on reject, refund after capture) calls the gateway first, with a key
//! derived from the order id, then writes the transition guarded by the status it was
//! decided on. Retries at any point repeat nothing the provider or the store would see twice.

use super::Orders;
use super::once::WriteOp;
use super::repo::{self, RepoError};
use domain::machine::decide;
use domain::{Actor, Command, Order, OrderId, PaymentAction, Transition, UnixMs};
use payments::{Op, PaymentError, idempotency_key};

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
    /// Applies `cmd` for `actor`, running the transition's payment effect first.
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
            let decision = decide(&order, &cmd, &actor).map_err(RepoError::from)?;
            if let Some(action) = decision.payment {
                self.pay(&order, action).await?;
            }
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

    async fn pay(&self, order: &Order, action: PaymentAction) -> Result<(), PaymentError> {
        let op = Op::from(action);
        let key = idempotency_key(order.id, op);
        let r = match action {
            PaymentAction::Capture => {
                self.payments
                    .capture(&order.payment_ref, order.total, &key)
                    .await
            }
            PaymentAction::Void => self.payments.void(&order.payment_ref, &key).await,
            PaymentAction::Refund => {
                self.payments
                    .refund(&order.payment_ref, order.total, &key)
                    .await
            }
        };
        r.map(|_| ())
    }
}
