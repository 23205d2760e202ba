//! Retention and dispute holds.
//!
//! A day expires when it is more than `retention_days` behind today (UTC). The purge first
//! re-seals every held path of an expiring day under that delivery's own hold key, then
//! destroys the day's key (from then on no copy of that day, backups included, can be read),
//! then clears the day's key range in transactions of at most `purge_batch_keys` keys. A
//! crash between the two steps leaves ciphertext nobody can open; the next purge clears it.
//! An expired hold's key is destroyed and its blocks cleared the same way.

use super::{History, HistoryError, Hold, PathIndex, day_of, keys};
use crate::envelope::{KeyError, KeyId};
use domain::{DeliveryId, UnixMs};
use store::{RangeRequest, TxnError};

/// What a purge did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    /// Days whose key was destroyed or whose leftover keys were cleared.
    pub days: usize,
    pub keys_cleared: usize,
    pub holds_resealed: usize,
    pub holds_expired: usize,
}

fn txn_err(e: HistoryError) -> TxnError<HistoryError> {
    match e {
        HistoryError::Store(s) => TxnError::Store(s),
        e => TxnError::Abort(e),
    }
}

impl History {
    /// The first day still kept at `now`: days before it are purged.
    pub fn first_kept_day(&self, now: UnixMs) -> u32 {
        day_of(now).saturating_sub(self.cfg.retention_days)
    }

    /// Places (or replaces) a hold on `delivery`'s path. The path must exist.
    pub async fn place_hold(&self, delivery: DeliveryId, hold: Hold) -> Result<Hold, HistoryError> {
        let h = hold.clone();
        store::transact(&*self.kv, move |txn| {
            let h = h.clone();
            Box::pin(async move {
                if txn.get(&keys::index(delivery)).await?.is_none() {
                    return Err(TxnError::Abort(HistoryError::NotFound(delivery)));
                }
                txn.set(
                    &keys::hold(delivery),
                    &serde_json::to_vec(&h).expect("a hold serializes"),
                );
                Ok(())
            })
        })
        .await?;
        Ok(hold)
    }

    /// The hold on `delivery`, if any (expired ones until the next purge removes them).
    pub async fn hold_of(&self, delivery: DeliveryId) -> Result<Option<Hold>, HistoryError> {
        let v = store::read(&*self.kv, move |txn| {
            Box::pin(async move {
                Ok::<_, TxnError<HistoryError>>(txn.get(&keys::hold(delivery)).await?)
            })
        })
        .await?;
        v.map(|v| {
            serde_json::from_slice(&v).map_err(|e| HistoryError::Corrupt(delivery, e.to_string()))
        })
        .transpose()
    }

    /// Purges every day before [`History::first_kept_day`], keeping held paths.
    pub async fn purge(&self, now: UnixMs) -> Result<PurgeReport, HistoryError> {
        let cutoff = self.first_kept_day(now);
        let mut report = PurgeReport::default();
        self.handle_holds(now, cutoff, &mut report).await?;
        let mut days: Vec<u32> = self
            .keys
            .store()
            .list()?
            .into_iter()
            .filter_map(|(id, live)| match id {
                KeyId::Day(d) if live && d < cutoff => Some(d),
                _ => None,
            })
            .collect();
        days.sort_unstable();
        for day in days {
            // The key first: once it is gone, what the range holds is unreadable everywhere.
            self.keys.destroy(KeyId::Day(day))?;
            report.days += 1;
            report.keys_cleared += self.clear_day(day).await?;
        }
        // Leftovers of a purge that stopped between the two steps (or of a key store that
        // lost its entry): any day before the cutoff still in the store.
        while let Some(day) = self.first_stored_day().await? {
            if day >= cutoff {
                break;
            }
            if let Err(e) = self.keys.destroy(KeyId::Day(day)) {
                tracing::warn!(day, error = %e, "could not tombstone a purged day's key");
            }
            report.days += 1;
            report.keys_cleared += self.clear_day(day).await?;
        }
        metrics::counter!("cell_history_purged_keys_total").increment(report.keys_cleared as u64);
        Ok(report)
    }

    async fn first_stored_day(&self) -> Result<Option<u32>, HistoryError> {
        let rows = store::read(&*self.kv, |txn| {
            Box::pin(async move {
                Ok::<_, TxnError<HistoryError>>(
                    txn.get_range(RangeRequest::prefix(&keys::paths_prefix()).limit(1))
                        .await?,
                )
            })
        })
        .await?;
        Ok(rows
            .first()
            .and_then(|kv| keys::parse_path(&kv.key))
            .map(|(d, _, _)| d))
    }

    /// Clears `day`'s range in bounded transactions; indexes go too unless the delivery is
    /// held. Returns the keys cleared.
    async fn clear_day(&self, day: u32) -> Result<usize, HistoryError> {
        let batch = self.cfg.purge_batch_keys.max(1);
        let mut total = 0;
        loop {
            let n = store::transact(&*self.kv, move |txn| {
                Box::pin(async move {
                    let rows = txn
                        .get_range(RangeRequest::prefix(&keys::day_prefix(day)).limit(batch))
                        .await?;
                    for kv in &rows {
                        txn.clear(&kv.key);
                        if let Some((_, d, _)) = keys::parse_path(&kv.key)
                            && txn.get(&keys::hold(d)).await?.is_none()
                        {
                            txn.clear(&keys::index(d));
                        }
                    }
                    Ok::<_, TxnError<HistoryError>>(rows.len())
                })
            })
            .await?;
            total += n;
            if n < batch {
                return Ok(total);
            }
        }
    }

    /// Re-seals live holds of expiring days; ends expired holds.
    async fn handle_holds(
        &self,
        now: UnixMs,
        cutoff: u32,
        report: &mut PurgeReport,
    ) -> Result<(), HistoryError> {
        let rows = store::read(&*self.kv, |txn| {
            Box::pin(async move {
                Ok::<_, TxnError<HistoryError>>(
                    txn.get_range(RangeRequest::prefix(&keys::holds_prefix()))
                        .await?,
                )
            })
        })
        .await?;
        for kv in rows {
            let Ok(hold) = serde_json::from_slice::<Hold>(&kv.value) else {
                tracing::warn!("skipping an unreadable hold record");
                continue;
            };
            let Ok(d) = hold.delivery_id.parse().map(DeliveryId) else {
                continue;
            };
            if hold.expires_at > now.0 {
                if self.reseal(d, cutoff).await? {
                    report.holds_resealed += 1;
                }
            } else {
                self.end_hold(d, cutoff).await?;
                report.holds_expired += 1;
            }
        }
        Ok(())
    }

    /// Copies a held path whose day expires into the hold's own blocks, under its own key.
    async fn reseal(&self, d: DeliveryId, cutoff: u32) -> Result<bool, HistoryError> {
        let (ring, cell) = (self.keys.clone(), self.cell);
        let r = store::transact(&*self.kv, move |txn| {
            let ring = ring.clone();
            Box::pin(async move {
                let Some(v) = txn.get(&keys::index(d)).await? else {
                    return Ok(false);
                };
                let idx: PathIndex = serde_json::from_slice(&v)
                    .map_err(|e| TxnError::Abort(HistoryError::Corrupt(d, e.to_string())))?;
                let held = txn
                    .get_range(RangeRequest::prefix(&keys::held_prefix(d)).limit(1))
                    .await?;
                if idx.day >= cutoff || !held.is_empty() {
                    return Ok(false);
                }
                let rows = txn
                    .get_range(RangeRequest::prefix(&keys::path_prefix(idx.day, d)))
                    .await?;
                let mut fixes = Vec::new();
                for kv in rows {
                    let (_, _, part) = keys::parse_path(&kv.key)
                        .ok_or_else(|| TxnError::Abort(HistoryError::Corrupt(d, "key".into())))?;
                    let plain = ring
                        .open(
                            KeyId::Day(idx.day),
                            &keys::aad(cell, d, idx.day, part),
                            &kv.value,
                        )
                        .map_err(|e| txn_err(e.into()))?;
                    let block = pathcodec::decode(&plain)
                        .map_err(|e| TxnError::Abort(HistoryError::Corrupt(d, e.to_string())))?;
                    fixes.extend(block.fixes);
                }
                let block = pathcodec::encode(d.0, 0, &fixes);
                let sealed = ring
                    .seal(KeyId::Hold(d.0), &keys::held_aad(cell, d, 0), &block)
                    .map_err(|e| txn_err(e.into()))?;
                txn.set(&keys::held(d, 0), &sealed);
                Ok(true)
            })
        })
        .await;
        match r {
            // The day key is gone already (a hold placed too late): nothing left to keep.
            Err(TxnError::Abort(HistoryError::Key(KeyError::Destroyed(_)))) => Ok(false),
            r => Ok(r?),
        }
    }

    /// Deletes `d`'s stored path (an erased customer's delivery: the path ends at their door)
    /// unless a hold keeps it; returns whether it was held. The day key stays (other
    /// deliveries share it): copies in backups go with it at the retention.
    pub async fn forget(&self, d: DeliveryId) -> Result<bool, HistoryError> {
        Ok(store::transact(&*self.kv, move |txn| {
            Box::pin(async move {
                if txn.get(&keys::hold(d)).await?.is_some() {
                    return Ok::<_, TxnError<HistoryError>>(true);
                }
                if let Some(v) = txn.get(&keys::index(d)).await?
                    && let Ok(i) = serde_json::from_slice::<PathIndex>(&v)
                {
                    let p = keys::path_prefix(i.day, d);
                    txn.clear_range(&p, &store::keys::prefix_end(&p));
                }
                txn.clear(&keys::index(d));
                Ok(false)
            })
        })
        .await?)
    }

    /// Removes an expired hold: its key and blocks when its day was purged, its record always.
    async fn end_hold(&self, d: DeliveryId, cutoff: u32) -> Result<(), HistoryError> {
        let day_gone = store::transact(&*self.kv, move |txn| {
            Box::pin(async move {
                let idx = match txn.get(&keys::index(d)).await? {
                    Some(v) => serde_json::from_slice::<PathIndex>(&v).ok(),
                    None => None,
                };
                let gone = idx.is_none_or(|i| i.day < cutoff);
                txn.clear(&keys::hold(d));
                if gone {
                    txn.clear(&keys::index(d));
                }
                Ok::<_, TxnError<HistoryError>>(gone)
            })
        })
        .await?;
        if day_gone {
            match self.keys.destroy(KeyId::Hold(d.0)) {
                Ok(()) => {}
                Err(e) => return Err(e.into()),
            }
            store::transact(&*self.kv, move |txn| {
                Box::pin(async move {
                    let p = keys::held_prefix(d);
                    txn.clear_range(&p, &store::keys::prefix_end(&p));
                    Ok::<_, TxnError<HistoryError>>(())
                })
            })
            .await?;
        }
        Ok(())
    }
}
