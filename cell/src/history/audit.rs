//! The audit log of access to location history: append-only and hash-chained. Each record
//! carries the SHA-256 of the previous record, and its own hash over that and its fields, so
//! editing, removing or reordering a record breaks the chain at that record, which
//! [`verify`] finds. A record is committed (durably) before the caller returns any data.

use super::HistoryError;
use super::keys;
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use store::{Kv, RangeRequest, TxnError};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Records read per transaction while verifying.
const VERIFY_PAGE: usize = 1_000;

/// What happened, by whom, from where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entry {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// The token's name, or its role when it carries none.
    pub actor: String,
    pub role: String,
    /// `path.read`, `hold.place`, `audit.verify`.
    pub action: String,
    pub delivery_id: Option<String>,
    pub reason: String,
    /// The client's address as the cell saw it (the router's `X-Forwarded-For` first).
    pub client: String,
}

/// A stored record: the entry, its place in the chain and the hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Record {
    pub seq: u64,
    #[serde(flatten)]
    pub entry: Entry,
    /// The previous record's hash (hex), [`GENESIS`] for the first.
    pub prev: String,
    /// SHA-256 (hex) over `prev` and the entry's fields.
    pub hash: String,
}

/// `("auh",)`: the last record's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: String,
}

/// The hash of a record with these fields.
pub fn hash(seq: u64, entry: &Entry, prev: &str) -> String {
    // Field order is fixed by the struct, so the bytes are canonical.
    let body = serde_json::to_vec(&(seq, entry, prev)).expect("an entry serializes");
    digest(&SHA256, &body)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> HistoryError {
    HistoryError::Store(store::StoreError::Corrupt {
        key: what.into(),
        reason: e.to_string(),
    })
}

/// Appends `entry`; resolves once the record is durable.
pub async fn append(kv: &dyn Kv, entry: Entry) -> Result<Record, HistoryError> {
    Ok(store::transact(kv, move |txn| {
        let entry = entry.clone();
        Box::pin(async move {
            let head = match txn.get(&keys::audit_head()).await? {
                Some(v) => serde_json::from_slice::<Head>(&v)
                    .map_err(|e| TxnError::Abort(corrupt("audit head", e)))?,
                None => Head {
                    seq: 0,
                    hash: GENESIS.into(),
                },
            };
            let seq = head.seq + 1;
            let h = hash(seq, &entry, &head.hash);
            let rec = Record {
                seq,
                entry,
                prev: head.hash,
                hash: h.clone(),
            };
            txn.set(
                &keys::audit(seq),
                &serde_json::to_vec(&rec).expect("a record serializes"),
            );
            let head = Head { seq, hash: h };
            txn.set(
                &keys::audit_head(),
                &serde_json::to_vec(&head).expect("a head serializes"),
            );
            Ok::<_, TxnError<HistoryError>>(rec)
        })
    })
    .await?)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    /// Records checked.
    pub records: u64,
    pub intact: bool,
    /// The first record that breaks the chain, and how.
    pub broken_at: Option<u64>,
    pub problem: Option<String>,
}

/// Walks the whole chain: every record's hash recomputed, every `prev` equal to the hash
/// before it, sequence numbers without gaps, and the head naming the last record.
pub async fn verify(kv: &dyn Kv) -> Result<Verdict, HistoryError> {
    let mut next = keys::audit_prefix();
    let end = store::keys::prefix_end(&next);
    let (mut prev, mut expect, mut records) = (GENESIS.to_string(), 1u64, 0u64);
    let fail = |records, seq, problem: String| Verdict {
        records,
        intact: false,
        broken_at: Some(seq),
        problem: Some(problem),
    };
    loop {
        let (from, to) = (next.clone(), end.clone());
        let rows = store::read(kv, move |txn| {
            let r = RangeRequest {
                begin: from.clone(),
                end: to.clone(),
                limit: VERIFY_PAGE,
                reverse: false,
            };
            Box::pin(async move { Ok::<_, TxnError<HistoryError>>(txn.get_range(r).await?) })
        })
        .await?;
        for kv in &rows {
            records += 1;
            let rec: Record = match serde_json::from_slice(&kv.value) {
                Ok(r) => r,
                Err(e) => return Ok(fail(records, expect, format!("record does not parse: {e}"))),
            };
            if rec.seq != expect {
                return Ok(fail(
                    records,
                    expect,
                    format!("found seq {} where {expect} belongs", rec.seq),
                ));
            }
            if rec.prev != prev {
                return Ok(fail(
                    records,
                    rec.seq,
                    "prev is not the previous record's hash".into(),
                ));
            }
            if hash(rec.seq, &rec.entry, &rec.prev) != rec.hash {
                return Ok(fail(
                    records,
                    rec.seq,
                    "the record was changed after it was written".into(),
                ));
            }
            prev = rec.hash;
            expect += 1;
        }
        match rows.last() {
            Some(last) if rows.len() == VERIFY_PAGE => {
                next = last.key.clone();
                next.push(0);
            }
            _ => break,
        }
    }
    let head = store::read(kv, |txn| {
        Box::pin(
            async move { Ok::<_, TxnError<HistoryError>>(txn.get(&keys::audit_head()).await?) },
        )
    })
    .await?;
    let head: Option<Head> = head.and_then(|v| serde_json::from_slice(&v).ok());
    let last = expect - 1;
    match head {
        None if last == 0 => {}
        Some(h) if h.seq == last && h.hash == prev => {}
        _ => {
            return Ok(fail(
                records,
                last,
                "the head does not name the last record (records removed from the end?)".into(),
            ));
        }
    }
    Ok(Verdict {
        records,
        intact: true,
        broken_at: None,
        problem: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry(i: i64) -> Entry {
        Entry {
            at: 1_000 + i,
            actor: "ana".into(),
            role: "support".into(),
            action: "path.read".into(),
            delivery_id: Some("7".into()),
            reason: format!("ticket-{i}"),
            client: "10.0.0.1".into(),
        }
    }

    async fn store() -> (tempfile::TempDir, Arc<dyn Kv>) {
        let dir = tempfile::tempdir().unwrap();
        let kv: Arc<dyn Kv> =
            Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
        (dir, kv)
    }

    #[tokio::test]
    async fn an_intact_chain_verifies_and_each_kind_of_tampering_is_caught() {
        let (_d, kv) = store().await;
        assert!(verify(&*kv).await.unwrap().intact, "an empty log is intact");
        for i in 0..5 {
            let r = append(&*kv, entry(i)).await.unwrap();
            assert_eq!(r.seq, i as u64 + 1);
        }
        let v = verify(&*kv).await.unwrap();
        assert!(v.intact && v.records == 5, "{v:?}");

        let set = |k: Vec<u8>, v: Vec<u8>| {
            let kv = kv.clone();
            async move {
                store::transact(&*kv, move |txn| {
                    let (k, v) = (k.clone(), v.clone());
                    Box::pin(async move {
                        if v.is_empty() {
                            txn.clear(&k)
                        } else {
                            txn.set(&k, &v)
                        }
                        Ok::<_, TxnError<()>>(())
                    })
                })
                .await
                .unwrap()
            }
        };
        let original = |seq| {
            let kv = kv.clone();
            async move {
                store::read(&*kv, move |txn| {
                    Box::pin(async move {
                        Ok::<_, TxnError<()>>(txn.get(&keys::audit(seq)).await?.unwrap())
                    })
                })
                .await
                .unwrap()
            }
        };
        // An edited reason.
        let orig = original(3).await;
        let mut rec: Record = serde_json::from_slice(&orig).unwrap();
        rec.entry.reason = "nothing to see".into();
        set(keys::audit(3), serde_json::to_vec(&rec).unwrap()).await;
        let v = verify(&*kv).await.unwrap();
        assert_eq!((v.intact, v.broken_at), (false, Some(3)), "{v:?}");
        // Re-hashed after the edit: the next record's `prev` no longer matches.
        rec.hash = hash(rec.seq, &rec.entry, &rec.prev);
        set(keys::audit(3), serde_json::to_vec(&rec).unwrap()).await;
        let v = verify(&*kv).await.unwrap();
        assert_eq!((v.intact, v.broken_at), (false, Some(4)), "{v:?}");
        set(keys::audit(3), orig).await;
        assert!(verify(&*kv).await.unwrap().intact);
        // A record removed from the middle, then from the end.
        let two = original(2).await;
        set(keys::audit(2), Vec::new()).await;
        assert_eq!(verify(&*kv).await.unwrap().broken_at, Some(2));
        set(keys::audit(2), two).await;
        set(keys::audit(5), Vec::new()).await;
        let v = verify(&*kv).await.unwrap();
        assert!(!v.intact, "{v:?}");
    }
}
