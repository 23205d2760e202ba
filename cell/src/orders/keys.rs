//! Key layout of orders in the store. Every key is a packed tuple; element 0 names the space.
//! All of them live under the cell's subspace `("c", cell_id)`: the cell opens its store
//! scoped to it (`server::open_store`, [`store::SubspaceKv`]), so the keys below carry no cell
//! id themselves and two cells on one cluster never see each other's orders, indexes,
//! idempotency records or id mark.
//!
//! | key                                         | value            | purpose                          |
//! |---------------------------------------------|------------------|----------------------------------|
//! | `("o", order_id)`                           | `Order` JSON     | the record                       |
//! | `("oh", order_id, seq)`                     | `HistoryEntry`   | `order_status_history`           |
//! | `("ic", customer_id, created_ms, order_id)` | empty            | customer history, newest first   |
//! | `("ir", restaurant_id, status, order_id)`   | empty            | a restaurant's orders by status  |
//! | `("id", driver_id, status, order_id)`       | empty            | a driver's deliveries by status  |
//! | `("idem", customer_id, key)`                | order id         | idempotent order creation        |
//! | `("is", status, order_id)`                  | empty            | every order by status (recovery) |
//! | `("idmark",)`                               | ms, big-endian   | id high-water mark (`ids.rs`)    |
//! | `("txid", created_ms, id)`                  | outcome JSON     | retried writes apply once        |
//! | `("pq", order_id)`                          | `AuthorizeRequest` | authorization queue (`queue.rs`) |
//!
//! Index entries are written in the same transaction as the record they index.

use domain::{CustomerId, DriverId, OrderId, OrderStatus, RestaurantId};
use store::keys::pack;

pub fn order(id: OrderId) -> Vec<u8> {
    pack(&("o", id.0))
}

pub fn history(id: OrderId, seq: u32) -> Vec<u8> {
    pack(&("oh", id.0, seq))
}

pub fn history_prefix(id: OrderId) -> Vec<u8> {
    pack(&("oh", id.0))
}

pub fn by_customer(c: CustomerId, created_ms: i64, id: OrderId) -> Vec<u8> {
    pack(&("ic", c.0, created_ms, id.0))
}

pub fn by_customer_prefix(c: CustomerId) -> Vec<u8> {
    pack(&("ic", c.0))
}

pub fn by_restaurant(r: RestaurantId, s: OrderStatus, id: OrderId) -> Vec<u8> {
    pack(&("ir", r.0, s.as_str(), id.0))
}

pub fn by_restaurant_status_prefix(r: RestaurantId, s: OrderStatus) -> Vec<u8> {
    pack(&("ir", r.0, s.as_str()))
}

pub fn by_driver(d: DriverId, s: OrderStatus, id: OrderId) -> Vec<u8> {
    pack(&("id", d.0, s.as_str(), id.0))
}

pub fn by_driver_status_prefix(d: DriverId, s: OrderStatus) -> Vec<u8> {
    pack(&("id", d.0, s.as_str()))
}

pub fn by_status(s: OrderStatus, id: OrderId) -> Vec<u8> {
    pack(&("is", s.as_str(), id.0))
}

pub fn by_status_prefix(s: OrderStatus) -> Vec<u8> {
    pack(&("is", s.as_str()))
}

pub fn id_mark() -> Vec<u8> {
    pack(&("idmark",))
}

pub fn idempotency(c: CustomerId, key: &str) -> Vec<u8> {
    pack(&("idem", c.0, key))
}

/// An entry of the authorization queue: the request to resend for a `payment_pending`
/// order. Order ids are Snowflakes, so the prefix lists the queue oldest first.
pub fn payment_queue(id: OrderId) -> Vec<u8> {
    pack(&("pq", id.0))
}

pub fn payment_queue_prefix() -> Vec<u8> {
    pack(&("pq",))
}

/// Decodes the order id at the end of an index key.
pub fn trailing_order_id(key: &[u8]) -> Option<OrderId> {
    let elems: Vec<store::keys::Element> = store::keys::unpack(key).ok()?;
    match elems.last()? {
        store::keys::Element::Int(i) => u64::try_from(*i).ok().map(OrderId),
        _ => None,
    }
}
