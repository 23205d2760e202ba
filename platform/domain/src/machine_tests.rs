//! Tests of the order state machine: the happy path, who may do what, terminal states, and
//! properties over random command sequences.

use super::*;
use crate::ids::{CustomerId, DeliveryId, DriverId, OrderId, RestaurantId};
use crate::order::Order;
use crate::time::UnixMs;
use proptest::prelude::*;

const CUSTOMER: CustomerId = CustomerId(7);
const RESTAURANT_ID: RestaurantId = RestaurantId(11);
const DRIVER_A: DriverId = DriverId(21);
const DRIVER_B: DriverId = DriverId(22);

fn new_order() -> Order {
    crate::testing::order(OrderId(1), CUSTOMER, RESTAURANT_ID, UnixMs(0))
}

fn step(order: &mut Order, cmd: Command, actor: Actor) -> Result<Transition, TransitionError> {
    let t = decide(order, &cmd, &actor)?;
    t.apply(order, UnixMs(1));
    Ok(t)
}

#[test]
fn happy_path_with_driver_assigned_while_preparing() {
    let mut o = new_order();
    let r = Actor::Restaurant(RESTAURANT_ID);
    let d = Actor::Driver(DRIVER_A);
    assert_eq!(
        step(&mut o, Command::Accept, r).unwrap().payment,
        Some(PaymentAction::Capture)
    );
    // The capture is committed as pending; the payment worker performs it.
    assert_eq!(o.payment_state, PaymentState::CapturePending);
    step(&mut o, Command::StartPreparing, r).unwrap();
    let assign = Command::AssignDriver {
        driver: DRIVER_A,
        delivery: DeliveryId(5),
    };
    step(&mut o, assign, Actor::System).unwrap();
    assert_eq!(o.status, OrderStatus::DriverAssigned);
    assert_eq!(o.driver_id, Some(DRIVER_A));
    // The kitchen keeps going while the driver drives over.
    let ready = step(&mut o, Command::MarkReady, r).unwrap();
    assert_eq!(
        (ready.to, ready.event),
        (OrderStatus::DriverAssigned, EventKind::OrderReady)
    );
    assert_eq!(o.kitchen, KitchenStage::Ready);
    step(&mut o, Command::ArriveAtRestaurant, d).unwrap();
    step(&mut o, Command::PickUp, d).unwrap();
    step(&mut o, Command::StartDelivering, d).unwrap();
    step(&mut o, Command::Deliver, d).unwrap();
    assert_eq!(o.status, OrderStatus::Delivered);
}

#[test]
fn parties_are_checked() {
    let mut o = new_order();
    // Another restaurant, the customer, a driver: none may accept.
    for actor in [
        Actor::Restaurant(RestaurantId(99)),
        Actor::Customer(CUSTOMER),
        Actor::Driver(DRIVER_A),
    ] {
        assert!(matches!(
            decide(&o, &Command::Accept, &actor),
            Err(TransitionError::Forbidden { .. })
        ));
    }
    // Another customer may not cancel; the order's customer may.
    let cancel = Command::Cancel {
        reason: "changed mind".into(),
    };
    assert!(decide(&o, &cancel, &Actor::Customer(CustomerId(8))).is_err());
    let t = decide(&o, &cancel, &Actor::Customer(CUSTOMER)).unwrap();
    assert_eq!(t.payment, Some(PaymentAction::Void));
    // Only the assigned driver may report progress.
    step(&mut o, Command::Accept, Actor::Restaurant(RESTAURANT_ID)).unwrap();
    let assign = Command::AssignDriver {
        driver: DRIVER_A,
        delivery: DeliveryId(5),
    };
    step(&mut o, assign, Actor::System).unwrap();
    assert!(decide(&o, &Command::PickUp, &Actor::Driver(DRIVER_B)).is_err());
    // A second assignment is refused: an order never has two drivers.
    let again = Command::AssignDriver {
        driver: DRIVER_B,
        delivery: DeliveryId(6),
    };
    assert!(matches!(
        decide(&o, &again, &Actor::System),
        Err(TransitionError::Invalid { .. })
    ));
    // Cancelling after capture refunds.
    let t = decide(&o, &cancel, &Actor::Customer(CUSTOMER)).unwrap();
    assert_eq!(t.payment, Some(PaymentAction::Refund));
}

#[test]
fn terminal_states_refuse_everything() {
    for cmd in all_commands() {
        for status in [OrderStatus::Delivered, OrderStatus::Cancelled] {
            let mut o = new_order();
            o.status = status;
            o.driver_id = Some(DRIVER_A);
            assert!(matches!(
                decide(&o, &cmd, &Actor::Admin),
                Err(TransitionError::Invalid { .. })
            ));
        }
    }
}

fn all_commands() -> Vec<Command> {
    vec![
        Command::Accept,
        Command::Reject {
            reason: "closed".into(),
        },
        Command::StartPreparing,
        Command::MarkReady,
        Command::AssignDriver {
            driver: DRIVER_A,
            delivery: DeliveryId(5),
        },
        Command::AssignDriver {
            driver: DRIVER_B,
            delivery: DeliveryId(6),
        },
        Command::UnassignDriver,
        Command::ArriveAtRestaurant,
        Command::PickUp,
        Command::StartDelivering,
        Command::Deliver,
        Command::Cancel { reason: "x".into() },
        Command::FlagDelayed,
        Command::AuthorizePayment {
            payment_ref: "pi_2".into(),
        },
    ]
}

fn all_actors() -> Vec<Actor> {
    vec![
        Actor::Customer(CUSTOMER),
        Actor::Customer(CustomerId(8)),
        Actor::Restaurant(RESTAURANT_ID),
        Actor::Restaurant(RestaurantId(12)),
        Actor::Driver(DRIVER_A),
        Actor::Driver(DRIVER_B),
        Actor::System,
        Actor::Admin,
    ]
}

/// The statuses reachable in one step from `s` (any command, any actor): the table, read back.
fn successors(s: OrderStatus) -> Vec<OrderStatus> {
    use OrderStatus::*;
    match s {
        PaymentPending => vec![Pending, Cancelled],
        Pending => vec![Confirmed, Cancelled],
        Confirmed => vec![
            Preparing,
            ReadyForPickup,
            DriverAssigned,
            Confirmed,
            Cancelled,
        ],
        Preparing => vec![ReadyForPickup, DriverAssigned, Preparing, Cancelled],
        ReadyForPickup => vec![DriverAssigned, ReadyForPickup, Cancelled],
        DriverAssigned => vec![
            DriverAssigned,
            DriverAtRestaurant,
            PickedUp,
            Confirmed,
            Preparing,
            ReadyForPickup,
            Cancelled,
        ],
        DriverAtRestaurant => vec![
            DriverAtRestaurant,
            PickedUp,
            Confirmed,
            Preparing,
            ReadyForPickup,
            Cancelled,
        ],
        PickedUp => vec![Delivering, Delivered],
        Delivering => vec![Delivered],
        Delivered | Cancelled => vec![],
    }
}

proptest! {
    /// Random (command, actor) sequences: the machine never panics, every accepted step is an
    /// edge of the table, terminal states stay terminal, a driver is attached exactly while
    /// the status says so, and payment only moves forward.
    #[test]
    fn random_sequences_keep_invariants(queued in any::<bool>(), steps in prop::collection::vec((0usize..14, 0usize..8), 0..60)) {
        let cmds = all_commands();
        let actors = all_actors();
        let mut o = if queued { queued_order() } else { new_order() };
        for (c, a) in steps {
            let before = o.clone();
            match decide(&o, &cmds[c], &actors[a]) {
                Ok(t) => {
                    prop_assert!(!before.status.is_terminal());
                    prop_assert!(successors(before.status).contains(&t.to), "{:?} -> {:?}", before.status, t.to);
                    t.apply(&mut o, UnixMs(1));
                    prop_assert!(o.kitchen >= before.kitchen, "kitchen never goes back");
                    use OrderStatus::*;
                    let needs_driver = matches!(o.status, DriverAssigned | DriverAtRestaurant | PickedUp | Delivering | Delivered);
                    if needs_driver { prop_assert!(o.driver_id.is_some()); }
                    if matches!(o.status, Pending | Confirmed | Preparing | ReadyForPickup) { prop_assert!(o.driver_id.is_none()); }
                    if o.status == Cancelled {
                        prop_assert!(matches!(o.payment_state, PaymentState::VoidPending | PaymentState::RefundPending | PaymentState::AuthorizationPending));
                    }
                    // Only a queued order's authorization moves payment back to `authorized`.
                    if !matches!(before.payment_state, PaymentState::Authorized | PaymentState::AuthorizationPending) {
                        prop_assert!(o.payment_state != PaymentState::Authorized);
                    }
                }
                Err(_) => prop_assert_eq!(&o, &before),
            }
        }
    }
}

/// An order placed while the provider was down: nothing held yet.
fn queued_order() -> Order {
    Order {
        status: OrderStatus::PaymentPending,
        payment_state: PaymentState::AuthorizationPending,
        payment_ref: String::new(),
        ..new_order()
    }
}

#[test]
fn a_queued_order_becomes_pending_once_authorized() {
    let mut o = queued_order();
    let r = Actor::Restaurant(RESTAURANT_ID);
    // The restaurant cannot act on it before the funds are held.
    assert!(matches!(
        decide(&o, &Command::Accept, &r),
        Err(TransitionError::Invalid { .. })
    ));
    let auth = Command::AuthorizePayment {
        payment_ref: "pi_9".into(),
    };
    // Only the cell's queue authorizes.
    assert!(matches!(
        decide(&o, &auth, &Actor::Customer(CUSTOMER)),
        Err(TransitionError::Forbidden { .. })
    ));
    let t = step(&mut o, auth.clone(), Actor::System).unwrap();
    assert_eq!(
        (t.to, t.event),
        (OrderStatus::Pending, EventKind::OrderCreated)
    );
    assert_eq!(o.payment_state, PaymentState::Authorized);
    assert_eq!(o.payment_ref, "pi_9");
    // Once pending it goes on as any order does, and is never authorized twice.
    assert!(decide(&o, &auth, &Actor::System).is_err());
    step(&mut o, Command::Accept, r).unwrap();
    assert_eq!(o.payment_state, PaymentState::CapturePending);
}

#[test]
fn a_queued_order_cancels_without_a_payment_effect() {
    let mut o = queued_order();
    let t = step(
        &mut o,
        Command::Cancel {
            reason: "payment_declined".into(),
        },
        Actor::System,
    )
    .unwrap();
    assert_eq!(t.payment, None, "nothing is held, so nothing is voided");
    assert_eq!(o.status, OrderStatus::Cancelled);
    assert_eq!(o.cancel_reason.as_deref(), Some("payment_declined"));
    // The customer may cancel a queued order too.
    let mut o = queued_order();
    let cancel = Command::Cancel {
        reason: "changed my mind".into(),
    };
    step(&mut o, cancel, Actor::Customer(CUSTOMER)).unwrap();
    assert_eq!(o.status, OrderStatus::Cancelled);
}

#[test]
fn cancelling_picks_the_payment_effect_from_the_payment_state() {
    let cancel = Command::Cancel {
        reason: "payment_failed".into(),
    };
    let cases = [
        (PaymentState::Authorized, Some(PaymentAction::Void)),
        (PaymentState::Failed, Some(PaymentAction::Void)),
        (PaymentState::CapturePending, Some(PaymentAction::Refund)),
        (PaymentState::Captured, Some(PaymentAction::Refund)),
        (PaymentState::VoidPending, None),
        (PaymentState::RefundPending, None),
        (PaymentState::Voided, None),
        (PaymentState::Refunded, None),
        (PaymentState::AuthorizationPending, None),
    ];
    for (state, want) in cases {
        let mut o = new_order();
        o.status = OrderStatus::Confirmed;
        o.payment_state = state;
        let t = decide(&o, &cancel, &Actor::System).unwrap();
        assert_eq!(t.payment, want, "{state:?}");
        t.apply(&mut o, UnixMs(2));
        let after = want.map_or(state, PaymentAction::pending_state);
        assert_eq!(o.payment_state, after);
    }
}
