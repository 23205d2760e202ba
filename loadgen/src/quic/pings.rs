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

use super::fleet::{self, CpuMark, Fleet, QuicTarget};
use super::loss::{Loss, ServerPings};
use super::trace::{self, TraceRow};
use super::unix_ms;
use crate::pacing::parse_duration;
use crate::report::machine::{self, CpuUse, Machine};
use anyhow::Context;
use driver_client::{City, DriverClient, Route};
use schemas::LocationPing;
use serde::Serialize;
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

/// Pings owed by `t` into a schedule of `rate`/s after a linear ramp of `ramp_s`
/// (the inverse of [`crate::pacing::Schedule::offset`]).
pub fn due(rate: f64, ramp_s: f64, t_s: f64) -> f64 {
    if t_s <= 0.0 {
        0.0
    } else if t_s < ramp_s {
        rate * t_s * t_s / (2.0 * ramp_s)
    } else {
        rate * (ramp_s / 2.0 + (t_s - ramp_s))
    }
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
    pub loss: Loss,
    /// The kernel's UDP counters over the send phase (whole machine: both directions of
    /// loopback QUIC, so this counts the cell's received packets plus loadgen's received
    /// ACK packets).
    pub udp: Option<fleet::UdpStats>,
    pub cpu: CpuUse,
    /// Pings sent per second of the run.
    pub timeline_sent_per_s: Vec<u64>,
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
        s
    }
}

/// One driver as a worker sees it.
struct Slot {
    id: u64,
    client: Arc<DriverClient>,
    route: Route,
    last_ms: u64,
    seq: u64,
    dead: bool,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    steady_sent: AtomicU64,
    errors: AtomicU64,
}

impl Slot {
    fn send(&mut self, p: &LocationPing, c: &Counters, steady: bool) -> bool {
        if self.dead {
            return false;
        }
        match self.client.send_ping(p) {
            Ok(()) => {
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
async fn synthetic(
    mut slots: Vec<Slot>,
    rate: f64,
    ramp: Duration,
    total: Duration,
    start: Instant,
    c: Arc<Counters>,
    record: bool,
) -> Vec<TraceRow> {
    let mut rows = Vec::new();
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
        let owed = due(rate, ramp.as_secs_f64(), t.as_secs_f64()) as u64;
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
            if s.send(&p, &c, steady) && record {
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
    rows
}

/// Replay worker: sends its rows (sorted by ts) at `ts_ms / speed` after `start`.
async fn replayer(
    mut slots: Vec<Slot>,
    rows: Vec<(usize, TraceRow)>,
    speed: f64,
    start: Instant,
    c: Arc<Counters>,
) -> Vec<TraceRow> {
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
    Vec::new()
}

/// What to run.
pub enum Mode {
    /// Synthetic drivers; `Some(path)` also writes what was sent as a trace (`record`).
    Synthetic(PingArgs, Option<PathBuf>),
    Replay(ReplayArgs),
}

/// Runs `pings`, `record` or `replay` end to end; prints and writes the report.
pub async fn run(mode: Mode) -> anyhow::Result<PingReport> {
    let (t, share, workers) = match &mode {
        Mode::Synthetic(a, _) => (a.target.clone(), a.share_sockets, a.workers),
        Mode::Replay(a) => (a.target.clone(), a.share_sockets, a.workers),
    };
    let workers = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let mut machine = Machine::at_start();
    let started_unix_s = unix_ms() / 1000;
    let http = crate::http::client(Duration::from_secs(10), 64)?;
    let tokens = Arc::new(t.tokens(http.clone())?);
    let trace_rows = match &mode {
        Mode::Replay(a) => {
            let f = std::fs::File::open(&a.trace)
                .with_context(|| format!("opening {}", a.trace.display()))?;
            trace::read(std::io::BufReader::new(f))?
        }
        Mode::Synthetic(..) => Vec::new(),
    };
    let ids: Vec<u64> = match &mode {
        Mode::Synthetic(a, _) => {
            let base = a
                .driver_id_base
                .unwrap_or(1_000_000_000 + (started_unix_s % 100_000) * 100_000);
            (1..=a.drivers).map(|i| base + i).collect()
        }
        Mode::Replay(_) => {
            let set: std::collections::BTreeSet<u64> =
                trace_rows.iter().map(|r| r.driver).collect();
            set.into_iter().collect()
        }
    };
    eprintln!("connecting {} drivers ...", ids.len());
    let fleet: Fleet = fleet::connect(&t, tokens, &ids, share).await?;
    fleet::drain_control(&fleet);
    let connected: Vec<(u64, Arc<DriverClient>)> = fleet
        .drivers
        .iter()
        .filter_map(|(id, c)| c.clone().map(|c| (*id, c)))
        .collect();
    eprintln!(
        "{} connected, {} failed in {:.1}s",
        connected.len(),
        fleet.failures,
        fleet.connect_s
    );
    // Spread drivers over workers: driver j goes to worker j % workers, slot j / workers.
    let now = unix_ms();
    let mut per_worker: Vec<Vec<Slot>> = (0..workers).map(|_| Vec::new()).collect();
    let mut where_is = std::collections::HashMap::new();
    for (j, (id, client)) in connected.iter().enumerate() {
        let city = match &mode {
            Mode::Synthetic(a, _) => City {
                center_lat: a.center.0,
                center_lng: a.center.1,
                radius_m: a.city_km * 1000.0,
            },
            Mode::Replay(_) => City::default(),
        };
        where_is.insert(*id, (j % workers, per_worker[j % workers].len()));
        per_worker[j % workers].push(Slot {
            id: *id,
            client: client.clone(),
            route: Route::new(city, *id),
            last_ms: now,
            seq: 0,
            dead: false,
        });
    }
    let before = t.scrape(&http).await;
    let cpu0 = CpuMark::now(t.target_pid);
    let udp0 = fleet::UdpStats::read();
    let counters = Arc::new(Counters::default());
    let start = Instant::now();
    let (target_rate, steady_from, config) = match &mode {
        Mode::Synthetic(a, rec) => (
            a.rate,
            a.ramp_up,
            serde_json::json!({"rate": a.rate, "duration_s": a.duration.as_secs_f64(),
                "ramp_up_s": a.ramp_up.as_secs_f64(), "share_sockets": a.share_sockets,
                "workers": workers, "first_driver_id": ids.first(),
                "center": [a.center.0, a.center.1], "city_km": a.city_km,
                "record": rec.as_ref().map(|p| p.display().to_string()),
                "tokens": if t.jwt_secret.is_some() { "minted" } else { "dev endpoint" }}),
        ),
        Mode::Replay(a) => {
            let span_ms = trace_rows.last().map_or(0, |r| r.ts_ms).max(1) as f64 / a.speed;
            (
                trace_rows.len() as f64 * 1000.0 / span_ms,
                Duration::ZERO,
                serde_json::json!({"trace": a.trace.display().to_string(), "speed": a.speed,
                    "rows": trace_rows.len(), "workers": workers, "share_sockets": a.share_sockets}),
            )
        }
    };
    let mut set = tokio::task::JoinSet::new();
    match &mode {
        Mode::Synthetic(a, rec) => {
            let total = a.ramp_up + a.duration;
            for slots in per_worker {
                let share = a.rate / workers as f64;
                set.spawn(synthetic(
                    slots,
                    share,
                    a.ramp_up,
                    total,
                    start,
                    counters.clone(),
                    rec.is_some(),
                ));
            }
        }
        Mode::Replay(a) => {
            let mut rows: Vec<Vec<(usize, TraceRow)>> = (0..workers).map(|_| Vec::new()).collect();
            for r in &trace_rows {
                if let Some(&(w, k)) = where_is.get(&r.driver) {
                    rows[w].push((k, *r));
                }
            }
            for (slots, rows) in per_worker.into_iter().zip(rows) {
                set.spawn(replayer(slots, rows, a.speed, start, counters.clone()));
            }
        }
    }
    // Per-second timeline and a progress line every 5 s, until the senders are done.
    let mut timeline = Vec::new();
    let mut recorded = Vec::new();
    let mut last = 0;
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                Some(r) => recorded.extend(r.context("sender task")?),
                None => break,
            },
            _ = every.tick() => {
                let s = counters.sent.load(Ordering::Relaxed);
                timeline.push(s - last);
                last = s;
                if timeline.len() % 5 == 0 {
                    eprintln!("{:>4}s  sent {s}  {}/s  errors {}", timeline.len(), timeline[timeline.len() - 1],
                        counters.errors.load(Ordering::Relaxed));
                }
            }
        }
    }
    let send_s = start.elapsed().as_secs_f64();
    let sent = counters.sent.load(Ordering::Relaxed);
    timeline.push(sent - last);
    // Let the last datagrams be read before the final scrape.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu0.since(t.target_pid);
    let udp = fleet::UdpStats::read().zip(udp0).map(|(b, a)| b.since(&a));
    let after = t.scrape(&http).await;
    fleet::close(&fleet).await;
    machine.loadavg_end = machine::loadavg();
    let server = match (&before, &after) {
        (Some(b), Some(a)) => ServerPings::from_scrapes(b, a),
        _ => ServerPings::default(),
    };
    let steady_s = (send_s - steady_from.as_secs_f64()).max(1e-9);
    let report = PingReport {
        tool: "loadgen",
        scenario: match &mode {
            Mode::Synthetic(_, None) => "pings",
            Mode::Synthetic(_, Some(_)) => "record",
            Mode::Replay(_) => "replay",
        }
        .to_string(),
        target: t.target.clone(),
        quic: t.quic.to_string(),
        started_unix_s,
        config,
        machine,
        drivers: ids.len() as u64,
        connected: connected.len() as u64,
        connection_failures: fleet.failures,
        failure_samples: fleet.failure_samples.clone(),
        connect_s: fleet.connect_s,
        sockets: fleet.sockets,
        sent,
        send_errors: counters.errors.load(Ordering::Relaxed),
        send_s,
        target_rate,
        achieved_rate: counters.steady_sent.load(Ordering::Relaxed) as f64 / steady_s,
        sent_rate_overall: sent as f64 / send_s.max(1e-9),
        server_ingest_rate: server.accepted as f64 / send_s.max(1e-9),
        loss: Loss::new(sent, &server),
        udp,
        server,
        cpu,
        timeline_sent_per_s: timeline,
    };
    if let Mode::Synthetic(_, Some(path)) = &mode {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        trace::write(f, &mut recorded)?;
        println!("trace: {} ({} pings)", path.display(), recorded.len());
    }
    print!("{}", report.render());
    if let Some(p) = &t.report_json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
        println!("report: {}", p.display());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_matches_the_schedule() {
        assert_eq!(due(1000.0, 2.0, 0.0), 0.0);
        assert!((due(1000.0, 2.0, 2.0) - 1000.0).abs() < 1e-9);
        assert!((due(1000.0, 2.0, 3.0) - 2000.0).abs() < 1e-9);
        assert!((due(1000.0, 0.0, 1.5) - 1500.0).abs() < 1e-9);
        // The inverse of Schedule::offset.
        let s = crate::pacing::Schedule {
            rate: 1000.0,
            ramp_up: Duration::from_secs(2),
            duration: Duration::from_secs(2),
        };
        for i in [1u64, 10, 500, 999, 1500] {
            let t = s.offset(i).unwrap().as_secs_f64();
            assert!((due(1000.0, 2.0, t) - i as f64).abs() < 1e-6, "{i}");
        }
    }
}
