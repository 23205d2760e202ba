//! Flags in the cell's store: the record, its keys, writing one inside a transaction, the
//! paged listing and the review.
//!
//! | key                      | value       | purpose                                        |
//! |--------------------------|-------------|------------------------------------------------|
//! | `("fl", created_ms, src)`| `Flag` JSON | the flag; newest first by reverse range        |
//! | `("fdup", rule, subject)`| ms          | last flag of a once-per-window subject         |
//! | `("fopen",)`             | u64 BE      | open flags, for the gauge                      |
//!
//! `src` names what raised the flag (an event's log position and rule, a signal), so a
//! replayed event writes the same key again and nothing twice. The flag id the API shows is
//! `<created_ms>-<src>`.

use super::rules::RuleKind;
use domain::{OrderId, UnixMs};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::keys::pack;
use store::{Kv, RangeRequest, Txn, TxnError};
use utoipa::ToSchema;

/// Where a flag stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagState {
    Open,
    /// Reviewed: not fraud.
    Cleared,
    /// Reviewed: fraud.
    Confirmed,
}

impl FlagState {
    pub fn parse(s: &str) -> Option<FlagState> {
        match s {
            "open" => Some(FlagState::Open),
            "cleared" => Some(FlagState::Cleared),
            "confirmed" => Some(FlagState::Confirmed),
            _ => None,
        }
    }
}

/// A reviewer's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Clear,
    Confirm,
}

/// Who reviewed a flag, when, and what they decided (stored with the flag: the audit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Review {
    /// `admin` or `support`.
    pub role: String,
    /// The reviewer's name from their token, when it carries one.
    pub name: Option<String>,
    pub decision: Decision,
    pub note: String,
    /// Unix ms.
    pub at: i64,
}

/// One flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Flag {
    /// `<created_ms>-<source>`.
    pub id: String,
    pub rule: RuleKind,
    /// What is suspected, e.g. `customer:42`, `driver:7`, `restaurant:9/item:3`.
    pub subject: String,
    /// The order that raised the flag, when one did.
    pub order_id: Option<String>,
    /// The rule's numbers: what was measured and the limit it crossed.
    #[schema(value_type = Object)]
    pub evidence: Value,
    /// Unix ms.
    pub created_at: i64,
    pub state: FlagState,
    pub review: Option<Review>,
}

impl Flag {
    pub fn new(
        src: String,
        rule: RuleKind,
        subject: String,
        order: Option<OrderId>,
        evidence: Value,
        at: UnixMs,
    ) -> Flag {
        Flag {
            id: format!("{}-{src}", at.0),
            rule,
            subject,
            order_id: order.map(|o| o.to_string()),
            evidence,
            created_at: at.0,
            state: FlagState::Open,
            review: None,
        }
    }
}

/// The pattern of a flag id, for the API's documents.
pub const ID_PATTERN: &str = "^[0-9]{1,18}-[a-z0-9._]{1,128}$";

/// Whether `id` has the shape of a flag id.
pub fn valid_id(id: &str) -> bool {
    key_of(id).is_some()
}

/// The store key of flag `id`, `None` for a malformed id.
fn key_of(id: &str) -> Option<Vec<u8>> {
    let (ms, src) = id.split_once('-')?;
    let ms_ok = (1..=18).contains(&ms.len()) && ms.bytes().all(|b| b.is_ascii_digit());
    let src_ok = (1..=128).contains(&src.len())
        && src
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if !(ms_ok && src_ok) {
        return None;
    }
    let ms: i64 = ms.parse().ok()?;
    Some(pack(&("fl", ms, src)))
}

fn prefix() -> Vec<u8> {
    pack(&("fl",))
}

pub(super) fn open_key() -> Vec<u8> {
    pack(&("fopen",))
}

/// A subject flagged at most once per window: the key of its last flag time.
pub fn dup_key(rule: RuleKind, subject: &str) -> Vec<u8> {
    pack(&("fdup", rule.as_str(), subject))
}

type TxnResult<T> = Result<T, TxnError<FlagError>>;

/// Why a flag operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FlagError {
    #[error("no flag {0}")]
    NotFound(String),
    #[error("flag {0} was already reviewed")]
    AlreadyReviewed(String),
    #[error("stored flag is unreadable: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

fn flatten<T>(r: Result<T, TxnError<FlagError>>) -> Result<T, FlagError> {
    r.map_err(|e| match e {
        TxnError::Store(e) => FlagError::Store(e),
        TxnError::Abort(e) => e,
    })
}

fn corrupt(e: impl std::fmt::Display) -> TxnError<FlagError> {
    TxnError::Abort(FlagError::Corrupt(e.to_string()))
}

async fn add_open(txn: &dyn Txn, delta: i64) -> TxnResult<u64> {
    let n = txn
        .get(&open_key())
        .await?
        .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    let n = n.saturating_add_signed(delta);
    txn.set(&open_key(), &n.to_be_bytes());
    Ok(n)
}

/// Writes `flag` unless its key holds one already (a replay). `true` when written.
pub async fn insert<E>(txn: &dyn Txn, flag: &Flag) -> Result<bool, TxnError<E>> {
    let key = key_of(&flag.id).expect("flag ids are built by Flag::new");
    if txn.get(&key).await?.is_some() {
        return Ok(false);
    }
    let bytes = serde_json::to_vec(flag).expect("a flag serializes");
    txn.set(&key, &bytes);
    let n = txn
        .get(&open_key())
        .await?
        .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0);
    txn.set(&open_key(), &(n + 1).to_be_bytes());
    Ok(true)
}

/// Open flags now.
pub async fn open_count(kv: &dyn Kv) -> Result<u64, FlagError> {
    flatten(
        store::read(kv, |txn| {
            Box::pin(async move {
                Ok(txn
                    .get(&open_key())
                    .await?
                    .and_then(|b| b.try_into().ok().map(u64::from_be_bytes))
                    .unwrap_or(0))
            })
        })
        .await,
    )
}

/// One flag by id.
pub async fn get(kv: &dyn Kv, id: &str) -> Result<Option<Flag>, FlagError> {
    let Some(key) = key_of(id) else {
        return Ok(None);
    };
    flatten(
        store::read(kv, move |txn| {
            let key = key.clone();
            Box::pin(async move {
                match txn.get(&key).await? {
                    Some(b) => Ok(Some(serde_json::from_slice(&b).map_err(corrupt)?)),
                    None => Ok(None),
                }
            })
        })
        .await,
    )
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<FlagState>,
    pub rule: Option<RuleKind>,
}

/// One page of flags, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    pub flags: Vec<Flag>,
    /// Pass as `after` for the next page; `None` at the end.
    pub next: Option<String>,
}

/// Flags read per page at most, matching or not: a filter that matches little ends a page
/// early with a cursor rather than scanning the whole history in one request.
pub const SCAN_PER_PAGE: usize = 2_000;

/// Flags matching `filter`, newest first, after the flag `after` (a cursor from the last page).
pub async fn list(
    kv: &dyn Kv,
    filter: Filter,
    after: Option<&str>,
    limit: usize,
) -> Result<Page, FlagError> {
    let end = match after {
        Some(id) => key_of(id).ok_or_else(|| FlagError::NotFound(id.to_string()))?,
        None => store::keys::prefix_end(&prefix()),
    };
    let rows = flatten(
        store::read(kv, move |txn| {
            let end = end.clone();
            Box::pin(async move {
                let req = RangeRequest {
                    begin: prefix(),
                    end,
                    limit: SCAN_PER_PAGE,
                    reverse: true,
                };
                Ok(txn.get_range(req).await?)
            })
        })
        .await,
    )?;
    let scanned_all = rows.len() < SCAN_PER_PAGE;
    let mut flags = Vec::new();
    let mut last_id = None;
    for row in rows {
        let f: Flag =
            serde_json::from_slice(&row.value).map_err(|e| FlagError::Corrupt(e.to_string()))?;
        last_id = Some(f.id.clone());
        if filter.state.is_some_and(|s| s != f.state) || filter.rule.is_some_and(|r| r != f.rule) {
            continue;
        }
        if flags.len() == limit {
            // One more match exists: the page is full and another follows.
            let next = flags.last().map(|f: &Flag| f.id.clone());
            return Ok(Page { flags, next });
        }
        flags.push(f);
    }
    let next = if scanned_all { None } else { last_id };
    Ok(Page { flags, next })
}

/// Records a review on an open flag; returns the flag and the open count after it.
pub async fn review(kv: &dyn Kv, id: &str, review: Review) -> Result<(Flag, u64), FlagError> {
    let key = key_of(id).ok_or_else(|| FlagError::NotFound(id.to_string()))?;
    let id = id.to_string();
    flatten(
        store::transact(kv, move |txn| {
            let (key, id, review) = (key.clone(), id.clone(), review.clone());
            Box::pin(async move {
                let Some(b) = txn.get(&key).await? else {
                    return Err(TxnError::Abort(FlagError::NotFound(id)));
                };
                let mut f: Flag = serde_json::from_slice(&b).map_err(corrupt)?;
                if f.state != FlagState::Open {
                    return Err(TxnError::Abort(FlagError::AlreadyReviewed(id)));
                }
                f.state = match review.decision {
                    Decision::Clear => FlagState::Cleared,
                    Decision::Confirm => FlagState::Confirmed,
                };
                f.review = Some(review);
                txn.set(&key, &serde_json::to_vec(&f).expect("a flag serializes"));
                let open = add_open(txn, -1).await?;
                Ok((f, open))
            })
        })
        .await,
    )
}
