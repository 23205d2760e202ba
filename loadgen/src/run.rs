//! One run end to end: tokens, warm-up, metrics scrape, the driven scenario, the report.

use crate::auth::{TokenSource, Tokens};
use crate::driver::{DriveOpts, StatusFn, drive};
use crate::http::{Http, client};
use crate::pacing::{Profile, Schedule, parse_duration};
use crate::report::machine::{self, CpuUse, Machine};
use crate::report::metrics::{self, ServerDeltas};
use crate::report::output::OutputArgs;
use crate::report::slo;
use crate::report::stats::Recorder;
use crate::report::{OpReport, RampCounts, Report, steady_window, summary};
use crate::scenarios::browse::Browse;
use crate::scenarios::city::CityMix;
use crate::scenarios::orders::{self, Orders};
use crate::scenarios::{Area, Ctx, Menu, Scenario, Search, pool};
use anyhow::{Context, bail};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Options every HTTP scenario takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Base URL of the cell (or router).
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub target: String,
    /// Target rate after ramp-up: requests/s (orders/s for `orders`).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Steady-state duration after ramp-up (30s, 2m, 500ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Linear ramp from 0 to --rate before the measured window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Most requests (or order flows) in flight at once.
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Per-request timeout; also how long to wait for stragglers at the end.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How the rate moves after the ramp: flat, or dinner (base → 5× peak → base).
    #[arg(long, value_enum, default_value_t = Profile::Flat)]
    pub profile: Profile,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Get tokens from the demo cell's POST /api/v1/dev/token.
    #[arg(long, conflicts_with = "jwt_secret")]
    pub token_from_dev: bool,
    /// Mint HS256 tokens locally with the cell's secret.
    #[arg(long, env = "LOADGEN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Centre of the area customers are spread over, "lat,lng".
    #[arg(long, default_value = "52.52,13.405", value_parser = parse_point)]
    pub center: (f64, f64),
    /// Customers are uniformly spread within this many km of the centre.
    #[arg(long, default_value_t = 5.0)]
    pub spread_km: f64,
    /// Search radius sent to the API.
    #[arg(long, default_value = "3km")]
    pub radius: String,
    /// Distinct simulated customers (tokens). Runs that place orders use more when needed,
    /// so none places more than 4 (the cell allows 5 an hour by default).
    #[arg(long, default_value_t = 200)]
    pub customers: u32,
    /// Searches made during warm-up to collect restaurants.
    #[arg(long, default_value_t = 200)]
    pub warmup_points: usize,
    /// Menus read during warm-up (orders with --checkout-only build carts from them).
    #[arg(long, default_value_t = 300)]
    pub warmup_menus: usize,
    /// PID of the target process, to report its CPU use (same machine only).
    #[arg(long)]
    pub target_pid: Option<u32>,
}

fn parse_point(s: &str) -> Result<(f64, f64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("{s:?} is not lat,lng"))?;
    let p = |v: &str| v.trim().parse::<f64>().map_err(|e| format!("{v:?}: {e}"));
    Ok((p(a)?, p(b)?))
}

/// Which scenario to run.
#[derive(Debug, Clone)]
pub enum Which {
    Search,
    Menu,
    Browse {
        search_share: f64,
    },
    Orders {
        checkout_only: bool,
        reject_share: f64,
        cancel_share: f64,
    },
    /// The HTTP half of `city`: `read_ratio` browse requests per order flow.
    City {
        read_ratio: f64,
    },
}

impl Which {
    pub fn name(&self) -> &'static str {
        match self {
            Which::Search => "search",
            Which::Menu => "menu",
            Which::Browse { .. } => "browse",
            Which::Orders { .. } => "orders",
            Which::City { .. } => "city",
        }
    }

    fn ops(&self) -> &'static [&'static str] {
        match self {
            Which::Search => &["search"],
            Which::Menu => &["menu"],
            Which::Browse { .. } => &["search", "menu"],
            Which::Orders { .. } | Which::City { .. } => orders::OPS,
        }
    }

    fn orders(&self) -> bool {
        matches!(self, Which::Orders { .. } | Which::City { .. })
    }
}

/// Orders one simulated customer places at most in a run: below the cell's per-customer
/// order limit (`[limits] orders_per_window`, default 5 an hour), so load runs measure the
/// order path, not the limit's 429s.
const ORDERS_PER_CUSTOMER: f64 = 4.0;

/// How many customers a run uses: `--customers`, or for runs that place orders enough that
/// none places more than [`ORDERS_PER_CUSTOMER`] at the planned rate (peak included).
fn customers_needed(c: &Common, which: &Which) -> u32 {
    let asked = c.customers.max(1);
    if !which.orders() {
        return asked;
    }
    let peak = match c.profile {
        Profile::Flat => 1.0,
        Profile::Dinner => crate::pacing::PEAK,
    };
    let planned = c.rate * peak * (c.duration + c.ramp_up).as_secs_f64();
    let needed = (planned / ORDERS_PER_CUSTOMER).ceil();
    asked.max(needed.min(f64::from(u32::MAX)) as u32)
}

/// The run's customer tokens. Runs that place orders take customer ids no earlier run in
/// the hour used (a base from the start time), so back-to-back runs against one cell (an
/// anchor and a measured run) do not share an hour's order allowance.
async fn customer_tokens(
    tokens: &Tokens,
    c: &Common,
    which: &Which,
    started_unix_s: u64,
) -> anyhow::Result<Vec<String>> {
    use futures::StreamExt;
    let n = customers_needed(c, which);
    let first: u64 = if which.orders() {
        1 + (started_unix_s % 100_000) * 1_000_000
    } else {
        1
    };
    if n > 1_000 {
        eprintln!("minting {n} customer tokens (at most {ORDERS_PER_CUSTOMER} orders each)");
    }
    // A few in flight: dev tokens are one request each.
    futures::stream::iter(0..u64::from(n))
        .map(|i| async move { tokens.get("customer", &(first + i).to_string()).await })
        .buffered(32)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn scrape(http: &Http) -> Option<std::collections::BTreeMap<String, f64>> {
    http.get_text("/metrics", None)
        .await
        .ok()
        .map(|t| metrics::parse(&t))
}

/// Runs one scenario and returns its report (already printed and written).
pub async fn run(which: Which, c: Common) -> anyhow::Result<Report> {
    let report = run_with(which, &c, Hooks::default()).await?;
    c.out
        .emit(&summary::render(&report), &report, report.page())?;
    Ok(report)
}

/// How `city` runs the HTTP half next to the QUIC one.
#[derive(Default, Clone)]
pub struct Hooks {
    /// Waited on after warm-up, right before the measured run (all halves start together).
    pub gate: Option<Arc<tokio::sync::Barrier>>,
    /// Appended to the progress line.
    pub status: Option<StatusFn>,
    /// Further metric families to scrape.
    pub families: &'static [&'static str],
}

/// Runs one scenario and returns its report without printing or writing it.
pub async fn run_with(which: Which, c: &Common, hooks: Hooks) -> anyhow::Result<Report> {
    if !(c.rate > 0.0 && c.rate.is_finite()) {
        bail!("--rate must be positive");
    }
    let source = match (&c.jwt_secret, c.token_from_dev) {
        (Some(s), _) => TokenSource::Secret(s.clone()),
        (None, true) => TokenSource::Dev,
        (None, false) => bail!("give --token-from-dev (demo cell) or --jwt-secret"),
    };
    let mut machine = Machine::at_start();
    let started_unix_s = unix_now();
    let ops = which.ops();
    let rec = Arc::new(Recorder::new(ops));
    let client = client(c.timeout, c.max_in_flight)?;
    let http = Http::new(client.clone(), &c.target, rec.clone());
    let tokens = Tokens::new(source, client, &c.target);
    let customers = customer_tokens(&tokens, c, &which, started_unix_s).await?;
    let area = Area {
        lat: c.center.0,
        lng: c.center.1,
        spread_km: c.spread_km,
        radius: c.radius.clone(),
    };
    let menus = if which.orders() { c.warmup_menus } else { 0 };
    let pool = pool::warm_up(&http, &customers, &area, c.warmup_points, menus)
        .await
        .with_context(|| format!("warm-up against {}", c.target))?;
    if pool.is_empty() && !matches!(which, Which::Search) {
        bail!(
            "warm-up found no open restaurant near {:?} (closed at this hour?)",
            c.center
        );
    }
    if which.orders() {
        // Restaurants found later by live searches get theirs on first use.
        for r in &pool {
            tokens.get("restaurant", &r.id).await?;
        }
    }
    eprintln!(
        "{}: {} restaurants in the warm-up pool; {} customers; {} /s ({:?}) for {:?} after {:?} ramp-up",
        which.name(),
        pool.len(),
        customers.len(),
        c.rate,
        c.profile,
        c.duration,
        c.ramp_up
    );
    let ctx_customers = customers.len();
    let ctx = Arc::new(Ctx {
        http: http.clone(),
        tokens,
        area,
        pool,
        customers,
    });
    if let Some(g) = &hooks.gate {
        g.wait().await;
    }
    let before = scrape(&http).await;
    let cpu0 = (
        machine::cpu_seconds(None),
        c.target_pid.and_then(|p| machine::cpu_seconds(Some(p))),
    );
    let wall0 = Instant::now();
    let opts = DriveOpts {
        schedule: Schedule {
            rate: c.rate,
            ramp_up: c.ramp_up,
            duration: c.duration,
            profile: c.profile,
        },
        max_in_flight: c.max_in_flight,
        drain: c.timeout,
        progress: c.out.progress,
        extra_status: hooks.status.clone(),
    };
    let result = match &which {
        Which::Search => go(Search(ctx), &rec, opts).await,
        Which::Menu => go(Menu(ctx), &rec, opts).await,
        Which::Browse { search_share } => {
            go(
                Browse {
                    ctx,
                    search_share: *search_share,
                },
                &rec,
                opts,
            )
            .await
        }
        Which::Orders {
            checkout_only,
            reject_share,
            cancel_share,
        } => {
            go(
                Orders {
                    ctx,
                    checkout_only: *checkout_only,
                    reject_share: *reject_share,
                    cancel_share: *cancel_share,
                },
                &rec,
                opts,
            )
            .await
        }
        Which::City { read_ratio } => go(CityMix::new(ctx, *read_ratio), &rec, opts).await,
    };
    let wall = wall0.elapsed().as_secs_f64();
    let cpu = CpuUse {
        loadgen_cores: match (cpu0.0, machine::cpu_seconds(None)) {
            (Some(a), Some(b)) => (b - a) / wall,
            _ => 0.0,
        },
        target_cores: match (
            cpu0.1,
            c.target_pid.and_then(|p| machine::cpu_seconds(Some(p))),
        ) {
            (Some(a), Some(b)) => Some((b - a) / wall),
            _ => None,
        },
    };
    let after = scrape(&http).await;
    let server = match (&before, &after) {
        (Some(b), Some(a)) => {
            let fams: Vec<&str> = metrics::DEFAULT_FAMILIES
                .iter()
                .chain(hooks.families)
                .copied()
                .collect();
            metrics::deltas(b, a, &fams)
        }
        _ => ServerDeltas::default(),
    };
    machine.loadavg_end = machine::loadavg();
    // The steady window is the schedule's unless Ctrl-C cut it short.
    let window = if result.interrupted {
        result.stopped.saturating_duration_since(result.steady_from)
    } else {
        c.duration
    };
    let steady = rec.steady();
    let op_reports: Vec<OpReport> = ops
        .iter()
        .enumerate()
        .zip(steady)
        .map(|((i, name), s)| {
            let w = steady_window(window, result.steady_from, s.last_done);
            OpReport::build(name, rec.sent(i), s, w)
        })
        .collect();
    let ramp = ops
        .iter()
        .zip(rec.ramp())
        .map(|(name, s)| RampCounts {
            op: (*name).to_string(),
            ok: s.ok,
            errors: s.errors(),
        })
        .collect();
    let slo = slo::evaluate(&c.out.slo, &op_reports);
    let report = Report {
        tool: "loadgen",
        version: env!("CARGO_PKG_VERSION"),
        scenario: which.name().to_string(),
        target: c.target.clone(),
        started_unix_s,
        config: serde_json::json!({
            "scenario": format!("{which:?}"),
            "rate": c.rate,
            "profile": format!("{:?}", c.profile),
            "duration_s": c.duration.as_secs_f64(),
            "ramp_up_s": c.ramp_up.as_secs_f64(),
            "max_in_flight": c.max_in_flight,
            "timeout_s": c.timeout.as_secs_f64(),
            "center": [c.center.0, c.center.1],
            "spread_km": c.spread_km,
            "radius": c.radius,
            "customers": ctx_customers,
            "tokens": if c.jwt_secret.is_some() { "minted" } else { "dev endpoint" },
            "slo": c.out.slo.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "interrupted": result.interrupted,
        }),
        machine,
        ramp_up_s: c.ramp_up.as_secs_f64(),
        steady_s: window.as_secs_f64(),
        ops: op_reports,
        ramp,
        unfinished: result.unfinished,
        in_flight_cap_waits: result.cap_waits,
        max_dispatch_lag_ms: result.max_lag.as_secs_f64() * 1000.0,
        server,
        cpu,
        slo,
        error_samples: rec.error_samples(),
        timeline: result.timeline,
    };
    Ok(report)
}

async fn go<S: Scenario>(s: S, rec: &Arc<Recorder>, opts: DriveOpts) -> crate::driver::DriveResult {
    debug_assert_eq!(s.ops(), rec.ops());
    drive(Arc::new(s), rec.clone(), opts).await
}
