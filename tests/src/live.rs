//! Real-time clients for the cross-process tests: QUIC drivers (the `driver-client` crate)
//! and WebSocket trackers (`tokio-tungstenite`), usable from synchronous tests.
//!
//! The tests stay synchronous (the blocking HTTP [`crate::client::Client`] cannot run inside
//! an async context); a multi-threaded tokio [`Runtime`] from [`runtime`] runs the network
//! tasks. Each driver and tracker has a background task that forwards everything it
//! receives into a `std::sync::mpsc` channel, so a test waits on a message with
//! `recv_timeout`: no sleeps, and a missing message fails with what *was* received.

use crate::harness::Cell;
use anyhow::Context;
use driver_client::{DriverClient, Trust};
use futures::StreamExt;
use schemas::{
    CellBody, CellMsg, CloseReason, DriverBody, DriverStatus, LocationPing, Offer, OfferDecision,
    OfferResponse, StatusChange,
};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::runtime::{Handle, Runtime};
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for a message the cell must send.
pub const WAIT: Duration = Duration::from_secs(10);

/// A multi-threaded runtime for the network tasks of one test.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("building a tokio runtime")
}

/// Wall clock, Unix milliseconds (what a phone puts in its pings).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Metres between two points (haversine, the geostore's Earth radius).
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (a.0.to_radians(), b.0.to_radians());
    let dp = p2 - p1;
    let dl = (b.1 - a.1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().asin()
}

/// `from` moved `metres` towards `to` (straight, in degrees: fine over a few km).
pub fn towards(from: (f64, f64), to: (f64, f64), metres: f64) -> (f64, f64) {
    let d = distance_m(from, to);
    if d <= metres || d == 0.0 {
        return to;
    }
    let f = metres / d;
    (from.0 + (to.0 - from.0) * f, from.1 + (to.1 - from.1) * f)
}

/// A point `metres` north of `p`.
pub fn north_of(p: (f64, f64), metres: f64) -> (f64, f64) {
    (p.0 + metres / 111_195.0, p.1)
}

/// A bare QUIC connection of driver `id` (dev token), trusting the cell's dev CA from the
/// READY line: after `HelloAck`, nothing sent yet.
pub fn quic_client(cell: &Cell, rt: &Runtime, id: u64) -> anyhow::Result<DriverClient> {
    let ready = cell.ready();
    let addr = ready.quic.context("the cell runs no QUIC gateway")?;
    let ca = ready.quic_ca.as_ref().context("no quic_ca in READY")?;
    let name = ready.quic_server_name.as_deref().unwrap_or("localhost");
    let trust = Trust::ca_pem_file(ca)?;
    let token = cell.token("driver", id);
    Ok(rt.block_on(DriverClient::connect(addr, name, trust, &token, None))?)
}

/// One driver connected to a cell over QUIC, pinging its current position as datagrams
/// every `ping_every` in the background. Dropping it closes the connection.
pub struct LiveDriver {
    pub id: u64,
    client: Arc<DriverClient>,
    pos: Arc<Mutex<(f64, f64)>>,
    /// The last ping sequence number used: one counter for every ping of the session (the
    /// cell drops a ping whose number is not above one it has seen).
    seq: Arc<AtomicU64>,
    inbox: Receiver<CellMsg>,
    /// Everything received so far (including what [`LiveDriver::expect`] skipped).
    pub seen: Vec<CellMsg>,
    rt: Handle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LiveDriver {
    /// Connects driver `id` (a dev token) at `at`, trusting the cell's dev CA from the READY
    /// line, and makes sure its first position is stored before returning: a ping on the
    /// control stream followed by `Online`, whose `Ack` comes after the ping was processed.
    pub fn connect(cell: &Cell, rt: &Runtime, id: u64, at: (f64, f64)) -> LiveDriver {
        Self::try_connect(cell, rt, id, at, Duration::from_millis(100))
            .unwrap_or_else(|e| panic!("driver {id}: connecting failed: {e:#}"))
    }

    pub fn try_connect(
        cell: &Cell,
        rt: &Runtime,
        id: u64,
        at: (f64, f64),
        ping_every: Duration,
    ) -> anyhow::Result<LiveDriver> {
        let client = Arc::new(quic_client(cell, rt, id)?);
        let pos = Arc::new(Mutex::new(at));
        let (tx, inbox) = channel();
        let reader = {
            let client = client.clone();
            rt.spawn(async move {
                while let Some(m) = client.next_message().await {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            })
        };
        let seq = Arc::new(AtomicU64::new(0));
        let pinger = {
            let (client, pos, seq) = (client.clone(), pos.clone(), seq.clone());
            rt.spawn(async move {
                let mut every = tokio::time::interval(ping_every);
                loop {
                    every.tick().await;
                    let at = *pos.lock().unwrap_or_else(|p| p.into_inner());
                    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
                    if client.send_ping(&ping(id, at, n)).is_err() {
                        break;
                    }
                }
            })
        };
        let mut d = LiveDriver {
            id,
            client,
            pos,
            seq,
            inbox,
            seen: Vec::new(),
            rt: rt.handle().clone(),
            tasks: vec![reader, pinger],
        };
        // If a datagram with a higher number overtakes it, this one is dropped as stale, but
        // that datagram already stored the same position.
        let n = d.next_seq();
        d.send(DriverBody::LocationPing(ping(id, at, n)));
        d.status(DriverStatus::Online)
            .map_err(|r| anyhow::anyhow!("online refused: {r:?}"))?;
        Ok(d)
    }

    /// The QUIC client, for sending from async code (e.g. racing other requests).
    pub fn client(&self) -> Arc<DriverClient> {
        self.client.clone()
    }

    /// Where the background pings put the driver from now on.
    pub fn set_position(&self, at: (f64, f64)) {
        *self.pos.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }

    /// Moves to `at` and sends a ping for it at once (as a datagram).
    pub fn ping_at(&self, at: (f64, f64)) {
        self.set_position(at);
        let _ = self.client.send_ping(&ping(self.id, at, self.next_seq()));
    }

    /// The next ping sequence number of this session.
    pub fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends a control-stream message; returns its `seq`.
    pub fn send(&self, body: impl Into<DriverBody>) -> u64 {
        let body = body.into();
        self.rt
            .block_on(self.client.send(body.clone()))
            .unwrap_or_else(|e| panic!("driver {}: sending {body:?}: {e}", self.id))
    }

    /// The next message matching `pred` within `timeout`; others are kept in `seen`.
    pub fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&CellBody) -> bool,
    ) -> CellMsg {
        self.try_expect(timeout, &mut pred).unwrap_or_else(|| {
            panic!(
                "driver {}: no {what} within {timeout:?}; received {:#?}",
                self.id, self.seen
            )
        })
    }

    /// Like [`LiveDriver::expect`], `None` on timeout.
    pub fn try_expect(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&CellBody) -> bool,
    ) -> Option<CellMsg> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.inbox.recv_timeout(left) {
                Ok(m) => {
                    self.seen.push(m.clone());
                    if pred(&m.body) {
                        return Some(m);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Waits for the next `Offer`.
    pub fn expect_offer(&mut self, timeout: Duration) -> Offer {
        match self
            .expect("offer", timeout, |b| matches!(b, CellBody::Offer(_)))
            .body
        {
            CellBody::Offer(o) => o,
            _ => unreachable!(),
        }
    }

    /// The cell's answer to the message with `seq`: `Ok` for an `Ack`, the code of an
    /// `ErrorMsg`.
    pub fn reply(&mut self, seq: u64) -> Result<(), CloseReason> {
        let m = self.expect("reply", WAIT, |b| match b {
            CellBody::Ack(a) => a.ack_seq == seq,
            CellBody::ErrorMsg(e) => e.ref_seq == Some(seq),
            _ => false,
        });
        match m.body {
            CellBody::ErrorMsg(e) => Err(e.code),
            _ => Ok(()),
        }
    }

    /// Sends a status change and waits for its answer.
    pub fn status(&mut self, status: DriverStatus) -> Result<(), CloseReason> {
        let seq = self.send(StatusChange {
            status,
            client_ts_ms: now_ms(),
        });
        self.reply(seq)
    }

    /// Answers an offer and waits for the answer to that (an `Assignment` arrives separately).
    pub fn answer(&mut self, offer: &Offer, accept: bool) -> Result<(), CloseReason> {
        let seq = self.send(OfferResponse {
            offer_id: offer.offer_id,
            delivery_id: offer.delivery_id,
            decision: if accept {
                OfferDecision::Accept
            } else {
                OfferDecision::Decline
            },
        });
        self.reply(seq)
    }

    /// Offers received so far (in `seen`).
    pub fn offers_seen(&self) -> Vec<Offer> {
        self.seen
            .iter()
            .filter_map(|m| match &m.body {
                CellBody::Offer(o) => Some(o.clone()),
                _ => None,
            })
            .collect()
    }

    /// Drains what has arrived without waiting (into `seen`).
    pub fn drain(&mut self) {
        while let Ok(m) = self.inbox.try_recv() {
            self.seen.push(m);
        }
    }
}

impl Drop for LiveDriver {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let r = CloseReason::Normal;
        self.client
            .connection()
            .close(r.code().into(), r.as_str().as_bytes());
    }
}

/// A ping of `driver_id` at `at`, taken now, with sequence number `seq`.
pub fn ping(driver_id: u64, at: (f64, f64), seq: u64) -> LocationPing {
    LocationPing {
        driver_id,
        lat: at.0,
        lng: at.1,
        heading_deg: 0.0,
        speed_mps: 8.0,
        accuracy_m: 5.0,
        client_ts_ms: now_ms(),
        seq,
    }
}

/// What a tracking WebSocket delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum WsEvent {
    /// A text message, parsed.
    Json(Value),
    /// The close frame's code and reason (`None`: the stream ended without one).
    Closed(Option<(u16, String)>),
}

/// A customer (or restaurant) watching `GET /ws/orders/{id}/track`.
pub struct Tracker {
    inbox: Receiver<WsEvent>,
    /// Everything received so far.
    pub seen: Vec<WsEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Tracker {
    /// Opens the socket with `?token=`; an HTTP refusal is `Err` with its status.
    pub fn connect(cell: &Cell, rt: &Runtime, order_id: &str, token: &str) -> Result<Self, u16> {
        Self::connect_at(cell.addr(), rt, order_id, token)
    }

    /// [`Tracker::connect`] to any address serving the endpoint (a cell or the router).
    pub fn connect_at(
        addr: std::net::SocketAddr,
        rt: &Runtime,
        order_id: &str,
        token: &str,
    ) -> Result<Self, u16> {
        let url = format!("ws://{addr}/ws/orders/{order_id}/track?token={token}");
        let ws = match rt.block_on(tokio_tungstenite::connect_async(url)) {
            Ok((ws, _)) => ws,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                return Err(resp.status().as_u16());
            }
            Err(e) => panic!("tracking socket for {order_id}: {e}"),
        };
        let (tx, inbox) = channel();
        let task = rt.spawn(async move {
            let (_write, mut read) = ws.split();
            while let Some(m) = read.next().await {
                let ev = match m {
                    Ok(Message::Text(t)) => WsEvent::Json(
                        serde_json::from_str(&t).unwrap_or_else(|_| Value::String(t.to_string())),
                    ),
                    Ok(Message::Close(f)) => {
                        let _ = tx.send(WsEvent::Closed(
                            f.map(|f| (u16::from(f.code), f.reason.to_string())),
                        ));
                        return;
                    }
                    Ok(_) => continue,
                    Err(_) => break,
                };
                if tx.send(ev).is_err() {
                    return;
                }
            }
            let _ = tx.send(WsEvent::Closed(None));
        });
        Ok(Tracker {
            inbox,
            seen: Vec::new(),
            task,
        })
    }

    /// The next event within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<WsEvent> {
        let ev = self.inbox.recv_timeout(timeout).ok()?;
        self.seen.push(ev.clone());
        Some(ev)
    }

    /// The next JSON message matching `pred`; others are kept in `seen`. Panics on timeout
    /// or when the socket closes first.
    pub fn expect(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(WsEvent::Json(v)) if pred(&v) => return v,
                Some(WsEvent::Json(_)) => {}
                Some(WsEvent::Closed(c)) => {
                    panic!(
                        "socket closed ({c:?}) before {what}; received {:#?}",
                        self.seen
                    )
                }
                None => panic!("no {what} within {timeout:?}; received {:#?}", self.seen),
            }
        }
    }

    /// Waits for a `status_update` with this `status`.
    pub fn expect_status(&mut self, status: &str) -> Value {
        self.expect(&format!("status_update {status}"), WAIT, |v| {
            v["type"] == "status_update" && v["status"] == status
        })
    }

    /// Waits for the close frame, skipping messages; returns its code and reason.
    pub fn expect_close(&mut self, timeout: Duration) -> Option<(u16, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left) {
                Some(WsEvent::Closed(c)) => return c,
                Some(WsEvent::Json(_)) => {}
                None => panic!(
                    "socket not closed within {timeout:?}; received {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// JSON messages of `type` seen so far.
    pub fn of_type(&self, ty: &str) -> Vec<&Value> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                WsEvent::Json(v) if v["type"] == ty => Some(v),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET /metrics` and the sum of the samples of `name` (any labels).
pub fn metric(cell: &Cell, name: &str) -> f64 {
    let text = cell.get("/metrics").send().expect_status(200).text;
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            let metric = key.split('{').next()?;
            (metric == name).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}
