//! The offer lease as a sans-IO state machine: no store, no clock. `store.rs` reads the rows
//! in a transaction, calls one function here with `now`, and writes back what it changed.
//!
//! A lease is one offer to one driver: open → accepted | declined | expired | withdrawn.
//! Each order keeps an [`OrderFence`]: the fencing number of its latest offer, which only
//! grows (Kleppmann's fencing token, checked by the resource, here the order), whether an
//! offer took it, and the drivers locked out of it (declined or timed out).

use domain::{DeliveryId, DriverId, OrderId, UnixMs};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// An offer's id: unique in the cell across restarts (the matcher resumes above the
/// highest stored one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OfferId(pub u64);

impl std::fmt::Display for OfferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseState {
    Open,
    Accepted,
    Declined,
    Expired,
    Withdrawn,
}

/// How an open lease ended without an acceptance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Close {
    Declined,
    /// Past its expiry. `undeliverable`: the driver could not have received it (their
    /// connection was in its grace period, or the send failed and was never repeated).
    Expired {
        undeliverable: bool,
    },
    /// Taken back by the cell (order cancelled): nobody's fault.
    Withdrawn,
}

/// What the accepting driver is told, stored with the acceptance in the same transaction,
/// so every repeat of the accept gets this very value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptReply {
    pub offer: OfferId,
    pub fence: u64,
    pub orders: Vec<OrderId>,
    pub delivery: DeliveryId,
    pub driver: DriverId,
    pub accepted_at: UnixMs,
}

/// One offer as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub offer: OfferId,
    /// One order today; a batch offer (one lease, several orders) later.
    pub orders: Vec<OrderId>,
    pub delivery: DeliveryId,
    pub driver: DriverId,
    pub fence: u64,
    pub created_at: UnixMs,
    /// The lease ends here: an accept at or after it is `offer_expired`.
    pub expires_at: UnixMs,
    /// What the driver's app shows as the deadline, a margin before `expires_at`, so a tap
    /// at the deadline still lands in time.
    pub display_deadline: UnixMs,
    pub state: LeaseState,
    #[serde(default)]
    pub undeliverable: bool,
    #[serde(default)]
    pub closed_at: Option<UnixMs>,
    #[serde(default)]
    pub reply: Option<AcceptReply>,
    /// The transport's reply body (the REST 200 body), kept by the first request that made
    /// one, so a repeat after a lost reply is byte-identical.
    #[serde(default)]
    pub body: Option<String>,
}

/// Per order: its offers' fencing state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OrderFence {
    /// Fencing number of the latest offer (0: none yet). Only grows.
    pub latest: u64,
    pub latest_offer: Option<OfferId>,
    /// The latest offer is still open.
    pub open: bool,
    /// The offer that took the order.
    pub taken: Option<OfferId>,
    /// Drivers who declined or timed out on this order.
    pub locked_out: BTreeSet<DriverId>,
}

/// A driver's offer record (acceptance rate, timeout streak, auto-offline).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DriverRecord {
    pub accepts: u64,
    pub declines: u64,
    pub timeouts: u64,
    /// Not received (connection in grace): in neither the rate nor the streak.
    pub undeliverable: u64,
    /// Timeouts since the last answer (accept or decline) or the last auto-offline.
    pub consecutive_timeouts: u32,
    /// Set when the cell took the driver offline; cleared when they go online.
    pub offline_reason: Option<OfflineReason>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OfflineReason {
    MissedOffers,
}

impl DriverRecord {
    /// Offers the driver received and answered or let lapse.
    pub fn received(&self) -> u64 {
        self.accepts + self.declines + self.timeouts
    }

    /// Acceptance rate for scoring: `None` until a few offers were received.
    pub fn acceptance_rate(&self) -> Option<f64> {
        let n = self.received();
        (n >= 3).then(|| self.accepts as f64 / n as f64)
    }
}

/// Lease settings, from `[dispatch.matching]`.
#[derive(Debug, Clone, Copy)]
pub struct LeaseConfig {
    pub ttl: Duration,
    pub display_margin: Duration,
    /// Consecutive timeouts that take a driver offline (0: never).
    pub offline_after_timeouts: u32,
}

/// Why an accept (or a create) is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the offer expired")]
    OfferExpired,
    #[error("a newer offer of this order was made, or this one was declined or withdrawn")]
    OfferSuperseded,
    #[error("the order was taken by another offer")]
    OrderTaken,
    #[error("no such offer for this driver")]
    NotYours,
    #[error("the driver is locked out of this order")]
    LockedOut,
    #[error("the order's previous offer is still open")]
    StillOpen,
}

impl Refusal {
    /// The stable reason code (REST `error.code`).
    pub fn code(self) -> &'static str {
        match self {
            Refusal::OfferExpired => "offer_expired",
            Refusal::OfferSuperseded => "offer_superseded",
            Refusal::OrderTaken => "order_taken",
            Refusal::NotYours => "offer_unknown",
            Refusal::LockedOut => "offer_locked_out",
            Refusal::StillOpen => "offer_still_open",
        }
    }
}

/// A new lease for `driver`. Refused while the order is taken or its last offer is open,
/// and for a locked-out driver unless `reoffer` (the exhausted-pool switch said so).
#[allow(clippy::too_many_arguments)]
pub fn create(
    fence: &mut OrderFence,
    offer: OfferId,
    orders: Vec<OrderId>,
    delivery: DeliveryId,
    driver: DriverId,
    now: UnixMs,
    cfg: &LeaseConfig,
    reoffer: bool,
) -> Result<Lease, Refusal> {
    if fence.taken.is_some() {
        return Err(Refusal::OrderTaken);
    }
    if fence.open {
        return Err(Refusal::StillOpen);
    }
    if fence.locked_out.contains(&driver) && !reoffer {
        return Err(Refusal::LockedOut);
    }
    let before = fence.latest;
    fence.latest += 1;
    fence.latest_offer = Some(offer);
    fence.open = true;
    let expires_at = now.plus(cfg.ttl);
    let margin = cfg.display_margin.min(cfg.ttl);
    let lease = Lease {
        offer,
        orders,
        delivery,
        driver,
        fence: fence.latest,
        created_at: now,
        expires_at,
        display_deadline: UnixMs(expires_at.0 - i64::try_from(margin.as_millis()).unwrap_or(0)),
        state: LeaseState::Open,
        undeliverable: false,
        closed_at: None,
        reply: None,
        body: None,
    };
    debug_assert!(fence.latest > before, "the fencing number only grows");
    debug_check(&lease, fence);
    Ok(lease)
}

/// What an accept does.
#[derive(Debug, Clone, PartialEq)]
pub enum Accept {
    /// Assign the order(s) now, then [`accepted`].
    Assign,
    /// Already accepted by this driver: answer what was answered then.
    Replay(AcceptReply),
}

/// Decides an accept of `lease` by `driver` presenting `presented` (the fencing number the
/// offer carried; `None` from a client that sends only the offer or delivery id: the
/// lease's own number is then the one checked against the order's latest).
pub fn accept(
    lease: &Lease,
    fence: &OrderFence,
    driver: DriverId,
    presented: Option<u64>,
    now: UnixMs,
) -> Result<Accept, Refusal> {
    if lease.driver != driver {
        return Err(Refusal::NotYours);
    }
    if let Some(f) = presented
        && f != lease.fence
    {
        return Err(Refusal::OfferSuperseded);
    }
    if lease.state == LeaseState::Accepted {
        // Only `accepted` sets the state, and it stores the reply with it.
        return lease
            .reply
            .clone()
            .map(Accept::Replay)
            .ok_or(Refusal::OrderTaken);
    }
    if fence.taken.is_some() {
        return Err(Refusal::OrderTaken);
    }
    if lease.fence != fence.latest {
        return Err(Refusal::OfferSuperseded);
    }
    match lease.state {
        LeaseState::Open if now < lease.expires_at => Ok(Accept::Assign),
        LeaseState::Open | LeaseState::Expired => Err(Refusal::OfferExpired),
        LeaseState::Declined | LeaseState::Withdrawn => Err(Refusal::OfferSuperseded),
        LeaseState::Accepted => unreachable!("answered above"),
    }
}

/// The assignment committed with this acceptance: the lease and fence say so.
pub fn accepted(lease: &mut Lease, fence: &mut OrderFence, now: UnixMs) -> AcceptReply {
    debug_assert_eq!(
        lease.state,
        LeaseState::Open,
        "only an open lease is accepted"
    );
    debug_assert_eq!(lease.fence, fence.latest, "only the order's latest offer");
    let reply = AcceptReply {
        offer: lease.offer,
        fence: lease.fence,
        orders: lease.orders.clone(),
        delivery: lease.delivery,
        driver: lease.driver,
        accepted_at: now,
    };
    lease.state = LeaseState::Accepted;
    lease.closed_at = Some(now);
    lease.reply = Some(reply.clone());
    fence.open = false;
    fence.taken = Some(lease.offer);
    debug_check(lease, fence);
    reply
}

/// Ends an open lease without an acceptance. `Ok(false)`: it was already closed (nothing to
/// write). A timeout before `expires_at` is refused: the cell's clock decides.
pub fn close(
    lease: &mut Lease,
    fence: &mut OrderFence,
    how: Close,
    now: UnixMs,
) -> Result<bool, Refusal> {
    if lease.state != LeaseState::Open {
        return Ok(false);
    }
    let state = match how {
        Close::Declined if now >= lease.expires_at => {
            // Too late to decline: it lapsed (a timeout, for the streak).
            return close(
                lease,
                fence,
                Close::Expired {
                    undeliverable: false,
                },
                now,
            );
        }
        Close::Declined => LeaseState::Declined,
        // The cell's clock decides a timeout; an offer the driver cannot receive (their
        // connection gone past its grace) may end sooner.
        Close::Expired {
            undeliverable: false,
        } if now < lease.expires_at => return Err(Refusal::StillOpen),
        Close::Expired { undeliverable } => {
            lease.undeliverable = undeliverable;
            LeaseState::Expired
        }
        Close::Withdrawn => LeaseState::Withdrawn,
    };
    lease.state = state;
    lease.closed_at = Some(now);
    if fence.latest_offer == Some(lease.offer) {
        fence.open = false;
    }
    // Declined or timed out: never offered this order again (unless the exhausted-pool
    // switch); not for an offer they could not receive, nor one the cell took back.
    if state == LeaseState::Declined || (state == LeaseState::Expired && !lease.undeliverable) {
        fence.locked_out.insert(lease.driver);
    }
    debug_check(lease, fence);
    Ok(true)
}

/// Counts a closed lease in the driver's record. Returns whether the driver goes offline
/// now (`missed_offers`): `offline_after_timeouts` timeouts in a row.
pub fn record(rec: &mut DriverRecord, lease: &Lease, cfg: &LeaseConfig) -> bool {
    let before = rec.received();
    match lease.state {
        LeaseState::Open | LeaseState::Withdrawn => return false,
        LeaseState::Accepted => {
            rec.accepts += 1;
            rec.consecutive_timeouts = 0;
        }
        LeaseState::Declined => {
            // Declines never count toward auto-offline; an answer ends a streak.
            rec.declines += 1;
            rec.consecutive_timeouts = 0;
        }
        LeaseState::Expired if lease.undeliverable => {
            rec.undeliverable += 1;
            debug_assert_eq!(
                rec.received(),
                before,
                "undeliverable offers are not received"
            );
            return false;
        }
        LeaseState::Expired => {
            rec.timeouts += 1;
            rec.consecutive_timeouts += 1;
        }
    }
    debug_assert_eq!(rec.received(), before + 1);
    if cfg.offline_after_timeouts > 0 && rec.consecutive_timeouts >= cfg.offline_after_timeouts {
        rec.consecutive_timeouts = 0;
        rec.offline_reason = Some(OfflineReason::MissedOffers);
        return true;
    }
    false
}

/// The driver went online: immediate, whatever took them offline.
pub fn online(rec: &mut DriverRecord) -> bool {
    rec.offline_reason.take().is_some()
}

/// Debug builds: the invariants between a lease and its order's fence.
fn debug_check(lease: &Lease, fence: &OrderFence) {
    debug_assert!(lease.fence >= 1 && lease.fence <= fence.latest);
    debug_assert!(lease.display_deadline <= lease.expires_at);
    debug_assert!(lease.created_at <= lease.expires_at);
    debug_assert_eq!(lease.state == LeaseState::Open, lease.closed_at.is_none());
    // The reply exists exactly when accepted, and an accepted lease took its order.
    debug_assert_eq!(lease.state == LeaseState::Accepted, lease.reply.is_some());
    if lease.state == LeaseState::Accepted {
        debug_assert_eq!(fence.taken, Some(lease.offer));
    }
    // Only the latest offer may be open; a taken order has none open.
    if lease.state == LeaseState::Open {
        debug_assert_eq!(fence.latest_offer, Some(lease.offer));
        debug_assert!(fence.open && fence.taken.is_none());
    }
}

#[cfg(test)]
#[path = "lease_tests.rs"]
mod tests;
