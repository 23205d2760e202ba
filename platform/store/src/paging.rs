//! Scans paged across transactions. FoundationDB ends a transaction after 5 s and caps what
//! one writes at 10 MB, so anything that walks a whole key family (the catalog load at
//! startup, recovery scans, region moves) reads it a page at a time, each page in its own
//! transaction, bounded by a key count and a byte count, and resumes after the last key read
//! (the continuation). Pages are not one snapshot: callers that need more use keys that make a
//! replay harmless (upserts, recovery of orders that are only ever added to).

use crate::{KeyValue, Kv, RangeRequest, Result, TxnError};

/// How much one page may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimits {
    /// At most this many pairs.
    pub keys: usize,
    /// About this many bytes of keys and values: a page stops at the first pair that reaches
    /// it, so it holds at most this plus one pair.
    pub bytes: usize,
}

impl PageLimits {
    /// A thousand pairs or 1 MB, far inside FoundationDB's limits and a few milliseconds of
    /// reading.
    pub const DEFAULT: PageLimits = PageLimits {
        keys: 1000,
        bytes: 1 << 20,
    };
}

impl Default for PageLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Pairs per range read inside a page: small enough that the byte bound is not overshot by
/// much more than one read.
const READ_CHUNK: usize = 64;

/// A scan of `[begin, end)` in pages: call [`Pages::next`] until it returns `None`.
#[derive(Debug, Clone)]
pub struct Pages {
    /// The continuation: the first key the next page may return; `None` once done.
    next: Option<Vec<u8>>,
    end: Vec<u8>,
    limits: PageLimits,
}

impl Pages {
    pub fn new(begin: Vec<u8>, end: Vec<u8>, limits: PageLimits) -> Self {
        assert!(limits.keys > 0, "a page holds at least one key");
        Self {
            next: Some(begin),
            end,
            limits,
        }
    }

    /// Every key starting with `prefix`.
    pub fn prefix(prefix: &[u8], limits: PageLimits) -> Self {
        Self::new(prefix.to_vec(), crate::keys::prefix_end(prefix), limits)
    }

    /// The continuation: where the next page starts (`None` when the scan is done). Storing it
    /// and passing it to [`Pages::new`] later resumes the scan.
    pub fn continuation(&self) -> Option<&[u8]> {
        self.next.as_deref()
    }

    /// The next page, read in one read transaction; `None` once the range is exhausted.
    pub async fn next(&mut self, kv: &dyn Kv) -> Result<Option<Vec<KeyValue>>> {
        let Some(begin) = self.next.take() else {
            return Ok(None);
        };
        let (end, limits) = (self.end.clone(), self.limits);
        let (rows, more) = crate::read(kv, move |txn| {
            let (begin, end) = (begin.clone(), end.clone());
            Box::pin(async move {
                let mut rows: Vec<KeyValue> = Vec::new();
                let mut bytes = 0usize;
                let mut range = RangeRequest {
                    begin,
                    end,
                    limit: 0,
                    reverse: false,
                };
                loop {
                    let want = READ_CHUNK.min(limits.keys - rows.len());
                    let chunk = txn.get_range(range.clone().limit(want)).await?;
                    let short = chunk.len() < want;
                    for kv in chunk {
                        bytes += kv.key.len() + kv.value.len();
                        rows.push(kv);
                        if bytes >= limits.bytes {
                            return Ok::<_, TxnError<()>>((rows, true));
                        }
                    }
                    if short {
                        return Ok((rows, false));
                    }
                    if rows.len() >= limits.keys {
                        return Ok((rows, true));
                    }
                    range.begin = after(&rows.last().expect("a full chunk").key);
                }
            })
        })
        .await
        .map_err(|e| match e {
            TxnError::Store(e) => e,
            TxnError::Abort(()) => unreachable!("the page reader never aborts"),
        })?;
        if more && let Some(last) = rows.last() {
            self.next = Some(after(&last.key));
        }
        Ok((!rows.is_empty()).then_some(rows))
    }
}

/// The smallest key after `key`.
pub fn after(key: &[u8]) -> Vec<u8> {
    [key, &[0]].concat()
}
