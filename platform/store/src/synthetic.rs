//! A synthetic order-creation transaction with the shape of the real one (a ~2 KB order
//! record, three index keys, a history row, an idempotency key and one event), used by the
//! `storebench` benchmark and the crash test. Not the order repository: the key space is
//! `("syn", ...)` and the record is filler bytes.

use crate::keys::pack;
use crate::{Kv, LogId, Txn, TxnError};

/// Size of the synthetic order record.
pub const RECORD_BYTES: usize = 2048;

/// Key of synthetic order `id`.
pub fn order_key(id: u64) -> Vec<u8> {
    pack(&("syn", "order", id))
}

/// Prefix of every synthetic order key.
pub fn order_prefix() -> Vec<u8> {
    pack(&("syn", "order"))
}

/// The record of order `id`: deterministic filler that starts with the id.
pub fn record(id: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(RECORD_BYTES);
    v.extend_from_slice(&id.to_be_bytes());
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < RECORD_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(RECORD_BYTES);
    v
}

/// Every write of one order creation, as `(key, value)` pairs, plus the idempotency key (also
/// among the pairs) and the event payload. Backend-independent so a raw baseline can write the
/// very same bytes.
pub struct OrderWrites {
    pub idempotency_key: Vec<u8>,
    pub pairs: Vec<(Vec<u8>, Vec<u8>)>,
    pub event: Vec<u8>,
}

/// The writes that create order `id`.
pub fn order_writes(id: u64) -> OrderWrites {
    let customer = id % 10_007;
    let restaurant = id % 503;
    let created_desc = u64::MAX - id;
    let idempotency_key = pack(&("syn", "idem", customer, id));
    let pairs = vec![
        (order_key(id), record(id)),
        (
            pack(&("syn", "by_customer", customer, created_desc, id)),
            Vec::new(),
        ),
        (
            pack(&("syn", "by_restaurant", restaurant, "pending", id)),
            Vec::new(),
        ),
        (pack(&("syn", "by_status", "pending", id)), Vec::new()),
        (
            pack(&("syn", "history", id, 1u32)),
            pack(&("", "pending", "customer", created_desc)),
        ),
        (idempotency_key.clone(), id.to_be_bytes().to_vec()),
    ];
    OrderWrites {
        idempotency_key,
        pairs,
        event: pack(&("order_created", id)),
    }
}

/// Runs the order creation inside `txn`: reads the idempotency key first and writes nothing if
/// it is taken. Returns whether the order was created.
pub async fn create_in(txn: &dyn Txn, id: u64, log: LogId) -> crate::Result<bool> {
    let w = order_writes(id);
    if txn.get(&w.idempotency_key).await?.is_some() {
        return Ok(false);
    }
    for (k, v) in &w.pairs {
        txn.set(k, v);
    }
    txn.append_event(log, &w.event);
    Ok(true)
}

/// Creates order `id` in its own durable transaction.
pub async fn create_order(kv: &dyn Kv, id: u64, log: LogId) -> Result<bool, TxnError<()>> {
    crate::transact(kv, move |txn| {
        Box::pin(async move { Ok::<_, TxnError<()>>(create_in(txn, id, log).await?) })
    })
    .await
}
