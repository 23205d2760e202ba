//! The platform's vocabulary: typed ids, money, time, the order record and its one state
//! machine. No I/O, no clock, no storage: everything time-dependent takes `now`.
//!
//! # Layout
//! - `ids`: typed ids. Order and delivery ids are Snowflakes embedding the owning cell;
//!   restaurant ids embed the coarse H3 region the router maps to cells.
//! - `money`: [`Cents`], the only money type.
//! - `time`: [`UnixMs`], the only timestamp type.
//! - `order`: the order record, its items snapshot, status history and events.
//! - `machine`: the order state machine: [`OrderStatus`], one transition table, who may cause
//!   each transition, and the payment effect each transition requires.
//! - `testing` (feature `testing`, and this crate's own tests): the one [`Order`] fixture
//!   every crate's tests build on.

pub mod ids;
pub mod machine;
pub mod money;
pub mod order;
pub mod time;

#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use ids::{
    CellId, CustomerId, DeliveryId, DriverId, IdError, MenuItemId, OrderId, RegionId, RestaurantId,
    SnowflakeGen,
};
pub use machine::{Actor, Command, OrderStatus, PaymentAction, Transition, TransitionError};
pub use money::Cents;
pub use order::{
    Address, EventKind, HistoryEntry, KitchenStage, Order, OrderEvent, OrderItem, PaymentState,
    SealedContact,
};
pub use time::UnixMs;
