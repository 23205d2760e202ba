//! The offer lease's I/O: each step (create, accept, decline, expire, withdraw) is one store
//! transaction that reads the rows, lets [`super::lease`] decide with the `now` it is given,
//! and writes what changed. An accept assigns the order in that same transaction, so the
//! assignment, the lease's `accepted` state and the stored reply commit together or not at
//! all: a crash between commit and reply leaves a lease whose repeat answers the same. Each
//! step runs at most once per request (`store::transact_once`): a commit whose result was
//! lost and is retried returns what it did.

use super::keys;
use super::lease::{
    self, Accept, AcceptReply, Close, DriverRecord, Lease, LeaseConfig, OfferId, OrderFence,
    Refusal,
};
use crate::orders::WriteOp;
use crate::orders::repo::{self, RepoError};
use domain::{DeliveryId, DriverId, Order, OrderId, UnixMs};
use store::{Kv, LogId, RangeRequest, StoreError, Txn, TxnError};

#[derive(Debug, thiserror::Error)]
pub enum OfferError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("no offer of delivery {0}")]
    UnknownDelivery(DeliveryId),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

type TxnResult<T> = Result<T, TxnError<OfferError>>;

fn flatten<T>(r: Result<T, TxnError<OfferError>>) -> Result<T, OfferError> {
    r.map_err(|e| match e {
        TxnError::Store(s) => OfferError::Store(s),
        TxnError::Abort(e) => e,
    })
}

fn abort<T>(e: impl Into<OfferError>) -> TxnResult<T> {
    Err(TxnError::Abort(e.into()))
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("offer types serialize to JSON")
}

async fn get<T: serde::de::DeserializeOwned>(txn: &dyn Txn, key: &[u8]) -> TxnResult<Option<T>> {
    match txn.get(key).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b).map(Some).map_err(|e| {
            TxnError::Store(StoreError::Corrupt {
                key: format!("{key:?}"),
                reason: e.to_string(),
            })
        }),
    }
}

fn put_lease(txn: &dyn Txn, l: &Lease) {
    txn.set(&keys::lease(l.offer), &to_json(l));
    if l.state == lease::LeaseState::Open {
        txn.set(&keys::open(l.offer), &to_json(&l.offer));
    } else {
        txn.clear(&keys::open(l.offer));
    }
}

fn put_fence(txn: &dyn Txn, order: OrderId, f: &OrderFence) {
    txn.set(&keys::fence(order), &to_json(f));
}

/// Creates the lease of a new offer (one transaction). The fencing number is the order's
/// next.
#[allow(clippy::too_many_arguments)]
pub async fn create(
    kv: &dyn Kv,
    offer: OfferId,
    order: OrderId,
    delivery: DeliveryId,
    driver: DriverId,
    op: &WriteOp,
    cfg: LeaseConfig,
    reoffer: bool,
) -> Result<Lease, OfferError> {
    let now = op.now;
    flatten(
        store::transact_once(kv, &op.txn, move |txn| {
            Box::pin(async move {
                let mut fence: OrderFence =
                    get(txn, &keys::fence(order)).await?.unwrap_or_default();
                let l = match lease::create(
                    &mut fence,
                    offer,
                    vec![order],
                    delivery,
                    driver,
                    now,
                    &cfg,
                    reoffer,
                ) {
                    Ok(l) => l,
                    Err(r) => return abort(r),
                };
                txn.set(&keys::delivery(delivery), &to_json(&order));
                put_fence(txn, order, &fence);
                put_lease(txn, &l);
                Ok(l)
            })
        })
        .await,
    )
}

/// What an accept did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Accepted {
    pub reply: AcceptReply,
    /// The order as the assignment left it (on a replay: as it is now).
    pub order: Order,
    /// A repeat: the order was assigned by an earlier accept of this offer.
    pub replay: bool,
    /// The transport body stored by an earlier request, if any ([`keep_body`]).
    pub body: Option<String>,
}

/// The lease a driver's answer is about: the named offer, else the order's taken or latest.
async fn find(
    txn: &dyn Txn,
    delivery: DeliveryId,
    offer: Option<OfferId>,
) -> TxnResult<(OrderId, OrderFence, Lease)> {
    let Some(order) = get::<OrderId>(txn, &keys::delivery(delivery)).await? else {
        return abort(OfferError::UnknownDelivery(delivery));
    };
    let fence: OrderFence = get(txn, &keys::fence(order)).await?.unwrap_or_default();
    let Some(id) = offer.or(fence.taken).or(fence.latest_offer) else {
        return abort(OfferError::UnknownDelivery(delivery));
    };
    let Some(l) = get::<Lease>(txn, &keys::lease(id)).await? else {
        return abort(OfferError::UnknownDelivery(delivery));
    };
    if l.delivery != delivery {
        return abort(OfferError::UnknownDelivery(delivery));
    }
    Ok((order, fence, l))
}

/// An accept: assigns the order in the same transaction if the lease says so, or answers a
/// repeat with the stored reply.
#[allow(clippy::too_many_arguments)]
pub async fn accept(
    kv: &dyn Kv,
    log: LogId,
    driver: DriverId,
    delivery: DeliveryId,
    offer: Option<OfferId>,
    presented: Option<u64>,
    op: &WriteOp,
    cfg: LeaseConfig,
) -> Result<Accepted, OfferError> {
    let now = op.now;
    // At most once per request: a commit whose result was lost and retried returns what it
    // did, not a repeat (and the dispatch learns of the assignment either way).
    flatten(
        store::transact_once(kv, &op.txn, move |txn| {
            Box::pin(async move {
                let (order, mut fence, mut l) = find(txn, delivery, offer).await?;
                match lease::accept(&l, &fence, driver, presented, now) {
                    Err(r) => abort(r),
                    Ok(Accept::Replay(reply)) => {
                        let Some(o) = repo::load(txn, order).await.map_err(repo_err)? else {
                            return abort(RepoError::NotFound(order));
                        };
                        Ok(Accepted {
                            reply,
                            order: o,
                            replay: true,
                            body: l.body,
                        })
                    }
                    Ok(Accept::Assign) => {
                        // The order machine and the driver check decide as for any
                        // assignment: a driver already carrying an order is refused.
                        let (o, _) = repo::assign_in(txn, log, order, driver, delivery, now)
                            .await
                            .map_err(repo_err)?;
                        let reply = lease::accepted(&mut l, &mut fence, now);
                        let mut rec: DriverRecord =
                            get(txn, &keys::driver(driver)).await?.unwrap_or_default();
                        lease::record(&mut rec, &l, &cfg);
                        txn.set(&keys::driver(driver), &to_json(&rec));
                        put_fence(txn, order, &fence);
                        put_lease(txn, &l);
                        Ok(Accepted {
                            reply,
                            order: o,
                            replay: false,
                            body: None,
                        })
                    }
                }
            })
        })
        .await,
    )
}

fn repo_err(e: TxnError<RepoError>) -> TxnError<OfferError> {
    match e {
        TxnError::Store(s) => TxnError::Store(s),
        TxnError::Abort(r) => TxnError::Abort(OfferError::Repo(r)),
    }
}

/// A closed lease and whether the driver went offline with it (`missed_offers`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Closed {
    pub lease: Lease,
    pub offline: bool,
}

/// Ends lease `offer` as `how` (one transaction). `None`: it was closed already (accepted,
/// for one): nothing written.
pub async fn close(
    kv: &dyn Kv,
    offer: OfferId,
    how: Close,
    op: &WriteOp,
    cfg: LeaseConfig,
) -> Result<Option<Closed>, OfferError> {
    let now = op.now;
    flatten(
        store::transact_once(kv, &op.txn, move |txn| {
            Box::pin(async move {
                let Some(mut l) = get::<Lease>(txn, &keys::lease(offer)).await? else {
                    return Ok(None);
                };
                close_in(txn, &mut l, how, now, &cfg).await
            })
        })
        .await,
    )
}

async fn close_in(
    txn: &dyn Txn,
    l: &mut Lease,
    how: Close,
    now: UnixMs,
    cfg: &LeaseConfig,
) -> TxnResult<Option<Closed>> {
    let order = l.orders[0];
    let mut fence: OrderFence = get(txn, &keys::fence(order)).await?.unwrap_or_default();
    match lease::close(l, &mut fence, how, now) {
        Err(r) => abort(r),
        Ok(false) => Ok(None),
        Ok(true) => {
            let mut rec: DriverRecord =
                get(txn, &keys::driver(l.driver)).await?.unwrap_or_default();
            let offline = lease::record(&mut rec, l, cfg);
            txn.set(&keys::driver(l.driver), &to_json(&rec));
            put_fence(txn, order, &fence);
            put_lease(txn, l);
            Ok(Some(Closed {
                lease: l.clone(),
                offline,
            }))
        }
    }
}

/// A driver declines the open offer of `delivery` (one transaction).
pub async fn decline(
    kv: &dyn Kv,
    driver: DriverId,
    delivery: DeliveryId,
    offer: Option<OfferId>,
    op: &WriteOp,
    cfg: LeaseConfig,
) -> Result<Closed, OfferError> {
    let now = op.now;
    flatten(
        store::transact_once(kv, &op.txn, move |txn| {
            Box::pin(async move {
                let (_, _, mut l) = find(txn, delivery, offer).await?;
                if l.driver != driver || l.state != lease::LeaseState::Open {
                    return abort(OfferError::UnknownDelivery(delivery));
                }
                match close_in(txn, &mut l, Close::Declined, now, &cfg).await? {
                    Some(c) => Ok(c),
                    None => abort(OfferError::UnknownDelivery(delivery)),
                }
            })
        })
        .await,
    )
}

/// Keeps `body` as the reply of accepted lease `offer` unless one is kept already; returns
/// the kept one (so concurrent repeats all answer with the first).
pub async fn keep_body(kv: &dyn Kv, offer: OfferId, body: String) -> Result<String, OfferError> {
    flatten(
        store::transact(kv, move |txn| {
            let body = body.clone();
            Box::pin(async move {
                let Some(mut l) = get::<Lease>(txn, &keys::lease(offer)).await? else {
                    return Ok(body);
                };
                if let Some(kept) = l.body {
                    return Ok(kept);
                }
                l.body = Some(body.clone());
                txn.set(&keys::lease(offer), &to_json(&l));
                Ok(body)
            })
        })
        .await,
    )
}

/// The driver went online: clears an auto-offline (one transaction, written only if set).
pub async fn online(kv: &dyn Kv, driver: DriverId) -> Result<bool, OfferError> {
    flatten(
        store::transact(kv, move |txn| {
            Box::pin(async move {
                let mut rec: DriverRecord =
                    get(txn, &keys::driver(driver)).await?.unwrap_or_default();
                let was = lease::online(&mut rec);
                if was {
                    txn.set(&keys::driver(driver), &to_json(&rec));
                }
                Ok(was)
            })
        })
        .await,
    )
}

/// A driver's offer record.
pub async fn driver_record(kv: &dyn Kv, driver: DriverId) -> Result<DriverRecord, OfferError> {
    flatten(
        store::read(kv, move |txn| {
            Box::pin(async move { Ok(get(txn, &keys::driver(driver)).await?.unwrap_or_default()) })
        })
        .await,
    )
}

/// An order's fence (lockouts, for recovery and tests).
pub async fn fence(kv: &dyn Kv, order: OrderId) -> Result<OrderFence, OfferError> {
    flatten(
        store::read(kv, move |txn| {
            Box::pin(async move { Ok(get(txn, &keys::fence(order)).await?.unwrap_or_default()) })
        })
        .await,
    )
}

/// One lease.
pub async fn get_lease(kv: &dyn Kv, offer: OfferId) -> Result<Option<Lease>, OfferError> {
    flatten(
        store::read(kv, move |txn| {
            Box::pin(async move { get(txn, &keys::lease(offer)).await })
        })
        .await,
    )
}

/// Every open lease, and the highest offer id ever stored (offer ids resume above it).
pub async fn recovery_view(kv: &dyn Kv) -> Result<(Vec<Lease>, Option<OfferId>), OfferError> {
    flatten(
        store::read(kv, move |txn| {
            Box::pin(async move {
                let last = txn
                    .get_range(
                        RangeRequest::prefix(&keys::lease_prefix())
                            .reverse()
                            .limit(1),
                    )
                    .await?;
                let max = match last.first() {
                    Some(kv) => serde_json::from_slice::<Lease>(&kv.value)
                        .ok()
                        .map(|l| l.offer),
                    None => None,
                };
                let open = txn
                    .get_range(RangeRequest::prefix(&keys::open_prefix()))
                    .await?;
                let mut leases = Vec::with_capacity(open.len());
                for row in open {
                    let Ok(id) = serde_json::from_slice::<OfferId>(&row.value) else {
                        continue;
                    };
                    if let Some(l) = get::<Lease>(txn, &keys::lease(id)).await? {
                        leases.push(l);
                    }
                }
                Ok((leases, max))
            })
        })
        .await,
    )
}
