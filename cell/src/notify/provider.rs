//! What a push notification is, who receives it, and the [`PushProvider`] trait every
//! delivery channel implements.

use domain::{CustomerId, DriverId, EventKind, OrderId, RestaurantId, UnixMs};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use store::{LogId, LogPos};

/// A boxed, `Send` future, so [`PushProvider`] stays object safe and the cell can hold an
/// `Arc<dyn PushProvider>` chosen at startup from config.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who a notification is for. In JSON: `{"role":"customer","id":"123"}` (ids are decimal
/// strings, as everywhere in our JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Recipient {
    Customer(CustomerId),
    Restaurant(RestaurantId),
    Driver(DriverId),
}

impl Recipient {
    /// The role name, used in idempotency keys and logs.
    pub fn role(&self) -> &'static str {
        match self {
            Recipient::Customer(_) => "customer",
            Recipient::Restaurant(_) => "restaurant",
            Recipient::Driver(_) => "driver",
        }
    }
}

/// One push notification, as sent to a provider (the webhook body is this, as JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// See [`idempotency_key`]: the same event always yields the same key.
    pub idempotency_key: String,
    pub recipient: Recipient,
    /// The event that caused it (`"order_confirmed"`, ...).
    pub kind: EventKind,
    pub title: String,
    pub body: String,
    pub order_id: OrderId,
    /// When the event happened (not when the notification was sent: a notification sent
    /// late after shedding still says when things happened).
    pub at: UnixMs,
}

/// Where a notification came from: one position in one cell's event log. The log id is the
/// cell id, so keys are unique across cells sharing one provider account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub log: LogId,
    pub pos: LogPos,
}

/// The idempotency key of the notification for `recipient` caused by the event at `origin`:
/// `cell-<log>-evt-<pos>-<role>` (e.g. `cell-1-evt-42-customer`).
///
/// Derived from the log position, never random: a replay after a crash (the cursor is saved
/// per batch, so the tail of a batch is re-read) sends the same key again and the receiver,
/// which dedupes by key, shows nothing twice. The role is part of the key because one event
/// may notify several parties, and each of them must get theirs.
pub fn idempotency_key(origin: Origin, recipient: &Recipient) -> String {
    format!(
        "cell-{}-evt-{}-{}",
        origin.log.0,
        origin.pos.0,
        recipient.role()
    )
}

/// Why a send failed, by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// The provider refused this notification for good (bad request, unknown recipient):
    /// retrying cannot help, so it is counted and dropped.
    #[error("rejected by the push provider: {0}")]
    Rejected(String),
    /// The provider could not take it now (5xx, 429, refused connection): retry later.
    #[error("push provider unavailable")]
    Unavailable,
    /// No answer in time; it may or may not have been delivered, so retry with the same key.
    #[error("push provider timed out")]
    Timeout,
}

impl PushError {
    /// Whether the same notification may succeed later.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, PushError::Rejected(_))
    }

    /// A metrics label.
    pub fn outcome(&self) -> &'static str {
        match self {
            PushError::Rejected(_) => "rejected",
            PushError::Unavailable => "unavailable",
            PushError::Timeout => "timeout",
        }
    }
}

/// A push channel. Sending the same [`Notification::idempotency_key`] twice must not
/// notify twice (providers dedupe by key; [`super::LogPush`] does too). Implementations may
/// retry internally ([`super::WebhookPush`] does); an error means they gave up for now.
pub trait PushProvider: Send + Sync {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), PushError>>;

    /// A short name for logs ("log", "webhook").
    fn name(&self) -> &'static str;
}

// So a test can keep a handle on the concrete provider while the consumer owns an `Arc`.
impl<P: PushProvider + ?Sized> PushProvider for Arc<P> {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), PushError>> {
        (**self).send(n)
    }
    fn name(&self) -> &'static str {
        (**self).name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trait_is_object_safe() {
        fn takes(_: &dyn PushProvider) {}
        let _ = takes;
    }

    #[test]
    fn keys_come_from_the_log_position_and_the_recipient_role() {
        let o = Origin {
            log: LogId(1),
            pos: LogPos(42),
        };
        assert_eq!(
            idempotency_key(o, &Recipient::Customer(CustomerId(9))),
            "cell-1-evt-42-customer"
        );
        assert_eq!(
            idempotency_key(o, &Recipient::Restaurant(RestaurantId(9))),
            "cell-1-evt-42-restaurant"
        );
    }

    #[test]
    fn recipients_serialize_with_role_and_string_id() {
        let j = serde_json::to_value(Recipient::Driver(DriverId(7))).unwrap();
        assert_eq!(j, serde_json::json!({"role": "driver", "id": "7"}));
        let back: Recipient = serde_json::from_value(j).unwrap();
        assert_eq!(back, Recipient::Driver(DriverId(7)));
    }
}
