//! A lease with fencing: at most one process of a cell writes, and a process that lost the
//! lease cannot write any more, even if it does not know yet that it lost it.
//!
//! # The record
//! A [`LeaseRecord`] is the holder's [`Incarnation`] (random per process start), a fence
//! number and the expiry in ms. The fence grows by one at each change of holder and never goes
//! back (a release keeps the record and only expires it), so a fence names one tenure for
//! good. Every function takes `now_ms`: only the outermost layer reads the clock.
//!
//! It is kept in two keys: the key the caller gives (a cell uses
//! `Subspace::cell(id).pack(&("lease",))`) holds the tenure (holder, fence) and is written only
//! when the holder changes; that key followed by the tuple `("expires",)` holds the expiry and
//! is written by every renewal. Writers read only the tenure key, so on FoundationDB a renewal
//! never makes in-flight writes conflict; only a takeover does, which is the point.
//!
//! # Why expiry alone is not enough, and what fencing adds
//! A holder can stall (a GC pause, a frozen VM, a partition) past its expiry without knowing,
//! while a standby takes over; when it wakes it would still write. This is Kleppmann's fencing
//! token ("How to do distributed locking", 2016), checked by the resource itself: [`FencedKv`]
//! makes every write transaction first read the tenure key in the same transaction and fail
//! with [`StoreError::Fenced`], committing nothing, unless the stored holder and fence are
//! still ours. Because the check is a read inside the writing transaction, it is serialized
//! with the takeover (which writes that key):
//! - on FoundationDB (and the model backend) the read puts the tenure key in the transaction's
//!   read-conflict range, so if a takeover commits between our read and our commit, our commit
//!   conflicts, is retried, and the retry reads the new fence and fails `Fenced`;
//! - on redb transactions run one at a time on one writer, so each sees the lease as of its
//!   own turn.
//!
//! Either way no write of an old holder commits after a takeover committed. Expiry is only
//! about liveness: a holder past its expiry that nobody replaced still writes safely, because
//! nobody else can write until they bumped the fence. Clocks of different machines may
//! disagree; that only moves the moment of takeover, never lets two holders write.
//!
//! # A restart on the embedded backend
//! Only one process can open a redb data directory, so there a lease held by an incarnation
//! that no live [`Lease`] of this process has was left by a dead process (a crash, a kill):
//! [`Lease::try_acquire`] takes it over at once (with a higher fence) instead of waiting for
//! its expiry, so a restarted cell serves as quickly as it did before leases. Two instances in
//! one process (tests) still see each other and wait.
//!
//! Reads and event reads pass through unfenced: a fenced-out process may serve stale reads
//! for the moment until it stops, which the cell accepts (it stops serving on losing the
//! lease).

use crate::{BoxFut, ErasedResult, ErasedTxnFn, Kv, Result, StoreError, Txn, TxnError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// One start of one process: a random 128-bit id, so a restarted process (same host, same
/// cell id) is a different holder from the one it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Incarnation(pub u128);

impl Incarnation {
    /// A fresh random incarnation.
    pub fn random() -> Self {
        Self(rand::random())
    }
}

impl std::fmt::Display for Incarnation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The lease as stored (both keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRecord {
    pub holder: Incarnation,
    /// +1 at each change of holder; writes check it.
    pub fence: u64,
    /// The holder's lease ends at this time (ms since the epoch) unless renewed; 0 after a
    /// release.
    pub expires_ms: u64,
}

impl LeaseRecord {
    fn expired(&self, now_ms: u64) -> bool {
        self.expires_ms <= now_ms
    }
}

/// What the tenure key holds: who holds the lease, under which fence. 24 bytes, big-endian:
/// holder (16), fence (8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenure {
    pub holder: Incarnation,
    pub fence: u64,
}

impl Tenure {
    const LEN: usize = 24;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut b = [0; Self::LEN];
        b[..16].copy_from_slice(&self.holder.0.to_be_bytes());
        b[16..].copy_from_slice(&self.fence.to_be_bytes());
        b
    }

    pub fn decode(key: &[u8], b: &[u8]) -> Result<Self> {
        let b: &[u8; Self::LEN] = b.try_into().map_err(|_| StoreError::Corrupt {
            key: format!("{key:?}"),
            reason: format!("a lease tenure is {} bytes, got {}", Self::LEN, b.len()),
        })?;
        let (holder, fence) = b.split_at(16);
        Ok(Self {
            holder: Incarnation(u128::from_be_bytes(holder.try_into().expect("16 bytes"))),
            fence: u64::from_be_bytes(fence.try_into().expect("8 bytes")),
        })
    }
}

/// The two keys of one lease.
#[derive(Clone)]
struct Keys {
    tenure: Arc<[u8]>,
    expiry: Arc<[u8]>,
}

impl Keys {
    fn new(tenure: Vec<u8>) -> Self {
        // A packed tuple followed by a packed tuple is the packed concatenation, so the
        // expiry key decodes as `(..., "lease", "expires")` and sorts right after the tenure.
        let mut expiry = tenure.clone();
        expiry.extend_from_slice(&crate::keys::pack(&("expires",)));
        Self {
            tenure: tenure.into(),
            expiry: expiry.into(),
        }
    }
}

/// The outcome of [`Lease::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// We hold the lease with this fence until `expires_ms` (unless renewed).
    Acquired { fence: u64, expires_ms: u64 },
    /// Another live process holds it until `until_ms`.
    Held { holder: Incarnation, until_ms: u64 },
}

/// One process's view of one lease: its incarnation and the fence it holds (0: none).
/// Clones share that state, and so do the [`FencedKv`]s made from it.
#[derive(Clone)]
pub struct Lease {
    kv: Arc<dyn Kv>,
    keys: Keys,
    me: Incarnation,
    /// The fence we hold, 0 when we hold none (not yet acquired, released, or lost).
    held: Arc<AtomicU64>,
    /// Keeps `me` in this process's live incarnations while any clone lives.
    _alive: Arc<Alive>,
}

/// Incarnations with a live [`Lease`] in this process, counted (tests reuse fixed ones).
static ALIVE: Mutex<Option<HashMap<u128, usize>>> = Mutex::new(None);

fn alive() -> std::sync::MutexGuard<'static, Option<HashMap<u128, usize>>> {
    ALIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn alive_here(i: Incarnation) -> bool {
    alive().as_ref().is_some_and(|m| m.contains_key(&i.0))
}

/// One registration in [`ALIVE`], removed on drop.
struct Alive(Incarnation);

impl Alive {
    fn register(i: Incarnation) -> Self {
        *alive()
            .get_or_insert_with(HashMap::new)
            .entry(i.0)
            .or_default() += 1;
        Self(i)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        if let Some(m) = alive().as_mut()
            && let Some(n) = m.get_mut(&self.0.0)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.0.0);
            }
        }
    }
}

type LeaseErr = TxnError<std::convert::Infallible>;

impl Lease {
    /// A lease at `key` (and the expiry key after it) in `kv` for the process `me`. Holds
    /// nothing until acquired.
    pub fn new(kv: Arc<dyn Kv>, key: Vec<u8>, me: Incarnation) -> Self {
        Self {
            kv,
            keys: Keys::new(key),
            me,
            held: Arc::new(AtomicU64::new(0)),
            _alive: Arc::new(Alive::register(me)),
        }
    }

    pub fn incarnation(&self) -> Incarnation {
        self.me
    }

    /// The fence we hold, if we (still, as far as we know) hold the lease.
    pub fn fence(&self) -> Option<u64> {
        Some(self.held.load(Ordering::Acquire)).filter(|&f| f != 0)
    }

    /// The stored record, if any.
    pub async fn current(&self) -> Result<Option<LeaseRecord>> {
        let keys = self.keys.clone();
        crate::read(&*self.kv, move |txn| {
            let keys = keys.clone();
            Box::pin(async move { Ok::<_, LeaseErr>(read_record(txn, &keys).await?) })
        })
        .await
        .map_err(store_error)
    }

    /// Takes the lease for `lease_ms` from `now_ms` if nobody holds it, it expired, or it is
    /// already ours; otherwise says who holds it until when.
    pub async fn try_acquire(&self, now_ms: u64, lease_ms: u64) -> Result<Acquire> {
        let (keys, me) = (self.keys.clone(), self.me);
        let expires_ms = now_ms.saturating_add(lease_ms);
        let exclusive = self.kv.exclusive_to_this_process();
        let outcome = crate::transact(&*self.kv, move |txn| {
            let keys = keys.clone();
            Box::pin(async move {
                let (fence, new_tenure) = match read_record(txn, &keys).await? {
                    // Still ours (a renewal through acquire, or ours again after a release
                    // nobody took over): the tenure goes on, so the fence stays and the
                    // tenure key is not written (no in-flight write of ours conflicts).
                    Some(r) if r.holder == me => (r.fence, false),
                    // On a store only this process can open, a holder not alive here is dead.
                    Some(r) if !r.expired(now_ms) && (!exclusive || alive_here(r.holder)) => {
                        return Ok::<_, LeaseErr>(Acquire::Held {
                            holder: r.holder,
                            until_ms: r.expires_ms,
                        });
                    }
                    Some(r) => (r.fence + 1, true),
                    None => (1, true),
                };
                if new_tenure {
                    txn.set(&keys.tenure, &Tenure { holder: me, fence }.encode());
                }
                txn.set(&keys.expiry, &expires_ms.to_be_bytes());
                Ok(Acquire::Acquired { fence, expires_ms })
            })
        })
        .await
        .map_err(store_error)?;
        if let Acquire::Acquired { fence, .. } = outcome {
            self.held.store(fence, Ordering::Release);
        }
        Ok(outcome)
    }

    /// Extends our lease to `now_ms + lease_ms`; returns the new expiry. Fails with
    /// [`StoreError::Fenced`] (and we hold nothing from then on) if we do not hold the lease
    /// or someone else took it over since we acquired it.
    pub async fn renew(&self, now_ms: u64, lease_ms: u64) -> Result<u64> {
        let Some(fence) = self.fence() else {
            return Err(not_held());
        };
        let (keys, me) = (self.keys.clone(), self.me);
        let r = crate::transact(&*self.kv, move |txn| {
            let keys = keys.clone();
            Box::pin(async move {
                check(txn, &keys.tenure, me, fence).await?;
                let expires_ms = read_expiry(txn, &keys.expiry)
                    .await?
                    .max(now_ms.saturating_add(lease_ms));
                txn.set(&keys.expiry, &expires_ms.to_be_bytes());
                Ok::<_, LeaseErr>(expires_ms)
            })
        })
        .await
        .map_err(store_error);
        if matches!(r, Err(StoreError::Fenced { .. })) {
            self.held.store(0, Ordering::Release);
        }
        r
    }

    /// Gives the lease up (a clean shutdown), so a standby can take over at once instead of
    /// waiting for the expiry. The record stays with its fence, expired, so the next holder's
    /// fence is higher. From here on this process's [`FencedKv`]s refuse writes. Releasing a
    /// lease we do not hold does nothing.
    pub async fn release(&self) -> Result<()> {
        let fence = self.held.swap(0, Ordering::AcqRel);
        if fence == 0 {
            return Ok(());
        }
        let (keys, me) = (self.keys.clone(), self.me);
        let r = crate::transact(&*self.kv, move |txn| {
            let keys = keys.clone();
            Box::pin(async move {
                check(txn, &keys.tenure, me, fence).await?;
                txn.set(&keys.expiry, &0u64.to_be_bytes());
                Ok::<_, LeaseErr>(())
            })
        })
        .await
        .map_err(store_error);
        match r {
            // Someone else holds it already: there is nothing of ours to release.
            Err(StoreError::Fenced { .. }) => Ok(()),
            r => r,
        }
    }

    /// Stops writing under this lease without touching the store: a holder that gives up
    /// (it could not renew in time) refuses its own writes from here on, even before anyone
    /// took over.
    pub fn abandon(&self) {
        self.held.store(0, Ordering::Release);
    }

    /// A store handle whose every write transaction checks that this lease is still ours.
    pub fn fenced_kv(&self) -> FencedKv {
        FencedKv {
            lease: self.clone(),
        }
    }
}

/// A [`Kv`] whose write transactions commit only while the [`Lease`] it was made from is
/// held: each first reads the lease key in the same transaction and fails with
/// [`StoreError::Fenced`], committing nothing, if the stored holder or fence is not ours (see
/// the module doc for why that is enough). Reads, event reads and watches pass through.
#[derive(Clone)]
pub struct FencedKv {
    lease: Lease,
}

impl FencedKv {
    /// The lease this handle checks.
    pub fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Kv for FencedKv {
    fn transact_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        let lease = self.lease.clone();
        let fenced: ErasedTxnFn = Arc::new(move |txn: &dyn Txn| {
            let (lease, f) = (lease.clone(), f.clone());
            Box::pin(async move {
                // Loaded on every attempt: a retry after losing the lease must not pass.
                let Some(fence) = lease.fence() else {
                    return Err(TxnError::Store(not_held()));
                };
                check(txn, &lease.keys.tenure, lease.me, fence).await?;
                f(txn).await
            })
        });
        self.lease.kv.transact_erased(fenced)
    }

    fn read_erased(&self, f: ErasedTxnFn) -> BoxFut<'_, ErasedResult> {
        self.lease.kv.read_erased(f)
    }

    forward_kv_reads!(lease.kv);

    /// The backend's fault, or that writes are refused because the lease is not held (before
    /// it was acquired, after a release, or once a renewal found it lost).
    fn fault(&self) -> Option<String> {
        self.lease.kv.fault().or_else(|| {
            self.lease
                .fence()
                .is_none()
                .then(|| "this process does not hold the cell's lease".to_owned())
        })
    }
}

async fn read_record(txn: &dyn Txn, keys: &Keys) -> Result<Option<LeaseRecord>> {
    let Some(tenure) = read_tenure(txn, &keys.tenure).await? else {
        return Ok(None);
    };
    Ok(Some(LeaseRecord {
        holder: tenure.holder,
        fence: tenure.fence,
        expires_ms: read_expiry(txn, &keys.expiry).await?,
    }))
}

async fn read_tenure(txn: &dyn Txn, key: &[u8]) -> Result<Option<Tenure>> {
    txn.get(key)
        .await?
        .map(|v| Tenure::decode(key, &v))
        .transpose()
}

/// The stored expiry; 0 (expired) when missing.
async fn read_expiry(txn: &dyn Txn, key: &[u8]) -> Result<u64> {
    match txn.get(key).await? {
        None => Ok(0),
        Some(v) => Ok(u64::from_be_bytes(v.as_slice().try_into().map_err(
            |_| StoreError::Corrupt {
                key: format!("{key:?}"),
                reason: format!("a lease expiry is 8 bytes, got {}", v.len()),
            },
        )?)),
    }
}

/// Passes if the tenure key still names `me` under `fence`, else [`StoreError::Fenced`].
async fn check(txn: &dyn Txn, key: &[u8], me: Incarnation, fence: u64) -> Result<()> {
    match read_tenure(txn, key).await? {
        Some(t) if t.holder == me && t.fence == fence => Ok(()),
        Some(t) => Err(StoreError::Fenced {
            reason: format!(
                "the lease is held by {} with fence {} (ours was {fence})",
                t.holder, t.fence
            ),
        }),
        None => Err(StoreError::Fenced {
            reason: format!("the lease record is gone (our fence was {fence})"),
        }),
    }
}

fn not_held() -> StoreError {
    StoreError::Fenced {
        reason: "this process does not hold the lease".into(),
    }
}

fn store_error(e: LeaseErr) -> StoreError {
    match e {
        TxnError::Store(e) => e,
        TxnError::Abort(never) => match never {},
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod suite;
#[cfg(test)]
mod tests;
