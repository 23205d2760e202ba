//! Order and delivery ids that are never reissued, even after a restart with the clock set
//! back. The generator ([`SnowflakeGen`]) only issues ids up to a lease; the lease is first
//! persisted in the store as the id high-water mark (`keys::id_mark`, milliseconds since the
//! Unix epoch), [`LEASE`] ahead of the clock, and renewed when less than [`RENEW_AHEAD`] is
//! left: one small write every half minute, not one per id. On start,
//! [`Orders::resume_ids`] reads the mark and issues only above it, so a clock that moved back
//! (by less than the lease or more) continues from the mark instead of reusing its past.

use super::{Orders, keys};
use domain::{DeliveryId, OrderId, SnowflakeGen, UnixMs};
use store::{StoreError, TxnError};

/// How far ahead of the clock (or of the last id, if that is later) a renewal sets the mark.
/// The worst case after a restart is ids dated up to this far in the future.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(60);
/// A lease with less than this left is renewed before the next order id.
pub const RENEW_AHEAD: std::time::Duration = std::time::Duration::from_secs(30);

fn ms(d: std::time::Duration) -> i64 {
    d.as_millis() as i64
}

async fn read_mark(kv: &dyn store::Kv) -> Result<i64, StoreError> {
    store::read(kv, |txn| {
        Box::pin(async move { Ok::<_, TxnError<()>>(txn.get(&keys::id_mark()).await?) })
    })
    .await
    .map_err(txn_error)
    .and_then(|v| v.map_or(Ok(0), |v| decode(&v)))
}

fn decode(v: &[u8]) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = v.try_into().map_err(|_| StoreError::Corrupt {
        key: "idmark".into(),
        reason: format!("{} bytes, expected 8", v.len()),
    })?;
    Ok(i64::from_be_bytes(bytes))
}

fn txn_error(e: TxnError<()>) -> StoreError {
    match e {
        TxnError::Store(s) => s,
        TxnError::Abort(()) => StoreError::Closed,
    }
}

/// Raises the persisted mark to at least `target`; returns the durable mark.
async fn raise_mark(kv: &dyn store::Kv, target: i64) -> Result<i64, StoreError> {
    store::transact(kv, move |txn| {
        Box::pin(async move {
            let stored = match txn.get(&keys::id_mark()).await? {
                None => 0,
                Some(v) => decode(&v)?,
            };
            let mark = stored.max(target);
            if mark > stored {
                txn.set(&keys::id_mark(), &mark.to_be_bytes());
            }
            Ok::<_, TxnError<()>>(mark)
        })
    })
    .await
    .map_err(txn_error)
}

impl Orders {
    /// Continues the id sequence above the persisted high-water mark and takes a first lease.
    /// Called once at startup, before any id is issued.
    pub async fn resume_ids(&self, now: UnixMs) -> Result<(), StoreError> {
        let mark = read_mark(&*self.kv).await?;
        let cell = self.id_gen().cell();
        *self.id_gen() = SnowflakeGen::resume(cell, mark);
        if now.0 < mark {
            tracing::warn!(
                mark_ms = mark,
                now_ms = now.0,
                "clock is behind the id high-water mark; issuing ids from the mark"
            );
        }
        self.renew_ids(now).await
    }

    /// Persists a new lease if the current one is about to run out (the background renewal
    /// and every order placement call it).
    pub async fn renew_ids(&self, now: UnixMs) -> Result<(), StoreError> {
        let _one = self.renewing.lock().await;
        let target = {
            let g = self.id_gen();
            if !g.needs_lease(now.0, ms(RENEW_AHEAD)) {
                return Ok(());
            }
            now.0.max(g.lease_ms().unwrap_or(0)) + ms(LEASE)
        };
        let mark = raise_mark(&*self.kv, target).await?;
        self.id_gen().set_lease(mark);
        Ok(())
    }

    /// A fresh order id, never one issued before (in this run or an earlier one).
    pub(crate) async fn next_order_id(&self, now: UnixMs) -> Result<OrderId, StoreError> {
        loop {
            self.renew_ids(now).await?;
            if let Some(id) = self.id_gen().try_next_order(now.0) {
                return Ok(id);
            }
            // A burst used the whole lease: the renewal above moves it on.
        }
    }

    /// A fresh delivery id (a Snowflake of this cell); `None` if the lease ran out because the
    /// store refused renewals for longer than [`RENEW_AHEAD`] (the background renewal takes a
    /// new one once the store is back).
    pub fn next_delivery_id(&self, now: UnixMs) -> Option<DeliveryId> {
        self.id_gen().try_next_delivery(now.0)
    }

    fn id_gen(&self) -> std::sync::MutexGuard<'_, SnowflakeGen> {
        self.ids.lock().expect("id generator lock")
    }
}
