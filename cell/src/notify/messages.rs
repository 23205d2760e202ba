//! Which events notify whom, and what the notification says. Pure: no I/O, no clock.
//!
//! | event | recipient | title |
//! |---|---|---|
//! | order_created | restaurant | New order |
//! | order_confirmed | customer | Order confirmed |
//! | driver_assigned | customer | Driver assigned |
//! | order_picked_up | customer | On the way |
//! | order_delivered | customer | Delivered |
//! | order_rejected | customer | Order not accepted |
//! | order_cancelled | customer | Order cancelled |
//! | order_delayed | customer | Your order is delayed |
//! | payment_failed | customer and restaurant | Payment failed |
//!
//! Every other event (kitchen steps, driver at restaurant, ...) is visible live in tracking
//! and does not deserve a push: a phone that buzzes for every step gets notifications
//! turned off.

use super::provider::{Notification, Origin, Recipient, idempotency_key};
use domain::{EventKind, OrderEvent};

/// Used when the order record (and so the restaurant's name) could not be read.
const SOME_RESTAURANT: &str = "The restaurant";

/// Whether the texts for `kind` mention the restaurant's name, so the consumer reads the
/// order only when it has to (the event does not carry the name).
pub fn needs_restaurant_name(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::OrderConfirmed
            | EventKind::DriverAssigned
            | EventKind::OrderRejected
            | EventKind::OrderCancelled
            | EventKind::PaymentFailed
    )
}

/// The notifications the event at `origin` causes (often none). `restaurant_name` comes
/// from the order record; without it the texts say "the restaurant".
pub fn notifications_for(
    origin: Origin,
    ev: &OrderEvent,
    restaurant_name: Option<&str>,
) -> Vec<Notification> {
    let name = restaurant_name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(SOME_RESTAURANT);
    // Mid-sentence, "The restaurant" reads wrong.
    let name_in_sentence = if name == SOME_RESTAURANT {
        "the restaurant"
    } else {
        name
    };
    let customer = Recipient::Customer(ev.customer_id);
    let note = |recipient: Recipient, title: &str, body: String| Notification {
        idempotency_key: idempotency_key(origin, &recipient),
        recipient,
        kind: ev.kind,
        title: title.to_string(),
        body,
        order_id: ev.order_id,
        at: ev.at,
    };
    if ev.kind == EventKind::PaymentFailed {
        // Both parties: the customer must pay another way, the kitchen must not cook it.
        let cancelled = ev.status == domain::OrderStatus::Cancelled;
        let (customer_body, restaurant_body) = if cancelled {
            (
                format!(
                    "We couldn't take payment for your order from {name_in_sentence}, so it was cancelled. You have not been charged."
                ),
                format!(
                    "Order #{} was cancelled: the payment failed. Please don't prepare it.",
                    ev.order_id
                ),
            )
        } else {
            (
                "We couldn't take payment for your order. We'll be in touch.".to_string(),
                format!(
                    "The payment for order #{} failed; support will follow up.",
                    ev.order_id
                ),
            )
        };
        return vec![
            note(customer, "Payment failed", customer_body),
            note(
                Recipient::Restaurant(ev.restaurant_id),
                "Payment failed",
                restaurant_body,
            ),
        ];
    }
    let (recipient, title, body) = match ev.kind {
        EventKind::OrderCreated => (
            Recipient::Restaurant(ev.restaurant_id),
            "New order".to_string(),
            format!("New order #{}. Open the orders screen to accept it.", ev.order_id),
        ),
        EventKind::OrderConfirmed => (
            customer,
            "Order confirmed".to_string(),
            format!("Order confirmed! {name} is preparing your food."),
        ),
        EventKind::DriverAssigned => (
            customer,
            "Driver assigned".to_string(),
            format!("A driver is heading to {name_in_sentence} to pick up your order."),
        ),
        EventKind::OrderPickedUp => (
            customer,
            "On the way".to_string(),
            "Your food is on the way!".to_string(),
        ),
        EventKind::OrderDelivered => (
            customer,
            "Delivered".to_string(),
            "Your food has been delivered! Enjoy your meal.".to_string(),
        ),
        // A rejected order's hold is released, so nothing was charged.
        EventKind::OrderRejected => (
            customer,
            "Order not accepted".to_string(),
            format!(
                "Sorry, {name_in_sentence} couldn't accept your order. You have not been charged."
            ),
        ),
        // Cancelled before capture the hold is released, after it the charge is refunded:
        // either way the customer gets their money back, which is what they want to hear.
        EventKind::OrderCancelled => (
            customer,
            "Order cancelled".to_string(),
            format!(
                "Your order from {name_in_sentence} was cancelled. Any charge will be refunded."
            ),
        ),
        EventKind::OrderDelayed => (
            customer,
            "Your order is delayed".to_string(),
            "We're still looking for a driver for your order, so it may arrive later than estimated. Thanks for your patience."
                .to_string(),
        ),
        EventKind::OrderPreparing
        | EventKind::OrderReady
        | EventKind::DriverUnassigned
        | EventKind::DriverAtRestaurant
        | EventKind::OrderDelivering
        // The placement answer already said "Order is being processed"; the restaurant
        // hears of the order at `order_created`, once the funds are held.
        | EventKind::OrderPaymentPending => return Vec::new(),
        EventKind::PaymentFailed => unreachable!("answered above"),
    };
    vec![note(recipient, &title, body)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CustomerId, DriverId, OrderId, OrderStatus, RestaurantId, UnixMs};
    use store::{LogId, LogPos};

    const ORIGIN: Origin = Origin {
        log: LogId(1),
        pos: LogPos(42),
    };

    fn ev(kind: EventKind) -> OrderEvent {
        OrderEvent {
            kind,
            order_id: OrderId(777),
            customer_id: CustomerId(5),
            restaurant_id: RestaurantId(9),
            status: OrderStatus::Confirmed,
            driver_id: Some(DriverId(3)),
            at: UnixMs(1_700_000_000_000),
        }
    }

    fn one(kind: EventKind, name: Option<&str>) -> Notification {
        let mut v = notifications_for(ORIGIN, &ev(kind), name);
        assert_eq!(v.len(), 1, "{kind:?}");
        v.pop().unwrap()
    }

    #[test]
    fn customer_facing_events_notify_the_customer_with_the_promised_texts() {
        let n = one(EventKind::OrderConfirmed, Some("Pizza Roma"));
        assert_eq!(n.recipient, Recipient::Customer(CustomerId(5)));
        assert_eq!(
            n.body,
            "Order confirmed! Pizza Roma is preparing your food."
        );
        assert_eq!(n.kind, EventKind::OrderConfirmed);
        assert_eq!(n.order_id, OrderId(777));
        assert_eq!(n.at, UnixMs(1_700_000_000_000));
        assert_eq!(n.idempotency_key, "cell-1-evt-42-customer");

        assert_eq!(
            one(EventKind::OrderPickedUp, None).body,
            "Your food is on the way!"
        );
        assert_eq!(
            one(EventKind::OrderDelivered, None).body,
            "Your food has been delivered! Enjoy your meal."
        );
        assert_eq!(
            one(EventKind::DriverAssigned, Some("Pizza Roma")).body,
            "A driver is heading to Pizza Roma to pick up your order."
        );
        assert!(
            one(EventKind::OrderRejected, Some("Pizza Roma"))
                .body
                .contains("Pizza Roma couldn't accept")
        );
        assert!(
            one(EventKind::OrderCancelled, None)
                .body
                .contains("was cancelled")
        );
        assert!(one(EventKind::OrderDelayed, None).body.contains("later"));
        for k in [
            EventKind::DriverAssigned,
            EventKind::OrderPickedUp,
            EventKind::OrderDelivered,
            EventKind::OrderRejected,
            EventKind::OrderCancelled,
            EventKind::OrderDelayed,
        ] {
            assert_eq!(one(k, None).recipient, Recipient::Customer(CustomerId(5)));
        }
    }

    #[test]
    fn a_new_order_notifies_the_restaurant() {
        let n = one(EventKind::OrderCreated, Some("Pizza Roma"));
        assert_eq!(n.recipient, Recipient::Restaurant(RestaurantId(9)));
        assert!(n.body.starts_with("New order #777"), "{}", n.body);
        assert_eq!(n.idempotency_key, "cell-1-evt-42-restaurant");
    }

    #[test]
    fn intermediate_steps_notify_nobody() {
        for k in [
            EventKind::OrderPreparing,
            EventKind::OrderReady,
            EventKind::DriverUnassigned,
            EventKind::DriverAtRestaurant,
            EventKind::OrderDelivering,
        ] {
            assert!(
                notifications_for(ORIGIN, &ev(k), Some("x")).is_empty(),
                "{k:?}"
            );
        }
    }

    #[test]
    fn a_missing_or_blank_name_reads_naturally() {
        assert_eq!(
            one(EventKind::OrderConfirmed, None).body,
            "Order confirmed! The restaurant is preparing your food."
        );
        assert_eq!(
            one(EventKind::DriverAssigned, Some("  ")).body,
            "A driver is heading to the restaurant to pick up your order."
        );
    }

    #[test]
    fn the_name_is_looked_up_only_for_texts_that_use_it() {
        for k in [
            EventKind::OrderCreated,
            EventKind::OrderPickedUp,
            EventKind::OrderDelivered,
            EventKind::OrderDelayed,
            EventKind::OrderPreparing,
        ] {
            assert!(!needs_restaurant_name(k), "{k:?}");
            // And indeed the text does not change with it.
            assert_eq!(
                notifications_for(ORIGIN, &ev(k), Some("Pizza Roma")),
                notifications_for(ORIGIN, &ev(k), None)
            );
        }
        assert!(needs_restaurant_name(EventKind::OrderConfirmed));
    }

    #[test]
    fn the_same_event_always_gives_the_same_notification() {
        let a = notifications_for(ORIGIN, &ev(EventKind::OrderDelivered), None);
        let b = notifications_for(ORIGIN, &ev(EventKind::OrderDelivered), None);
        assert_eq!(a, b);
        let later = Origin {
            pos: LogPos(43),
            ..ORIGIN
        };
        let c = notifications_for(later, &ev(EventKind::OrderDelivered), None);
        assert_ne!(a[0].idempotency_key, c[0].idempotency_key);
    }

    #[test]
    fn a_payment_failure_tells_the_customer_and_the_restaurant() {
        let mut e = ev(EventKind::PaymentFailed);
        e.status = OrderStatus::Cancelled;
        let v = notifications_for(ORIGIN, &e, Some("Pizza Roma"));
        let to: Vec<_> = v.iter().map(|n| n.recipient).collect();
        assert_eq!(
            to,
            [
                Recipient::Customer(CustomerId(5)),
                Recipient::Restaurant(RestaurantId(9))
            ]
        );
        assert!(v[0].body.contains("Pizza Roma") && v[0].body.contains("not been charged"));
        assert!(v[1].body.contains("don't prepare"));
        // Distinct keys: the receiver dedupes per recipient.
        assert_ne!(v[0].idempotency_key, v[1].idempotency_key);
    }
}
