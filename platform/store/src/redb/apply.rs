//! Applying a successful job's writes to the batch's write transaction: point writes, cleared
//! ranges, and its events at the next positions of their logs, stamped FoundationDB-style.

use std::collections::HashMap;

use super::{backend, head_in};
use crate::overlay::WriteSet;
use redb::ReadableTable;

use crate::{Result, StoreError, keys};

pub(super) type Table<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// Stamps events of one batch: `commit_seq ++ job index` and the event's index in its job.
pub(super) struct Stamper {
    pub(super) seq: Option<u64>,
}

impl Stamper {
    pub(super) fn stamp(
        &mut self,
        table: &mut Table<'_>,
        job: usize,
        event: usize,
    ) -> Result<keys::Versionstamp> {
        let seq = match self.seq {
            Some(s) => s,
            None => {
                let key = keys::commit_seq_key();
                let prev = match table.get(key.as_slice()).map_err(backend)? {
                    None => 0,
                    Some(v) => {
                        keys::decode_head(v.value()).map_err(|reason| StoreError::Corrupt {
                            key: "commit_seq".into(),
                            reason,
                        })?
                    }
                };
                let seq = prev + 1;
                table
                    .insert(key.as_slice(), keys::encode_head(seq).as_slice())
                    .map_err(backend)?;
                self.seq = Some(seq);
                seq
            }
        };
        let mut tr = [0u8; 10];
        tr[..8].copy_from_slice(&seq.to_be_bytes());
        tr[8..].copy_from_slice(&(job as u16).to_be_bytes());
        Ok(keys::Versionstamp::complete(tr, event as u16))
    }
}

/// Applies a successful job's writes; records the new heads in `heads`.
pub(super) fn apply(
    table: &mut Table<'_>,
    ws: WriteSet,
    job: usize,
    stamper: &mut Stamper,
    heads: &mut HashMap<u16, u64>,
) -> Result<()> {
    for (b, e) in &ws.cleared {
        table
            .retain_in::<&[u8], _>(b.as_slice()..e.as_slice(), |_, _| false)
            .map_err(backend)?;
    }
    for (k, v) in &ws.points {
        match v {
            Some(v) => table.insert(k.as_slice(), v.as_slice()).map(drop),
            None => table.remove(k.as_slice()).map(drop),
        }
        .map_err(backend)?;
    }
    for (i, (log, payload)) in ws.events.iter().enumerate() {
        let head = match heads.get(&log.0) {
            Some(h) => *h,
            None => head_in(&*table, *log)?,
        };
        let pos = head + 1;
        let stamp = stamper.stamp(table, job, i)?;
        let value = keys::event_value(&stamp, payload);
        table
            .insert(keys::event_key(log.0, pos).as_slice(), value.as_slice())
            .map_err(backend)?;
        table
            .insert(
                keys::event_head_key(log.0).as_slice(),
                keys::encode_head(pos).as_slice(),
            )
            .map_err(backend)?;
        heads.insert(log.0, pos);
    }
    Ok(())
}
