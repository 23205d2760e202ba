//! `drivesim`: simulated drivers (and, optionally, customers and restaurants) for a local
//! city, so the README's demo shows live deliveries without anyone typing.
//!
//! ```text
//! drivesim --http http://127.0.0.1:8081 --quic 127.0.0.1:4433 --ca .data/cell-1/dev-certs/ca.pem \
//!          --drivers 50 --orders-per-min 6 --dev-tokens --speedup 10
//! ```
//!
//! Each driver connects over QUIC (`Hello` with a driver token), goes online and roams
//! around the centre along [`Route`]'s plausible paths, pinging as datagrams. An offer is
//! accepted (with `--accept-rate`); on the assignment the driver heads for the restaurant,
//! reports arrived, waits a moment, picks up, heads for the customer and reports delivered,
//! then roams again. A dropped connection is retried after a pause.
//!
//! With `--orders-per-min M`, the simulator also acts as customers (search near a random
//! address → menu → order with an idempotency key, paid with `pm_card_visa`) and as their
//! restaurants (accept → preparing → ready after a preparation time).
//!
//! `--speedup F` makes simulated time run F times faster: drivers move F times as far per
//! ping and waits are F times shorter, so at 10 a delivery takes about a minute. Pings stay
//! physically plausible for the cell's spoofing check: when one ping would jump more than
//! 200 m, pings are sent more often instead.
//!
//! Tokens come from the cell's dev endpoint (`--dev-tokens`, a cell run with `--demo`) or
//! are minted with the cell's JWT secret (`--jwt-secret`). A status line goes to stderr every
//! few seconds (and, with `--status-json`, the counters and reconnect times to a file);
//! Ctrl-C or SIGTERM sends every driver offline and prints a summary.
//!
//! A driver keeps its delivery across a lost connection (the cell keeps it too, across its
//! own restart): it reconnects and carries on. An offer accepted just before the connection
//! ended is looked up through the router (`GET /api/v1/drivers/me/delivery`): taken up again
//! if the cell assigned it meanwhile (`jobs_resumed`), given up otherwise. Delivery progress
//! (arrived, picked up, delivered) the cell had not acknowledged when the connection ended is
//! sent again first (`resent`): a stopping cell may have dropped it unapplied.

use anyhow::{Context, bail};
use clap::Parser;
use conn::{CellTarget, HandedOver, connect, lookup};
use driver_client::{City, DriverClient, Route, Trust, client_endpoint};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use schemas::{
    CancelTarget, CellBody, CloseReason, DriverStatus, Offer, OfferDecision, OfferResponse,
    StatusChange,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

#[path = "drivesim/conn.rs"]
mod conn;
#[path = "drivesim/orders.rs"]
mod orders;
#[path = "drivesim/report.rs"]
mod report;
use report::Stats;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "drivesim",
    about = "Simulated drivers (and customers) for a local cell"
)]
struct Args {
    /// The cell's HTTP base URL.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    http: String,
    /// The router: drivers told to hand over ask it for the new cell's trust and reconnect
    /// there, and customers order through it. Without it a handover ends the driver.
    #[arg(long)]
    router: Option<String>,
    /// The cell's QUIC driver gateway (the READY line's `quic`).
    #[arg(long)]
    quic: SocketAddr,
    /// CA to trust (the READY line's `quic_ca`, e.g. .data/cell-1/dev-certs/ca.pem).
    #[arg(long, conflicts_with = "fingerprint")]
    ca: Option<PathBuf>,
    /// Or pin the gateway certificate's SHA-256 fingerprint (the READY line's `quic_fingerprint`).
    #[arg(long)]
    fingerprint: Option<String>,
    /// CA (PEM) to trust for https `--http` and `--router` URLs (the local city's
    /// .data/tls/ca.pem); default: the system's roots.
    #[arg(long, env = "ROUTER_CA")]
    http_ca: Option<PathBuf>,
    /// TLS server name of the gateway.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// How many drivers.
    #[arg(long, default_value_t = 20)]
    drivers: u64,
    /// Driver ids are first-driver-id .. first-driver-id + drivers.
    #[arg(long, default_value_t = 900_001)]
    first_driver_id: u64,
    /// Also place this many orders per minute as customers and run their restaurants.
    #[arg(long)]
    orders_per_min: Option<f64>,
    /// Mint tokens with this HS256 secret (the cell's `auth.jwt_secret`).
    #[arg(long, env = "DRIVESIM_JWT_SECRET", conflicts_with = "dev_tokens")]
    jwt_secret: Option<String>,
    /// Lifetime of locally minted tokens; a session whose token expires is closed by the cell
    /// with `token_expired`, and the driver reconnects with a fresh token.
    #[arg(long, default_value_t = 86_400)]
    token_ttl_s: u64,
    /// Get tokens from the cell's `POST /api/v1/dev/token` (a cell run with `--demo`).
    #[arg(long)]
    dev_tokens: bool,
    /// Simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 10.0)]
    speedup: f64,
    /// Share of offers accepted (the rest are declined).
    #[arg(long, default_value_t = 1.0)]
    accept_rate: f64,
    /// City centre latitude.
    #[arg(long, default_value_t = 52.52)]
    lat: f64,
    /// City centre longitude.
    #[arg(long, default_value_t = 13.405)]
    lng: f64,
    /// Drivers roam and customers live within this radius of the centre, km.
    #[arg(long, default_value_t = 4.0)]
    radius_km: f64,
    /// Seconds between status lines.
    #[arg(long, default_value_t = 5)]
    status_every: u64,
    /// Random seed (routes, choices).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the counters and every reconnect's time as JSON to this file, with each
    /// status line and at the end.
    #[arg(long)]
    status_json: Option<PathBuf>,
}

/// Simulated seconds a driver waits at the restaurant before picking up.
const DWELL_S: f64 = 60.0;
/// Longest jump between two pings, metres (the cell treats < 250 m as GPS noise).
const MAX_JUMP_M: f64 = 200.0;
/// Fastest simulated driver, m/s (`Route`'s speed range).
const MAX_SPEED_MPS: f64 = 15.0;

/// Everything the tasks share.
struct Ctx {
    args: Args,
    http: reqwest::Client,
    endpoint: quinn::Endpoint,
    city: City,
    stats: Stats,
    stop: watch::Receiver<bool>,
}

impl Ctx {
    /// A token for `role`/`sub`: minted locally or from the dev endpoint.
    async fn token(&self, role: &str, sub: u64) -> anyhow::Result<String> {
        if let Some(secret) = &self.args.jwt_secret {
            let iat = now_ms() / 1000;
            let claims = json!({"sub": sub.to_string(), "role": role, "iat": iat, "exp": iat + self.args.token_ttl_s});
            let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
            return Ok(jsonwebtoken::encode(
                &jsonwebtoken::Header::default(),
                &claims,
                &key,
            )?);
        }
        let r: Value = self
            .http
            .post(format!("{}/api/v1/dev/token", self.args.http))
            .json(&json!({"role": role, "sub": sub.to_string()}))
            .send()
            .await?
            .error_for_status()
            .context("POST /api/v1/dev/token (is the cell running with --demo?)")?
            .json()
            .await?;
        r["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the dev endpoint's answer")
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `simulated_s` simulated seconds; false if told to stop meanwhile.
    async fn sim_sleep(&self, simulated_s: f64) -> bool {
        let mut stop = self.stop.clone();
        let d = Duration::from_secs_f64((simulated_s / self.args.speedup).max(0.0));
        tokio::select! {
            _ = tokio::time::sleep(d) => !self.stopping(),
            _ = until_stopped(&mut stop) => false,
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn until_stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.jwt_secret.is_none() && !args.dev_tokens {
        bail!("say where tokens come from: --dev-tokens or --jwt-secret S");
    }
    if !(args.speedup > 0.0 && args.speedup.is_finite()) {
        bail!("--speedup must be positive");
    }
    let trust = match (&args.ca, &args.fingerprint) {
        (Some(ca), _) => Trust::ca_pem_file(ca)?,
        (None, Some(fp)) => Trust::fingerprint(fp)?,
        (None, None) => bail!("say what to trust: --ca PATH or --fingerprint HEX"),
    };
    let endpoint = client_endpoint(&trust, (std::net::Ipv4Addr::UNSPECIFIED, 0).into())?;
    let mut http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10));
    if let Some(ca) = &args.http_ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
    }
    let http = http.build()?;
    let (stop_tx, stop) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        city: City {
            center_lat: args.lat,
            center_lng: args.lng,
            radius_m: args.radius_km * 1000.0,
        },
        args: args.clone(),
        http,
        endpoint,
        stats: Stats::default(),
        stop,
    });

    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.drivers {
        tasks.push(tokio::spawn(driver_loop(
            ctx.clone(),
            args.first_driver_id + i,
        )));
        // Spread the handshakes a little.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if let Some(m) = args.orders_per_min.filter(|m| *m > 0.0) {
        tasks.push(tokio::spawn(orders::customers(ctx.clone(), m)));
    }
    eprintln!(
        "drivesim: {} drivers → {} (speed-up ×{}); Ctrl-C to stop",
        args.drivers, args.quic, args.speedup
    );
    let write_status = |ctx: &Ctx| {
        if let Some(path) = &args.status_json {
            let v = report::status_json(
                &ctx.stats,
                args.drivers,
                started.elapsed().as_secs_f64(),
                now_ms(),
            );
            if let Err(e) = report::write(path, &v) {
                eprintln!("drivesim: writing {}: {e}", path.display());
            }
        }
    };
    let mut every = tokio::time::interval(Duration::from_secs(args.status_every.max(1)));
    every.tick().await;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = every.tick() => {
                eprintln!("[{:>5.0}s] {}", started.elapsed().as_secs_f64(), ctx.stats.line(args.drivers));
                write_status(&ctx);
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    let _ = stop_tx.send(true);
    eprintln!("drivesim: stopping (drivers going offline)…");
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
    ctx.endpoint.close(0u32.into(), b"bye");
    let _ = tokio::time::timeout(Duration::from_secs(1), ctx.endpoint.wait_idle()).await;
    let secs = started.elapsed().as_secs_f64();
    let delivered = ctx.stats.delivered.load(Relaxed);
    eprintln!(
        "drivesim summary after {secs:.0}s: {} · connects {} ({} failed) · pings {} · {:.1} deliveries/min",
        ctx.stats.line(args.drivers),
        ctx.stats.connects.load(Relaxed),
        ctx.stats.connect_failures.load(Relaxed),
        ctx.stats.pings.load(Relaxed),
        delivered as f64 * 60.0 / secs.max(1.0),
    );
    write_status(&ctx);
    Ok(())
}

/// One driver, reconnecting after failures until told to stop. The route (position) is
/// kept across connections; after a handover the driver streams to the cell it was sent to.
async fn driver_loop(ctx: Arc<Ctx>, id: u64) {
    let mut route = Route::new(ctx.city, ctx.args.seed.wrapping_mul(1_000_003) ^ id);
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.args.seed ^ id.rotate_left(17));
    // `None`: the cell given on the command line.
    let mut cell: Option<CellTarget> = None;
    // The session to resume after the cell closed it for an expired token.
    let mut resume: Option<u64> = None;
    // Kept across connections: the cell keeps the driver's delivery too.
    let mut job = Job::Free;
    // Delivery progress the cell has not acknowledged (status, seq on its connection): a
    // cell that stops may never have applied it, so it is sent again after reconnecting.
    let mut unacked: Vec<(u64, StatusChange)> = Vec::new();
    let mut pending = report::Pending::default();
    while !ctx.stopping() {
        let mut handed_over = false;
        match connect(&ctx, id, cell.as_ref(), resume.take()).await {
            Ok(client) => {
                pending.connected(&ctx.stats, Instant::now(), now_ms());
                if let Job::Accepted(offer) = &job {
                    job = conn::after_accept_lost(&ctx, id, &mut route, offer.clone()).await;
                }
                ctx.stats.connects.fetch_add(1, Relaxed);
                ctx.stats.connected.fetch_add(1, Relaxed);
                if let Err(e) = drive(
                    &ctx,
                    &client,
                    id,
                    &mut route,
                    &mut rng,
                    &mut job,
                    &mut unacked,
                )
                .await
                {
                    let lost_at = Instant::now();
                    if client.close_reason() == Some(CloseReason::TokenExpired) {
                        // Not a failure: reconnect at once with a fresh token, same session.
                        ctx.stats.reauths.fetch_add(1, Relaxed);
                        ctx.stats.connected.fetch_sub(1, Relaxed);
                        resume = Some(client.hello_ack().session_id);
                        continue;
                    }
                    let cause = if e.downcast_ref::<HandedOver>().is_some() {
                        report::Cause::Handover
                    } else {
                        report::Cause::Lost
                    };
                    pending.lost(lost_at, cause);
                    match (e.downcast_ref::<HandedOver>(), &ctx.args.router) {
                        (Some(_), Some(router)) => match lookup(&ctx, router, id, &route).await {
                            Ok(t) => {
                                ctx.stats.handovers.fetch_add(1, Relaxed);
                                cell = Some(t);
                                handed_over = true;
                            }
                            Err(e) => ctx.stats.error(format!("driver {id}: handover: {e:#}")),
                        },
                        _ => ctx.stats.error(format!("driver {id}: {e:#}")),
                    }
                }
                ctx.stats.connected.fetch_sub(1, Relaxed);
            }
            Err(e) => {
                pending.lost(Instant::now(), report::Cause::Lost);
                ctx.stats.connect_failures.fetch_add(1, Relaxed);
                ctx.stats.error(format!("driver {id} connecting: {e:#}"));
                // The cell we were sent to may be gone or restarting: ask the router where
                // to go now (a restarting cell keeps its address), else start over from the
                // cell on the command line.
                cell = match &ctx.args.router {
                    Some(router) => lookup(&ctx, router, id, &route).await.ok(),
                    None => None,
                };
            }
        }
        if handed_over {
            continue;
        }
        // Back off (real time) before reconnecting.
        let mut stop = ctx.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            _ = until_stopped(&mut stop) => {}
        }
    }
}

/// Where a driver is in a delivery.
enum Job {
    Free,
    /// Accepted, waiting for the assignment.
    Accepted(Offer),
    ToRestaurant(Offer),
    AtRestaurant {
        offer: Offer,
        pick_up_at: Instant,
    },
    ToCustomer(Offer),
}

impl Job {
    fn delivery(&self) -> Option<u64> {
        match self {
            Job::Free => None,
            Job::Accepted(o) | Job::ToRestaurant(o) | Job::ToCustomer(o) => Some(o.delivery_id),
            Job::AtRestaurant { offer, .. } => Some(offer.delivery_id),
        }
    }
}

fn status(status: DriverStatus) -> StatusChange {
    StatusChange {
        status,
        client_ts_ms: now_ms(),
    }
}

/// One connection's life: online, then pings on a timer and reactions to the cell.
async fn drive(
    ctx: &Ctx,
    client: &DriverClient,
    id: u64,
    route: &mut Route,
    rng: &mut ChaCha8Rng,
    job: &mut Job,
    unacked: &mut Vec<(u64, StatusChange)>,
) -> anyhow::Result<()> {
    let speedup = ctx.args.speedup;
    // Sub-steps per real second so no ping jumps more than MAX_JUMP_M.
    let per_s = (speedup * MAX_SPEED_MPS / MAX_JUMP_M).ceil().max(1.0);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let step_s = speedup / per_s;
    let mut stop = ctx.stop.clone();
    client.send(status(DriverStatus::Online)).await?;
    // Oldest first, as they were sent; an answer that it was already applied is an error
    // message and changes nothing.
    for (seq, st) in unacked.iter_mut() {
        *seq = client.send(*st).await?;
        ctx.stats.resent.fetch_add(1, Relaxed);
    }
    loop {
        tokio::select! {
            _ = until_stopped(&mut stop) => {
                let _ = client.send(status(DriverStatus::Offline)).await;
                client.close().await;
                return Ok(());
            }
            _ = tick.tick() => {
                route.advance(step_s);
                client.send_ping(&route.ping(id, now_ms()))?;
                ctx.stats.pings.fetch_add(1, Relaxed);
                progress(ctx, client, route, job, unacked).await?;
            }
            m = client.next_message() => {
                let Some(m) = m else {
                    bail!("connection closed: {:?}", client.close_reason());
                };
                on_message(ctx, client, route, rng, job, unacked, m.body).await?;
            }
        }
    }
}

/// Arrivals move the delivery on. The job changes only once the cell was told, so a
/// connection lost on the way leaves it where the cell has it.
async fn progress(
    ctx: &Ctx,
    client: &DriverClient,
    route: &mut Route,
    job: &mut Job,
    unacked: &mut Vec<(u64, StatusChange)>,
) -> anyhow::Result<()> {
    let mut send = async |st: DriverStatus| -> anyhow::Result<()> {
        let st = status(st);
        let seq = client.send(st).await?;
        unacked.push((seq, st));
        Ok(())
    };
    match &*job {
        Job::ToRestaurant(offer) if route.arrived() => {
            send(DriverStatus::ArrivedAtRestaurant {
                delivery_id: offer.delivery_id,
            })
            .await?;
            let wait = Duration::from_secs_f64(DWELL_S / ctx.args.speedup);
            *job = Job::AtRestaurant {
                offer: offer.clone(),
                pick_up_at: Instant::now() + wait,
            };
        }
        Job::AtRestaurant { offer, pick_up_at } if Instant::now() >= *pick_up_at => {
            send(DriverStatus::PickedUp {
                delivery_id: offer.delivery_id,
            })
            .await?;
            route.go_to(offer.dropoff.lat, offer.dropoff.lng);
            *job = Job::ToCustomer(offer.clone());
        }
        Job::ToCustomer(offer) if route.arrived() => {
            send(DriverStatus::Delivered {
                delivery_id: offer.delivery_id,
            })
            .await?;
            ctx.stats.delivered.fetch_add(1, Relaxed);
            route.roam();
            *job = Job::Free;
        }
        _ => {}
    }
    Ok(())
}

async fn on_message(
    ctx: &Ctx,
    client: &DriverClient,
    route: &mut Route,
    rng: &mut ChaCha8Rng,
    job: &mut Job,
    unacked: &mut Vec<(u64, StatusChange)>,
    body: CellBody,
) -> anyhow::Result<()> {
    match body {
        CellBody::Offer(offer) => {
            ctx.stats.offers.fetch_add(1, Relaxed);
            let take =
                matches!(job, Job::Free) && rng.random_bool(ctx.args.accept_rate.clamp(0.0, 1.0));
            let decision = if take {
                OfferDecision::Accept
            } else {
                ctx.stats.declined.fetch_add(1, Relaxed);
                OfferDecision::Decline
            };
            if take {
                // Before sending: if the accept reaches the cell but the connection drops,
                // the reconnect gives the offer up (see `driver_loop`).
                *job = Job::Accepted(offer.clone());
            }
            client
                .send(OfferResponse {
                    offer_id: offer.offer_id,
                    delivery_id: offer.delivery_id,
                    decision,
                })
                .await?;
        }
        CellBody::Assignment(a) => {
            if let Job::Accepted(offer) = &*job
                && offer.delivery_id == a.delivery_id
            {
                ctx.stats.assigned.fetch_add(1, Relaxed);
                route.go_to(offer.pickup.lat, offer.pickup.lng);
                *job = Job::ToRestaurant(offer.clone());
            }
        }
        CellBody::Cancellation(c) => {
            let d = match c.target {
                CancelTarget::Offer { delivery_id, .. }
                | CancelTarget::Delivery { delivery_id } => delivery_id,
            };
            if job.delivery() == Some(d) {
                ctx.stats.cancelled.fetch_add(1, Relaxed);
                route.roam();
                *job = Job::Free;
            }
        }
        CellBody::ErrorMsg(e) => {
            unacked.retain(|(seq, _)| Some(*seq) != e.ref_seq);
            ctx.stats.error(format!("cell: {:?} {}", e.code, e.message));
            // A refused accept (expired, taken) leaves the driver free.
            if matches!(job, Job::Accepted(_)) {
                *job = Job::Free;
            }
        }
        CellBody::Handover(_) => return Err(HandedOver.into()),
        CellBody::Ack(a) => unacked.retain(|(seq, _)| *seq != a.ack_seq),
        // The simulated app keeps no customer data to forget.
        CellBody::HelloAck(_) | CellBody::AddressRevoked(_) => {}
    }
    Ok(())
}
