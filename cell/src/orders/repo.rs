//! Orders in the store: every write is one transaction that updates the record, its history
//! row, its index entries and the cell's event log together. No gateway calls here: the
//! order flows (`place`, `transition`) call the payment gateway before they ask the
//! repository to write.
//!
//! Writes that a rerun would not repeat identically (creation, transitions, assignment) take
//! a [`WriteOp`] and run through `store::transact_once`: when a commit is applied but reported
//! unknown and the store layer retries it, the retry returns the first outcome instead of
//! seeing its own effect (a spurious `Changed`, 409 or `DriverBusy`). The idempotency
//! reservation is naturally idempotent (a rerun finds its own binding, the same answer).

use super::keys;
use super::once::WriteOp;
use domain::machine::decide;
use domain::{
    Actor, Command, CustomerId, DriverId, EventKind, HistoryEntry, Order, OrderEvent, OrderId,
    OrderStatus, RestaurantId, Transition, TransitionError, UnixMs,
};
use std::sync::Arc;
use store::{Kv, LogId, RangeRequest, StoreError, Txn, TxnError};

/// Why a repository call failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("order {0} not found")]
    NotFound(OrderId),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Another transition moved the order between the decision and the write.
    #[error("order {id} changed concurrently (now {now})")]
    Changed { id: OrderId, now: OrderStatus },
    /// The driver already carries another active order.
    #[error("driver {driver} is already on order {order}")]
    DriverBusy { driver: DriverId, order: OrderId },
    /// The idempotency key was used before for a different request.
    #[error("idempotency key was already used for a different request")]
    IdempotencyMismatch,
    /// A freshly issued order id is already taken by another order (an id was reissued):
    /// refused, never answered as a replay of that order.
    #[error("order id {0} is already taken by another order")]
    IdTaken(OrderId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TxnError<RepoError>> for RepoError {
    fn from(e: TxnError<RepoError>) -> Self {
        match e {
            TxnError::Store(s) => RepoError::Store(s),
            TxnError::Abort(r) => r,
        }
    }
}

/// Result of an idempotent create (serializable: recorded as the write's outcome).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Created {
    /// Written now.
    New(Order),
    /// The idempotency key was used before: the existing order, nothing written.
    Existing(Order),
}

pub(crate) type TxnResult<T> = Result<T, TxnError<RepoError>>;

fn corrupt(key: &[u8], e: impl std::fmt::Display) -> TxnError<RepoError> {
    TxnError::Store(StoreError::Corrupt {
        key: format!("{key:?}"),
        reason: e.to_string(),
    })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    // Our own types always serialize: a failure here is a programming error.
    serde_json::to_vec(v).expect("order types serialize to JSON")
}

pub(crate) async fn load(txn: &dyn Txn, id: OrderId) -> TxnResult<Option<Order>> {
    let key = keys::order(id);
    match txn.get(&key).await? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| corrupt(&key, e)),
    }
}

/// What an idempotency key maps to: the order id reserved for it and a fingerprint of the
/// request that reserved it (a reused key with a different request is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct IdemRecord {
    order_id: OrderId,
    fingerprint: u64,
}

async fn load_idem(
    txn: &dyn Txn,
    customer: CustomerId,
    key: &str,
) -> TxnResult<Option<IdemRecord>> {
    let k = keys::idempotency(customer, key);
    match txn.get(&k).await? {
        None => Ok(None),
        Some(v) => serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| corrupt(&k, e)),
    }
}

/// The outcome of [`reserve`].
#[derive(Debug, Clone)]
pub struct Reservation {
    /// The order id to use for this request (fresh, or the one reserved by an earlier try).
    pub order_id: OrderId,
    /// Set when an earlier try already wrote the order: return it, do nothing else.
    pub existing: Option<Order>,
}

/// The order placed earlier under `key`, if it was written; `IdempotencyMismatch` if the
/// key was used for a different request.
pub async fn find_placed(
    kv: &dyn Kv,
    customer: CustomerId,
    key: String,
    fingerprint: u64,
) -> Result<Option<Order>, RepoError> {
    let key = Arc::new(key);
    Ok(store::read(kv, move |txn| {
        let key = key.clone();
        Box::pin(async move {
            match load_idem(txn, customer, &key).await? {
                None => Ok(None),
                Some(rec) if rec.fingerprint != fingerprint => {
                    Err(TxnError::Abort(RepoError::IdempotencyMismatch))
                }
                Some(rec) => load(txn, rec.order_id).await,
            }
        })
    })
    .await?)
}

/// Step one of placing an order: binds the client's idempotency key to an order id, durably,
/// before the payment is authorized. A retry (after a timeout, a crash, a lost response)
/// finds the same order id, so the payment gateway sees the same idempotency key and holds
/// the funds once.
pub async fn reserve(
    kv: &dyn Kv,
    customer: CustomerId,
    key: String,
    fresh: OrderId,
    fingerprint: u64,
) -> Result<Reservation, RepoError> {
    let key = Arc::new(key);
    Ok(store::transact(kv, move |txn| {
        let key = key.clone();
        Box::pin(async move {
            match load_idem(txn, customer, &key).await? {
                Some(rec) if rec.fingerprint != fingerprint => {
                    Err(TxnError::Abort(RepoError::IdempotencyMismatch))
                }
                Some(rec) => {
                    let existing = load(txn, rec.order_id).await?;
                    if existing.as_ref().is_some_and(|o| o.customer_id != customer) {
                        return Err(TxnError::Abort(RepoError::IdTaken(rec.order_id)));
                    }
                    Ok(Reservation {
                        order_id: rec.order_id,
                        existing,
                    })
                }
                None => {
                    // A fresh id naming a stored order was issued twice: never bind it.
                    if load(txn, fresh).await?.is_some() {
                        return Err(TxnError::Abort(RepoError::IdTaken(fresh)));
                    }
                    let rec = IdemRecord {
                        order_id: fresh,
                        fingerprint,
                    };
                    txn.set(&keys::idempotency(customer, &key), &to_json(&rec));
                    Ok(Reservation {
                        order_id: fresh,
                        existing: None,
                    })
                }
            }
        })
    })
    .await?)
}

pub(crate) async fn next_history_seq(txn: &dyn Txn, id: OrderId) -> TxnResult<u32> {
    let last = txn
        .get_range(
            RangeRequest::prefix(&keys::history_prefix(id))
                .reverse()
                .limit(1),
        )
        .await?;
    match last.first() {
        None => Ok(0),
        Some(kv) => {
            let (_, _, seq): (String, u64, u32) =
                store::keys::unpack(&kv.key).map_err(|e| corrupt(&kv.key, e))?;
            Ok(seq + 1)
        }
    }
}

fn write_indexes(txn: &dyn Txn, o: &Order) {
    txn.set(&keys::by_status(o.status, o.id), b"");
    txn.set(&keys::by_restaurant(o.restaurant_id, o.status, o.id), b"");
    if let Some(d) = o.driver_id {
        txn.set(&keys::by_driver(d, o.status, o.id), b"");
    }
}

fn clear_indexes(txn: &dyn Txn, o: &Order) {
    txn.clear(&keys::by_status(o.status, o.id));
    txn.clear(&keys::by_restaurant(o.restaurant_id, o.status, o.id));
    if let Some(d) = o.driver_id {
        txn.clear(&keys::by_driver(d, o.status, o.id));
    }
}

pub(crate) fn record_step(
    txn: &dyn Txn,
    log: LogId,
    o: &Order,
    seq: u32,
    event: EventKind,
    by: Actor,
    at: UnixMs,
) {
    let entry = HistoryEntry {
        status: o.status,
        event,
        at,
        by,
        driver_id: o.driver_id,
    };
    txn.set(&keys::history(o.id, seq), &to_json(&entry));
    txn.append_event(log, &to_json(&OrderEvent::for_order(o, event, at)));
}

/// Step two of placing an order: writes the pending order (record, indexes, history row,
/// `order_created` event) in one transaction. If an earlier try already wrote it, returns
/// that order and writes nothing; a retry of this very write (`op`) returns `New`.
pub async fn create(
    kv: &dyn Kv,
    log: LogId,
    order: Order,
    op: &WriteOp,
) -> Result<Created, RepoError> {
    create_with(kv, log, order, None, op).await
}

/// [`create`], and for a `payment_pending` order its authorization queue entry (`queued`, the
/// request to send again) in the same transaction; its event is `order_payment_pending`.
pub async fn create_with(
    kv: &dyn Kv,
    log: LogId,
    order: Order,
    queued: Option<payments::AuthorizeRequest>,
    op: &WriteOp,
) -> Result<Created, RepoError> {
    let order = Arc::new(order);
    let queued = Arc::new(queued);
    let r = store::transact_once(kv, &op.txn, move |txn| {
        let order = order.clone();
        let queued = queued.clone();
        Box::pin(async move {
            if let Some(existing) = load(txn, order.id).await? {
                // Only the same customer's earlier try is a replay; another customer's order
                // under this id means the id was issued twice.
                if existing.customer_id != order.customer_id {
                    return Err(TxnError::Abort(RepoError::IdTaken(order.id)));
                }
                return Ok(Created::Existing(existing));
            }
            txn.set(&keys::order(order.id), &to_json(&*order));
            txn.set(
                &keys::by_customer(order.customer_id, order.created_at.0, order.id),
                b"",
            );
            write_indexes(txn, &order);
            let event = if let Some(req) = &*queued {
                txn.set(&keys::payment_queue(order.id), &to_json(req));
                EventKind::OrderPaymentPending
            } else {
                EventKind::OrderCreated
            };
            let by = Actor::Customer(order.customer_id);
            record_step(txn, log, &order, 0, event, by, order.created_at);
            Ok(Created::New((*order).clone()))
        })
    })
    .await?;
    Ok(r)
}

/// Decides `cmd` on the current order and writes the transition, history row, index changes
/// and event in one transaction. `expect` guards a decision made earlier (e.g. before a
/// payment call): if the order's status moved since, nothing is written. A retry of the
/// same `op` returns the transition it applied.
pub async fn transition(
    kv: &dyn Kv,
    log: LogId,
    id: OrderId,
    cmd: Command,
    actor: Actor,
    expect: Option<OrderStatus>,
    op: &WriteOp,
) -> Result<(Order, Transition), RepoError> {
    let cmd = Arc::new(cmd);
    let now = op.now;
    Ok(store::transact_once(kv, &op.txn, move |txn| {
        let cmd = cmd.clone();
        Box::pin(async move { transition_in(txn, log, id, &cmd, actor, expect, now).await })
    })
    .await?)
}

/// Assigns `driver` to the order, in one transaction that also checks the driver has no
/// other active order: an order never gets two drivers (the state machine refuses a second
/// assignment) and a driver never carries two orders (this check), whatever races. A retry
/// of the same `op` returns the assignment it made, not `DriverBusy` on its own order.
pub async fn assign_driver(
    kv: &dyn Kv,
    log: LogId,
    id: OrderId,
    driver: DriverId,
    delivery: domain::DeliveryId,
    op: &WriteOp,
) -> Result<(Order, Transition), RepoError> {
    let now = op.now;
    Ok(store::transact_once(kv, &op.txn, move |txn| {
        Box::pin(async move { assign_in(txn, log, id, driver, delivery, now).await })
    })
    .await?)
}

/// The body of [`assign_driver`], inside a transaction.
pub(crate) async fn assign_in(
    txn: &dyn Txn,
    log: LogId,
    id: OrderId,
    driver: DriverId,
    delivery: domain::DeliveryId,
    now: UnixMs,
) -> TxnResult<(Order, Transition)> {
    let busy = active_for_driver_in(txn, driver).await?;
    if let Some(other) = busy.first() {
        return Err(TxnError::Abort(RepoError::DriverBusy {
            driver,
            order: other.id,
        }));
    }
    let cmd = Command::AssignDriver { driver, delivery };
    transition_in(txn, log, id, &cmd, Actor::System, None, now).await
}

pub(crate) async fn transition_in(
    txn: &dyn Txn,
    log: LogId,
    id: OrderId,
    cmd: &Command,
    actor: Actor,
    expect: Option<OrderStatus>,
    now: UnixMs,
) -> TxnResult<(Order, Transition)> {
    let Some(mut order) = load(txn, id).await? else {
        return Err(TxnError::Abort(RepoError::NotFound(id)));
    };
    if let Some(expected) = expect
        && order.status != expected
    {
        return Err(TxnError::Abort(RepoError::Changed {
            id,
            now: order.status,
        }));
    }
    let t = decide(&order, cmd, &actor).map_err(|e| TxnError::Abort(e.into()))?;
    // Leaving `payment_pending` (authorized, or cancelled by anyone) leaves the queue too.
    if order.status == OrderStatus::PaymentPending {
        txn.clear(&keys::payment_queue(id));
    }
    let seq = next_history_seq(txn, id).await?;
    clear_indexes(txn, &order);
    t.apply(&mut order, now);
    write_indexes(txn, &order);
    txn.set(&keys::order(id), &to_json(&order));
    record_step(txn, log, &order, seq, t.event, actor, now);
    Ok((order, t))
}

/// Orders in `status` across the cell, oldest id first: at most `limit` with ids above
/// `after` (a page of a recovery scan: each page is its own short read transaction).
pub async fn list_by_status(
    kv: &dyn Kv,
    status: OrderStatus,
    after: Option<OrderId>,
    limit: usize,
) -> Result<Vec<Order>, RepoError> {
    Ok(store::read(kv, move |txn| {
        Box::pin(async move {
            let mut range = RangeRequest::prefix(&keys::by_status_prefix(status)).limit(limit);
            if let Some(a) = after {
                range.begin = store::paging::after(&keys::by_status(status, a));
            }
            let rows = txn.get_range(range).await?;
            let ids = rows
                .iter()
                .filter_map(|kv| keys::trailing_order_id(&kv.key))
                .collect();
            load_ids(txn, ids).await
        })
    })
    .await?)
}

/// Every order in `status`, read in pages of `page` orders (recovery of matching and
/// tracking at startup uses [`RECOVERY_PAGE`]), handed to `f` one by one.
pub async fn for_each_in_status(
    kv: &dyn Kv,
    status: OrderStatus,
    page_size: usize,
    mut f: impl FnMut(Order),
) -> Result<(), RepoError> {
    let page_size = page_size.max(1);
    let mut after = None;
    loop {
        let page = list_by_status(kv, status, after, page_size).await?;
        let full = page.len() == page_size;
        after = page.last().map(|o| o.id);
        page.into_iter().for_each(&mut f);
        if !full {
            return Ok(());
        }
    }
}

/// Orders per recovery page: a few hundred KB of order records, one short transaction.
pub const RECOVERY_PAGE: usize = 500;

/// Orders not yet delivered or cancelled (keys only, in pages of their own transactions:
/// what the router's drain waits on, cheap enough for a health check).
pub async fn count_active(kv: &dyn Kv) -> Result<u64, RepoError> {
    let mut n = 0u64;
    for s in OrderStatus::ALL.into_iter().filter(|s| s.is_active()) {
        let mut pages =
            store::Pages::prefix(&keys::by_status_prefix(s), store::PageLimits::DEFAULT);
        while let Some(page) = pages.next(kv).await? {
            n += page.len() as u64;
        }
    }
    Ok(n)
}

/// Reads an order (snapshot).
pub async fn get(kv: &dyn Kv, id: OrderId) -> Result<Option<Order>, RepoError> {
    Ok(store::read(kv, move |txn| Box::pin(async move { load(txn, id).await })).await?)
}

/// Reads an order with its status history, oldest first.
pub async fn get_with_history(
    kv: &dyn Kv,
    id: OrderId,
) -> Result<Option<(Order, Vec<HistoryEntry>)>, RepoError> {
    Ok(store::read(kv, move |txn| {
        Box::pin(async move {
            let Some(order) = load(txn, id).await? else {
                return Ok(None);
            };
            let rows = txn
                .get_range(RangeRequest::prefix(&keys::history_prefix(id)))
                .await?;
            let mut history = Vec::with_capacity(rows.len());
            for row in rows {
                history.push(serde_json::from_slice(&row.value).map_err(|e| corrupt(&row.key, e))?);
            }
            Ok(Some((order, history)))
        })
    })
    .await?)
}

async fn load_ids(txn: &dyn Txn, ids: Vec<OrderId>) -> TxnResult<Vec<Order>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        match load(txn, id).await? {
            Some(o) => out.push(o),
            None => return Err(corrupt(&keys::order(id), "index points at a missing order")),
        }
    }
    Ok(out)
}

/// A customer's orders, newest first: at most `limit` created strictly before `before`
/// (a cursor: the `created_at` of the last order of the previous page).
pub async fn list_for_customer(
    kv: &dyn Kv,
    customer: CustomerId,
    before: Option<(UnixMs, OrderId)>,
    limit: usize,
) -> Result<Vec<Order>, RepoError> {
    Ok(store::read(kv, move |txn| {
        Box::pin(async move {
            let prefix = keys::by_customer_prefix(customer);
            let mut range = RangeRequest::prefix(&prefix).reverse().limit(limit);
            if let Some((at, id)) = before {
                range.end = keys::by_customer(customer, at.0, id);
            }
            let rows = txn.get_range(range).await?;
            let ids = rows
                .iter()
                .filter_map(|kv| keys::trailing_order_id(&kv.key))
                .collect();
            load_ids(txn, ids).await
        })
    })
    .await?)
}

/// A restaurant's orders in the given statuses, oldest first within each status.
pub async fn list_for_restaurant(
    kv: &dyn Kv,
    restaurant: RestaurantId,
    statuses: Vec<OrderStatus>,
    limit: usize,
) -> Result<Vec<Order>, RepoError> {
    let statuses = Arc::new(statuses);
    Ok(store::read(kv, move |txn| {
        let statuses = statuses.clone();
        Box::pin(async move {
            let mut ids = Vec::new();
            for s in statuses.iter() {
                let prefix = keys::by_restaurant_status_prefix(restaurant, *s);
                let rows = txn
                    .get_range(RangeRequest::prefix(&prefix).limit(limit))
                    .await?;
                ids.extend(
                    rows.iter()
                        .filter_map(|kv| keys::trailing_order_id(&kv.key)),
                );
            }
            ids.sort();
            ids.truncate(limit);
            load_ids(txn, ids).await
        })
    })
    .await?)
}

/// A driver's orders in active statuses (at most one by the matching invariant).
pub async fn active_for_driver(kv: &dyn Kv, driver: DriverId) -> Result<Vec<Order>, RepoError> {
    Ok(store::read(kv, move |txn| {
        Box::pin(async move { active_for_driver_in(txn, driver).await })
    })
    .await?)
}

pub(crate) async fn active_for_driver_in(txn: &dyn Txn, driver: DriverId) -> TxnResult<Vec<Order>> {
    let mut ids = Vec::new();
    for s in OrderStatus::ALL.into_iter().filter(|s| s.is_active()) {
        let rows = txn
            .get_range(RangeRequest::prefix(&keys::by_driver_status_prefix(
                driver, s,
            )))
            .await?;
        ids.extend(
            rows.iter()
                .filter_map(|kv| keys::trailing_order_id(&kv.key)),
        );
    }
    load_ids(txn, ids).await
}
