//! Key layout of offer leases in the store (under the cell's subspace, as the orders').
//!
//! | key                         | value         | purpose                                  |
//! |-----------------------------|---------------|------------------------------------------|
//! | `("offer", offer_id)`       | `Lease` JSON  | the lease row                            |
//! | `("offeropen", offer_id)`   | offer id      | open leases (expired on restart)         |
//! | `("offerfence", order_id)`  | `OrderFence`  | fencing number, taken-by, lockouts       |
//! | `("offerdlv", delivery_id)` | order id      | a driver's answer names the delivery     |
//! | `("offerdrv", driver_id)`   | `DriverRecord`| acceptance counts, timeout streak        |
//!
//! Lease, open index, fence and driver record are written in the transaction that changes
//! the lease.

use super::lease::OfferId;
use domain::{DeliveryId, DriverId, OrderId};
use store::keys::pack;

pub fn lease(id: OfferId) -> Vec<u8> {
    pack(&("offer", id.0))
}

pub fn lease_prefix() -> Vec<u8> {
    pack(&("offer",))
}

pub fn open(id: OfferId) -> Vec<u8> {
    pack(&("offeropen", id.0))
}

pub fn open_prefix() -> Vec<u8> {
    pack(&("offeropen",))
}

pub fn fence(order: OrderId) -> Vec<u8> {
    pack(&("offerfence", order.0))
}

pub fn delivery(d: DeliveryId) -> Vec<u8> {
    pack(&("offerdlv", d.0))
}

pub fn driver(d: DriverId) -> Vec<u8> {
    pack(&("offerdrv", d.0))
}
