//! Writing paths to the store and reading them back.
//!
//! A flush takes every sealed segment (failed ones from the last flush first) and writes them
//! in transactions of at most `flush_batch_segments`, at most [`MAX_COMMITS_PER_S`] a second:
//! one transaction carries many deliveries' segments (group commit). Each segment is sealed
//! under its day's key; a finished delivery's segments are read back, joined with its last
//! segment and written as one compacted block in the same transaction, which also removes
//! them, so a crash leaves either the segments or the block, never neither.

use super::recorder::Sealed;
use super::{History, HistoryError, PathIndex, day_of, keys};
use crate::envelope::{KeyId, KeyRing};
use domain::{DeliveryId, UnixMs};
use pathcodec::Fix;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use store::{RangeRequest, Txn, TxnError};

/// At most this many history commits a second per cell.
pub const MAX_COMMITS_PER_S: u32 = 10;
/// The pause between two history commits.
pub const MIN_COMMIT_GAP: Duration = Duration::from_millis(1000 / MAX_COMMITS_PER_S as u64);
/// Failed segments kept for the next flush at most; past it the oldest are dropped (and
/// counted): a store down for long must not grow memory without bound.
pub const MAX_PENDING_SEGMENTS: usize = 1_000_000;

/// What one flush wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FlushStats {
    pub segments: usize,
    pub compacted: usize,
    pub commits: usize,
    /// Bytes handed to the store (ciphertexts).
    pub bytes: usize,
}

fn corrupt(d: DeliveryId, e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Corrupt(d, e.to_string())
}

fn decode_index(d: DeliveryId, v: &[u8]) -> Result<PathIndex, HistoryError> {
    serde_json::from_slice(v).map_err(|e| corrupt(d, e))
}

/// The fixes of every stored part of `delivery` on `day`, in part order.
async fn read_parts(
    txn: &dyn Txn,
    ring: &KeyRing,
    cell: u16,
    day: u32,
    delivery: DeliveryId,
) -> Result<Vec<Fix>, HistoryError> {
    let rows = txn
        .get_range(RangeRequest::prefix(&keys::path_prefix(day, delivery)))
        .await?;
    let mut fixes = Vec::new();
    for kv in rows {
        let (_, _, part) = keys::parse_path(&kv.key).ok_or_else(|| corrupt(delivery, "key"))?;
        let plain = ring.open(
            KeyId::Day(day),
            &keys::aad(cell, delivery, day, part),
            &kv.value,
        )?;
        let block = pathcodec::decode(&plain).map_err(|e| corrupt(delivery, e))?;
        fixes.extend(block.fixes);
    }
    Ok(fixes)
}

/// What one batch wrote.
struct Written {
    bytes: usize,
    compacted: usize,
    /// Each delivery's index after the batch.
    indexes: HashMap<DeliveryId, PathIndex>,
}

/// Writes `batch` in one transaction. `known` holds the indexes this process wrote last (it is
/// the only writer while it holds the lease), so only a path new to it reads its index: in
/// steady state a segment costs two writes and no read.
async fn write_batch(
    txn: &dyn Txn,
    ring: &KeyRing,
    cell: u16,
    batch: &[Sealed],
    known: &HashMap<DeliveryId, PathIndex>,
) -> Result<Written, HistoryError> {
    let (mut bytes, mut compacted) = (0, 0);
    let mut indexes: HashMap<DeliveryId, PathIndex> = HashMap::new();
    for s in batch {
        let d = s.delivery;
        // A path whose day was purged while it was still recorded (a delivery older than the
        // retention) cannot be written: its segment is dropped, not left to fail every batch.
        let day_gone = |e: &HistoryError| {
            matches!(
                e,
                HistoryError::Key(crate::envelope::KeyError::Destroyed(_))
            )
        };
        let cached = indexes.get(&d).or_else(|| known.get(&d)).copied();
        let mut idx = match cached {
            Some(i) => i,
            None => match txn.get(&keys::index(d)).await? {
                Some(v) => decode_index(d, &v)?,
                None => PathIndex {
                    day: day_of(s.started),
                    order: s.order.0,
                    next_part: 0,
                    compacted: false,
                },
            },
        };
        let r: Result<(), HistoryError> = async {
            if s.finished {
                let mut fixes = read_parts(txn, ring, cell, idx.day, d).await?;
                if s.fixes > 0 {
                    let tail = pathcodec::decode(&s.block).map_err(|e| corrupt(d, e))?;
                    fixes.extend(tail.fixes);
                }
                txn.clear_range(
                    &keys::path_prefix(idx.day, d),
                    &store::keys::prefix_end(&keys::path_prefix(idx.day, d)),
                );
                if !fixes.is_empty() {
                    let block = pathcodec::encode(d.0, 0, &fixes);
                    let sealed = ring.seal(
                        KeyId::Day(idx.day),
                        &keys::aad(cell, d, idx.day, keys::COMPACT),
                        &block,
                    )?;
                    bytes += sealed.len();
                    txn.set(&keys::path(idx.day, d, keys::COMPACT), &sealed);
                }
                idx.compacted = true;
                compacted += 1;
            } else {
                let part = idx.next_part;
                let sealed = ring.seal(
                    KeyId::Day(idx.day),
                    &keys::aad(cell, d, idx.day, part),
                    &s.block,
                )?;
                bytes += sealed.len();
                txn.set(&keys::path(idx.day, d, part), &sealed);
                idx.next_part = part.saturating_add(1).min(keys::COMPACT - 1);
            }
            Ok(())
        }
        .await;
        match r {
            Err(e) if day_gone(&e) => {
                metrics::counter!("cell_history_segments_dropped_total").increment(1);
                continue;
            }
            r => r?,
        }
        let v = serde_json::to_vec(&idx).expect("an index serializes");
        txn.set(&keys::index(d), &v);
        indexes.insert(d, idx);
    }
    Ok(Written {
        bytes,
        compacted,
        indexes,
    })
}

impl History {
    /// Seals and writes what is buffered (`only_finished`: only deliveries that ended). A
    /// failed batch is kept for the next flush and its error returned after the others.
    pub async fn flush(
        &self,
        only_finished: bool,
        _now: UnixMs,
    ) -> Result<FlushStats, HistoryError> {
        let mut segments = std::mem::take(&mut *self.pending.lock());
        segments.extend(self.recorder.take(only_finished));
        metrics::gauge!("cell_history_active_paths").set(self.recorder.active() as f64);
        let mut stats = FlushStats::default();
        let mut first_err = None;
        let mut failed = Vec::new();
        let batch_size = self.cfg.flush_batch_segments.max(1);
        let batches: Vec<Vec<Sealed>> = segments
            .chunks(batch_size)
            .map(<[Sealed]>::to_vec)
            .collect();
        for (i, batch) in batches.into_iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(MIN_COMMIT_GAP).await;
            }
            let batch = Arc::new(batch);
            let known: HashMap<DeliveryId, PathIndex> = {
                let cache = self.indexes.lock();
                batch
                    .iter()
                    .filter_map(|s| cache.get(&s.delivery).map(|i| (s.delivery, *i)))
                    .collect()
            };
            let known = Arc::new(known);
            let (ring, cell, b) = (self.keys.clone(), self.cell, batch.clone());
            let r = store::transact(&*self.kv, move |txn| {
                let (ring, b, known) = (ring.clone(), b.clone(), known.clone());
                Box::pin(async move {
                    write_batch(txn, &ring, cell, &b, &known)
                        .await
                        .map_err(|e| match e {
                            HistoryError::Store(s) => TxnError::Store(s),
                            e => TxnError::Abort(e),
                        })
                })
            })
            .await;
            match r {
                Ok(w) => {
                    stats.commits += 1;
                    stats.segments += batch.len();
                    stats.compacted += w.compacted;
                    stats.bytes += w.bytes;
                    let mut cache = self.indexes.lock();
                    for (d, idx) in w.indexes {
                        // A compacted path takes no more segments: forgotten here.
                        if idx.compacted {
                            cache.remove(&d);
                        } else {
                            cache.insert(d, idx);
                        }
                    }
                }
                Err(e) => {
                    metrics::counter!("cell_history_flush_failures_total").increment(1);
                    failed.extend(batch.iter().cloned());
                    first_err.get_or_insert(HistoryError::from(e));
                }
            }
        }
        metrics::counter!("cell_history_segments_written_total").increment(stats.segments as u64);
        metrics::counter!("cell_history_bytes_written_total").increment(stats.bytes as u64);
        if !failed.is_empty() {
            let mut p = self.pending.lock();
            failed.append(&mut p);
            let over = failed.len().saturating_sub(MAX_PENDING_SEGMENTS);
            if over > 0 {
                metrics::counter!("cell_history_segments_dropped_total").increment(over as u64);
                failed.drain(..over);
            }
            *p = failed;
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(stats),
        }
    }

    /// The stored path of `delivery` and its index: from its day's range while the day key
    /// lives, else from its hold. Not yet flushed fixes (at most one segment) are not in it.
    pub async fn read_path(
        &self,
        delivery: DeliveryId,
    ) -> Result<(PathIndex, Vec<Fix>), HistoryError> {
        let (ring, cell) = (self.keys.clone(), self.cell);
        store::read(&*self.kv, move |txn| {
            let ring = ring.clone();
            Box::pin(async move {
                let r: Result<_, HistoryError> = async {
                    let idx = match txn.get(&keys::index(delivery)).await? {
                        Some(v) => decode_index(delivery, &v)?,
                        None => return Err(HistoryError::NotFound(delivery)),
                    };
                    let held = txn
                        .get_range(RangeRequest::prefix(&keys::held_prefix(delivery)))
                        .await?;
                    if !held.is_empty() {
                        let mut fixes = Vec::new();
                        for (part, kv) in held.into_iter().enumerate() {
                            let aad = keys::held_aad(cell, delivery, part as u32);
                            let plain = ring.open(KeyId::Hold(delivery.0), &aad, &kv.value)?;
                            let block =
                                pathcodec::decode(&plain).map_err(|e| corrupt(delivery, e))?;
                            fixes.extend(block.fixes);
                        }
                        return Ok((idx, fixes));
                    }
                    match read_parts(txn, &ring, cell, idx.day, delivery).await {
                        Ok(fixes)
                            if fixes.is_empty()
                                && matches!(
                                    ring.key(KeyId::Day(idx.day), false),
                                    Err(crate::envelope::KeyError::Destroyed(_))
                                ) =>
                        {
                            Err(HistoryError::Purged(delivery))
                        }
                        Ok(fixes) => Ok((idx, fixes)),
                        Err(HistoryError::Key(crate::envelope::KeyError::Destroyed(_))) => {
                            Err(HistoryError::Purged(delivery))
                        }
                        Err(e) => Err(e),
                    }
                }
                .await;
                r.map_err(|e| match e {
                    HistoryError::Store(s) => TxnError::Store(s),
                    e => TxnError::Abort(e),
                })
            })
        })
        .await
        .map_err(HistoryError::from)
    }
}
