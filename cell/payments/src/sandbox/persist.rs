//! The sandbox's state in its store (the cell gives it a store of its own, as a real provider
//! keeps its ledger apart from ours): one record per authorization
//! (`("sandbox", "auth", id)`, the [`LedgerEntry`] with its effect counts) and one per
//! idempotency key (`("sandbox", "idem", key)`: the request and its first answer). A call
//! reads both, decides with [`super::ledger::execute`] and writes in one serializable
//! transaction, so concurrent duplicates apply once and a restart (or a SIGKILL at any moment)
//! loses nothing a caller was told.

use super::ledger::{Fingerprint, LedgerEntry, Outcome, Stored, execute};
use crate::error::{PaymentError, Result};
use store::{Kv, PageLimits, Pages, TxnError};

fn auth_key(id: &str) -> Vec<u8> {
    store::keys::pack(&("sandbox", "auth", id))
}

fn idem_key(key: &str) -> Vec<u8> {
    store::keys::pack(&("sandbox", "idem", key))
}

fn store_error(e: impl std::fmt::Display) -> PaymentError {
    // The provider's own storage failed: to the caller this is a provider that did not
    // answer, and the same key may be retried.
    tracing::warn!(error = %e, "sandbox store failed");
    PaymentError::Unavailable
}

fn decode<T: serde::de::DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>> {
    bytes
        .map(|b| serde_json::from_slice(&b))
        .transpose()
        .map_err(|e| PaymentError::Provider(format!("sandbox record unreadable: {e}")))
}

/// One call as a store transaction. Returns the outcome (applied or replayed).
pub(super) async fn call(
    kv: &dyn Kv,
    key: &str,
    request: Fingerprint,
    decline_capture: bool,
) -> Result<Outcome> {
    let key = key.to_string();
    let r = store::transact(kv, move |txn| {
        let (key, request) = (key.clone(), request.clone());
        Box::pin(async move {
            let auth_id = request.auth_id(&key);
            let stored: Option<Stored> =
                decode(txn.get(&idem_key(&key)).await?).map_err(TxnError::Abort)?;
            let entry: Option<LedgerEntry> = if stored.is_some() {
                None
            } else {
                decode(txn.get(&auth_key(&auth_id)).await?).map_err(TxnError::Abort)?
            };
            let outcome = execute(&key, request, stored, entry, decline_capture);
            if let Outcome::Applied { stored, entry } = &outcome {
                let s = serde_json::to_vec(stored).expect("sandbox records serialize");
                txn.set(&idem_key(&key), &s);
                if let Some(entry) = entry {
                    let e = serde_json::to_vec(entry).expect("sandbox records serialize");
                    txn.set(&auth_key(&entry.id), &e);
                }
            }
            Ok(outcome)
        })
    })
    .await;
    match r {
        Ok(o) => Ok(o),
        Err(TxnError::Abort(e)) => Err(e),
        Err(TxnError::Store(e)) => Err(store_error(e)),
    }
}

/// Every authorization the sandbox holds in `kv`, in key order (read page by page, so it
/// works on any number of them). Used at startup and by the cell's payment checker.
pub async fn load_ledger(kv: &dyn Kv) -> std::result::Result<Vec<LedgerEntry>, String> {
    let prefix = store::keys::pack(&("sandbox", "auth"));
    let mut pages = Pages::prefix(&prefix, PageLimits::DEFAULT);
    let mut out = Vec::new();
    while let Some(page) = pages.next(kv).await.map_err(|e| e.to_string())? {
        for kv in page {
            let e: LedgerEntry = serde_json::from_slice(&kv.value).map_err(|e| e.to_string())?;
            out.push(e);
        }
    }
    Ok(out)
}

/// Moves the sandbox's records from `from` (the cell's order store, where they were kept before
/// the sandbox had a store of its own) into `to`, so authorizations made before an upgrade can
/// still be captured or voided after it. Returns how many records moved. Runs before the
/// sandbox answers any call: a crash between the copy and the clear leaves both copies equal,
/// and the next start copies the same records again, then clears.
pub async fn migrate(from: &dyn Kv, to: &dyn Kv) -> std::result::Result<usize, String> {
    let prefix = store::keys::pack(&("sandbox",));
    let mut moved = 0;
    let mut pages = Pages::prefix(&prefix, PageLimits::DEFAULT);
    while let Some(page) = pages.next(from).await.map_err(|e| e.to_string())? {
        moved += page.len();
        store::transact(to, move |txn| {
            let page = page.clone();
            Box::pin(async move {
                for kv in &page {
                    txn.set(&kv.key, &kv.value);
                }
                Ok::<_, TxnError<std::convert::Infallible>>(())
            })
        })
        .await
        .map_err(|e| e.to_string())?;
    }
    let end = store::keys::prefix_end(&prefix);
    store::transact(from, move |txn| {
        let (b, e) = (prefix.clone(), end.clone());
        Box::pin(async move {
            txn.clear_range(&b, &e);
            Ok::<_, TxnError<std::convert::Infallible>>(())
        })
    })
    .await
    .map_err(|e| e.to_string())?;
    Ok(moved)
}
