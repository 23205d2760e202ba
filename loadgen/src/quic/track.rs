//! `track`: M customers watching live orders over WebSocket while drivers carry them.
//!
//! Setup, in order: warm-up searches find open restaurants and their menus; M drivers
//! connect over QUIC, each roaming within a few hundred metres of one restaurant, pinging
//! every `--ping-interval`, and go `Online`; M orders are placed (customer i, a cart from
//! the restaurant's menu); M trackers connect to `/ws/orders/{id}/track?token=…`; the
//! restaurants accept the orders, which starts matching. Drivers accept every `Offer` on
//! their control stream (`OfferResponse` Accept); once assigned, their pings are pushed to
//! the order's tracker as `location_update`.
//!
//! Latency: for each `location_update`, receive time (wall clock, µs) − the ping's client
//! timestamp carried in `ts` (ms, so up to 1 ms of truncation), into an HDR histogram.
//! Client and cell share the machine's clock. The cell's own view
//! (`cell_tracking_ping_to_push_seconds`, ping → hand-off to the socket) is scraped too.

use super::fleet::{self, CpuMark, QuicTarget};
use super::pings::parse_point;
use super::{unix_ms, unix_us};
use crate::driver::{Progress, ProgressMode};
use crate::pacing::parse_duration;
use crate::report::html::Page;
use crate::report::machine::{self, CpuUse, Machine};
use crate::report::slo::{self, SloResult};
use crate::report::stats::{Outcome, Recorder};
use crate::report::{OpReport, Quantiles, TimelinePoint};
use crate::scenarios::cart::build_cart;
use crate::scenarios::{Area, pool};
use anyhow::{Context, bail};
use driver_client::{City, DriverClient, Route};
use futures::StreamExt;
use schemas::{CellBody, DriverStatus, OfferDecision, OfferResponse, StatusChange};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Options of `track`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrackArgs {
    #[command(flatten)]
    pub target: QuicTarget,
    /// Trackers, orders and drivers (one each per order).
    #[arg(long, default_value_t = 50)]
    pub trackers: u64,
    /// How long to watch once the orders are accepted.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
    /// The first part of `--duration` (at most half of it) is the assignment burst: every
    /// order is accepted at once, so matching, offers and accepts for all of them run
    /// together. Pushes of pings sent in it are reported apart (`settling_ms`); the quantiles
    /// and SLOs are for the rest, the steady state.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Each driver's ping interval (the cell pushes at most one location per second per
    /// tracker).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    #[arg(long, default_value_t = 2_000_000)]
    pub driver_id_base: u64,
    #[arg(long, default_value = "52.52,13.405", value_parser = parse_point)]
    pub center: (f64, f64),
    #[arg(long, default_value_t = 5.0)]
    pub spread_km: f64,
    #[arg(long, default_value_t = 100)]
    pub warmup_points: usize,
    #[arg(long, default_value_t = 40)]
    pub warmup_menus: usize,
}

/// The JSON report of `track`.
#[derive(Debug, Clone, Serialize)]
pub struct TrackReport {
    pub tool: &'static str,
    pub scenario: &'static str,
    pub target: String,
    pub machine: Machine,
    pub drivers_connected: u64,
    pub connection_failures: u64,
    pub orders_placed: u64,
    pub orders_accepted: u64,
    pub order_errors: Vec<String>,
    pub trackers_connected: u64,
    pub offers: u64,
    pub assignments: u64,
    pub pings_sent: u64,
    pub location_updates: u64,
    pub other_messages: u64,
    /// Receive time − ping client timestamp, ms.
    pub ping_to_push_ms: Quantiles,
    /// Pushes of pings sent while the assignments settled (see `--settle`), apart.
    pub settling_ms: Quantiles,
    /// The settling window actually used, seconds.
    pub settle_s: f64,
    /// The cell's mean `cell_tracking_ping_to_push_seconds` over the run, ms.
    pub server_mean_ping_to_push_ms: Option<f64>,
    pub cpu: CpuUse,
    /// The `push` op (ping → push latency, pushes per second).
    pub ops: Vec<OpReport>,
    pub slo: Vec<SloResult>,
    pub timeline: Vec<TimelinePoint>,
    /// Server metric deltas for the page (the ping-to-push histogram's sum and count).
    #[serde(skip)]
    server_rows: Vec<(String, f64)>,
}

/// Live counters of a `track` run (the city's progress line reads them).
#[derive(Default)]
pub struct Counts {
    pub offers: AtomicU64,
    pub assignments: AtomicU64,
    pub pings: AtomicU64,
    pub updates: AtomicU64,
    pub other: AtomicU64,
}

/// How `city` runs a `track` phase next to its other halves.
#[derive(Default, Clone)]
pub struct Hooks {
    /// Waited on once orders are placed and trackers connected, before accepting them.
    pub gate: Option<Arc<tokio::sync::Barrier>>,
    pub counts: Option<Arc<Counts>>,
    /// No progress display of its own.
    pub quiet: bool,
}

impl TrackReport {
    pub fn slo_passed(&self) -> bool {
        self.slo.iter().all(|r| r.pass)
    }

    pub fn page(&self) -> Page<'_> {
        Page {
            title: format!("loadgen track against {}", self.target),
            summary: String::new(),
            ops: &self.ops,
            timeline: &self.timeline,
            slo: &self.slo,
            server: self.server_rows.clone(),
            cpu: &self.cpu,
            machine: &self.machine,
            facts: vec![
                (
                    "drivers / orders placed / accepted / trackers".into(),
                    format!(
                        "{} / {} / {} / {}",
                        self.drivers_connected,
                        self.orders_placed,
                        self.orders_accepted,
                        self.trackers_connected
                    ),
                ),
                (
                    "offers / assignments".into(),
                    format!("{} / {}", self.offers, self.assignments),
                ),
                (
                    "pings sent / location updates pushed".into(),
                    format!("{} / {}", self.pings_sent, self.location_updates),
                ),
                (
                    "cell-side mean ping → push (ms)".into(),
                    self.server_mean_ping_to_push_ms
                        .map_or("-".into(), |v| format!("{v:.2}")),
                ),
            ],
        }
    }
}

/// One driver: ping at once and go online, then ping every `every` and accept offers.
pub(super) async fn drive(
    c: Arc<DriverClient>,
    id: u64,
    at: (f64, f64),
    every: Duration,
    n: Arc<Counts>,
) {
    let city = City {
        center_lat: at.0,
        center_lng: at.1,
        radius_m: 400.0,
    };
    let mut route = Route::new(city, id);
    let mut last = unix_ms();
    let _ = c.send_ping(&route.ping(id, last));
    let online = StatusChange {
        status: DriverStatus::Online,
        client_ts_ms: last,
    };
    if c.send(online).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            m = c.next_message() => match m.map(|m| m.body) {
                None => return,
                Some(CellBody::Offer(o)) => {
                    n.offers.fetch_add(1, Ordering::Relaxed);
                    let r = OfferResponse {
                        offer_id: o.offer_id,
                        delivery_id: o.delivery_id,
                        decision: OfferDecision::Accept,
                    };
                    if c.send(r).await.is_err() {
                        return;
                    }
                }
                Some(CellBody::Assignment(_)) => {
                    n.assignments.fetch_add(1, Ordering::Relaxed);
                }
                Some(_) => {}
            },
            _ = tick.tick() => {
                let now = unix_ms();
                route.advance(now.saturating_sub(last) as f64 / 1000.0);
                last = now;
                if c.send_ping(&route.ping(id, now)).is_ok() {
                    n.pings.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

pub(super) async fn place(
    http: &reqwest::Client,
    base: &str,
    customer: &str,
    r: &pool::Restaurant,
) -> anyhow::Result<String> {
    let menu = r.menu.as_ref().context("no menu")?;
    let cart = build_cart(menu, &mut rand::rng());
    if cart.is_empty() {
        bail!("restaurant {}: nothing available", r.id);
    }
    let body = serde_json::json!({
        "restaurant_id": r.id,
        "items": cart,
        "delivery_address": { "lat": r.point.0, "lng": r.point.1, "formatted": "loadgen track" },
        "payment_method_id": "pm_card_visa",
    });
    let key = format!("lgt-{:032x}", rand::random::<u128>());
    let resp = http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(customer)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    if !status.is_success() {
        bail!("place: {status}: {}", &text[..text.len().min(200)]);
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["order_id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v["order_id"].to_string()))
}

/// Runs `track`; prints and writes the report.
pub async fn run(a: TrackArgs) -> anyhow::Result<TrackReport> {
    let report = execute(&a, Hooks::default()).await?;
    a.target
        .out
        .emit(&render(&report), &report, report.page())?;
    Ok(report)
}

/// Restaurants with a menu near `center` (within `spread_km`), found by searching from
/// `points` places and reading up to `menus` menus with customer 1's token: where the
/// tracking tools place their orders. Fails when there are none.
pub(super) async fn open_restaurants(
    client: &reqwest::Client,
    base: &str,
    tokens: &crate::auth::Tokens,
    (center, spread_km): ((f64, f64), f64),
    (points, menus): (usize, usize),
) -> anyhow::Result<Vec<pool::Restaurant>> {
    let rec = Arc::new(crate::report::stats::Recorder::new(&["warmup"]));
    let http = crate::http::Http::new(client.clone(), base, rec);
    let area = Area {
        lat: center.0,
        lng: center.1,
        spread_km,
        radius: "3km".into(),
    };
    // Several customers share the warm-up: the cell limits each user's request rate.
    let mut warm = Vec::new();
    for i in 1..=16 {
        warm.push(tokens.get("customer", &i.to_string()).await?);
    }
    let restaurants: Vec<_> = pool::warm_up(&http, &warm, &area, points, menus)
        .await?
        .into_iter()
        .filter(|r| r.menu.is_some())
        .collect();
    if restaurants.is_empty() {
        bail!("warm-up found no open restaurant with a menu near {center:?}");
    }
    Ok(restaurants)
}

/// Runs `track` and returns its report without printing it.
pub async fn execute(a: &TrackArgs, hooks: Hooks) -> anyhow::Result<TrackReport> {
    let t = &a.target;
    let base = t.target.trim_end_matches('/').to_string();
    let mut machine = Machine::at_start();
    let client = crate::http::client(Duration::from_secs(10), 256)?;
    let tokens = Arc::new(t.tokens(client.clone())?);
    let restaurants = open_restaurants(
        &client,
        &base,
        &tokens,
        (a.center, a.spread_km),
        (a.warmup_points, a.warmup_menus),
    )
    .await?;
    let m = a.trackers as usize;
    let pick = |i: usize| &restaurants[i % restaurants.len()];
    let ids: Vec<u64> = (1..=a.trackers).map(|i| a.driver_id_base + i).collect();
    let fleet = fleet::connect(t, tokens.clone(), &ids, None).await?;
    let n = hooks.counts.clone().unwrap_or_default();
    for (i, (id, c)) in fleet.drivers.iter().enumerate() {
        if let Some(c) = c {
            tokio::spawn(drive(
                c.clone(),
                *id,
                pick(i).point,
                a.ping_interval,
                n.clone(),
            ));
        }
    }
    eprintln!(
        "{} drivers connected ({} failed); placing {m} orders at {} restaurants",
        fleet.drivers.len() as u64 - fleet.failures,
        fleet.failures,
        restaurants.len()
    );
    let mut orders = Vec::new();
    let mut errors = Vec::new();
    for i in 0..m {
        let customer = tokens.get("customer", &(i + 1).to_string()).await?;
        match place(&client, &base, &customer, pick(i)).await {
            Ok(id) => orders.push((i, id, customer)),
            Err(e) if errors.len() < 5 => errors.push(format!("{e:#}")),
            Err(_) => {}
        }
    }
    let push = Arc::new(Recorder::new(&["push"]));
    let mut trackers = 0u64;
    let ws_base = base.replacen("http", "ws", 1);
    for (_, id, customer) in &orders {
        let url = format!("{ws_base}/ws/orders/{id}/track?token={customer}");
        match tokio_tungstenite::connect_async(url).await {
            Ok((ws, _)) => {
                trackers += 1;
                let (push, n) = (push.clone(), n.clone());
                tokio::spawn(async move {
                    let (_w, mut r) = ws.split();
                    while let Some(Ok(msg)) = r.next().await {
                        let Message::Text(text) = msg else { continue };
                        let now_us = unix_us();
                        let v: serde_json::Value = match serde_json::from_str(text.as_str()) {
                            Ok(v) => v,
                            Err(_) => continue,
                        };
                        match (v["type"].as_str(), v["ts"].as_u64()) {
                            (Some("location_update"), Some(ts)) => {
                                n.updates.fetch_add(1, Ordering::Relaxed);
                                push.mark_sent(0);
                                let lat = Duration::from_micros(now_us.saturating_sub(ts * 1000));
                                let done = Instant::now();
                                let at = done.checked_sub(lat).unwrap_or(done);
                                push.record(0, at, at, done, Outcome::Ok);
                            }
                            _ => {
                                n.other.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
            Err(e) if errors.len() < 10 => errors.push(format!("tracker {id}: {e}")),
            Err(_) => {}
        }
    }
    if let Some(g) = &hooks.gate {
        g.wait().await;
    }
    let before = t.scrape(&client).await;
    let cpu0 = CpuMark::now(t.target_pid);
    let watch_from = Instant::now();
    let settle = a.settle.min(a.duration / 2);
    push.set_steady_from(watch_from + settle);
    let mut accepted = 0u64;
    for (i, id, _) in &orders {
        let token = tokens.get("restaurant", &pick(*i).id).await?;
        let r = client
            .patch(format!("{base}/api/v1/restaurants/orders/{id}"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "status": "accepted" }))
            .send()
            .await;
        match r {
            Ok(r) if r.status().is_success() => accepted += 1,
            Ok(r) if errors.len() < 10 => errors.push(format!("accept {id}: {}", r.status())),
            Err(e) if errors.len() < 10 => errors.push(format!("accept {id}: {e}")),
            _ => {}
        }
    }
    eprintln!(
        "{} orders placed, {accepted} accepted, {trackers} trackers; watching for {:?}",
        orders.len(),
        a.duration
    );
    let timeline = watch(&push, &n, a.duration, watch_from, &hooks, t.out.progress).await;
    let cpu = cpu0.since(t.target_pid);
    let after = t.scrape(&client).await;
    fleet::close(&fleet).await;
    machine.loadavg_end = machine::loadavg();
    let mut server_rows = Vec::new();
    let server_mean = before.zip(after).and_then(|(b, a)| {
        let d = |k: &str| a.get(k).copied().unwrap_or(0.0) - b.get(k).copied().unwrap_or(0.0);
        for k in super::loss::FAMILIES {
            server_rows.push(((*k).to_string(), d(k)));
        }
        let count = d("cell_tracking_ping_to_push_seconds_count");
        (count > 0.0).then(|| d("cell_tracking_ping_to_push_seconds_sum") / count * 1000.0)
    });
    let stats = push.steady().remove(0);
    let q = Quantiles::of(&stats.latency);
    let window = stats
        .last_done
        .map_or(a.duration, |d| d.saturating_duration_since(watch_from))
        .max(a.duration);
    let ops = vec![OpReport::build("push", push.sent(0), stats, window)];
    let slo = slo::evaluate(&t.out.slo, &ops);
    let report = TrackReport {
        tool: "loadgen",
        scenario: "track",
        target: base,
        machine,
        drivers_connected: fleet.drivers.len() as u64 - fleet.failures,
        connection_failures: fleet.failures,
        orders_placed: orders.len() as u64,
        orders_accepted: accepted,
        order_errors: errors,
        trackers_connected: trackers,
        offers: n.offers.load(Ordering::Relaxed),
        assignments: n.assignments.load(Ordering::Relaxed),
        pings_sent: n.pings.load(Ordering::Relaxed),
        location_updates: n.updates.load(Ordering::Relaxed),
        other_messages: n.other.load(Ordering::Relaxed),
        ping_to_push_ms: q,
        settling_ms: Quantiles::of(&push.ramp().remove(0).latency),
        settle_s: settle.as_secs_f64(),
        server_mean_ping_to_push_ms: server_mean,
        cpu,
        ops,
        slo,
        timeline,
        server_rows,
    };
    Ok(report)
}

/// Watches for `duration`: a timeline point and a progress update every second.
async fn watch(
    push: &Recorder,
    n: &Counts,
    duration: Duration,
    from: Instant,
    hooks: &Hooks,
    mode: ProgressMode,
) -> Vec<TimelinePoint> {
    let mut progress = Progress::new(if hooks.quiet { ProgressMode::Off } else { mode });
    let mut timeline = Vec::new();
    let mut so_far = crate::report::stats::OpStats::new();
    let mut last = Instant::now();
    let mut every = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let end = tokio::time::Instant::now() + duration;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = every.tick() => {
                let now = Instant::now();
                let dt = now.saturating_duration_since(last);
                last = now;
                let iv = push.take_interval();
                so_far.merge(&iv[0]);
                let t = now.saturating_duration_since(from);
                timeline.push(TimelinePoint::build(t, dt, push.ops(), &iv));
                progress.update(t, &format!(
                    "push {:.0}/s  pushed {}  p99 {:.2} ms  assignments {}  pings {}",
                    crate::report::stats::rate(iv[0].ok, dt),
                    so_far.ok,
                    so_far.latency_ms(0.99),
                    n.assignments.load(Ordering::Relaxed),
                    n.pings.load(Ordering::Relaxed)
                ));
            }
        }
    }
    progress.finish();
    timeline
}

/// The text summary of a `track` run.
pub fn render(r: &TrackReport) -> String {
    let q = &r.ping_to_push_ms;
    let mut s = format!(
        "track against {} — drivers {} ({} failed), orders placed {} accepted {}, trackers {}\n",
        r.target,
        r.drivers_connected,
        r.connection_failures,
        r.orders_placed,
        r.orders_accepted,
        r.trackers_connected
    );
    s += &format!(
        "offers {}  assignments {}  pings sent {}  location updates {}  other messages {}\n",
        r.offers, r.assignments, r.pings_sent, r.location_updates, r.other_messages
    );
    s += &format!(
        "ping → push ms: count {}  p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}   cell-side mean {}\n",
        q.count,
        q.p50,
        q.p90,
        q.p99,
        q.p999,
        q.max,
        r.server_mean_ping_to_push_ms
            .map_or("-".into(), |v| format!("{v:.2}"))
    );
    let w = &r.settling_ms;
    s += &format!(
        "  (not in the above: first {:.1} s, assignments settling: count {}  p50 {:.2}  p99 {:.2}  max {:.2})\n",
        r.settle_s, w.count, w.p50, w.p99, w.max
    );
    s += &format!(
        "CPU (cores): loadgen {:.2}, target {}   load avg {} -> {}\n",
        r.cpu.loadgen_cores,
        r.cpu
            .target_cores
            .map_or("-".to_string(), |c| format!("{c:.2}")),
        r.machine.loadavg_start,
        r.machine.loadavg_end
    );
    for e in &r.order_errors {
        s += &format!("error sample: {e}\n");
    }
    s += &crate::report::slo::render(&r.slo);
    s
}
