//! What the provider is asked for an order's pending payment state, with the keys that make
//! every repeat a replay, and how the answer is classed.

use domain::{Order, PaymentState};
use payments::{Op, PaymentError, PaymentGateway, idempotency_key};

/// The outcome of one attempt at an order's pending effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing to do: the payment state is not pending.
    Nothing,
    /// Done; the payment state to record.
    Done(PaymentState),
    /// The provider did not answer, or answered something a later try may not repeat
    /// (timeout, unavailable, an unknown answer): try again later with the same keys.
    Retry(String),
    /// Refused for good (declined, expired, an illegal move at the provider).
    Failed(String),
}

/// Whether a later try with the same key may succeed. Unlike
/// [`PaymentError::is_retryable`], a provider answer we do not understand is retried too: a
/// durable effect is given up only when the provider said no.
fn retryable(e: &PaymentError) -> bool {
    match e {
        PaymentError::Timeout | PaymentError::Unavailable | PaymentError::Provider(_) => true,
        PaymentError::Declined { .. } | PaymentError::Invalid(_) => false,
    }
}

fn classify(e: PaymentError) -> Effect {
    if retryable(&e) {
        Effect::Retry(e.to_string())
    } else {
        Effect::Failed(e.to_string())
    }
}

/// Performs the effect `order.payment_state` asks for, once (the gateway may retry inside
/// the call). Every call carries `order-<id>-<op>`, so a repeat after a crash, a replayed
/// event or a retry is answered from the provider's record.
///
/// A refund completes the capture first (with the capture's own key, so a capture already
/// made is only replayed): an order cancelled while its capture was pending may or may not
/// have been charged. If that capture is refused for good, nothing was charged and the hold
/// is voided instead.
pub async fn perform(gw: &dyn PaymentGateway, order: &Order) -> Effect {
    let auth = order.payment_ref.as_str();
    let capture_key = idempotency_key(order.id, Op::Capture);
    let capture = || gw.capture(auth, order.total, &capture_key);
    let void = || async {
        match gw.void(auth, &idempotency_key(order.id, Op::Void)).await {
            Ok(_) => Effect::Done(PaymentState::Voided),
            Err(e) => classify(e),
        }
    };
    match order.payment_state {
        PaymentState::CapturePending => match capture().await {
            Ok(_) => Effect::Done(PaymentState::Captured),
            Err(e) => classify(e),
        },
        PaymentState::VoidPending => void().await,
        PaymentState::RefundPending => match capture().await {
            Ok(_) => {
                let key = idempotency_key(order.id, Op::Refund);
                match gw.refund(auth, order.total, &key).await {
                    Ok(_) => Effect::Done(PaymentState::Refunded),
                    Err(e) => classify(e),
                }
            }
            Err(e) if retryable(&e) => Effect::Retry(e.to_string()),
            Err(_) => void().await,
        },
        // Queued for authorization: the payment queue's, not this worker's.
        PaymentState::AuthorizationPending
        | PaymentState::Authorized
        | PaymentState::Captured
        | PaymentState::Voided
        | PaymentState::Refunded
        | PaymentState::Failed => Effect::Nothing,
    }
}
