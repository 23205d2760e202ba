//! `city`: the whole city at once, at the shape of the seed's numbers scaled to one cell.
//!
//! Three halves run side by side in one process and start their measured phases together
//! (a barrier after each one's set-up):
//! - HTTP: browsing and ordering at `--read-ratio` browse requests per order flow (the
//!   seed's 10:1), `--orders-rate` order flows/s at base, on the `--profile` (default a
//!   dinner rush: base → 5× peak → base over the steady window);
//! - `pings`: `--drivers` drivers over QUIC at `--ping-rate` pings/s (the seed: one ping
//!   per driver every 5 s);
//! - `track`: `--trackers` live orders carried by drivers who accept their offers, each
//!   watched over WebSocket (ping → push latency).
//!
//! One summary covers all of it: the HTTP ops, `ping` (rate, loss) and `push` (latency),
//! with SLOs over every op, the server's deltas and CPU per process; JSON and HTML as
//! every scenario.

use crate::driver::StatusFn;
use crate::pacing::{PEAK, Profile, parse_duration};
use crate::quic::fleet::QuicTarget;
use crate::quic::pings::{self, PingArgs, PingReport, parse_point};
use crate::quic::track::{self, TrackArgs, TrackReport};
use crate::quic::{loss, ping_run};
use crate::report::output::OutputArgs;
use crate::report::{Report, TimelinePoint, slo, summary};
use crate::run::{self, Common, Which};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Options of `city`.
#[derive(Debug, Clone, clap::Args)]
pub struct CityArgs {
    #[command(flatten)]
    pub target: QuicTarget,
    /// Order flows per second at base (the peak is 5× with `--profile dinner`).
    #[arg(long, default_value_t = 5.0)]
    pub orders_rate: f64,
    /// Browse requests (searches and menu reads) per order flow.
    #[arg(long, default_value_t = 10.0)]
    pub read_ratio: f64,
    #[arg(long, value_enum, default_value_t = Profile::Dinner)]
    pub profile: Profile,
    /// Steady window after the ramp-up (the profile spans it).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Drivers pinging (connections).
    #[arg(long, default_value_t = 1000)]
    pub drivers: u64,
    /// Their aggregate pings/s (default: one per driver every 5 s, as in the seed).
    #[arg(long)]
    pub ping_rate: Option<f64>,
    /// Multiplex the pinging drivers over K UDP sockets.
    #[arg(long)]
    pub share_sockets: Option<usize>,
    /// Live orders watched over WebSocket (one driver and one tracker each).
    #[arg(long, default_value_t = 20)]
    pub trackers: u64,
    #[arg(long, default_value = "52.52,13.405", value_parser = parse_point)]
    pub center: (f64, f64),
    #[arg(long, default_value_t = 5.0)]
    pub spread_km: f64,
    #[arg(long, default_value_t = 200)]
    pub customers: u32,
    #[arg(long, default_value_t = 200)]
    pub warmup_points: usize,
    #[arg(long, default_value_t = 300)]
    pub warmup_menus: usize,
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The combined report: the HTTP report extended with the `ping` and `push` ops, the
/// SLOs over all of them and a merged timeline; the two QUIC reports in full.
#[derive(Debug, Clone, Serialize)]
pub struct CityReport {
    #[serde(flatten)]
    pub combined: Report,
    pub pings: PingReport,
    pub track: TrackReport,
}

impl CityReport {
    pub fn slo_passed(&self) -> bool {
        self.combined.slo_passed()
    }

    pub fn render(&self) -> String {
        let mut s = summary::render(&self.combined);
        s += "--- drivers pinging ---\n";
        s += &self.pings.render();
        s += "--- trackers ---\n";
        s += &track::render(&self.track);
        s
    }
}

/// Per second of the run, the ops of all halves in one point.
pub fn merge_timelines(parts: &[&[TimelinePoint]]) -> Vec<TimelinePoint> {
    let mut by_s: BTreeMap<u64, TimelinePoint> = BTreeMap::new();
    for part in parts {
        for p in *part {
            let k = p.t_s.round().max(0.0) as u64;
            let e = by_s.entry(k).or_insert_with(|| TimelinePoint {
                t_s: k as f64,
                ops: BTreeMap::new(),
            });
            e.ops
                .extend(p.ops.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    by_s.into_values().collect()
}

/// Runs `city`; prints and writes the reports.
pub async fn run(a: CityArgs) -> anyhow::Result<CityReport> {
    if !(a.orders_rate > 0.0 && a.orders_rate.is_finite()) {
        anyhow::bail!("--orders-rate must be positive");
    }
    let quiet = QuicTarget {
        out: OutputArgs {
            progress: crate::driver::ProgressMode::Off,
            ..OutputArgs::default()
        },
        ..a.target.clone()
    };
    let common = Common {
        target: a.target.target.clone(),
        rate: a.orders_rate * (1.0 + a.read_ratio.max(0.0)),
        duration: a.duration,
        ramp_up: a.ramp_up,
        max_in_flight: a.max_in_flight,
        timeout: a.timeout,
        profile: a.profile,
        out: OutputArgs {
            progress: a.target.out.progress,
            ..OutputArgs::default()
        },
        token_from_dev: a.target.token_from_dev,
        jwt_secret: a.target.jwt_secret.clone(),
        center: a.center,
        spread_km: a.spread_km,
        radius: "3km".into(),
        customers: a.customers,
        warmup_points: a.warmup_points,
        warmup_menus: a.warmup_menus,
        target_pid: a.target.target_pid,
    };
    let ping_args = PingArgs {
        target: quiet.clone(),
        drivers: a.drivers,
        rate: a.ping_rate.unwrap_or(a.drivers as f64 / 5.0),
        duration: a.duration,
        ramp_up: a.ramp_up,
        share_sockets: a.share_sockets,
        workers: None,
        driver_id_base: None,
        center: a.center,
        city_km: a.spread_km + 3.0,
        find_max: false,
        steps: crate::quic::find_max::StepArgs::default(),
    };
    let track_args = TrackArgs {
        target: quiet,
        trackers: a.trackers,
        duration: a.ramp_up + a.duration,
        // The city's ramp-up is the trackers' settling window too.
        settle: a.ramp_up,
        ping_interval: Duration::from_secs(1),
        driver_id_base: 3_000_000 + (crate::quic::unix_ms() / 1000 % 100_000) * 1_000,
        center: a.center,
        spread_km: a.spread_km,
        warmup_points: 100,
        warmup_menus: 40,
    };
    eprintln!(
        "city: {:.1} orders/s and {:.0} browse/s at base ({:?}{}), {} drivers at {:.0} pings/s, {} trackers",
        a.orders_rate,
        a.orders_rate * a.read_ratio,
        a.profile,
        if a.profile == Profile::Dinner {
            format!(", peak {PEAK}×")
        } else {
            String::new()
        },
        a.drivers,
        ping_args.rate,
        a.trackers
    );
    let gate = Arc::new(tokio::sync::Barrier::new(3));
    let ping_counters = Arc::new(pings::Counters::default());
    let track_counts = Arc::new(track::Counts::default());
    let status: StatusFn = {
        let (p, t) = (ping_counters.clone(), track_counts.clone());
        Arc::new(move || {
            format!(
                "| pings sent {} errors {} | pushes {} assigned {}",
                p.sent.load(Ordering::Relaxed),
                p.errors.load(Ordering::Relaxed),
                t.updates.load(Ordering::Relaxed),
                t.assignments.load(Ordering::Relaxed)
            )
        })
    };
    let http_hooks = run::Hooks {
        gate: Some(gate.clone()),
        status: Some(status),
        families: loss::FAMILIES,
    };
    let ping_mode = pings::Mode::Synthetic(ping_args, None);
    let ping_hooks = ping_run::Hooks {
        gate: Some(gate.clone()),
        counters: Some(ping_counters),
        quiet: true,
    };
    let track_hooks = track::Hooks {
        gate: Some(gate),
        counts: Some(track_counts),
        quiet: true,
    };
    // The first error ends the run (the other halves are dropped, so none waits at the
    // barrier for a half that failed in its set-up).
    let (http, pings, track) = tokio::try_join!(
        run::run_with(
            Which::City {
                read_ratio: a.read_ratio
            },
            &common,
            http_hooks
        ),
        ping_run::execute(&ping_mode, ping_hooks),
        track::execute(&track_args, track_hooks),
    )?;
    let mut combined = http;
    combined.scenario = "city".into();
    combined.ops.extend(pings.ops.iter().cloned());
    combined.ops.extend(track.ops.iter().cloned());
    combined.slo = slo::evaluate(&a.target.out.slo, &combined.ops);
    let ping_timeline = pings.timeline();
    combined.timeline = merge_timelines(&[&combined.timeline, &ping_timeline, &track.timeline]);
    if let Some(cfg) = combined.config.as_object_mut() {
        cfg.insert(
            "city".into(),
            serde_json::json!({
                "orders_rate": a.orders_rate, "read_ratio": a.read_ratio,
                "profile": format!("{:?}", a.profile), "drivers": a.drivers,
                "ping_rate": pings.target_rate, "trackers": a.trackers,
                "slo": a.target.out.slo.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        );
    }
    let report = CityReport {
        combined,
        pings,
        track,
    };
    let mut page = report.combined.page();
    page.facts = report.pings.facts();
    page.facts.extend(report.track.page().facts);
    a.target.out.emit(&report.render(), &report, page)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::TimelineOp;

    fn point(t_s: f64, op: &str, ok: f64) -> TimelinePoint {
        let o = TimelineOp {
            ok_per_s: ok,
            errors: 0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            max_ms: 3.0,
        };
        TimelinePoint {
            t_s,
            ops: BTreeMap::from([(op.to_string(), o)]),
        }
    }

    #[test]
    fn timelines_merge_by_second() {
        let http = [point(1.02, "search", 50.0), point(2.01, "search", 60.0)];
        let pings = [
            point(1.0, "ping", 400.0),
            point(2.0, "ping", 410.0),
            point(3.0, "ping", 5.0),
        ];
        let push = [point(1.97, "push", 3.0)];
        let m = merge_timelines(&[&http, &pings, &push]);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].t_s, 1.0);
        assert_eq!(m[0].ops.len(), 2);
        assert_eq!(m[1].ops.len(), 3);
        assert_eq!(m[1].ops["push"].ok_per_s, 3.0);
        assert_eq!(m[2].ops.keys().collect::<Vec<_>>(), ["ping"]);
    }
}
