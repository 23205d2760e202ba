//! One `pings`, `record` or `replay` run end to end: connect the drivers, count what the
//! cell has seen, send on the schedule (or the trace) with a live progress line, count
//! again, and build the report.

use super::fleet::{self, CpuMark, Fleet};
use super::loss::{Loss, ServerPings};
use super::pings::{Counters, Mode, PingReport, Slot, replayer, synthetic};
use super::seen;
use super::trace::{self, TraceRow};
use super::unix_ms;
use crate::driver::{Progress, ProgressMode};
use crate::pacing::Schedule;
use crate::report::OpReport;
use crate::report::machine::{self, Machine};
use crate::report::slo;
use anyhow::Context;
use driver_client::{City, DriverClient, Route};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How `city` runs a ping phase next to its other halves.
#[derive(Default, Clone)]
pub struct Hooks {
    /// Waited on once the drivers are connected, right before sending.
    pub gate: Option<Arc<tokio::sync::Barrier>>,
    /// Live counters to share (the city's progress line reads them).
    pub counters: Option<Arc<Counters>>,
    /// No progress display of its own.
    pub quiet: bool,
}

/// Runs `pings`, `record` or `replay` end to end; prints and writes the report.
pub async fn run(mode: Mode) -> anyhow::Result<PingReport> {
    let report = execute(&mode, Hooks::default()).await?;
    let t = mode.target();
    let timeline = report.timeline();
    t.out
        .emit(&report.render(), &report, report.page(&timeline))?;
    Ok(report)
}

/// Runs the scenario and returns its report without printing it (the trace of `record`
/// is written).
pub async fn execute(mode: &Mode, hooks: Hooks) -> anyhow::Result<PingReport> {
    let t = mode.target().clone();
    let (share, workers) = match mode {
        Mode::Synthetic(a, _) => (a.share_sockets, a.workers),
        Mode::Replay(a) => (a.share_sockets, a.workers),
    };
    let workers = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let mut machine = Machine::at_start();
    let started_unix_s = unix_ms() / 1000;
    let http = crate::http::client(Duration::from_secs(10), 64)?;
    let tokens = Arc::new(t.tokens(http.clone())?);
    let trace_rows = match mode {
        Mode::Replay(a) => {
            let f = std::fs::File::open(&a.trace)
                .with_context(|| format!("opening {}", a.trace.display()))?;
            trace::read(std::io::BufReader::new(f))?
        }
        Mode::Synthetic(..) => Vec::new(),
    };
    let ids: Vec<u64> = match mode {
        Mode::Synthetic(a, _) => {
            let base = a
                .driver_id_base
                .unwrap_or_else(|| default_id_base(started_unix_s));
            (1..=a.drivers).map(|i| base + i).collect()
        }
        Mode::Replay(_) => {
            let set: std::collections::BTreeSet<u64> =
                trace_rows.iter().map(|r| r.driver).collect();
            set.into_iter().collect()
        }
    };
    eprintln!("connecting {} drivers ...", ids.len());
    let fleet: Fleet = fleet::connect(&t, tokens.clone(), &ids, share).await?;
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
    let city = match mode {
        Mode::Synthetic(a, _) => City {
            center_lat: a.center.0,
            center_lng: a.center.1,
            radius_m: a.city_km * 1000.0,
        },
        Mode::Replay(_) => City::default(),
    };
    let (per_worker, where_is) = spread(&connected, workers, city, unix_ms());
    if let Some(g) = &hooks.gate {
        g.wait().await;
    }
    let seen0 = match seen::fetch(&http, &t.target, &tokens).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("per-driver counters unavailable: {e:#}");
            None
        }
    };
    let before = t.scrape(&http).await;
    let cpu0 = CpuMark::now(t.target_pid);
    let udp0 = fleet::UdpStats::read();
    let counters = hooks.counters.clone().unwrap_or_default();
    let start = Instant::now();
    let (schedule, config) = match mode {
        Mode::Synthetic(a, rec) => (
            Schedule::flat(a.rate, a.ramp_up, a.duration),
            serde_json::json!({"rate": a.rate, "duration_s": a.duration.as_secs_f64(),
                "ramp_up_s": a.ramp_up.as_secs_f64(), "share_sockets": a.share_sockets,
                "workers": workers, "first_driver_id": ids.first(),
                "center": [a.center.0, a.center.1], "city_km": a.city_km,
                "record": rec.as_ref().map(|p| p.display().to_string()),
                "slo": t.out.slo.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "tokens": if t.jwt_secret.is_some() { "minted" } else { "dev endpoint" }}),
        ),
        Mode::Replay(a) => {
            let span_ms = trace_rows.last().map_or(0, |r| r.ts_ms).max(1) as f64 / a.speed;
            let rate = trace_rows.len() as f64 * 1000.0 / span_ms;
            (
                Schedule::flat(
                    rate,
                    Duration::ZERO,
                    Duration::from_secs_f64(span_ms / 1000.0),
                ),
                serde_json::json!({"trace": a.trace.display().to_string(), "speed": a.speed,
                    "rows": trace_rows.len(), "workers": workers, "share_sockets": a.share_sockets,
                    "slo": t.out.slo.iter().map(ToString::to_string).collect::<Vec<_>>()}),
            )
        }
    };
    let mut set = tokio::task::JoinSet::new();
    match mode {
        Mode::Synthetic(_, rec) => {
            let share = Schedule {
                rate: schedule.rate / workers as f64,
                ..schedule
            };
            for slots in per_worker {
                set.spawn(synthetic(
                    slots,
                    share,
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
    // Per-second timeline and the progress display, until the senders are done.
    let mut progress = Progress::new(if hooks.quiet {
        ProgressMode::Off
    } else {
        t.out.progress
    });
    let mut timeline = Vec::new();
    let mut recorded = Vec::new();
    let mut sent_by: BTreeMap<u64, u64> = BTreeMap::new();
    let mut last = 0;
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                Some(r) => {
                    let (rows, sent) = r.context("sender task")?;
                    recorded.extend(rows);
                    sent_by.extend(sent);
                }
                None => break,
            },
            _ = every.tick() => {
                let s = counters.sent.load(Ordering::Relaxed);
                let el = start.elapsed();
                timeline.push(s - last);
                progress.update(el, &format!(
                    "pings {}/s (target {:.0})  sent {s}  send errors {}  connected {}",
                    s - last,
                    schedule.rate_at(el),
                    counters.errors.load(Ordering::Relaxed),
                    connected.len()
                ));
                last = s;
            }
        }
    }
    progress.finish();
    let send_s = start.elapsed().as_secs_f64();
    let sent = counters.sent.load(Ordering::Relaxed);
    timeline.push(sent - last);
    // Let the last datagrams be read before the final counts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu = cpu0.since(t.target_pid);
    let udp = fleet::UdpStats::read().zip(udp0).map(|(b, a)| b.since(&a));
    let after = t.scrape(&http).await;
    let seen1 = match &seen0 {
        Some(_) => seen::fetch(&http, &t.target, &tokens).await.ok().flatten(),
        None => None,
    };
    fleet::close(&fleet).await;
    machine.loadavg_end = machine::loadavg();
    let server = match (&before, &after) {
        (Some(b), Some(a)) => ServerPings::from_scrapes(b, a),
        _ => ServerPings::default(),
    };
    let per_driver = seen0
        .zip(seen1)
        .map(|(b, a)| seen::per_driver(&sent_by, &b, &a));
    let steady_s = (send_s - schedule.ramp_up.as_secs_f64()).max(1e-9);
    let steady_sent = counters.steady_sent.load(Ordering::Relaxed);
    let send_errors = counters.errors.load(Ordering::Relaxed);
    let loss = Loss::new(sent, &server);
    let mut op = OpReport::untimed(
        "ping",
        sent,
        steady_sent,
        send_errors,
        Duration::from_secs_f64(steady_s),
    );
    op.loss_pct = Some(
        per_driver
            .as_ref()
            .map_or(loss.loss_pct, |p: &seen::PerDriver| p.loss_pct),
    );
    let ops = vec![op];
    let slo = slo::evaluate(&t.out.slo, &ops);
    let report = PingReport {
        tool: "loadgen",
        scenario: match mode {
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
        send_errors,
        send_s,
        target_rate: schedule.rate,
        achieved_rate: steady_sent as f64 / steady_s,
        sent_rate_overall: sent as f64 / send_s.max(1e-9),
        server_ingest_rate: server.accepted as f64 / send_s.max(1e-9),
        loss,
        per_driver,
        udp,
        server,
        cpu,
        timeline_sent_per_s: timeline,
        ops,
        slo,
    };
    if let Mode::Synthetic(_, Some(path)) = mode {
        let f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        trace::write(f, &mut recorded)?;
        println!("trace: {} ({} pings)", path.display(), recorded.len());
    }
    Ok(report)
}

/// The first driver id minus one when `--driver-id-base` is not given: 10^9 + (Unix seconds
/// mod 10^5) × 10^5, fresh for back-to-back runs.
pub(super) fn default_id_base(started_unix_s: u64) -> u64 {
    1_000_000_000 + (started_unix_s % 100_000) * 100_000
}

/// Driver id -> (worker, slot).
pub(super) type WhereIs = HashMap<u64, (usize, usize)>;

/// The connected drivers spread over `workers` senders: driver j goes to worker j % workers,
/// slot j / workers. Also returns where each driver is, (worker, slot), for replay.
pub(super) fn spread(
    connected: &[(u64, Arc<DriverClient>)],
    workers: usize,
    city: City,
    now_ms: u64,
) -> (Vec<Vec<Slot>>, WhereIs) {
    let mut per_worker: Vec<Vec<Slot>> = (0..workers).map(|_| Vec::new()).collect();
    let mut where_is = HashMap::new();
    for (j, (id, client)) in connected.iter().enumerate() {
        where_is.insert(*id, (j % workers, per_worker[j % workers].len()));
        per_worker[j % workers].push(Slot {
            id: *id,
            client: client.clone(),
            route: Route::new(city, *id),
            last_ms: now_ms,
            seq: 0,
            dead: false,
            sent: 0,
        });
    }
    (per_worker, where_is)
}
