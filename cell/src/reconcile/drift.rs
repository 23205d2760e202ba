//! Drift records in the cell's store, and the paged listing.
//!
//! | key                          | value        | purpose                                  |
//! |------------------------------|--------------|------------------------------------------|
//! | `("drift", order_id, kind)`  | `Drift` JSON | one record per order and kind            |
//! | `("driftopen",)`             | u64 BE       | unrepaired, unresolved drifts (gauge)    |
//! | `("recon", "cursor")`        | u64 BE       | the last order id the job compared       |
//!
//! Order ids are Snowflakes, so a reverse range lists the newest orders' drift first.

use super::compare::{DriftKind, OrderView, ProviderView};
use domain::OrderId;
use serde::{Deserialize, Serialize};
use store::keys::pack;
use store::{Kv, RangeRequest, Txn, TxnError};
use utoipa::ToSchema;

/// One drift of one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Drift {
    pub order_id: String,
    pub kind: DriftKind,
    /// The store was corrected from the provider's record.
    pub repaired: bool,
    /// A later comparison found this drift gone (corrected by hand, or by the order moving
    /// on). Never set on a repaired drift.
    pub resolved: bool,
    /// The order as found.
    pub order: OrderView,
    /// The provider's record as found; null when it has none.
    pub provider: Option<ProviderView>,
    /// Unix ms.
    pub first_seen: i64,
    pub last_seen: i64,
    /// Passes that found it.
    pub seen: u32,
}

impl Drift {
    /// The record's id in the API: `<order id>.<kind>`.
    pub fn id(&self) -> String {
        format!("{}.{}", self.order_id, self.kind.as_str())
    }

    fn open(&self) -> bool {
        !self.repaired && !self.resolved
    }
}

pub(super) fn key(order: OrderId, kind: DriftKind) -> Vec<u8> {
    pack(&("drift", order.0, kind.as_str()))
}

fn prefix() -> Vec<u8> {
    pack(&("drift",))
}

pub(super) fn cursor_key() -> Vec<u8> {
    pack(&("recon", "cursor"))
}

fn open_key() -> Vec<u8> {
    pack(&("driftopen",))
}

/// Why reading drift failed.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("stored drift is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

/// Stores what one comparison found for `order`: `found` (kind, record to keep if new)
/// upserted, records of other kinds marked resolved. Returns the kinds recorded for the first
/// time and the open count after it.
pub(super) async fn record<E>(
    txn: &dyn Txn,
    order: OrderId,
    found: &[Drift],
    now: i64,
) -> Result<(Vec<DriftKind>, u64), TxnError<E>> {
    let mut open = txn
        .get(&open_key())
        .await?
        .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    let mut new = Vec::new();
    for kind in DriftKind::ALL {
        let k = key(order, kind);
        let old: Option<Drift> = txn
            .get(&k)
            .await?
            .and_then(|b| serde_json::from_slice(&b).ok());
        let next = match (found.iter().find(|d| d.kind == kind), old) {
            (Some(d), None) => {
                new.push(kind);
                open += u64::from(d.open());
                Some(d.clone())
            }
            (Some(d), Some(mut old)) => {
                let was_open = old.open();
                old.last_seen = now;
                old.seen += 1;
                old.resolved = false;
                old.repaired |= d.repaired;
                old.provider = d.provider.clone();
                open = open + u64::from(old.open()) - u64::from(was_open);
                Some(old)
            }
            (None, Some(mut old)) if old.open() => {
                old.resolved = true;
                old.last_seen = now;
                open = open.saturating_sub(1);
                Some(old)
            }
            (None, _) => None,
        };
        if let Some(d) = next {
            txn.set(&k, &serde_json::to_vec(&d).expect("a drift serializes"));
        }
    }
    txn.set(&open_key(), &open.to_be_bytes());
    Ok((new, open))
}

/// One page of drift, newest orders first.
#[derive(Debug, Clone)]
pub struct Page {
    pub drift: Vec<Drift>,
    pub next: Option<String>,
}

/// Parses a drift id `<order id>.<kind>` into its key.
pub fn key_of(id: &str) -> Option<Vec<u8>> {
    let (order, kind) = id.split_once('.')?;
    let digits = (1..=19).contains(&order.len()) && order.bytes().all(|b| b.is_ascii_digit());
    let order: u64 = if digits {
        order.parse().ok()?
    } else {
        return None;
    };
    let kind = DriftKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    Some(key(OrderId(order), kind))
}

/// Drift after the record `after` (a cursor), newest orders first; only open (unrepaired,
/// unresolved) ones when `open_only`.
pub async fn list(
    kv: &dyn Kv,
    after: Option<&str>,
    open_only: bool,
    limit: usize,
) -> Result<Page, DriftError> {
    let end = match after {
        Some(id) => key_of(id).unwrap_or_else(prefix),
        None => store::keys::prefix_end(&prefix()),
    };
    // Bounded like the flag listing: a page reads at most this many records.
    const SCAN: usize = 2_000;
    let rows = store::read(kv, move |txn| {
        let end = end.clone();
        Box::pin(async move {
            let req = RangeRequest {
                begin: prefix(),
                end,
                limit: SCAN,
                reverse: true,
            };
            Ok::<_, TxnError<()>>(txn.get_range(req).await?)
        })
    })
    .await
    .map_err(|e| match e {
        TxnError::Store(e) => DriftError::Store(e),
        TxnError::Abort(()) => DriftError::Store(store::StoreError::Closed),
    })?;
    let scanned_all = rows.len() < SCAN;
    let mut drift = Vec::new();
    let mut last = None;
    for row in rows {
        let d: Drift =
            serde_json::from_slice(&row.value).map_err(|e| DriftError::Corrupt(e.to_string()))?;
        last = Some(d.id());
        if open_only && !d.open() {
            continue;
        }
        if drift.len() == limit {
            let next = drift.last().map(Drift::id);
            return Ok(Page { drift, next });
        }
        drift.push(d);
    }
    Ok(Page {
        drift,
        next: if scanned_all { None } else { last },
    })
}

/// Open drifts now.
pub async fn open_count(kv: &dyn Kv) -> Result<u64, store::StoreError> {
    let r = store::read(kv, |txn| {
        Box::pin(async move {
            Ok::<_, TxnError<()>>(
                txn.get(&open_key())
                    .await?
                    .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(0),
            )
        })
    })
    .await;
    r.map_err(|e| match e {
        TxnError::Store(e) => e,
        TxnError::Abort(()) => store::StoreError::Closed,
    })
}
