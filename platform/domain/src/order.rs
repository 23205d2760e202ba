//! The order record as stored (the seed's `orders` table), its items snapshot, the status
//! history rows (`order_status_history`) and the events appended to the cell's log.

use crate::ids::{CustomerId, DeliveryId, DriverId, MenuItemId, OrderId, RestaurantId};
use crate::machine::{Actor, OrderStatus};
use crate::money::Cents;
use crate::time::UnixMs;
use serde::{Deserialize, Serialize};

/// A delivery address. The coordinates stay plaintext (dispatch, pricing and tracking need
/// them on every tick); the personal fields (street address, phone, delivery notes) are
/// stored sealed in [`Address::sealed`] and shown to the customer, and to the assigned driver
/// during the delivery only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub lat: f64,
    pub lng: f64,
    /// Plaintext street address: only in orders written before encryption at rest (legacy,
    /// read as they are) and on a cart before placement; empty in every order written since.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub formatted: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedContact>,
}

/// The personal fields of a delivery address, each AES-256-GCM ciphertext (base64) under the
/// customer's data key, with associated data naming the cell, customer, order and field
/// (`cell::personal`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formatted: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// A chosen customization option, priced from the menu at order time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenOption {
    pub group: String,
    pub option: String,
    pub price_delta: Cents,
}

/// One line of the items snapshot: what was ordered, at the menu's price then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    pub item_id: MenuItemId,
    pub name: String,
    pub quantity: u32,
    /// Base price of one unit.
    pub unit_price: Cents,
    pub customizations: Vec<ChosenOption>,
    /// `quantity × (unit_price + Σ price_delta)`.
    pub line_total: Cents,
}

/// The kitchen's progress, tracked apart from the headline status once a driver is assigned
/// (drivers are usually assigned while the food is still being prepared).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum KitchenStage {
    #[default]
    Received,
    Accepted,
    Preparing,
    Ready,
}

/// Where the payment for an order stands at the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentState {
    /// Funds held at placement.
    #[default]
    Authorized,
    /// Charged when the restaurant accepted.
    Captured,
    /// Hold released (rejected, or cancelled before capture).
    Voided,
    /// Charged, then refunded (cancelled after capture).
    Refunded,
    /// Placed while the provider was unreachable: nothing is held yet; the authorization
    /// queue asks again when the provider is back (`payment_pending` orders).
    AuthorizationPending,
    /// The restaurant accepted: the capture is committed with the confirmation and the
    /// payment worker performs it (`cell/src/payments`).
    CapturePending,
    /// Rejected or cancelled before capture: the worker releases the hold.
    VoidPending,
    /// Cancelled after (or while) capturing: the worker completes the capture, if it was not
    /// done yet, then refunds it.
    RefundPending,
    /// An effect failed for good (authorization expired or refused) and nothing more will be
    /// tried; the compensation (if configured) has been started.
    Failed,
}

impl PaymentState {
    /// Whether the payment worker still has an effect to perform for the order.
    pub fn is_pending(self) -> bool {
        match self {
            PaymentState::CapturePending
            | PaymentState::VoidPending
            | PaymentState::RefundPending => true,
            // Queued for authorization: the payment queue owns it, not the payment worker.
            PaymentState::AuthorizationPending
            | PaymentState::Authorized
            | PaymentState::Captured
            | PaymentState::Voided
            | PaymentState::Refunded
            | PaymentState::Failed => false,
        }
    }

    /// The stable name (as in the order JSON's `payment_status`).
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentState::AuthorizationPending => "authorization_pending",
            PaymentState::Authorized => "authorized",
            PaymentState::Captured => "captured",
            PaymentState::Voided => "voided",
            PaymentState::Refunded => "refunded",
            PaymentState::CapturePending => "capture_pending",
            PaymentState::VoidPending => "void_pending",
            PaymentState::RefundPending => "refund_pending",
            PaymentState::Failed => "failed",
        }
    }
}

/// The order record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    /// Restaurant name and location, copied at placement so matching and tracking never
    /// depend on the catalog (which may move to another cell).
    pub restaurant_name: String,
    pub restaurant_lat: f64,
    pub restaurant_lng: f64,
    pub status: OrderStatus,
    pub kitchen: KitchenStage,
    pub driver_id: Option<DriverId>,
    pub delivery_id: Option<DeliveryId>,
    pub items: Vec<OrderItem>,
    pub delivery_address: Address,
    pub subtotal: Cents,
    pub delivery_fee: Cents,
    pub tax: Cents,
    pub total: Cents,
    pub payment_state: PaymentState,
    /// The gateway's authorization reference.
    pub payment_ref: String,
    /// ETA window, as absolute times.
    pub estimated_delivery_min: UnixMs,
    pub estimated_delivery_max: UnixMs,
    /// Set when matching found no driver after widening: the customer was told of a delay.
    pub delayed: bool,
    pub cancel_reason: Option<String>,
    pub created_at: UnixMs,
    pub updated_at: UnixMs,
}

/// One row of `order_status_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The headline status after this step.
    pub status: OrderStatus,
    /// What happened (a kitchen step can leave the headline status unchanged).
    pub event: EventKind,
    pub at: UnixMs,
    pub by: Actor,
    /// The driver attached to the order after this step, so assignments are auditable.
    #[serde(default)]
    pub driver_id: Option<DriverId>,
}

/// Kinds of events in the cell's log. Names are stable: consumers and webhooks see them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    OrderCreated,
    OrderConfirmed,
    OrderRejected,
    OrderPreparing,
    OrderReady,
    DriverAssigned,
    DriverUnassigned,
    DriverAtRestaurant,
    OrderPickedUp,
    OrderDelivering,
    OrderDelivered,
    OrderCancelled,
    OrderDelayed,
    /// Written as `payment_pending` while the provider was unreachable; `order_created`
    /// follows once the authorization queue holds the funds.
    OrderPaymentPending,
    /// A payment effect failed for good and the order was compensated (cancelled with reason
    /// `payment_failed`): appended after the cancellation's own event, so the customer and the
    /// restaurant are told why.
    PaymentFailed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::OrderCreated => "order_created",
            EventKind::OrderConfirmed => "order_confirmed",
            EventKind::OrderRejected => "order_rejected",
            EventKind::OrderPreparing => "order_preparing",
            EventKind::OrderReady => "order_ready",
            EventKind::DriverAssigned => "driver_assigned",
            EventKind::DriverUnassigned => "driver_unassigned",
            EventKind::DriverAtRestaurant => "driver_at_restaurant",
            EventKind::OrderPickedUp => "order_picked_up",
            EventKind::OrderDelivering => "order_delivering",
            EventKind::OrderDelivered => "order_delivered",
            EventKind::OrderCancelled => "order_cancelled",
            EventKind::OrderDelayed => "order_delayed",
            EventKind::OrderPaymentPending => "order_payment_pending",
            EventKind::PaymentFailed => "payment_failed",
        }
    }
}

/// The payload of one event in the cell's log: enough for every consumer (matching,
/// tracking, notifications) to act without re-reading the order in the common case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub kind: EventKind,
    pub order_id: OrderId,
    pub customer_id: CustomerId,
    pub restaurant_id: RestaurantId,
    pub status: OrderStatus,
    pub driver_id: Option<DriverId>,
    pub at: UnixMs,
}

impl OrderEvent {
    pub fn for_order(order: &Order, kind: EventKind, at: UnixMs) -> OrderEvent {
        OrderEvent {
            kind,
            order_id: order.id,
            customer_id: order.customer_id,
            restaurant_id: order.restaurant_id,
            status: order.status,
            driver_id: order.driver_id,
            at,
        }
    }
}
