//! The sandbox's state in the cell's store: one record per authorization
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

/// One call. Decided from a snapshot read, off the store's writer (which runs every
/// transaction's body in turn, requests' included): the transaction then only checks that both
/// records are still the bytes the decision was made from and writes. A concurrent call on the
/// same records makes the check fail, and the call is decided again inside a transaction
/// ([`call_in_txn`]). Returns the outcome (applied or replayed).
pub(super) async fn call(
    kv: &dyn Kv,
    key: &str,
    request: Fingerprint,
    decline_capture: bool,
) -> Result<Outcome> {
    let auth_id = request.auth_id(key);
    let (ik, ak) = (idem_key(key), auth_key(&auth_id));
    let (rk, ra) = (ik.clone(), ak.clone());
    let snapshot = store::read(kv, move |txn| {
        let (ik, ak) = (rk.clone(), ra.clone());
        Box::pin(async move {
            Ok::<_, TxnError<std::convert::Infallible>>((txn.get(&ik).await?, txn.get(&ak).await?))
        })
    })
    .await;
    let (idem, auth) = match snapshot {
        Ok(s) => s,
        Err(TxnError::Store(e)) => return Err(store_error(e)),
        Err(TxnError::Abort(never)) => match never {},
    };
    let stored: Option<Stored> = decode(idem.clone())?;
    // A replay or a mismatch answers from the idempotency record, which never changes once
    // written: the snapshot is as good as a transaction.
    let entry: Option<LedgerEntry> = if stored.is_some() {
        None
    } else {
        decode(auth.clone())?
    };
    let outcome = execute(key, request.clone(), stored, entry, decline_capture);
    let Outcome::Applied { stored, entry } = &outcome else {
        return Ok(outcome);
    };
    if entry.as_ref().is_some_and(|e| e.id != auth_id) {
        return call_in_txn(kv, key, request, decline_capture).await;
    }
    let s = serde_json::to_vec(stored).expect("sandbox records serialize");
    let e = entry
        .as_ref()
        .map(|e| serde_json::to_vec(e).expect("sandbox records serialize"));
    let written = store::transact(kv, move |txn| {
        let (ik, ak, idem, auth, s, e) = (
            ik.clone(),
            ak.clone(),
            idem.clone(),
            auth.clone(),
            s.clone(),
            e.clone(),
        );
        Box::pin(async move {
            if txn.get(&ik).await? != idem || txn.get(&ak).await? != auth {
                return Ok::<_, TxnError<std::convert::Infallible>>(false);
            }
            txn.set(&ik, &s);
            if let Some(e) = &e {
                txn.set(&ak, e);
            }
            Ok(true)
        })
    })
    .await;
    match written {
        Ok(true) => Ok(outcome),
        Ok(false) => call_in_txn(kv, key, request, decline_capture).await,
        Err(TxnError::Store(e)) => Err(store_error(e)),
        Err(TxnError::Abort(never)) => match never {},
    }
}

/// One call decided and written in one store transaction.
async fn call_in_txn(
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
