//! `trackers`: many tracking WebSockets held open on a few live orders, for a cell's (and a
//! router's) memory and fan-out at scale.
//!
//! Setup: a warm-up finds restaurants; `--orders` drivers connect over QUIC and ping every
//! `--ping-interval`; `--orders` orders are placed (customer i, a cart from restaurant i's menu).
//! Then `--connections` trackers open `/ws/orders/{id}/track`, spread evenly over the orders, each
//! from the next of `--sources` (local addresses: one source reaches one target address through at
//! most ~28K ephemeral ports) and through the next of `--ws-via` (several routers, when one
//! process's descriptor limit is below two per tracker). The cell caps sockets per token
//! (`[tracking] max_subscriptions_per_token`), so each group of [`PER_TOKEN`] trackers of an order
//! gets its own token of that order's customer (minted with the secret, differing in `exp`). Once
//! all are open and idle, the RSS of each `--rss name=pid` process is read; then the restaurants
//! accept the orders (unless `--idle`), our drivers take them, and their pings are pushed to every
//! tracker of the order. The trackers are held for `--duration`, counting pushes, ping → push
//! latency (receive time − the ping's `ts`), and connections that ended before the end (dropped)
//! with their close codes; then they close.

use super::fleet::{self, QuicTarget};
use super::pings::parse_point;
use super::track::{Counts, drive, open_restaurants, place};
use super::unix_us;
use crate::pacing::parse_duration;
use crate::report::Quantiles;
use anyhow::{Context, bail};
use futures::StreamExt;
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Trackers per token, under the cell's default cap of 8 per token.
pub const PER_TOKEN: u64 = 4;

/// Options of `trackers`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrackersArgs {
    #[command(flatten)]
    pub target: QuicTarget,
    /// Tracking WebSockets to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub connections: u64,
    /// Orders watched (and drivers carrying them); each has connections / orders trackers.
    #[arg(long, default_value_t = 10)]
    pub orders: u64,
    /// Base URLs the WebSockets open through, in turn (e.g. several routers in front of
    /// one cell: a process holds as many descriptors as its limit allows, a router two per
    /// tracker); default: `--target`.
    #[arg(long = "ws-via")]
    pub ws_via: Vec<String>,
    /// Local addresses the trackers connect from, in turn: `127.0.0.2-127.0.0.9` or a
    /// comma list.
    #[arg(long, default_value = "127.0.0.1", value_parser = parse_sources)]
    pub sources: Sources,
    /// WebSocket handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// How long to hold the trackers once all are open.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Each driver's ping interval (the cell pushes at most one location per second per
    /// tracker).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// Leave the orders unaccepted: no driver is assigned, nothing but the snapshot is pushed.
    #[arg(long)]
    pub idle: bool,
    /// A process whose RSS to report before and after the trackers open: `name=pid`.
    #[arg(long = "rss", value_parser = parse_rss)]
    pub rss: Vec<(String, u32)>,
    #[arg(long, default_value_t = 3_000_000)]
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

/// Local source addresses.
#[derive(Debug, Clone)]
pub struct Sources(pub Vec<IpAddr>);

fn parse_sources(s: &str) -> Result<Sources, String> {
    let bad = |e: std::net::AddrParseError| format!("{s}: {e}");
    let v = if let Some((a, b)) = s.split_once('-') {
        let (a, b): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (
            a.trim().parse().map_err(bad)?,
            b.trim().parse().map_err(bad)?,
        );
        let (a, b) = (u32::from(a), u32::from(b));
        if b < a || b - a > 1024 {
            return Err(format!("{s}: give FIRST-LAST with at most 1025 addresses"));
        }
        (a..=b)
            .map(|i| IpAddr::from(std::net::Ipv4Addr::from(i)))
            .collect()
    } else {
        s.split(',')
            .map(|p| p.trim().parse().map_err(bad))
            .collect::<Result<Vec<IpAddr>, _>>()?
    };
    Ok(Sources(v))
}

fn parse_rss(s: &str) -> Result<(String, u32), String> {
    let (name, pid) = s.split_once('=').ok_or("give name=pid")?;
    Ok((
        name.to_owned(),
        pid.parse().map_err(|e| format!("{s}: {e}"))?,
    ))
}

/// Resident memory of a process from `/proc/PID/status`, bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = s
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb * 1024)
}

/// One process's memory around the trackers.
#[derive(Debug, Clone, Serialize)]
pub struct RssDelta {
    pub name: String,
    pub before_bytes: u64,
    /// All trackers open, idle.
    pub open_bytes: u64,
    /// At the end of the hold.
    pub end_bytes: u64,
    /// (open − before) / trackers open.
    pub per_connection_bytes: f64,
}

/// The report of `trackers`.
#[derive(Debug, Clone, Serialize)]
pub struct TrackersReport {
    pub tool: &'static str,
    pub scenario: &'static str,
    pub target: String,
    pub requested: u64,
    pub opened: u64,
    pub open_failures: u64,
    pub open_failure_samples: Vec<String>,
    pub open_s: f64,
    pub orders: u64,
    pub orders_accepted: u64,
    pub assignments: u64,
    pub pings_sent: u64,
    pub held_s: f64,
    /// Trackers that ended before the hold did.
    pub dropped: u64,
    /// Close codes (or "none") of the dropped ones.
    pub drop_reasons: Vec<(String, u64)>,
    pub location_updates: u64,
    pub other_messages: u64,
    pub ping_to_push_ms: Quantiles,
    pub rss: Vec<RssDelta>,
}

/// Live counters shared by the tracker tasks.
#[derive(Default)]
struct Live {
    open: AtomicU64,
    dropped: AtomicU64,
    updates: AtomicU64,
    other: AtomicU64,
    reasons: Mutex<std::collections::BTreeMap<String, u64>>,
}

/// The `ts` field (ms) of a `location_update`, read without building a JSON tree: the hub
/// sends one per tracker per second, 100K/s at scale.
fn location_ts(text: &str) -> Option<u64> {
    if !text.contains("\"type\":\"location_update\"") {
        return None;
    }
    let rest = &text[text.find("\"ts\":")? + 5..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A TCP connection to `to` from `source` (port left to `connect`).
async fn connect_from(source: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let socket = if source.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: our own socket descriptor and a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    socket.bind(SocketAddr::new(source, 0))?;
    let tcp = socket.connect(to).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

type Hist = Arc<Mutex<hdrhistogram::Histogram<u64>>>;

/// One tracker: reads until the stop signal (then closes) or until the server ends it.
async fn hold(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    live: Arc<Live>,
    hist: Hist,
) {
    live.open.fetch_add(1, Ordering::Relaxed);
    let reason = loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                live.open.fetch_sub(1, Ordering::Relaxed);
                return;
            }
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => match location_ts(t.as_str()) {
                    Some(ts) => {
                        live.updates.fetch_add(1, Ordering::Relaxed);
                        let us = unix_us().saturating_sub(ts * 1000);
                        if let Ok(mut h) = hist.lock() {
                            let _ = h.record(us.max(1));
                        }
                    }
                    None => {
                        live.other.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Some(Ok(Message::Close(f))) => {
                    break f.map_or("close without code".to_owned(), |f| format!("close {}", u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => break format!("error: {e}"),
                None => break "ended without close".to_owned(),
            }
        }
    };
    live.open.fetch_sub(1, Ordering::Relaxed);
    live.dropped.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut r) = live.reasons.lock() {
        *r.entry(reason).or_default() += 1;
    }
}

/// Runs `trackers`; prints the summary and writes the JSON report if asked.
pub async fn run(a: TrackersArgs) -> anyhow::Result<TrackersReport> {
    let r = execute(&a).await?;
    println!("{}", render(&r));
    if let Some(p) = &a.target.out.report_json {
        std::fs::write(p, serde_json::to_vec_pretty(&r)?)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(r)
}

async fn execute(a: &TrackersArgs) -> anyhow::Result<TrackersReport> {
    let t = &a.target;
    let secret = t
        .jwt_secret
        .clone()
        .context("trackers mints several tokens per customer: give --jwt-secret")?;
    if a.orders == 0 || a.sources.0.is_empty() {
        bail!("give at least one order and one source address");
    }
    let base = t.target.trim_end_matches('/').to_string();
    let via = if a.ws_via.is_empty() {
        vec![base.clone()]
    } else {
        a.ws_via.clone()
    };
    // (address to connect to, ws:// base) of each way in.
    let mut ways: Vec<(SocketAddr, String)> = Vec::new();
    for v in &via {
        let v = v.trim_end_matches('/');
        let authority = v.split_once("://").map_or(v, |(_, r)| r);
        let to = tokio::net::lookup_host(authority)
            .await?
            .next()
            .with_context(|| format!("resolving {authority}"))?;
        ways.push((to, v.replacen("http", "ws", 1)));
    }
    let client = crate::http::client(Duration::from_secs(10), 64)?;
    let tokens = Arc::new(t.tokens(client.clone())?);
    let restaurants = open_restaurants(
        &client,
        &base,
        &tokens,
        (a.center, a.spread_km),
        (a.warmup_points, a.warmup_menus),
    )
    .await?;
    let pick = |i: usize| &restaurants[i % restaurants.len()];
    let ids: Vec<u64> = (1..=a.orders).map(|i| a.driver_id_base + i).collect();
    let fleet = fleet::connect(t, tokens.clone(), &ids, None).await?;
    let counts = Arc::new(Counts::default());
    for (i, (id, c)) in fleet.drivers.iter().enumerate() {
        if let Some(c) = c {
            tokio::spawn(drive(
                c.clone(),
                *id,
                pick(i).point,
                a.ping_interval,
                counts.clone(),
            ));
        }
    }
    let mut orders = Vec::new();
    for i in 0..a.orders as usize {
        let sub = (a.driver_id_base + i as u64 + 1).to_string();
        let customer = tokens.get("customer", &sub).await?;
        let id = place(&client, &base, &customer, pick(i)).await?;
        orders.push((i, id, sub));
    }
    let before: Vec<(String, u32, u64)> = a
        .rss
        .iter()
        .map(|(n, p)| (n.clone(), *p, rss_bytes(*p).unwrap_or(0)))
        .collect();
    eprintln!(
        "{} drivers, {} orders; opening {} trackers from {} source address(es)",
        fleet.drivers.len() as u64 - fleet.failures,
        orders.len(),
        a.connections,
        a.sources.0.len()
    );

    let live = Arc::new(Live::default());
    let hist: Hist = Arc::new(Mutex::new(hdrhistogram::Histogram::new(3)?));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let failures = Arc::new(AtomicU64::new(0));
    let samples = Arc::new(Mutex::new(Vec::<String>::new()));
    let gate = Arc::new(tokio::sync::Semaphore::new(a.connect_concurrency.max(1)));
    let started = Instant::now();
    let mut token_cache: std::collections::HashMap<(usize, u64), String> = Default::default();
    let mut handshakes = Vec::new();
    for k in 0..a.connections {
        let (oi, id, sub) = &orders[(k % a.orders) as usize];
        // The k-th tracker of its order; every PER_TOKEN of them share a token.
        let group = k / a.orders / PER_TOKEN;
        let token = token_cache
            .entry((*oi, group))
            .or_insert_with(|| {
                crate::auth::mint(&secret, "customer", sub, 24 * 3600 + group).unwrap_or_default()
            })
            .clone();
        let (to, ws_base) = &ways[(k as usize) % ways.len()];
        let (to, url) = (*to, format!("{ws_base}/ws/orders/{id}/track?token={token}"));
        let source = a.sources.0[(k as usize) % a.sources.0.len()];
        let permit = gate.clone().acquire_owned().await?;
        let (stop, t_live, t_hist) = (stop_rx.clone(), live.clone(), hist.clone());
        let (t_failures, t_samples) = (failures.clone(), samples.clone());
        handshakes.push(tokio::spawn(async move {
            let opened = async {
                let tcp = connect_from(source, to).await?;
                let (ws, _) =
                    tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await?;
                anyhow::Ok(ws)
            };
            let opened = tokio::time::timeout(Duration::from_secs(30), opened).await;
            drop(permit);
            match opened {
                Ok(Ok(ws)) => {
                    tokio::spawn(hold(ws, stop, t_live, t_hist));
                }
                Ok(Err(e)) => {
                    t_failures.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut s) = t_samples.lock()
                        && s.len() < 5
                    {
                        s.push(format!("{e:#}"));
                    }
                }
                Err(_) => {
                    t_failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
        if k % 10_000 == 9_999 {
            eprintln!(
                "  {} requested, {} open, {} failed, {:.0} s",
                k + 1,
                live.open.load(Ordering::Relaxed),
                failures.load(Ordering::Relaxed),
                started.elapsed().as_secs_f64()
            );
        }
    }
    for h in handshakes {
        let _ = h.await;
    }
    let open_s = started.elapsed().as_secs_f64();
    // Let the snapshots land and the processes settle before reading their memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let opened = live.open.load(Ordering::Relaxed) + live.dropped.load(Ordering::Relaxed);
    let open_now: Vec<u64> = before
        .iter()
        .map(|(_, p, _)| rss_bytes(*p).unwrap_or(0))
        .collect();
    eprintln!(
        "{opened} trackers open in {open_s:.1} s ({} failed); holding for {:?}",
        failures.load(Ordering::Relaxed),
        a.duration
    );

    let mut accepted = 0u64;
    if !a.idle {
        for (i, id, _) in &orders {
            let token = tokens.get("restaurant", &pick(*i).id).await?;
            let r = client
                .patch(format!("{base}/api/v1/restaurants/orders/{id}"))
                .bearer_auth(&token)
                .json(&serde_json::json!({ "status": "accepted" }))
                .send()
                .await;
            if matches!(&r, Ok(r) if r.status().is_success()) {
                accepted += 1;
            }
        }
    }
    let hold_from = Instant::now();
    while hold_from.elapsed() < a.duration {
        let left = a.duration.saturating_sub(hold_from.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
        let p99 = hist
            .lock()
            .map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0);
        eprintln!(
            "  {:.0} s: open {}  dropped {}  pushes {}  p99 {p99:.1} ms  assignments {}",
            hold_from.elapsed().as_secs_f64(),
            live.open.load(Ordering::Relaxed),
            live.dropped.load(Ordering::Relaxed),
            live.updates.load(Ordering::Relaxed),
            counts.assignments.load(Ordering::Relaxed)
        );
    }
    let held_s = hold_from.elapsed().as_secs_f64();
    let dropped = live.dropped.load(Ordering::Relaxed);
    let rss = before
        .iter()
        .zip(open_now)
        .map(|((name, pid, b), o)| RssDelta {
            name: name.clone(),
            before_bytes: *b,
            open_bytes: o,
            end_bytes: rss_bytes(*pid).unwrap_or(0),
            per_connection_bytes: o.saturating_sub(*b) as f64 / opened.max(1) as f64,
        })
        .collect();
    let _ = stop_tx.send(true);
    // Closing handshakes of the trackers.
    let closing = Instant::now();
    while live.open.load(Ordering::Relaxed) > 0 && closing.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fleet::close(&fleet).await;
    let q = hist.lock().map(|h| Quantiles::of(&h)).unwrap_or_default();
    let open_failure_samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let drop_reasons = live
        .reasons
        .lock()
        .map(|r| r.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    Ok(TrackersReport {
        tool: "loadgen",
        scenario: "trackers",
        target: base,
        requested: a.connections,
        opened,
        open_failures: failures.load(Ordering::Relaxed),
        open_failure_samples,
        open_s,
        orders: orders.len() as u64,
        orders_accepted: accepted,
        assignments: counts.assignments.load(Ordering::Relaxed),
        pings_sent: counts.pings.load(Ordering::Relaxed),
        held_s,
        dropped,
        drop_reasons,
        location_updates: live.updates.load(Ordering::Relaxed),
        other_messages: live.other.load(Ordering::Relaxed),
        ping_to_push_ms: q,
        rss,
    })
}

/// The text summary; the bench script reads the `key value` lines.
pub fn render(r: &TrackersReport) -> String {
    let q = &r.ping_to_push_ms;
    let mut s = format!(
        "trackers against {}: requested {}  opened {}  open failures {}  ({:.1} s to open)\n",
        r.target, r.requested, r.opened, r.open_failures, r.open_s
    );
    s += &format!(
        "orders {} accepted {}  assignments {}  pings sent {}\n",
        r.orders, r.orders_accepted, r.assignments, r.pings_sent
    );
    s += &format!(
        "held {:.0} s  dropped {}  location updates {}  other messages {}\n",
        r.held_s, r.dropped, r.location_updates, r.other_messages
    );
    s += &format!(
        "ping → push ms: count {}  p50 {:.2}  p99 {:.2}  max {:.2}\n",
        q.count, q.p50, q.p99, q.max
    );
    for m in &r.rss {
        s += &format!(
            "rss {}: before {:.1} MiB  open {:.1} MiB  end {:.1} MiB  per connection {:.0} B ({:.2} KiB)\n",
            m.name,
            m.before_bytes as f64 / 1048576.0,
            m.open_bytes as f64 / 1048576.0,
            m.end_bytes as f64 / 1048576.0,
            m.per_connection_bytes,
            m.per_connection_bytes / 1024.0
        );
    }
    for (reason, n) in &r.drop_reasons {
        s += &format!("dropped: {n} × {reason}\n");
    }
    for e in &r.open_failure_samples {
        s += &format!("open failure sample: {e}\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_as_a_range_or_a_list_and_ts_is_read_from_location_updates_only() {
        let r = parse_sources("127.0.0.2-127.0.0.4").unwrap();
        assert_eq!(r.0.len(), 3);
        assert_eq!(r.0[2], "127.0.0.4".parse::<IpAddr>().unwrap());
        assert_eq!(parse_sources("127.0.0.1, ::1").unwrap().0.len(), 2);
        assert!(parse_sources("127.0.0.9-127.0.0.2").is_err());
        let loc = r#"{"type":"location_update","order_id":"x","lat":1.0,"ts":1712345678901,"eta_minutes":3}"#;
        assert_eq!(location_ts(loc), Some(1_712_345_678_901));
        assert_eq!(location_ts(r#"{"type":"eta_update","ts":5}"#), None);
        assert_eq!(parse_rss("cell=42").unwrap(), ("cell".to_owned(), 42));
    }
}
