//! The [`PaymentGateway`] trait, its request and answer types, and idempotency keys.

use crate::error::Result;
use domain::{Cents, OrderId, PaymentAction};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed, `Send` future: what every gateway method returns, so the trait stays object
/// safe and the cell can hold an `Arc<dyn PaymentGateway>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One gateway operation. Used for idempotency keys, metrics labels and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Authorize,
    Capture,
    Void,
    Refund,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Authorize => "authorize",
            Op::Capture => "capture",
            Op::Void => "void",
            Op::Refund => "refund",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order state machine names the payment effect of a transition; this is the gateway
/// operation that performs it.
impl From<PaymentAction> for Op {
    fn from(action: PaymentAction) -> Op {
        match action {
            PaymentAction::Capture => Op::Capture,
            PaymentAction::Void => Op::Void,
            PaymentAction::Refund => Op::Refund,
        }
    }
}

/// The idempotency key for one operation on one order: `order-<id>-<op>`.
///
/// Derived, never random, so that a retry after a timeout, a crash or a replayed event
/// sends the same key and the provider performs the effect at most once. This requires
/// the order id to exist before `authorize` (it is allocated first), and a retried
/// placement to reuse the same order id. Order ids are Snowflakes that embed the cell, so
/// keys are unique across cells sharing one provider account.
pub fn idempotency_key(order: OrderId, op: Op) -> String {
    format!("order-{order}-{op}")
}

/// What to authorize (hold on the customer's payment method) at order placement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizeRequest {
    /// The order total; must be positive.
    pub amount: Cents,
    /// ISO 4217, lower case as Stripe expects ("usd").
    pub currency: String,
    /// The provider's token for the customer's card (`pm_...`). We never see card numbers.
    pub payment_method_id: String,
    /// Our customer id as the provider's customer reference.
    pub customer_ref: String,
    /// Normally [`idempotency_key`]`(order, Op::Authorize)`.
    pub idempotency_key: String,
}

/// Where an authorization stands at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationStatus {
    /// Funds held, not yet charged.
    Authorized,
    /// Charged.
    Captured,
    /// Hold released without charging.
    Voided,
    /// Charged, then (partly or fully) given back.
    Refunded,
}

/// The provider's answer to any operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authorization {
    /// The provider's id for the authorization (a PaymentIntent id at Stripe). Store it on
    /// the order: capture, void and refund need it.
    pub id: String,
    /// The amount this operation acted on: held by `authorize`, charged by `capture`,
    /// released by `void`, given back by `refund`.
    pub amount: Cents,
    /// The authorization's status after the operation.
    pub status: AuthorizationStatus,
}

/// What the provider holds for one authorization, as [`PaymentGateway::retrieve`] reads it:
/// reconciliation compares it with the order, the fraud scorer reads its billing country.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    pub id: String,
    pub status: AuthorizationStatus,
    /// ISO 4217, lower case.
    pub currency: String,
    /// Held by the authorization.
    pub authorized: Cents,
    /// Charged (0 until captured).
    pub captured: Cents,
    /// Given back so far.
    pub refunded: Cents,
    /// ISO 3166-1 alpha-2 country of the payment method's billing address, upper case, when
    /// the provider knows it.
    pub billing_country: Option<String>,
}

/// A payment provider. Every method takes an idempotency key: calling again with the same
/// key and the same parameters returns the first answer without a second effect; the same
/// key with different parameters is [`PaymentError::Invalid`](crate::PaymentError::Invalid).
///
/// Implementations make one attempt per call; timeouts, retries and the circuit breaker
/// are added by [`ResilientGateway`](crate::ResilientGateway).
pub trait PaymentGateway: Send + Sync {
    /// Holds `req.amount` on the payment method (Stripe: a manual-capture PaymentIntent).
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, Result<Authorization>>;

    /// Charges up to the authorized amount; the rest of the hold is released.
    fn capture<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>>;

    /// Releases an authorization that was not captured.
    fn void<'a>(
        &'a self,
        auth_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>>;

    /// Gives back up to the captured amount.
    fn refund<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>>;

    /// Reads an authorization as the provider holds it; `Ok(None)` when the provider has no
    /// such authorization. A read has no effect, so it carries no idempotency key.
    fn retrieve<'a>(&'a self, auth_id: &'a str) -> BoxFuture<'a, Result<Option<PaymentRecord>>>;
}

// Forwarding impls, so a wrapper can own an `Arc` while a test keeps another handle to the
// same sandbox, and so `Box<dyn PaymentGateway>` is itself a gateway.
macro_rules! forward_gateway {
    ($ty:ty) => {
        impl<G: PaymentGateway + ?Sized> PaymentGateway for $ty {
            fn authorize<'a>(
                &'a self,
                req: &'a AuthorizeRequest,
            ) -> BoxFuture<'a, Result<Authorization>> {
                (**self).authorize(req)
            }
            fn capture<'a>(
                &'a self,
                auth_id: &'a str,
                amount: Cents,
                idempotency_key: &'a str,
            ) -> BoxFuture<'a, Result<Authorization>> {
                (**self).capture(auth_id, amount, idempotency_key)
            }
            fn void<'a>(
                &'a self,
                auth_id: &'a str,
                idempotency_key: &'a str,
            ) -> BoxFuture<'a, Result<Authorization>> {
                (**self).void(auth_id, idempotency_key)
            }
            fn refund<'a>(
                &'a self,
                auth_id: &'a str,
                amount: Cents,
                idempotency_key: &'a str,
            ) -> BoxFuture<'a, Result<Authorization>> {
                (**self).refund(auth_id, amount, idempotency_key)
            }
            fn retrieve<'a>(
                &'a self,
                auth_id: &'a str,
            ) -> BoxFuture<'a, Result<Option<PaymentRecord>>> {
                (**self).retrieve(auth_id)
            }
        }
    };
}

forward_gateway!(Arc<G>);
forward_gateway!(Box<G>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_derived_from_the_order_and_the_operation() {
        let order = OrderId(7_123_456_789);
        assert_eq!(
            idempotency_key(order, Op::Authorize),
            "order-7123456789-authorize"
        );
        assert_eq!(
            idempotency_key(order, Op::Capture),
            "order-7123456789-capture"
        );
        assert_eq!(idempotency_key(order, Op::Void), "order-7123456789-void");
        assert_eq!(
            idempotency_key(order, Op::Refund),
            "order-7123456789-refund"
        );
        // Same inputs, same key: that is the whole point.
        assert_eq!(
            idempotency_key(order, Op::Capture),
            idempotency_key(OrderId(7_123_456_789), Op::from(PaymentAction::Capture))
        );
    }

    #[test]
    fn the_trait_is_object_safe() {
        fn takes(_: &dyn PaymentGateway) {}
        let _ = takes;
    }
}
