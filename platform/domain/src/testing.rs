//! Test fixtures shared by every crate's tests (feature `testing`): one [`Order`] record, so a
//! new field is added in one place. Tests change what they assert on with struct update
//! syntax (`Order { restaurant_name: .., ..order(..) }`).

use crate::ids::{CustomerId, OrderId, RestaurantId};
use crate::machine::OrderStatus;
use crate::money::Cents;
use crate::order::{Address, KitchenStage, Order, PaymentState};
use crate::time::UnixMs;

/// A pending, authorized order with no items and no driver, placed (and due) at `at`.
pub fn order(id: OrderId, customer: CustomerId, restaurant: RestaurantId, at: UnixMs) -> Order {
    Order {
        id,
        customer_id: customer,
        restaurant_id: restaurant,
        restaurant_name: "R".into(),
        restaurant_lat: 52.5,
        restaurant_lng: 13.4,
        status: OrderStatus::Pending,
        kitchen: KitchenStage::Received,
        driver_id: None,
        delivery_id: None,
        items: vec![],
        delivery_address: Address {
            lat: 52.51,
            lng: 13.41,
            formatted: "x".into(),
            sealed: None,
        },
        subtotal: Cents(1000),
        delivery_fee: Cents(199),
        tax: Cents(88),
        total: Cents(1287),
        payment_state: PaymentState::Authorized,
        payment_ref: "pi_1".into(),
        estimated_delivery_min: at,
        estimated_delivery_max: at,
        delayed: false,
        cancel_reason: None,
        created_at: at,
        updated_at: at,
    }
}
