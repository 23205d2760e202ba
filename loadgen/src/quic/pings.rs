//! `pings`, `record` and `replay`: drivers sending GPS pings over QUIC at a target
//! aggregate rate, and what the cell counted of them.
//!
//! Sending: `--workers` tasks (default: one per core) each own an equal share of the
//! drivers. Every millisecond a worker works out how many pings its share of the schedule
//! (linear ramp to `--rate`, then `--rate` for `--duration`) owes by now and sends them,
//! round-robin over its drivers: each driver advances along its [`Route`] by the time since
//! its own last ping and pings its new position, stamped with the wall clock. A worker that
//! falls behind catches up in bursts, so "achieved" is what the box really sent. Replay
//! instead sends each trace line at `ts_ms / speed` after the start.

use super::fleet::{self, QuicTarget};
use super::loss::{Loss, ServerPings};
use super::seen::PerDriver;
use super::trace::TraceRow;
use super::unix_ms;
use crate::pacing::{Schedule, parse_duration};
use crate::report::html::Page;
use crate::report::machine::{CpuUse, Machine};
use crate::report::slo::SloResult;
use crate::report::{OpReport, TimelineOp, TimelinePoint};
use driver_client::{DriverClient, Route};
use schemas::LocationPing;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Options of `pings` and `record`.
#[derive(Debug, Clone, clap::Args)]
pub struct PingArgs {
    #[command(flatten)]
    pub target: QuicTarget,
    /// Simulated drivers (connections).
    #[arg(long, default_value_t = 1000)]
    pub drivers: u64,
    /// Aggregate pings/s after ramp-up (each driver pings every drivers/rate seconds).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Steady-state duration after ramp-up.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Linear ramp from 0 to --rate.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Multiplex the connections over K UDP sockets (client endpoints) instead of one each.
    #[arg(long)]
    pub share_sockets: Option<usize>,
    /// Sender tasks (default: available cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Driver ids are base+1 ..= base+drivers (token `sub` and ping `driver_id`). Default:
    /// 10^9 + (Unix seconds mod 10^5) × 10^5, so back-to-back runs use fresh ids: a driver
    /// id reused within a minute restarts from its route's first point, a "teleport" the
    /// cell refuses as `spoofed` against the fix the previous run left.
    #[arg(long)]
    pub driver_id_base: Option<u64>,
    /// Centre of the city the drivers roam, "lat,lng".
    #[arg(long, default_value = "52.52,13.405", value_parser = parse_point)]
    pub center: (f64, f64),
    /// Radius of that city, km.
    #[arg(long, default_value_t = 12.0)]
    pub city_km: f64,
    /// Instead of one run at `--rate`: step the rate up on the same connected drivers until
    /// the cell stops keeping up, and print the last rate that held (`--step`,
    /// `--step-duration`, `--warm-up`, `--max-rate`, `--max-loss-pct`, `--max-p99-ms`).
    #[arg(long)]
    pub find_max: bool,
    #[command(flatten)]
    pub steps: super::find_max::StepArgs,
}

/// Options of `replay`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub target: QuicTarget,
    /// The trace (see `loadgen/README.md`, "Trace format").
    #[arg(long)]
    pub trace: PathBuf,
    /// Play N times faster than recorded (timestamps still carry the real send time).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    #[arg(long)]
    pub share_sockets: Option<usize>,
    #[arg(long)]
    pub workers: Option<usize>,
}

pub fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} is not lat,lng"))?;
    let p = |v: &str| v.trim().parse::<f64>().map_err(|e| format!("{v:?}: {e}"));
    Ok((p(a)?, p(b)?))
}

/// The JSON report of a ping run.
#[derive(Debug, Clone, Serialize)]
pub struct PingReport {
    pub tool: &'static str,
    pub scenario: String,
    pub target: String,
    pub quic: String,
    pub started_unix_s: u64,
    pub config: serde_json::Value,
    pub machine: Machine,
    pub drivers: u64,
    pub connected: u64,
    pub connection_failures: u64,
    pub failure_samples: Vec<String>,
    pub connect_s: f64,
    pub sockets: usize,
    /// Pings handed to QUIC (whole run, ramp included).
    pub sent: u64,
    /// `send_datagram` errors (connection lost, datagrams refused).
    pub send_errors: u64,
    /// Send phase length, s.
    pub send_s: f64,
    /// Scheduled pings/s after ramp (trace average for replay).
    pub target_rate: f64,
    /// Pings/s sent in the steady window (after ramp-up).
    pub achieved_rate: f64,
    /// Pings/s sent over the whole send phase (ramp included): compare with the ingest rate.
    pub sent_rate_overall: f64,
    /// Accepted pings/s over the send phase (ramp included), by the server's counters.
    pub server_ingest_rate: f64,
    pub server: ServerPings,
    /// From `/metrics` totals: exact only when nothing else pings the cell.
    pub loss: Loss,
    /// Measured per driver from the cell's admin counters (`None` when the cell has no
    /// `GET /api/v1/admin/pings`).
    pub per_driver: Option<PerDriver>,
    /// The kernel's UDP counters over the send phase (whole machine: both directions of
    /// loopback QUIC, so this counts the cell's received packets plus loadgen's received
    /// ACK packets).
    pub udp: Option<fleet::UdpStats>,
    pub cpu: CpuUse,
    /// Pings sent per second of the run.
    pub timeline_sent_per_s: Vec<u64>,
    /// The `ping` op: sent, handed to QUIC in the steady window, failed sends, loss.
    pub ops: Vec<OpReport>,
    pub slo: Vec<SloResult>,
}

impl PingReport {
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} against {} (QUIC {}) — {} drivers, {} connected, {} failed, {} UDP sockets, connect {:.1}s\n",
            self.scenario,
            self.target,
            self.quic,
            self.drivers,
            self.connected,
            self.connection_failures,
            self.sockets,
            self.connect_s
        );
        s += &format!(
            "sent {} in {:.1}s ({:.0}/s)   target {:.0}/s   achieved {:.0}/s (steady)   send errors {}\n",
            self.sent,
            self.send_s,
            self.sent_rate_overall,
            self.target_rate,
            self.achieved_rate,
            self.send_errors
        );
        if self.server.scraped {
            s += &format!(
                "server: arrived {}  accepted {}  ingest {:.0}/s   rejected {:?}  datagrams {:?}\n",
                self.server.arrived,
                self.server.accepted,
                self.server_ingest_rate,
                self.server.rejected,
                self.server.datagrams
            );
            s += &format!(
                "loss: {} of {} ({:.3}%) = {} never read by the gateway + {} refused{}\n",
                self.loss.lost,
                self.loss.sent,
                self.loss.loss_pct,
                self.loss.lost_in_transit,
                self.loss.refused,
                if self.loss.foreign_traffic {
                    "   (server counted more than was sent: another client is pinging)"
                } else {
                    ""
                }
            );
        } else {
            s += "server: /metrics not scraped (loss unknown)\n";
        }
        match &self.per_driver {
            Some(p) => {
                s += &format!(
                    "per driver (cell's admin counters): {} drivers sent {}, cell received {} (accepted {}, rejected {}, stale {}); lost {} ({:.3}%), {} drivers lost some{}\n",
                    p.drivers,
                    p.sent,
                    p.received,
                    p.accepted,
                    p.rejected,
                    p.stale,
                    p.lost,
                    p.loss_pct,
                    p.drivers_with_loss,
                    if p.drivers_over_counted > 0 {
                        format!(
                            ", {} over-counted (id shared with another client)",
                            p.drivers_over_counted
                        )
                    } else {
                        String::new()
                    }
                );
                if !p.worst.is_empty() {
                    let w: Vec<String> = p
                        .worst
                        .iter()
                        .take(5)
                        .map(|d| format!("{} {}/{}", d.driver_id, d.lost, d.sent))
                        .collect();
                    s += &format!("worst drivers (lost/sent): {}\n", w.join(", "));
                }
            }
            None => {
                s += "per driver: the cell has no GET /api/v1/admin/pings (loss from /metrics only)\n"
            }
        }
        if let Some(u) = &self.udp {
            s += &format!(
                "kernel UDP (whole machine): {} datagrams delivered, {} dropped for a full receive buffer\n",
                u.in_datagrams, u.rcvbuf_errors
            );
        }
        s += &format!(
            "CPU (cores): loadgen {:.2}, target {}   load avg {} -> {}   {} × {}\n",
            self.cpu.loadgen_cores,
            self.cpu
                .target_cores
                .map_or("-".to_string(), |c| format!("{c:.2}")),
            self.machine.loadavg_start,
            self.machine.loadavg_end,
            self.machine.cores,
            self.machine.cpu_model
        );
        for e in &self.failure_samples {
            s += &format!("connect error sample: {e}\n");
        }
        s += &crate::report::slo::render(&self.slo);
        s
    }

    pub fn slo_passed(&self) -> bool {
        self.slo.iter().all(|r| r.pass)
    }

    /// The loss to judge by: per driver when the cell counts it, else from `/metrics`.
    pub fn loss_pct(&self) -> f64 {
        self.per_driver
            .as_ref()
            .map_or(self.loss.loss_pct, |p| p.loss_pct)
    }

    /// Per-second points of the `ping` op (sent per second).
    pub fn timeline(&self) -> Vec<TimelinePoint> {
        self.timeline_sent_per_s
            .iter()
            .enumerate()
            .map(|(i, &n)| TimelinePoint {
                t_s: (i + 1) as f64,
                ops: BTreeMap::from([(
                    "ping".to_string(),
                    TimelineOp {
                        ok_per_s: n as f64,
                        errors: 0,
                        p50_ms: 0.0,
                        p99_ms: 0.0,
                        max_ms: 0.0,
                    },
                )]),
            })
            .collect()
    }

    /// Facts for the HTML page.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![
            (
                "drivers connected / failed".into(),
                format!("{} / {}", self.connected, self.connection_failures),
            ),
            (
                "pings sent (whole run) / steady rate".into(),
                format!("{} / {:.0} per s", self.sent, self.achieved_rate),
            ),
            (
                "server ingest (accepted per s over the send phase)".into(),
                format!("{:.0}", self.server_ingest_rate),
            ),
            (
                "loss from /metrics totals".into(),
                format!(
                    "{} of {} ({:.3}%): {} never read, {} refused",
                    self.loss.lost,
                    self.loss.sent,
                    self.loss.loss_pct,
                    self.loss.lost_in_transit,
                    self.loss.refused
                ),
            ),
        ];
        if let Some(p) = &self.per_driver {
            f.push((
                "loss per driver (admin counters)".into(),
                format!(
                    "{} of {} ({:.3}%), {} drivers lost some",
                    p.lost, p.sent, p.loss_pct, p.drivers_with_loss
                ),
            ));
        }
        f
    }

    /// The HTML page (timeline and figures borrowed from `self`).
    pub fn page<'a>(&'a self, timeline: &'a [TimelinePoint]) -> Page<'a> {
        Page {
            title: format!("loadgen {} against {}", self.scenario, self.target),
            summary: String::new(),
            ops: &self.ops,
            timeline,
            slo: &self.slo,
            server: self.server.rows(),
            cpu: &self.cpu,
            machine: &self.machine,
            facts: self.facts(),
        }
    }
}

/// One driver as a worker sees it.
pub(super) struct Slot {
    pub(super) id: u64,
    pub(super) client: Arc<DriverClient>,
    pub(super) route: Route,
    pub(super) last_ms: u64,
    pub(super) seq: u64,
    pub(super) dead: bool,
    /// Pings handed to QUIC for this driver.
    pub(super) sent: u64,
}

/// Live counters of a ping run (the progress line; `city` reads them too).
#[derive(Default)]
pub struct Counters {
    pub sent: AtomicU64,
    pub steady_sent: AtomicU64,
    pub errors: AtomicU64,
}

/// What a sender task hands back: the pings it recorded (for `record`) and each driver's
/// sent count.
pub(super) type Sent = (Vec<TraceRow>, Vec<(u64, u64)>);

fn per_slot(slots: &[Slot]) -> Vec<(u64, u64)> {
    slots.iter().map(|s| (s.id, s.sent)).collect()
}

impl Slot {
    fn send(&mut self, p: &LocationPing, c: &Counters, steady: bool) -> bool {
        if self.dead {
            return false;
        }
        match self.client.send_ping(p) {
            Ok(()) => {
                self.sent += 1;
                c.sent.fetch_add(1, Ordering::Relaxed);
                if steady {
                    c.steady_sent.fetch_add(1, Ordering::Relaxed);
                }
                true
            }
            Err(_) => {
                c.errors.fetch_add(1, Ordering::Relaxed);
                self.dead = self.client.connection().close_reason().is_some();
                false
            }
        }
    }
}

/// Synthetic worker: paced round-robin over its drivers; returns the pings it sent when
/// `record` is set.
pub(super) async fn synthetic(
    mut slots: Vec<Slot>,
    sched: Schedule,
    start: Instant,
    c: Arc<Counters>,
    record: bool,
) -> Sent {
    let mut rows = Vec::new();
    pace(&mut slots, sched, start, &c, record.then_some(&mut rows)).await;
    (rows, per_slot(&slots))
}

/// Sends what `sched` owes (counted from `start`) round-robin over `slots` until it ends;
/// each ping sent is also written to `rows` when given. `--find-max` runs it once per step on
/// the same slots.
pub(super) async fn pace(
    slots: &mut [Slot],
    sched: Schedule,
    start: Instant,
    c: &Counters,
    mut rows: Option<&mut Vec<TraceRow>>,
) {
    let (ramp, total) = (sched.ramp_up, sched.total());
    let (mut done, mut next) = (0u64, 0usize);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let start_ms = unix_ms();
    loop {
        tick.tick().await;
        let t = start.elapsed();
        if t >= total || slots.is_empty() {
            break;
        }
        let owed = sched.due(t) as u64;
        let now = unix_ms();
        let steady = t >= ramp;
        while done < owed {
            done += 1;
            let len = slots.len();
            let s = &mut slots[next % len];
            next += 1;
            s.route
                .advance(now.saturating_sub(s.last_ms) as f64 / 1000.0);
            s.last_ms = now;
            let p = s.route.ping(s.id, now);
            if s.send(&p, c, steady)
                && let Some(rows) = rows.as_deref_mut()
            {
                rows.push(TraceRow {
                    driver: s.id,
                    ts_ms: now.saturating_sub(start_ms),
                    lat: p.lat,
                    lng: p.lng,
                    heading: p.heading_deg,
                    speed: p.speed_mps,
                });
            }
        }
    }
}

/// Replay worker: sends its rows (sorted by ts) at `ts_ms / speed` after `start`.
pub(super) async fn replayer(
    mut slots: Vec<Slot>,
    rows: Vec<(usize, TraceRow)>,
    speed: f64,
    start: Instant,
    c: Arc<Counters>,
) -> Sent {
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut i = 0;
    while i < rows.len() {
        tick.tick().await;
        let played_ms = start.elapsed().as_secs_f64() * 1000.0 * speed;
        let now = unix_ms();
        while i < rows.len() && rows[i].1.ts_ms as f64 <= played_ms {
            let (k, r) = rows[i];
            i += 1;
            let s = &mut slots[k];
            s.seq += 1;
            let p = LocationPing {
                driver_id: s.id,
                lat: r.lat,
                lng: r.lng,
                heading_deg: r.heading,
                speed_mps: r.speed,
                accuracy_m: 5.0,
                client_ts_ms: now,
                seq: s.seq,
            };
            s.send(&p, &c, true);
        }
    }
    (Vec::new(), per_slot(&slots))
}

/// What to run.
pub enum Mode {
    /// Synthetic drivers; `Some(path)` also writes what was sent as a trace (`record`).
    Synthetic(PingArgs, Option<PathBuf>),
    Replay(ReplayArgs),
}

impl Mode {
    pub fn target(&self) -> &QuicTarget {
        match self {
            Mode::Synthetic(a, _) => &a.target,
            Mode::Replay(a) => &a.target,
        }
    }
}

pub use super::ping_run::{execute, run};
