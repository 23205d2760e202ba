//! `pings --find-max`: the saturation point, not one good run. The drivers connect once; the
//! rate then steps up from `--rate` by `--step` (a factor) on that same fleet, each step held
//! for `--step-duration`. The first `--warm-up` of a step is not measured (queues settle at
//! the new rate); over the rest the step's loss comes from the cell's counters, sent −
//! accepted (per driver, [`super::seen`], with sent counted by `seq`; else the totals of
//! [`super::loss`]) and its ping → push p99 from the cell's
//! `cell_tracking_ping_to_push_seconds` (when trackers run). The search stops at the first
//! step whose loss passes `--max-loss-pct` or whose p99 passes `--max-p99-ms`, at
//! `--max-rate`, or when the load generator cannot send the step's rate (then the step says
//! nothing about the cell). Each step reports the cell's CPU µs per accepted ping
//! (`--target-pid`) and the load generator's own CPU µs per ping sent.

use super::fleet::{self, CpuMark, QuicTarget};
use super::loss::{Loss, ServerPings, label};
use super::ping_run::{default_id_base, spread};
use super::pings::{Counters, PingArgs, Slot, pace};
use super::seen::{self, Snapshot};
use super::unix_ms;
use crate::auth::Tokens;
use crate::pacing::{Schedule, parse_duration};
use crate::report::html::Page;
use crate::report::machine::{self, CpuUse, Machine};
use crate::report::metrics::family;
use anyhow::Context;
use driver_client::{City, DriverClient};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// A step's achieved send rate below this share of its target: the load generator, not the
/// cell, is the limit, and the search stops.
const MIN_ACHIEVED_SHARE: f64 = 0.95;
/// Sending at a step's rate after its measured window, while the end counters are read.
const TAIL: Duration = Duration::from_secs(1);
/// The cell's end-to-end latency metric.
const PUSH: &str = "cell_tracking_ping_to_push_seconds";

/// The step options of `pings --find-max`.
#[derive(Debug, Clone, PartialEq, clap::Args)]
pub struct StepArgs {
    /// Each step's rate is the previous one's times this factor.
    #[arg(long, default_value_t = 1.25)]
    pub step: f64,
    /// How long each step runs, warm-up included.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub step_duration: Duration,
    /// The start of each step left out of its measurement.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub warm_up: Duration,
    /// Highest rate to try, pings/s (the search stops after the step at it).
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// A step holds while its loss is at most this, percent.
    #[arg(long, default_value_t = 0.1)]
    pub max_loss_pct: f64,
    /// A step holds while the cell's ping → push p99 is at most this, ms (when trackers run).
    #[arg(long, default_value_t = 50.0)]
    pub max_p99_ms: f64,
}

/// The same values as the command-line defaults.
impl Default for StepArgs {
    fn default() -> Self {
        Self {
            step: 1.25,
            step_duration: Duration::from_secs(20),
            warm_up: Duration::from_secs(5),
            max_rate: None,
            max_loss_pct: 0.1,
            max_p99_ms: 50.0,
        }
    }
}

/// One step's measurement (over the step after its warm-up).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub target_rate: f64,
    /// Pings/s handed to QUIC in the measured window.
    pub achieved_rate: f64,
    pub window_s: f64,
    pub sent: u64,
    pub send_errors: u64,
    /// The loss judged, percent: from the cell's per-driver counters of this run's drivers
    /// when the cell has them (other clients' pings, e.g. `track`'s drivers, do not mix in),
    /// else from the `/metrics` totals in `loss`.
    pub loss_pct: f64,
    /// `per_driver` or `metrics`.
    pub loss_source: &'static str,
    /// Per-driver counters: this run's drivers' pings between the cell's two reads, as the
    /// rise of each driver's highest `seq` seen (a driver numbers its pings 1, 2, 3, ...), so
    /// counted in the cell's own window with no clock between the two processes.
    pub sent_per_driver: Option<u64>,
    /// Of those, accepted by the cell.
    pub accepted_per_driver: Option<u64>,
    /// From the `/metrics` totals (the cross-check; exact only when nothing else pings).
    pub loss: Loss,
    /// The cell's ping → push p99, ms, when the cell pushed to trackers in the window.
    pub p99_ms: Option<f64>,
    /// `histogram` (bucket deltas of this window) or `summary` (the cell's own rolling
    /// quantile at the end of the window, which also covers the time before it).
    pub p99_source: Option<&'static str>,
    pub cpu: CpuUse,
    /// Cell CPU µs per accepted ping (`--target-pid`).
    pub cell_us_per_ping: Option<f64>,
    /// Load generator CPU µs per ping sent.
    pub loadgen_us_per_ping: f64,
    pub held: bool,
}

/// The JSON report of `pings --find-max`.
#[derive(Debug, Clone, Serialize)]
pub struct FindMaxReport {
    pub tool: &'static str,
    pub scenario: &'static str,
    pub target: String,
    pub quic: String,
    pub started_unix_s: u64,
    pub config: serde_json::Value,
    pub machine: Machine,
    pub drivers: u64,
    pub connected: u64,
    pub connection_failures: u64,
    /// The highest step rate that held; `None` when the first step did not.
    pub last_held_rate: Option<f64>,
    pub stop_reason: String,
    pub steps: Vec<Step>,
}

impl FindMaxReport {
    pub fn render(&self) -> String {
        let mut s = format!(
            "find-max against {} (QUIC {}) — {} drivers, {} connected, {} failed\n",
            self.target, self.quic, self.drivers, self.connected, self.connection_failures
        );
        s += "  target/s  achieved/s    loss %   p99 ms  cell cores  cell µs/ping  loadgen µs/ping  held\n";
        for st in &self.steps {
            s += &format!(
                "{:>10.0} {:>11.0} {:>9.3} {:>8} {:>11} {:>12} {:>16.1}  {}\n",
                st.target_rate,
                st.achieved_rate,
                st.loss_pct,
                st.p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
                st.cpu
                    .target_cores
                    .map_or("-".into(), |c| format!("{c:.2}")),
                st.cell_us_per_ping
                    .map_or("-".into(), |v| format!("{v:.1}")),
                st.loadgen_us_per_ping,
                if st.held { "yes" } else { "no" }
            );
        }
        s += &format!(
            "last rate that held: {}   (stopped: {})\n",
            self.last_held_rate
                .map_or("none".into(), |r| format!("{r:.0} pings/s")),
            self.stop_reason
        );
        s
    }

    fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![(
            "last rate that held".to_string(),
            format!("{:?} ({})", self.last_held_rate, self.stop_reason),
        )];
        for st in &self.steps {
            f.push((
                format!("step {:.0}/s", st.target_rate),
                format!(
                    "loss {:.3}%, p99 {:?} ms, cell µs/ping {:?}, held {}",
                    st.loss_pct, st.p99_ms, st.cell_us_per_ping, st.held
                ),
            ));
        }
        f
    }
}

/// Runs the search end to end; prints and writes the report.
pub async fn run(args: PingArgs) -> anyhow::Result<FindMaxReport> {
    let report = execute(&args).await?;
    let cpu = CpuUse::default();
    let page = Page {
        title: format!("loadgen pings --find-max against {}", report.target),
        summary: String::new(),
        ops: &[],
        timeline: &[],
        slo: &[],
        server: Vec::new(),
        cpu: &cpu,
        machine: &report.machine,
        facts: report.facts(),
    };
    args.target.out.emit(&report.render(), &report, page)?;
    Ok(report)
}

async fn execute(a: &PingArgs) -> anyhow::Result<FindMaxReport> {
    let st = &a.steps;
    anyhow::ensure!(st.step > 1.0, "--step must be above 1 (a factor)");
    anyhow::ensure!(
        st.warm_up < st.step_duration,
        "--warm-up must be shorter than --step-duration"
    );
    anyhow::ensure!(a.rate > 0.0, "--rate must be above 0");
    let t = &a.target;
    let workers = a
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let mut machine = Machine::at_start();
    let started_unix_s = unix_ms() / 1000;
    let http = crate::http::client(Duration::from_secs(10), 64)?;
    let tokens = Arc::new(t.tokens(http.clone())?);
    let base = a
        .driver_id_base
        .unwrap_or_else(|| default_id_base(started_unix_s));
    let ids: Vec<u64> = (1..=a.drivers).map(|i| base + i).collect();
    eprintln!("connecting {} drivers ...", ids.len());
    let fleet = fleet::connect(t, Arc::clone(&tokens), &ids, a.share_sockets).await?;
    fleet::drain_control(&fleet);
    let connected: Vec<(u64, Arc<DriverClient>)> = fleet
        .drivers
        .iter()
        .filter_map(|(id, c)| c.clone().map(|c| (*id, c)))
        .collect();
    anyhow::ensure!(!connected.is_empty(), "no driver connected");
    let city = City {
        center_lat: a.center.0,
        center_lng: a.center.1,
        radius_m: a.city_km * 1000.0,
    };
    let (mut per_worker, _) = spread(&connected, workers, city, unix_ms());
    let ctx = Ctx {
        workers,
        a: st,
        t,
        http: &http,
        tokens: &tokens,
        ids: &ids,
        c: Arc::new(Counters::default()),
    };
    let mut steps: Vec<Step> = Vec::new();
    let mut rate = a.rate;
    let stop_reason = loop {
        let (step, back) = step(&ctx, per_worker, rate).await?;
        per_worker = back;
        eprintln!(
            "step {:.0}/s: achieved {:.0}/s, loss {:.3}%, p99 {} ms, cell µs/ping {}, loadgen µs/ping {:.1} -> {}",
            step.target_rate,
            step.achieved_rate,
            step.loss_pct,
            step.p99_ms.map_or("-".into(), |v| format!("{v:.1}")),
            step.cell_us_per_ping
                .map_or("-".into(), |v| format!("{v:.1}")),
            step.loadgen_us_per_ping,
            if step.held { "held" } else { "did not hold" }
        );
        let verdict = judge(&step, st);
        steps.push(step);
        if let Some(why) = verdict {
            break why;
        }
        match next_rate(rate, st) {
            Some(r) => rate = r,
            None => break format!("--max-rate {rate:.0} reached"),
        }
    };
    fleet::close(&fleet).await;
    machine.loadavg_end = machine::loadavg();
    Ok(FindMaxReport {
        tool: "loadgen",
        scenario: "find-max",
        target: t.target.clone(),
        quic: t.quic.to_string(),
        started_unix_s,
        config: serde_json::json!({"start_rate": a.rate, "step": st.step,
            "step_duration_s": st.step_duration.as_secs_f64(),
            "warm_up_s": st.warm_up.as_secs_f64(), "max_rate": st.max_rate,
            "max_loss_pct": st.max_loss_pct, "max_p99_ms": st.max_p99_ms,
            "workers": workers, "share_sockets": a.share_sockets,
            "first_driver_id": ids.first()}),
        machine,
        drivers: ids.len() as u64,
        connected: connected.len() as u64,
        connection_failures: fleet.failures,
        last_held_rate: steps.iter().rev().find(|s| s.held).map(|s| s.target_rate),
        stop_reason,
        steps,
    })
}

/// Runs `read` (a scrape of the cell's `/metrics`) and returns its result with the pings sent
/// when it was issued: the cell reads its counters as soon as a request arrives, and most of
/// the request's time is rendering and sending the response.
async fn sent_around<T>(c: &Counters, read: impl std::future::Future<Output = T>) -> (T, f64) {
    let before = c.sent.load(Ordering::Relaxed);
    (read.await, before as f64)
}

/// This run's drivers' pings between two reads of the cell's per-driver counters, as
/// (sent, accepted): sent is the rise of each driver's highest `seq` seen.
fn per_driver_window(ids: &[u64], before: &Snapshot, after: &Snapshot) -> (u64, u64) {
    ids.iter().fold((0, 0), |(sent, accepted), id| {
        let b = before.get(id).copied().unwrap_or_default();
        let a = after.get(id).copied().unwrap_or_default();
        (
            sent + a.max_seq.saturating_sub(b.max_seq),
            accepted + a.accepted.saturating_sub(b.accepted),
        )
    })
}

/// Why the search stops after `step`, if it does.
fn judge(step: &Step, a: &StepArgs) -> Option<String> {
    if step.achieved_rate < MIN_ACHIEVED_SHARE * step.target_rate {
        return Some(format!(
            "the load generator sent only {:.0} of {:.0} pings/s",
            step.achieved_rate, step.target_rate
        ));
    }
    if step.loss_pct > a.max_loss_pct {
        return Some(format!("loss {:.3}% > {}%", step.loss_pct, a.max_loss_pct));
    }
    match step.p99_ms {
        Some(p) if p > a.max_p99_ms => Some(format!("p99 {p:.1} ms > {} ms", a.max_p99_ms)),
        _ => None,
    }
}

/// The rate after `rate`, or `None` when `rate` was already `--max-rate`.
fn next_rate(rate: f64, a: &StepArgs) -> Option<f64> {
    let next = rate * a.step;
    match a.max_rate {
        Some(max) if rate >= max => None,
        Some(max) => Some(next.min(max)),
        None => Some(next),
    }
}

/// What every step uses.
struct Ctx<'a> {
    workers: usize,
    a: &'a StepArgs,
    t: &'a QuicTarget,
    http: &'a reqwest::Client,
    tokens: &'a Tokens,
    /// This run's drivers.
    ids: &'a [u64],
    c: Arc<Counters>,
}

impl Ctx<'_> {
    /// The cell's per-driver counters, `None` when it has none (or the fetch failed).
    async fn seen(&self) -> Option<Snapshot> {
        seen::fetch(self.http, &self.t.target, self.tokens)
            .await
            .unwrap_or_else(|e| {
                eprintln!("per-driver counters unavailable: {e:#}");
                None
            })
    }
}

/// Runs one step at `rate` on the fleet's slots and measures it after the warm-up. Hands the
/// slots back for the next step.
async fn step(
    ctx: &Ctx<'_>,
    per_worker: Vec<Vec<Slot>>,
    rate: f64,
) -> anyhow::Result<(Step, Vec<Vec<Slot>>)> {
    let Ctx {
        workers,
        a,
        t,
        http,
        ref c,
        ..
    } = *ctx;
    // Sending goes on for a tail after the window, so the end is marked mid-stream like the
    // start: pings sent while a mark's counters are fetched count the same way at both ends
    // and cancel out at a steady rate.
    let share = Schedule::flat(
        rate / workers as f64,
        Duration::ZERO,
        a.step_duration + TAIL,
    );
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for mut slots in per_worker {
        let c = Arc::clone(c);
        set.spawn(async move {
            pace(&mut slots, share, start, &c, None).await;
            slots
        });
    }
    tokio::time::sleep_until((start + a.warm_up).into()).await;
    let (sent0, errors0) = (
        c.sent.load(Ordering::Relaxed),
        c.errors.load(Ordering::Relaxed),
    );
    let cpu0 = CpuMark::now(t.target_pid);
    let t0 = Instant::now();
    let (before, scraped0) = sent_around(c, t.scrape(http)).await;
    let seen0 = ctx.seen().await;
    tokio::time::sleep_until((start + a.step_duration).into()).await;
    let window_s = t0.elapsed().as_secs_f64().max(1e-9);
    let sent = c.sent.load(Ordering::Relaxed) - sent0;
    let send_errors = c.errors.load(Ordering::Relaxed) - errors0;
    let cpu = cpu0.since(t.target_pid);
    let (after, scraped1) = sent_around(c, t.scrape(http)).await;
    let seen1 = match seen0 {
        Some(_) => ctx.seen().await,
        None => None,
    };
    let mut back = Vec::with_capacity(workers);
    while let Some(r) = set.join_next().await {
        back.push(r.context("sender task")?);
    }
    let per_driver = seen0
        .zip(seen1)
        .map(|(b, a)| per_driver_window(ctx.ids, &b, &a));
    let (Some(before), Some(after)) = (before, after) else {
        anyhow::bail!("scraping the cell's /metrics failed: the step's loss is unknown");
    };
    let server = ServerPings::from_scrapes(&before, &after);
    // The totals are compared with what was sent between the moments the cell was asked
    // for them, not with the window's marks.
    let loss = Loss::new((scraped1 - scraped0).round() as u64, &server);
    let loss_pct = match per_driver {
        Some((sent, accepted)) => sent.saturating_sub(accepted) as f64 * 100.0 / sent.max(1) as f64,
        None => loss.loss_pct,
    };
    let p99 = push_p99_ms(&before, &after);
    let per = |cores: f64, n: u64| cores * window_s * 1e6 / n.max(1) as f64;
    let mut step = Step {
        target_rate: rate,
        achieved_rate: sent as f64 / window_s,
        window_s,
        sent,
        send_errors,
        loss_pct,
        loss_source: if per_driver.is_some() {
            "per_driver"
        } else {
            "metrics"
        },
        sent_per_driver: per_driver.map(|p| p.0),
        accepted_per_driver: per_driver.map(|p| p.1),
        cell_us_per_ping: cpu.target_cores.map(|c| per(c, loss.accepted)),
        loadgen_us_per_ping: per(cpu.loadgen_cores, sent),
        loss,
        p99_ms: p99.map(|p| p.0),
        p99_source: p99.map(|p| p.1),
        cpu,
        held: false,
    };
    step.held = judge(&step, a).is_none();
    Ok((step, back))
}

/// The cell's ping → push p99 in ms between two scrapes, and where it came from: from the
/// histogram's bucket deltas when the cell exports buckets, else its rolling summary quantile
/// (the cell's default rendering) when it pushed anything between the scrapes.
pub fn push_p99_ms(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> Option<(f64, &'static str)> {
    let bucket = format!("{PUSH}_bucket");
    let mut by_le: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for (series, &v) in after {
        if family(series) != bucket {
            continue;
        }
        let Some(le) = label(series, "le").and_then(|l| l.parse::<f64>().ok()) else {
            continue;
        };
        let d = (v - before.get(series).copied().unwrap_or(0.0)).max(0.0);
        // Keyed by the bound's bits (non-negative floats order like their bits).
        by_le.entry(le.to_bits()).or_insert((le, 0.0)).1 += d;
    }
    if let Some(&(_, total)) = by_le.values().next_back()
        && total > 0.0
    {
        let (le, _) = by_le.values().find(|(_, n)| *n >= 0.99 * total)?;
        return Some((le * 1000.0, "histogram"));
    }
    let count = format!("{PUSH}_count");
    let pushed =
        after.get(&count).copied().unwrap_or(0.0) - before.get(&count).copied().unwrap_or(0.0);
    let q = after.get(&format!("{PUSH}{{quantile=\"0.99\"}}"))?;
    (pushed > 0.0).then_some((q * 1000.0, "summary"))
}

#[cfg(test)]
mod tests;
