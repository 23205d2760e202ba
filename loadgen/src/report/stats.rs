//! Per-operation counters and HDR histograms, recorded from many tasks into per-thread
//! shards and merged for the progress line, the timeline and the final report.
//!
//! Latency is recorded from the request's *intended* send time (open loop), so a stall
//! that delays later requests shows up in their latency instead of being omitted. The
//! service time (from the moment the request actually left) is kept alongside, so the
//! difference — time spent waiting in the load generator or behind a stalled
//! connection — is visible.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Largest latency the histograms hold (larger values are clamped): two minutes.
pub const MAX_LATENCY_US: u64 = 120_000_000;
const SIG_FIGS: u8 = 3;
/// Shards the recorder spreads threads over (threads pick one round-robin).
const SHARDS: usize = 8;

/// Index of an operation in the recorder's op list.
pub type OpId = usize;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx response, body read in full.
    Ok,
    /// Any other HTTP status (the body was read).
    Status(u16),
    /// The client's timeout fired.
    Timeout,
    /// Connection refused or reset, body cut short, or an unusable response.
    Transport,
}

/// Counts and histograms for one operation.
#[derive(Clone, Debug)]
pub struct OpStats {
    /// Microseconds from the intended send time to the end of the response (ok and
    /// timed-out requests; error statuses are counted, not timed).
    pub latency: Histogram<u64>,
    /// Microseconds from the actual send to the end of the response (same requests).
    pub service: Histogram<u64>,
    pub ok: u64,
    /// Non-2xx responses by status code.
    pub failed: BTreeMap<u16, u64>,
    pub timed_out: u64,
    pub transport: u64,
    /// When the last of these requests finished (rates are computed up to here when the
    /// target fell behind and answers came after the schedule ended).
    pub last_done: Option<Instant>,
}

impl Default for OpStats {
    fn default() -> Self {
        Self::new()
    }
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, SIG_FIGS).expect("static bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_LATENCY_US)
}

impl OpStats {
    pub fn new() -> Self {
        Self {
            latency: new_hist(),
            service: new_hist(),
            ok: 0,
            failed: BTreeMap::new(),
            timed_out: 0,
            transport: 0,
            last_done: None,
        }
    }

    /// Records one finished request: `latency` from the intended send time, `service`
    /// from the actual one.
    pub fn record(&mut self, outcome: Outcome, latency: Duration, service: Duration) {
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::Status(s) => {
                *self.failed.entry(s).or_default() += 1;
                return;
            }
            Outcome::Timeout => self.timed_out += 1,
            Outcome::Transport => {
                self.transport += 1;
                return;
            }
        }
        self.latency.saturating_record(micros(latency));
        self.service.saturating_record(micros(service));
    }

    /// Adds `other` into `self` (histograms are merged bucket by bucket, so quantiles of
    /// the merge are exact to the histogram's precision).
    pub fn merge(&mut self, other: &OpStats) {
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        self.service
            .add(&other.service)
            .expect("histograms share bounds");
        self.ok += other.ok;
        for (s, n) in &other.failed {
            *self.failed.entry(*s).or_default() += n;
        }
        self.timed_out += other.timed_out;
        self.transport += other.transport;
        self.last_done = self.last_done.max(other.last_done);
    }

    /// Requests that finished one way or another.
    pub fn completed(&self) -> u64 {
        self.ok + self.errors()
    }

    /// Everything that was not a 2xx: error statuses, timeouts, transport failures.
    pub fn errors(&self) -> u64 {
        self.failed.values().sum::<u64>() + self.timed_out + self.transport
    }

    /// Latency at quantile `q` (0..=1) in milliseconds; 0 when empty.
    pub fn latency_ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return 0.0;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// Per-second rate: `count` over `window`, 0 for an empty window.
pub fn rate(count: u64, window: Duration) -> f64 {
    let s = window.as_secs_f64();
    if s <= 0.0 { 0.0 } else { count as f64 / s }
}

#[derive(Default)]
struct Shard {
    /// After ramp-up: what the summary and the SLOs are about.
    steady: Vec<OpStats>,
    /// During ramp-up (kept separately, reported as counts).
    ramp: Vec<OpStats>,
    /// Since the last `take_interval` (progress line and timeline).
    interval: Vec<OpStats>,
}

/// Thread-safe recorder for a fixed list of operations.
pub struct Recorder {
    ops: Vec<&'static str>,
    sent: Vec<AtomicU64>,
    shards: Vec<Mutex<Shard>>,
    steady_from: OnceLock<Instant>,
    samples: Mutex<Vec<String>>,
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static MY_SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed);
}

/// Error messages kept for the report (the first few; enough to diagnose a 4xx).
const MAX_ERROR_SAMPLES: usize = 20;

impl Recorder {
    pub fn new(ops: &[&'static str]) -> Self {
        Self::with_shards(ops, SHARDS)
    }

    pub fn with_shards(ops: &[&'static str], shards: usize) -> Self {
        let fresh = || (0..ops.len()).map(|_| OpStats::new()).collect::<Vec<_>>();
        Self {
            ops: ops.to_vec(),
            sent: ops.iter().map(|_| AtomicU64::new(0)).collect(),
            shards: (0..shards.max(1))
                .map(|_| {
                    Mutex::new(Shard {
                        steady: fresh(),
                        ramp: fresh(),
                        interval: fresh(),
                    })
                })
                .collect(),
            steady_from: OnceLock::new(),
            samples: Mutex::new(Vec::new()),
        }
    }

    pub fn ops(&self) -> &[&'static str] {
        &self.ops
    }

    /// Requests whose intended send time is before `at` count as ramp-up.
    pub fn set_steady_from(&self, at: Instant) {
        let _ = self.steady_from.set(at);
    }

    pub fn mark_sent(&self, op: OpId) {
        self.sent[op].fetch_add(1, Ordering::Relaxed);
    }

    pub fn sent(&self, op: OpId) -> u64 {
        self.sent[op].load(Ordering::Relaxed)
    }

    /// Records a finished request into this thread's shard.
    pub fn record(
        &self,
        op: OpId,
        intended: Instant,
        sent: Instant,
        done: Instant,
        outcome: Outcome,
    ) {
        let latency = done.saturating_duration_since(intended);
        let service = done.saturating_duration_since(sent);
        let ramp = self.steady_from.get().is_some_and(|s| intended < *s);
        let shard = MY_SHARD.with(|i| *i) % self.shards.len();
        self.record_in(shard, op, ramp, outcome, latency, service, Some(done));
    }

    /// Records into a given shard (the merge tests drive shards directly).
    #[allow(clippy::too_many_arguments)]
    pub fn record_in(
        &self,
        shard: usize,
        op: OpId,
        ramp: bool,
        outcome: Outcome,
        latency: Duration,
        service: Duration,
        done: Option<Instant>,
    ) {
        let mut s = self.shards[shard].lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *s;
        let main = if ramp { &mut s.ramp } else { &mut s.steady };
        main[op].record(outcome, latency, service);
        main[op].last_done = main[op].last_done.max(done);
        s.interval[op].record(outcome, latency, service);
    }

    /// Keeps an error message for the report (bounded).
    pub fn error_sample(&self, op: OpId, msg: String) {
        let mut v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < MAX_ERROR_SAMPLES {
            v.push(format!("{}: {}", self.ops[op], msg));
        }
    }

    pub fn error_samples(&self) -> Vec<String> {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn merged(&self, pick: impl Fn(&mut Shard) -> &mut Vec<OpStats>, take: bool) -> Vec<OpStats> {
        let mut out: Vec<OpStats> = (0..self.ops.len()).map(|_| OpStats::new()).collect();
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|e| e.into_inner());
            let v = pick(&mut s);
            for (acc, st) in out.iter_mut().zip(v.iter_mut()) {
                acc.merge(st);
                if take {
                    *st = OpStats::new();
                }
            }
        }
        out
    }

    /// Steady-state stats of every op, merged across shards.
    pub fn steady(&self) -> Vec<OpStats> {
        self.merged(|s| &mut s.steady, false)
    }

    /// Ramp-up stats of every op, merged across shards.
    pub fn ramp(&self) -> Vec<OpStats> {
        self.merged(|s| &mut s.ramp, false)
    }

    /// Stats since the previous call, merged across shards, and reset.
    pub fn take_interval(&self) -> Vec<OpStats> {
        self.merged(|s| &mut s.interval, true)
    }
}
