//! The order state machine: one status enum, one transition table, who may cause each
//! transition, and the payment effect it requires. No I/O, no clock, no storage: the order
//! service reads the order, asks [`decide`], then writes the transition, its history row and
//! its event in one store transaction.
//!
//! Headline path: pending → confirmed → preparing → ready_for_pickup → driver_assigned →
//! driver_at_restaurant → picked_up → delivering → delivered; cancelled from every state
//! before pickup. Matching starts at confirmation, so a driver is often assigned while the
//! kitchen is still working: then the headline status is `driver_assigned` and the kitchen's
//! later steps (preparing, ready) advance [`KitchenStage`] with their own events.

use crate::ids::{CustomerId, DeliveryId, DriverId, RestaurantId};
use crate::order::{EventKind, KitchenStage, Order, PaymentState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The one order status enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed while the payment provider was unreachable: written, answered 202 ("Order is
    /// being processed"), not yet shown to the restaurant. The authorization queue moves it
    /// to `pending` once the funds are held, or cancels it.
    PaymentPending,
    Pending,
    Confirmed,
    Preparing,
    ReadyForPickup,
    DriverAssigned,
    DriverAtRestaurant,
    PickedUp,
    Delivering,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 11] = [
        OrderStatus::PaymentPending,
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Preparing,
        OrderStatus::ReadyForPickup,
        OrderStatus::DriverAssigned,
        OrderStatus::DriverAtRestaurant,
        OrderStatus::PickedUp,
        OrderStatus::Delivering,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PaymentPending => "payment_pending",
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Preparing => "preparing",
            OrderStatus::ReadyForPickup => "ready_for_pickup",
            OrderStatus::DriverAssigned => "driver_assigned",
            OrderStatus::DriverAtRestaurant => "driver_at_restaurant",
            OrderStatus::PickedUp => "picked_up",
            OrderStatus::Delivering => "delivering",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// No transition leaves a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }

    /// Active orders are those a restaurant tablet or a driver still acts on.
    pub fn is_active(self) -> bool {
        !self.is_terminal()
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for OrderStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        OrderStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or(())
    }
}

/// Who causes a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Customer(CustomerId),
    Restaurant(RestaurantId),
    Driver(DriverId),
    /// The cell itself: matching, timers, payment failures.
    System,
    /// An operator acting through the admin API.
    Admin,
}

/// What someone asks of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    Accept,
    Reject {
        reason: String,
    },
    StartPreparing,
    MarkReady,
    AssignDriver {
        driver: DriverId,
        delivery: DeliveryId,
    },
    UnassignDriver,
    ArriveAtRestaurant,
    PickUp,
    StartDelivering,
    Deliver,
    Cancel {
        reason: String,
    },
    FlagDelayed,
    /// The authorization queue held the funds of a `payment_pending` order.
    AuthorizePayment {
        payment_ref: String,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Accept => "accept",
            Command::Reject { .. } => "reject",
            Command::StartPreparing => "start_preparing",
            Command::MarkReady => "mark_ready",
            Command::AssignDriver { .. } => "assign_driver",
            Command::UnassignDriver => "unassign_driver",
            Command::ArriveAtRestaurant => "arrive_at_restaurant",
            Command::PickUp => "pick_up",
            Command::StartDelivering => "start_delivering",
            Command::Deliver => "deliver",
            Command::Cancel { .. } => "cancel",
            Command::FlagDelayed => "flag_delayed",
            Command::AuthorizePayment { .. } => "authorize_payment",
        }
    }
}

/// What the payment gateway must do for a transition, before it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentAction {
    Capture,
    Void,
    Refund,
}

impl PaymentAction {
    /// The payment state a transition commits: the effect itself is performed afterwards by
    /// the payment worker, which records [`PaymentAction::resulting_state`].
    pub fn pending_state(self) -> PaymentState {
        match self {
            PaymentAction::Capture => PaymentState::CapturePending,
            PaymentAction::Void => PaymentState::VoidPending,
            PaymentAction::Refund => PaymentState::RefundPending,
        }
    }

    /// The payment state once the action succeeded.
    pub fn resulting_state(self) -> PaymentState {
        match self {
            PaymentAction::Capture => PaymentState::Captured,
            PaymentAction::Void => PaymentState::Voided,
            PaymentAction::Refund => PaymentState::Refunded,
        }
    }
}

/// The decision for one command: apply it with [`Transition::apply`]. Serializable, so a
/// store can record it as the outcome of a write that must not repeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub kitchen: KitchenStage,
    pub event: EventKind,
    pub payment: Option<PaymentAction>,
    /// `Some(Some(..))` assigns, `Some(None)` unassigns, `None` leaves the driver alone.
    pub driver: Option<Option<(DriverId, DeliveryId)>>,
    pub delayed: Option<bool>,
    pub cancel_reason: Option<String>,
    /// The provider's authorization id, once a queued order's funds are held.
    #[serde(default)]
    pub authorization: Option<String>,
}

/// Why a command was refused: a value, never a panic (HTTP maps it to 409 or 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("cannot {command} an order that is {from}")]
    Invalid {
        from: OrderStatus,
        command: &'static str,
    },
    #[error("{actor} may not {command} this order")]
    Forbidden {
        actor: &'static str,
        command: &'static str,
    },
}

fn actor_name(actor: &Actor) -> &'static str {
    match actor {
        Actor::Customer(_) => "customer",
        Actor::Restaurant(_) => "restaurant",
        Actor::Driver(_) => "driver",
        Actor::System => "system",
        Actor::Admin => "admin",
    }
}

/// Parties an order admits for a command.
#[derive(Clone, Copy)]
struct Who {
    customer: bool,
    restaurant: bool,
    driver: bool,
    system: bool,
}

const RESTAURANT: Who = Who {
    customer: false,
    restaurant: true,
    driver: false,
    system: false,
};
const SYSTEM: Who = Who {
    customer: false,
    restaurant: false,
    driver: false,
    system: true,
};
const DRIVER: Who = Who {
    customer: false,
    restaurant: false,
    driver: true,
    system: false,
};
const DRIVER_OR_SYSTEM: Who = Who {
    customer: false,
    restaurant: false,
    driver: true,
    system: true,
};
const ANY_PARTY: Who = Who {
    customer: true,
    restaurant: true,
    driver: false,
    system: true,
};

/// The parties a command admits, whatever the order's status.
fn who_for(cmd: &Command) -> Who {
    match cmd {
        Command::Accept | Command::Reject { .. } | Command::StartPreparing | Command::MarkReady => {
            RESTAURANT
        }
        Command::AssignDriver { .. }
        | Command::UnassignDriver
        | Command::FlagDelayed
        | Command::AuthorizePayment { .. } => SYSTEM,
        Command::ArriveAtRestaurant | Command::PickUp | Command::Deliver => DRIVER,
        Command::StartDelivering => DRIVER_OR_SYSTEM,
        Command::Cancel { .. } => ANY_PARTY,
    }
}

/// Admin may do anything a party may; a party must be *this order's* customer, restaurant or
/// assigned driver.
fn permitted(who: Who, actor: &Actor, order: &Order) -> bool {
    match actor {
        Actor::Admin => true,
        Actor::System => who.system,
        Actor::Customer(c) => who.customer && *c == order.customer_id,
        Actor::Restaurant(r) => who.restaurant && *r == order.restaurant_id,
        Actor::Driver(d) => who.driver && order.driver_id == Some(*d),
    }
}

/// The transition table. Every (command, status) pair is listed: no `_` arm, so adding a
/// status or a command forces a decision here.
pub fn decide(order: &Order, cmd: &Command, actor: &Actor) -> Result<Transition, TransitionError> {
    use OrderStatus::*;
    let from = order.status;
    let invalid = || TransitionError::Invalid {
        from,
        command: cmd.name(),
    };
    // Who may ask is checked first: a wrong party learns nothing about the order's state.
    if !permitted(who_for(cmd), actor, order) {
        return Err(TransitionError::Forbidden {
            actor: actor_name(actor),
            command: cmd.name(),
        });
    }
    let k = order.kitchen;
    let base = |to: OrderStatus, kitchen: KitchenStage, event: EventKind| Transition {
        from,
        to,
        kitchen,
        event,
        payment: None,
        driver: None,
        delayed: None,
        cancel_reason: None,
        authorization: None,
    };

    // (who may, transition) for this command in this status.
    let t = match cmd {
        Command::Accept => match from {
            Pending => Transition {
                payment: Some(PaymentAction::Capture),
                ..base(Confirmed, KitchenStage::Accepted, EventKind::OrderConfirmed)
            },
            Confirmed | Preparing | ReadyForPickup | DriverAssigned | DriverAtRestaurant
            | PickedUp | Delivering | Delivered | Cancelled | PaymentPending => {
                return Err(invalid());
            }
        },
        Command::Reject { reason } => match from {
            Pending => Transition {
                payment: Some(PaymentAction::Void),
                cancel_reason: Some(reason.clone()),
                ..base(Cancelled, k, EventKind::OrderRejected)
            },
            Confirmed | Preparing | ReadyForPickup | DriverAssigned | DriverAtRestaurant
            | PickedUp | Delivering | Delivered | Cancelled | PaymentPending => {
                return Err(invalid());
            }
        },
        Command::StartPreparing => match from {
            Confirmed => base(
                Preparing,
                KitchenStage::Preparing,
                EventKind::OrderPreparing,
            ),
            DriverAssigned | DriverAtRestaurant if k == KitchenStage::Accepted => {
                base(from, KitchenStage::Preparing, EventKind::OrderPreparing)
            }
            DriverAssigned | DriverAtRestaurant | Pending | Preparing | ReadyForPickup
            | PickedUp | Delivering | Delivered | Cancelled | PaymentPending => {
                return Err(invalid());
            }
        },
        Command::MarkReady => match from {
            Confirmed | Preparing => {
                base(ReadyForPickup, KitchenStage::Ready, EventKind::OrderReady)
            }
            DriverAssigned | DriverAtRestaurant if k < KitchenStage::Ready => {
                base(from, KitchenStage::Ready, EventKind::OrderReady)
            }
            DriverAssigned | DriverAtRestaurant | Pending | ReadyForPickup | PickedUp
            | Delivering | Delivered | Cancelled | PaymentPending => return Err(invalid()),
        },
        Command::AssignDriver { driver, delivery } => match from {
            Confirmed | Preparing | ReadyForPickup if order.driver_id.is_none() => Transition {
                driver: Some(Some((*driver, *delivery))),
                ..base(DriverAssigned, k, EventKind::DriverAssigned)
            },
            Confirmed | Preparing | ReadyForPickup | Pending | DriverAssigned
            | DriverAtRestaurant | PickedUp | Delivering | Delivered | Cancelled
            | PaymentPending => {
                return Err(invalid());
            }
        },
        Command::UnassignDriver => match from {
            DriverAssigned | DriverAtRestaurant => {
                // Back to the status the kitchen's progress implies.
                let to = match k {
                    KitchenStage::Received | KitchenStage::Accepted => Confirmed,
                    KitchenStage::Preparing => Preparing,
                    KitchenStage::Ready => ReadyForPickup,
                };
                Transition {
                    driver: Some(None),
                    ..base(to, k, EventKind::DriverUnassigned)
                }
            }
            Pending | Confirmed | Preparing | ReadyForPickup | PickedUp | Delivering
            | Delivered | Cancelled | PaymentPending => return Err(invalid()),
        },
        Command::ArriveAtRestaurant => match from {
            DriverAssigned => base(DriverAtRestaurant, k, EventKind::DriverAtRestaurant),
            Pending | Confirmed | Preparing | ReadyForPickup | DriverAtRestaurant | PickedUp
            | Delivering | Delivered | Cancelled | PaymentPending => return Err(invalid()),
        },
        Command::PickUp => match from {
            // A driver may skip the "arrived" tap; handing over the food means it was ready.
            DriverAssigned | DriverAtRestaurant => {
                base(PickedUp, KitchenStage::Ready, EventKind::OrderPickedUp)
            }
            Pending | Confirmed | Preparing | ReadyForPickup | PickedUp | Delivering
            | Delivered | Cancelled | PaymentPending => return Err(invalid()),
        },
        Command::StartDelivering => match from {
            PickedUp => base(Delivering, k, EventKind::OrderDelivering),
            Pending | Confirmed | Preparing | ReadyForPickup | DriverAssigned
            | DriverAtRestaurant | Delivering | Delivered | Cancelled | PaymentPending => {
                return Err(invalid());
            }
        },
        Command::Deliver => match from {
            PickedUp | Delivering => base(Delivered, k, EventKind::OrderDelivered),
            Pending | Confirmed | Preparing | ReadyForPickup | DriverAssigned
            | DriverAtRestaurant | Delivered | Cancelled | PaymentPending => return Err(invalid()),
        },
        Command::Cancel { reason } => match from {
            PaymentPending | Pending | Confirmed | Preparing | ReadyForPickup | DriverAssigned
            | DriverAtRestaurant => {
                let payment = match order.payment_state {
                    // A capture that failed for good left the hold in place: release it.
                    PaymentState::Authorized | PaymentState::Failed => Some(PaymentAction::Void),
                    // A pending capture may already have reached the provider, so it is
                    // completed and refunded rather than raced by a void.
                    PaymentState::Captured | PaymentState::CapturePending => {
                        Some(PaymentAction::Refund)
                    }
                    // Nothing is held before the queue's authorization succeeded.
                    PaymentState::Voided
                    | PaymentState::Refunded
                    | PaymentState::VoidPending
                    | PaymentState::RefundPending
                    | PaymentState::AuthorizationPending => None,
                };
                Transition {
                    payment,
                    cancel_reason: Some(reason.clone()),
                    ..base(Cancelled, k, EventKind::OrderCancelled)
                }
            }
            PickedUp | Delivering | Delivered | Cancelled => return Err(invalid()),
        },
        Command::FlagDelayed => match from {
            Confirmed | Preparing | ReadyForPickup if !order.delayed => Transition {
                delayed: Some(true),
                ..base(from, k, EventKind::OrderDelayed)
            },
            Confirmed | Preparing | ReadyForPickup | Pending | DriverAssigned
            | DriverAtRestaurant | PickedUp | Delivering | Delivered | Cancelled
            | PaymentPending => {
                return Err(invalid());
            }
        },
        // Seen by the restaurant and every consumer as a new order, as if placed just now.
        Command::AuthorizePayment { payment_ref } => match from {
            PaymentPending => Transition {
                authorization: Some(payment_ref.clone()),
                ..base(Pending, k, EventKind::OrderCreated)
            },
            Pending | Confirmed | Preparing | ReadyForPickup | DriverAssigned
            | DriverAtRestaurant | PickedUp | Delivering | Delivered | Cancelled => {
                return Err(invalid());
            }
        },
    };
    debug_check(order, &t);
    Ok(t)
}

/// The status graph [`decide`] stays within, said once more apart from the table, so an arm
/// naming the wrong target status fails the debug check. A status follows itself where only
/// the kitchen stage or the delay flag moves.
fn may_follow(from: OrderStatus, to: OrderStatus) -> bool {
    use OrderStatus::*;
    match from {
        PaymentPending => matches!(to, Pending | Cancelled),
        Pending => matches!(to, Confirmed | Cancelled),
        Confirmed => matches!(
            to,
            Confirmed | Preparing | ReadyForPickup | DriverAssigned | Cancelled
        ),
        Preparing => matches!(to, Preparing | ReadyForPickup | DriverAssigned | Cancelled),
        ReadyForPickup => matches!(to, ReadyForPickup | DriverAssigned | Cancelled),
        // Unassigning returns to the status the kitchen's progress implies.
        DriverAssigned | DriverAtRestaurant => {
            matches!(
                to,
                DriverAssigned
                    | DriverAtRestaurant
                    | PickedUp
                    | Confirmed
                    | Preparing
                    | ReadyForPickup
                    | Cancelled
            ) && !(from == DriverAtRestaurant && to == DriverAssigned)
        }
        PickedUp => matches!(to, Delivering | Delivered),
        Delivering => matches!(to, Delivered),
        Delivered | Cancelled => false,
    }
}

/// What every decided transition keeps true; checked in debug builds (tests, proptests),
/// free in release.
fn debug_check(order: &Order, t: &Transition) {
    // Every arm for `Delivered` and `Cancelled` refuses, so nothing leaves a terminal status.
    debug_assert!(
        !t.from.is_terminal(),
        "{} is terminal, yet {:?} was decided",
        t.from,
        t.event
    );
    debug_assert!(
        may_follow(t.from, t.to),
        "the table decided {} -> {}, outside the status graph",
        t.from,
        t.to
    );
    // Arms set a later kitchen stage or keep the current one: the kitchen never goes back,
    // not even when a driver is unassigned.
    debug_assert!(
        t.kitchen >= order.kitchen,
        "kitchen stage went back from {:?} to {:?}",
        order.kitchen,
        t.kitchen
    );
    // Only an order without a driver is assigned one (the `AssignDriver` guard), so a second
    // driver never silently replaces the first.
    debug_assert!(
        !matches!(t.driver, Some(Some(_))) || order.driver_id.is_none(),
        "order {} already has driver {:?}",
        order.id,
        order.driver_id
    );
}

impl Transition {
    /// Applies the decision to the record (the caller writes it, the history row and the
    /// event in one transaction). The transition's payment action, if any, is recorded as
    /// pending: the payment worker performs it after the commit.
    pub fn apply(&self, order: &mut Order, now: crate::time::UnixMs) {
        assert_eq!(
            order.status, self.from,
            "a transition applies to the state it was decided on"
        );
        order.status = self.to;
        order.kitchen = self.kitchen;
        if let Some(driver) = self.driver {
            order.driver_id = driver.map(|(d, _)| d);
            order.delivery_id = driver.map(|(_, del)| del);
        }
        if let Some(delayed) = self.delayed {
            order.delayed = delayed;
        }
        if let Some(reason) = &self.cancel_reason {
            order.cancel_reason = Some(reason.clone());
        }
        if let Some(action) = self.payment {
            order.payment_state = action.pending_state();
        }
        if let Some(auth) = &self.authorization {
            order.payment_ref = auth.clone();
            order.payment_state = PaymentState::Authorized;
        }
        order.updated_at = now;
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
