//! Checks on a GPS ping before it moves a driver: coordinates in range, not from the
//! future, and physically possible given the driver's previous fix (a jump faster than any
//! car is flagged as likely spoofing and not stored). Pure: time comes in as an argument.
//!
//! Also the per-driver ping accounting ([`PingCounters`], [`Ledger`]) behind
//! `GET /api/v1/admin/pings`: atomics in a per-driver record that a QUIC session holds for its
//! whole life, so the datagram path updates them without a map lookup or a lock.

use domain::{DriverId, UnixMs};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Limits (`[dispatch.pings]` in the cell config).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PingLimits {
    /// Client clocks run ahead; more than this is "from the future".
    pub max_future_skew_ms: i64,
    /// Older than this relative to now: dropped (geostore would expire it anyway).
    pub max_age_ms: i64,
    /// Fastest plausible ground speed between fixes (≈ 180 km/h).
    pub max_speed_mps: f64,
    /// Jumps shorter than this are GPS noise, never spoofing.
    pub min_jump_m: f64,
    /// Per-driver ping rate limit (pings per second, over QUIC and REST together), measured
    /// on the pings' own timestamps ([`rate_clock`]); excess pings are dropped and counted
    /// (`rate_limited`). 0 = no limit. A phone pings about
    /// once a second; `loadgen pings` with 2,000 drivers at 100K/s sends 50/s per driver.
    pub max_pings_per_s: f64,
    /// Pings a driver may send at once above the rate (after a gap in coverage, say).
    pub ping_burst: u32,
}

impl Default for PingLimits {
    fn default() -> Self {
        Self {
            max_future_skew_ms: 5_000,
            max_age_ms: 30_000,
            max_speed_mps: 50.0,
            min_jump_m: 250.0,
            max_pings_per_s: 100.0,
            ping_burst: 100,
        }
    }
}

/// The previous accepted fix of a driver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub lat: f64,
    pub lng: f64,
    pub ts_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum PingRejection {
    #[error("coordinates out of range")]
    InvalidCoordinates,
    #[error("timestamp {ahead_ms} ms in the future")]
    FromFuture { ahead_ms: i64 },
    #[error("ping older than the staleness window")]
    TooOld,
    #[error("implied speed {implied_mps:.0} m/s: likely GPS spoofing")]
    Spoofed { implied_mps: f64 },
    #[error("sequence number {seq} not above {max} already seen in this session")]
    Stale { seq: u64, max: u64 },
    #[error("more pings than the per-driver rate limit allows")]
    RateLimited,
}

impl PingRejection {
    pub fn as_str(&self) -> &'static str {
        match self {
            PingRejection::InvalidCoordinates => "invalid",
            PingRejection::FromFuture { .. } => "from_future",
            PingRejection::TooOld => "too_old",
            PingRejection::Spoofed { .. } => "spoofed",
            PingRejection::Stale { .. } => "stale",
            PingRejection::RateLimited => "rate_limited",
        }
    }
}

/// Decides whether a ping may move the driver.
pub fn check(
    limits: &PingLimits,
    prev: Option<Fix>,
    lat: f64,
    lng: f64,
    ts_ms: u64,
    now: UnixMs,
) -> Result<(), PingRejection> {
    if !(lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0) {
        return Err(PingRejection::InvalidCoordinates);
    }
    let ts = i64::try_from(ts_ms).unwrap_or(i64::MAX);
    if ts - now.0 > limits.max_future_skew_ms {
        return Err(PingRejection::FromFuture {
            ahead_ms: ts - now.0,
        });
    }
    if now.0 - ts > limits.max_age_ms {
        return Err(PingRejection::TooOld);
    }
    if let Some(p) = prev
        && ts_ms > p.ts_ms
    {
        let d = geostore::haversine_m(p.lat, p.lng, lat, lng);
        // At least one second between fixes, so two pings a few ms apart never divide by ~0.
        let dt = ((ts_ms - p.ts_ms) as f64 / 1000.0).max(1.0);
        let implied = d / dt;
        if d > limits.min_jump_m && implied > limits.max_speed_mps {
            return Err(PingRejection::Spoofed {
                implied_mps: implied,
            });
        }
    }
    Ok(())
}

/// The ping path's metric handles, resolved once (a `counter!` lookup per ping costs a
/// registry hash and lock at 100K pings/s).
pub struct PingMetrics {
    accepted: metrics::Counter,
    rejected: [metrics::Counter; 6],
}

const REASONS: [&str; 6] = [
    "invalid",
    "from_future",
    "too_old",
    "spoofed",
    "stale",
    "rate_limited",
];

impl PingMetrics {
    pub fn new() -> Self {
        Self {
            accepted: metrics::counter!("cell_pings_total"),
            rejected: REASONS
                .map(|r| metrics::counter!("cell_pings_rejected_total", "reason" => r)),
        }
    }

    pub fn accepted(&self) {
        self.accepted.increment(1);
    }

    pub fn rejected(&self, e: &PingRejection) {
        let i = REASONS.iter().position(|r| *r == e.as_str()).unwrap_or(0);
        self.rejected[i].increment(1);
    }
}

impl Default for PingMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What happened to one ping, for [`PingCounters::record`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Written to the geostore.
    Accepted,
    /// Failed a check (range, clock, speed).
    Rejected,
    /// Its sequence number was not above the session's highest: reordered or duplicated.
    Stale,
    /// Over the driver's rate limit.
    RateLimited,
}

/// One driver's ping accounting since the cell started. Kept across reconnects (keyed by
/// driver id in the [`Ledger`]); every field is only ever increased.
#[derive(Debug, Default)]
pub struct PingCounters {
    received: AtomicU64,
    accepted: AtomicU64,
    rejected: AtomicU64,
    stale: AtomicU64,
    rate_limited: AtomicU64,
    max_seq: AtomicU64,
}

/// A snapshot of [`PingCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PingCounts {
    /// Pings that arrived and decoded.
    pub received: u64,
    /// Written to the geostore.
    pub accepted: u64,
    /// Failed a check.
    pub rejected: u64,
    /// Dropped for a sequence number not above one already seen in the session.
    pub stale: u64,
    /// Dropped over the driver's rate limit.
    pub rate_limited: u64,
    /// Highest sequence number seen (0: none carried one).
    pub max_seq: u64,
}

impl PingCounters {
    /// Counts a ping that arrived and decoded, carrying `seq` (0: none, e.g. REST).
    pub fn arrived(&self, seq: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        if seq > 0 {
            self.max_seq.fetch_max(seq, Ordering::Relaxed);
        }
    }

    pub fn record(&self, outcome: Outcome) {
        let c = match outcome {
            Outcome::Accepted => &self.accepted,
            Outcome::Rejected => &self.rejected,
            Outcome::Stale => &self.stale,
            Outcome::RateLimited => &self.rate_limited,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> PingCounts {
        PingCounts {
            received: self.received.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            max_seq: self.max_seq.load(Ordering::Relaxed),
        }
    }
}

/// The highest sequence number of one session. Sequence numbers are per session (a
/// reconnecting client may start again from 1), so this lives with the session, not the
/// driver. 0 means "no sequence" and is never stale.
#[derive(Debug, Default)]
pub struct SessionSeq(AtomicU64);

impl SessionSeq {
    /// Takes `seq`; `Err` if it is not above every sequence number taken before.
    pub fn advance(&self, seq: u64) -> Result<(), PingRejection> {
        if seq == 0 {
            return Ok(());
        }
        let max = self.0.fetch_max(seq, Ordering::Relaxed);
        if max >= seq {
            return Err(PingRejection::Stale { seq, max });
        }
        Ok(())
    }
}

/// GCRA, the single-number form of a token bucket: `tat` is the theoretical arrival time
/// of the next conforming ping (µs). A ping at `now` conforms if it is at most `tolerance`
/// early; then the next `tat` is returned. Pure: the caller keeps `tat` and passes time in.
pub fn gcra(tat: u64, now_us: u64, interval_us: u64, tolerance_us: u64) -> Option<u64> {
    let start = tat.max(now_us);
    (start - now_us <= tolerance_us).then_some(start + interval_us)
}

/// The time a ping counts at for the rate limit: its own timestamp, clamped to the window
/// the checks accept (`now - max_age_ms ..= now + max_future_skew_ms`). Not the arrival
/// time: pings that queued in the network or in the cell (and then arrive together) are not
/// the driver's burst. A client faking timestamps gains at most the window's worth of pings.
pub fn rate_clock(limits: &PingLimits, ts_ms: u64, now: UnixMs) -> UnixMs {
    let ts = i64::try_from(ts_ms).unwrap_or(i64::MAX);
    UnixMs(ts.clamp(now.0 - limits.max_age_ms, now.0 + limits.max_future_skew_ms))
}

/// A driver's ping rate limit state ([`gcra`] in one atomic, so concurrent sessions of the
/// same driver, or a session and REST, share the limit without a lock).
#[derive(Debug, Default)]
pub struct RateGate(AtomicU64);

impl RateGate {
    /// Whether one more ping at `now` is within `per_s` with `burst` (`per_s` <= 0: always).
    pub fn admit(&self, per_s: f64, burst: u32, now: UnixMs) -> bool {
        if per_s <= 0.0 || !per_s.is_finite() {
            return true;
        }
        let interval = (1e6 / per_s).max(1.0) as u64;
        let tolerance = interval * u64::from(burst.max(1) - 1);
        let now_us = u64::try_from(now.0).unwrap_or(0).saturating_mul(1000);
        let mut tat = self.0.load(Ordering::Relaxed);
        loop {
            let Some(next) = gcra(tat, now_us, interval, tolerance) else {
                return false;
            };
            match self
                .0
                .compare_exchange_weak(tat, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(t) => tat = t,
            }
        }
    }
}

/// Per-driver records, sharded so neither the lookups of REST pings and new sessions nor the
/// admin snapshot serialise the cell on one lock. QUIC sessions look their driver up once.
pub struct Ledger<T> {
    shards: Box<[Shard<T>]>,
}

type Shard<T> = RwLock<HashMap<DriverId, Arc<T>>>;

const SHARDS: usize = 64;

impl<T: Default> Default for Ledger<T> {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }
}

impl<T: Default> Ledger<T> {
    fn shard(&self, d: DriverId) -> &Shard<T> {
        // Driver ids are dense or random; a multiplicative hash spreads both.
        let h = d.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        &self.shards[h as usize % SHARDS]
    }

    /// The driver's record, created on first use.
    pub fn entry(&self, d: DriverId) -> Arc<T> {
        if let Some(r) = self.shard(d).read().get(&d) {
            return Arc::clone(r);
        }
        Arc::clone(self.shard(d).write().entry(d).or_default())
    }

    pub fn get(&self, d: DriverId) -> Option<Arc<T>> {
        self.shard(d).read().get(&d).cloned()
    }

    /// Every record, sorted by driver id.
    pub fn all(&self) -> Vec<(DriverId, Arc<T>)> {
        let mut v: Vec<_> = self
            .shards
            .iter()
            .flat_map(|s| {
                s.read()
                    .iter()
                    .map(|(d, r)| (*d, Arc::clone(r)))
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort_by_key(|(d, _)| d.0);
        v
    }

    /// Drops the records `keep` refuses, except those someone still holds (a session keeps
    /// its driver's record for its whole life). Returns how many were dropped.
    pub fn retain(&self, keep: impl Fn(DriverId) -> bool) -> usize {
        let mut dropped = 0;
        for shard in &self.shards {
            let mut m = shard.write();
            let before = m.len();
            m.retain(|d, r| Arc::strong_count(r) > 1 || keep(*d));
            dropped += before - m.len();
        }
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_keeps_held_and_wanted_records() {
        let l: Ledger<PingCounters> = Ledger::default();
        let held = l.entry(DriverId(1));
        let _ = l.entry(DriverId(2));
        let _ = l.entry(DriverId(3));
        assert_eq!(l.retain(|d| d == DriverId(3)), 1);
        let left: Vec<u64> = l.all().into_iter().map(|(d, _)| d.0).collect();
        assert_eq!(left, vec![1, 3]);
        drop(held);
        assert_eq!(l.retain(|_| false), 2);
        assert!(l.all().is_empty());
    }

    #[test]
    fn sequence_numbers_must_increase_within_a_session() {
        let s = SessionSeq::default();
        assert_eq!(s.advance(1), Ok(()));
        assert_eq!(s.advance(3), Ok(()));
        // Reordered and duplicated datagrams.
        assert_eq!(s.advance(2), Err(PingRejection::Stale { seq: 2, max: 3 }));
        assert_eq!(s.advance(3), Err(PingRejection::Stale { seq: 3, max: 3 }));
        assert_eq!(s.advance(4), Ok(()));
        // No sequence number: never stale.
        assert_eq!(s.advance(0), Ok(()));
        assert_eq!(s.advance(0), Ok(()));
        // A new session may start again from 1.
        assert_eq!(SessionSeq::default().advance(1), Ok(()));
    }

    #[test]
    fn the_rate_gate_allows_the_rate_plus_a_burst() {
        let g = RateGate::default();
        let t0 = UnixMs(1_800_000_000_000);
        // 10/s with a burst of 3: three at once, then one per 100 ms.
        let admitted = (0..10).filter(|_| g.admit(10.0, 3, t0)).count();
        assert_eq!(admitted, 3);
        assert!(!g.admit(10.0, 3, UnixMs(t0.0 + 50)));
        assert!(g.admit(10.0, 3, UnixMs(t0.0 + 100)));
        assert!(!g.admit(10.0, 3, UnixMs(t0.0 + 150)));
        // A quiet second refills the burst, not more.
        let later = UnixMs(t0.0 + 1_500);
        assert_eq!((0..10).filter(|_| g.admit(10.0, 3, later)).count(), 3);
        // Over a long run the rate holds: 10 s at 1 ms steps admits about 100 + the burst.
        let g = RateGate::default();
        let n = (0..10_000)
            .filter(|ms| g.admit(10.0, 3, UnixMs(t0.0 + ms)))
            .count();
        assert!((100..=103).contains(&n), "{n}");
        // No limit.
        assert!((0..1_000).all(|_| RateGate::default().admit(0.0, 1, t0)));
        // The clock is the ping's timestamp within the accepted window.
        let l = PingLimits::default();
        let ts = t0.0 as u64;
        assert_eq!(rate_clock(&l, ts - 1_000, t0), UnixMs(t0.0 - 1_000));
        assert_eq!(rate_clock(&l, ts + 3_600_000, t0), UnixMs(t0.0 + 5_000));
        assert_eq!(rate_clock(&l, 0, t0), UnixMs(t0.0 - 30_000));
        assert_eq!(gcra(0, 1_000, 100, 0), Some(1_100));
        assert_eq!(gcra(1_100, 1_000, 100, 0), None);
        assert_eq!(gcra(1_100, 1_000, 100, 100), Some(1_200));
    }

    #[test]
    fn counters_count_each_outcome() {
        let c = PingCounters::default();
        c.arrived(5);
        c.record(Outcome::Accepted);
        c.arrived(4);
        c.record(Outcome::Stale);
        c.arrived(0);
        c.record(Outcome::Rejected);
        let one = c.snapshot();
        assert_eq!(
            one,
            PingCounts {
                received: 3,
                accepted: 1,
                rejected: 1,
                stale: 1,
                rate_limited: 0,
                max_seq: 5
            }
        );
    }

    #[test]
    fn ledger_keeps_one_record_per_driver() {
        let l: Ledger<PingCounters> = Ledger::default();
        let a = l.entry(DriverId(7));
        a.arrived(1);
        // The same record on the next lookup (a reconnect): counts carry on.
        l.entry(DriverId(7)).arrived(2);
        assert_eq!(a.snapshot().received, 2);
        assert!(l.get(DriverId(8)).is_none());
        for d in (0..1_000).rev() {
            l.entry(DriverId(d * 977));
        }
        let all = l.all();
        assert_eq!(all.len(), 1_001);
        assert!(all.windows(2).all(|w| w[0].0.0 < w[1].0.0));
    }

    #[test]
    fn rejects_impossible_pings() {
        let l = PingLimits::default();
        let now = UnixMs(1_800_000_000_000);
        let t = now.0 as u64;
        assert_eq!(check(&l, None, 52.5, 13.4, t, now), Ok(()));
        assert_eq!(
            check(&l, None, f64::NAN, 13.4, t, now),
            Err(PingRejection::InvalidCoordinates)
        );
        assert_eq!(
            check(&l, None, 91.0, 13.4, t, now),
            Err(PingRejection::InvalidCoordinates)
        );
        assert!(matches!(
            check(&l, None, 52.5, 13.4, t + 60_000, now),
            Err(PingRejection::FromFuture { .. })
        ));
        assert_eq!(
            check(&l, None, 52.5, 13.4, t - 60_000, now),
            Err(PingRejection::TooOld)
        );
        let prev = Fix {
            lat: 52.5,
            lng: 13.4,
            ts_ms: t - 5_000,
        };
        // 50 m in 5 s: a cyclist.
        assert_eq!(check(&l, Some(prev), 52.50045, 13.4, t, now), Ok(()));
        // 11 km in 5 s: nobody drives that fast.
        assert!(matches!(
            check(&l, Some(prev), 52.6, 13.4, t, now),
            Err(PingRejection::Spoofed { .. })
        ));
        // An older ping than the previous fix is not judged here (geostore ignores it).
        assert_eq!(check(&l, Some(prev), 52.6, 13.4, t - 6_000, now), Ok(()));
    }
}
