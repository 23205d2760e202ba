//! The model's shared state: every key's versions, the write-conflict ranges of recent commits,
//! the read versions of live transactions (which bound what may be pruned), watches, and the
//! commit itself: limits, conflict detection, versionstamps and injected faults.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::oneshot;

use super::{ModelFaults, ModelStats};
use crate::fdbsem::{RawError, RawResult, codes};
use crate::limits;
use crate::overlay::WriteSet;

/// A key range `[begin, end)`.
pub(super) type Range = (Vec<u8>, Vec<u8>);

/// A key's versions, oldest first; `None` is a clear.
type Versions = Vec<(u64, Option<Vec<u8>>)>;

/// The point range `[key, key\0)`.
pub(super) fn point(key: &[u8]) -> Range {
    let mut end = key.to_vec();
    end.push(0);
    (key.to_vec(), end)
}

fn overlaps(a: &Range, b: &Range) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// A watch: fires once `key`'s committed value differs from `seen`.
pub(super) struct Watch {
    pub key: Vec<u8>,
    pub seen: Option<Vec<u8>>,
    pub tx: oneshot::Sender<RawResult<()>>,
}

/// What a transaction hands over at commit.
pub(super) struct Commit {
    pub read_version: u64,
    pub age: Duration,
    pub reads: Vec<Range>,
    pub writes: WriteSet,
    /// `SetVersionstampedKey` / `SetVersionstampedValue` parameters, in call order.
    pub stamped_keys: Vec<(Vec<u8>, Vec<u8>)>,
    pub stamped_values: Vec<(Vec<u8>, Vec<u8>)>,
    pub watches: Vec<Watch>,
}

pub(super) struct State {
    /// The last committed version.
    version: u64,
    /// Each key's versions, oldest first; `None` is a clear.
    data: BTreeMap<Vec<u8>, Versions>,
    /// Write-conflict ranges of the commits a live transaction may still conflict with.
    history: VecDeque<(u64, Vec<Range>)>,
    /// Read versions of live transactions, with counts.
    live: BTreeMap<u64, usize>,
    watches: Vec<Watch>,
    faults: ModelFaults,
    rng: ChaCha8Rng,
    pub stats: ModelStats,
}

/// Replaces the 10-byte placeholder named by the trailing 4-byte little-endian offset.
fn fill_stamp(param: &[u8], stamp: &[u8; 10]) -> RawResult<Vec<u8>> {
    let bad = || RawError {
        code: 2000,
        message: "versionstamp offset out of range".into(),
        retryable: false,
    };
    let (body, off) = param.split_at(param.len().checked_sub(4).ok_or_else(bad)?);
    let off = u32::from_le_bytes(off.try_into().map_err(|_| bad())?) as usize;
    let mut out = body.to_vec();
    out.get_mut(off..off + 10)
        .ok_or_else(bad)?
        .copy_from_slice(stamp);
    Ok(out)
}

impl State {
    pub fn new(faults: ModelFaults) -> Self {
        Self {
            version: 0,
            data: BTreeMap::new(),
            history: VecDeque::new(),
            live: BTreeMap::new(),
            watches: Vec::new(),
            faults,
            rng: ChaCha8Rng::seed_from_u64(faults.seed),
            stats: ModelStats::default(),
        }
    }

    pub fn set_faults(&mut self, faults: ModelFaults) {
        self.faults = faults;
        self.rng = ChaCha8Rng::seed_from_u64(faults.seed);
    }

    /// Starts a transaction: its read version, kept live until [`State::end`].
    pub fn begin(&mut self) -> u64 {
        *self.live.entry(self.version).or_default() += 1;
        self.version
    }

    pub fn end(&mut self, read_version: u64) {
        if let Some(n) = self.live.get_mut(&read_version) {
            *n -= 1;
            if *n == 0 {
                self.live.remove(&read_version);
            }
        }
    }

    fn roll(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random_bool(p.min(1.0))
    }

    /// A random commit delay within the configured latency.
    pub fn latency(&mut self) -> Duration {
        let max = self.faults.latency;
        if max.is_zero() {
            return max;
        }
        max.mul_f64(self.rng.random::<f64>())
    }

    /// A random backoff for attempt `n` of a retried transaction (FoundationDB's `on_error`
    /// doubles it each time; the model keeps it short).
    pub fn backoff(&mut self, attempt: u32) -> Duration {
        let cap = Duration::from_micros(50 << attempt.min(8));
        cap.mul_f64(self.rng.random::<f64>())
    }

    /// The check a read makes: too old by age, or an injected `transaction_too_old`.
    pub fn check_read(&mut self, age: Duration) -> RawResult<()> {
        if age > limits::MAX_TXN_AGE {
            return Err(RawError::from_code(codes::TRANSACTION_TOO_OLD));
        }
        if self.roll(self.faults.too_old) {
            self.stats.injected_too_old += 1;
            return Err(RawError::from_code(codes::TRANSACTION_TOO_OLD));
        }
        Ok(())
    }

    /// `key`'s value at `version`.
    pub fn get_at(&self, key: &[u8], version: u64) -> Option<Vec<u8>> {
        let versions = self.data.get(key)?;
        versions
            .iter()
            .rev()
            .find(|(v, _)| *v <= version)
            .and_then(|(_, val)| val.clone())
    }

    /// Calls `f` with each live pair of `[begin, end)` at `version` until it returns false.
    pub fn scan_at(
        &self,
        begin: &[u8],
        end: &[u8],
        reverse: bool,
        version: u64,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) {
        if begin >= end {
            return;
        }
        let range = self.data.range::<[u8], _>((
            std::ops::Bound::Included(begin),
            std::ops::Bound::Excluded(end),
        ));
        let mut visit = |(k, versions): (&Vec<u8>, &Versions)| match versions
            .iter()
            .rev()
            .find(|(v, _)| *v <= version)
        {
            Some((_, Some(val))) => f(k, val),
            _ => true,
        };
        if reverse {
            for item in range.rev() {
                if !visit(item) {
                    break;
                }
            }
        } else {
            for item in range {
                if !visit(item) {
                    break;
                }
            }
        }
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let version = self.version;
        let versions = self.data.entry(key).or_default();
        match versions.last_mut() {
            // A point write after a range clear in the same commit supersedes it.
            Some((v, val)) if *v == version => *val = value,
            _ => versions.push((version, value)),
        }
    }

    /// Commits `c`: see the module docs of `model` for the rules.
    pub fn commit(&mut self, c: Commit) -> RawResult<()> {
        if c.age > limits::MAX_TXN_AGE {
            return Err(RawError::from_code(codes::TRANSACTION_TOO_OLD));
        }
        let ws = &c.writes;
        let read_only = ws.points.is_empty()
            && ws.cleared.is_empty()
            && c.stamped_keys.is_empty()
            && c.stamped_values.is_empty();
        if read_only {
            self.arm(c.watches);
            return Ok(());
        }
        if self.roll(self.faults.too_old) {
            self.stats.injected_too_old += 1;
            return Err(RawError::from_code(codes::TRANSACTION_TOO_OLD));
        }
        if self.roll(self.faults.conflict) {
            self.stats.injected_conflicts += 1;
            return Err(RawError::from_code(codes::NOT_COMMITTED));
        }
        check_limits(&c)?;
        let conflict = self
            .history
            .iter()
            .rev()
            .take_while(|(v, _)| *v > c.read_version)
            .any(|(_, writes)| {
                writes
                    .iter()
                    .any(|w| c.reads.iter().any(|r| overlaps(r, w)))
            });
        if conflict {
            self.stats.conflicts += 1;
            return Err(RawError::from_code(codes::NOT_COMMITTED));
        }

        self.version += 1;
        self.stats.commits += 1;
        let mut stamp = [0u8; 10];
        stamp[..8].copy_from_slice(&self.version.to_be_bytes());
        let mut ranges: Vec<Range> = Vec::new();
        let mut touched: Vec<Vec<u8>> = Vec::new();
        let Commit {
            writes,
            stamped_keys,
            stamped_values,
            watches,
            ..
        } = c;
        for (b, e) in writes.cleared {
            let doomed: Vec<Vec<u8>> = self
                .data
                .range(b.clone()..e.clone())
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                self.write(k.clone(), None);
                touched.push(k);
            }
            ranges.push((b, e));
        }
        for (k, v) in writes.points {
            ranges.push(point(&k));
            self.write(k.clone(), v);
            touched.push(k);
        }
        for (k, v) in stamped_keys {
            let k = fill_stamp(&k, &stamp)?;
            ranges.push(point(&k));
            self.write(k.clone(), Some(v));
            touched.push(k);
        }
        for (k, v) in stamped_values {
            let v = fill_stamp(&v, &stamp)?;
            ranges.push(point(&k));
            self.write(k.clone(), Some(v));
            touched.push(k);
        }
        self.history.push_back((self.version, ranges));
        self.fire_watches();
        self.arm(watches);
        self.prune(&touched);
        if self.roll(self.faults.unknown_result) {
            // Applied, but the client is told it may not have been.
            self.stats.injected_unknown_results += 1;
            return Err(RawError::from_code(codes::COMMIT_UNKNOWN_RESULT));
        }
        Ok(())
    }

    fn latest(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get_at(key, self.version)
    }

    /// Arms the watches of a committed transaction (firing at once if the key already changed).
    fn arm(&mut self, watches: Vec<Watch>) {
        for w in watches {
            if self.latest(&w.key) != w.seen {
                let _ = w.tx.send(Ok(()));
            } else {
                self.watches.push(w);
            }
        }
    }

    fn fire_watches(&mut self) {
        let watches = std::mem::take(&mut self.watches);
        for w in watches {
            if w.tx.is_closed() {
                continue;
            }
            if self.latest(&w.key) != w.seen {
                let _ = w.tx.send(Ok(()));
            } else {
                self.watches.push(w);
            }
        }
    }

    /// Drops versions no live transaction can read any more.
    fn prune(&mut self, touched: &[Vec<u8>]) {
        let oldest = self.live.keys().next().copied().unwrap_or(self.version);
        while self.history.front().is_some_and(|(v, _)| *v <= oldest) {
            self.history.pop_front();
        }
        for k in touched {
            let Some(versions) = self.data.get_mut(k) else {
                continue;
            };
            // Keep the newest version an `oldest` reader sees, and everything after it.
            if let Some(keep) = versions.iter().rposition(|(v, _)| *v <= oldest) {
                versions.drain(..keep);
            }
            if versions.len() == 1 && versions[0].1.is_none() && versions[0].0 <= oldest {
                self.data.remove(k);
            }
        }
    }
}

/// FoundationDB's limits on the transaction's writes, as the cluster reports them.
fn check_limits(c: &Commit) -> RawResult<()> {
    let mut total: u64 = 0;
    let key = |k: &[u8]| -> RawResult<u64> {
        if k.len() as u64 > limits::MAX_KEY_BYTES {
            return Err(RawError::from_code(codes::KEY_TOO_LARGE));
        }
        Ok(k.len() as u64)
    };
    let value = |v: &[u8]| -> RawResult<u64> {
        if v.len() as u64 > limits::MAX_VALUE_BYTES {
            return Err(RawError::from_code(codes::VALUE_TOO_LARGE));
        }
        Ok(v.len() as u64)
    };
    for (b, e) in &c.writes.cleared {
        total += key(b)? + key(e)?;
    }
    for (k, v) in &c.writes.points {
        total += key(k)? + v.as_deref().map_or(Ok(0), value)?;
    }
    // The 4-byte offset suffix of a versionstamped parameter is not stored.
    for (k, v) in &c.stamped_keys {
        total += key(&k[..k.len().saturating_sub(4)])? + value(v)?;
    }
    for (k, v) in &c.stamped_values {
        total += key(k)? + value(&v[..v.len().saturating_sub(4)])?;
    }
    if total > limits::MAX_TXN_BYTES {
        return Err(RawError::from_code(codes::TRANSACTION_TOO_LARGE));
    }
    Ok(())
}
