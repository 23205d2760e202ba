//! One driver connection, from the end of the handshake to [`DriverPort::disconnected`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::DriverId;
use quinn::{Connection, ConnectionError, VarInt};
use schemas::{
    Ack, CellBody, CloseReason, DriverBody, DriverMsg, ErrorMsg, HelloAck, LocationPing,
    PROTOCOL_VERSION, PingTransport,
};
use tokio::sync::mpsc;

use super::DriverPort;
use super::endpoint::Shared;
use super::frames::{FrameError, FrameReader, FrameWriter};
use super::metrics::Ended;
use super::port::{PingSink, Session};

/// How long a closing message (`Handover`, a closing `ErrorMsg`) may take to be acknowledged
/// before the connection is closed anyway.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Answers (Ack/ErrorMsg) waiting for the writer; the reader blocks beyond this, which is the
/// backpressure we want on a driver that sends requests faster than it reads answers.
const REPLY_QUEUE: usize = 16;

/// Closes with a stable application code and its name as the reason phrase.
pub(super) fn close(conn: &Connection, reason: CloseReason) {
    conn.close(VarInt::from(reason.code()), reason.as_str().as_bytes());
}

/// Decrements the connection count however the task ends.
struct Active(Arc<Shared>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.connections.decrement(1.0);
    }
}

/// One handshake in flight, counted from admission until it succeeds or fails.
pub(super) struct Handshaking(Arc<Shared>);

impl Handshaking {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        shared.handshaking.fetch_add(1, Ordering::SeqCst);
        shared.metrics.handshakes.increment(1.0);
        Self(shared)
    }
}

impl Drop for Handshaking {
    fn drop(&mut self) {
        self.0.handshaking.fetch_sub(1, Ordering::SeqCst);
        self.0.metrics.handshakes.decrement(1.0);
    }
}

/// Calls `disconnected` exactly once per `connected`, even if the task is aborted.
struct Connected<'a> {
    drivers: &'a dyn DriverPort,
    driver: DriverId,
    session: u64,
}

impl Drop for Connected<'_> {
    fn drop(&mut self) {
        self.drivers.disconnected(self.driver, self.session);
    }
}

pub(super) async fn run(incoming: quinn::Incoming, shared: Arc<Shared>, counted: Handshaking) {
    let _active = Active(Arc::clone(&shared));
    let remote = incoming.remote_address();
    let handshake = match incoming.accept() {
        Ok(connecting) => connecting.await,
        Err(e) => Err(e),
    };
    drop(counted);
    let conn = match handshake {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(%remote, error = %e, "QUIC handshake failed");
            shared.metrics.ended(Ended::Lost);
            return;
        }
    };
    let ended = session(&conn, &shared).await;
    if let Ended::Closed(reason) = ended {
        close(&conn, reason);
    }
    tracing::debug!(%remote, ?ended, "driver connection ended");
    shared.metrics.ended(ended);
}

fn lost(e: &ConnectionError, shared: &Shared) -> Ended {
    match e {
        ConnectionError::ApplicationClosed(_) | ConnectionError::ConnectionClosed(_) => {
            Ended::PeerClosed
        }
        ConnectionError::TimedOut => Ended::TimedOut,
        ConnectionError::LocallyClosed if shared.shutting_down.load(Ordering::SeqCst) => {
            Ended::Closed(CloseReason::ServerShutdown)
        }
        _ => Ended::Lost,
    }
}

/// A failed read of the control stream: the connection's end, or the driver abusing the
/// stream (reset it, or sent a bad frame).
fn read_failed(e: FrameError, shared: &Shared) -> Ended {
    match e {
        FrameError::Read(quinn::ReadError::ConnectionLost(e)) => lost(&e, shared),
        e => {
            tracing::debug!(error = %e, "bad control stream");
            if !matches!(e, FrameError::Read(_)) {
                shared.metrics.frame(None);
            }
            Ended::Closed(CloseReason::ProtocolViolation)
        }
    }
}

fn write_failed(e: quinn::WriteError, shared: &Shared) -> Ended {
    match e {
        quinn::WriteError::ConnectionLost(e) => lost(&e, shared),
        // The driver stopped the control stream: it cannot be talked to any more.
        _ => Ended::Closed(CloseReason::ProtocolViolation),
    }
}

/// One control-stream write, bounded: a driver that does not read (its flow-control window
/// stays full) is closed with `slow_reader` after `control_write_timeout_ms`.
async fn write(writer: &mut FrameWriter, body: CellBody, shared: &Shared) -> Result<(), Ended> {
    match tokio::time::timeout(shared.cfg.control_write_timeout(), writer.write(body)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(write_failed(e, shared)),
        Err(_) => Err(Ended::Closed(CloseReason::SlowReader)),
    }
}

async fn session(conn: &Connection, shared: &Arc<Shared>) -> Ended {
    let cfg = &shared.cfg;
    // The deadline covers opening the stream and the whole Hello frame: a driver cannot hold a
    // connection slot by trickling bytes.
    let first = tokio::time::timeout(cfg.hello_timeout(), async {
        let (send, recv) = conn.accept_bi().await?;
        let mut reader = FrameReader::new(recv, cfg.max_frame_bytes);
        let first = reader.next().await;
        Ok::<_, ConnectionError>((send, reader, first))
    })
    .await;
    let (send, reader, first) = match first {
        Err(_) => return Ended::Closed(CloseReason::HelloTimeout),
        Ok(Err(e)) => return lost(&e, shared),
        Ok(Ok(x)) => x,
    };
    let hello = match first {
        Ok(Some(DriverMsg {
            body: DriverBody::Hello(hello),
            ..
        })) => hello,
        Ok(Some(other)) => {
            shared.metrics.frame(Some(&other.body));
            return Ended::Closed(CloseReason::ProtocolViolation);
        }
        Ok(None) => return Ended::Closed(CloseReason::ProtocolViolation),
        Err(e) => return read_failed(e, shared),
    };
    shared
        .metrics
        .frame(Some(&DriverBody::Hello(hello.clone())));
    if hello.protocol_version != PROTOCOL_VERSION {
        return Ended::Closed(CloseReason::VersionUnsupported);
    }
    let (driver, expiry) = match shared.drivers.authenticate(&hello.token) {
        Ok(a) => (a.driver, tokio::time::Instant::now() + a.valid_for),
        Err(r) if r.closes_connection() => return Ended::Closed(r),
        Err(_) => return Ended::Closed(CloseReason::BadToken),
    };

    let Session {
        id,
        outbox,
        resumed,
        pings,
    } = shared.drivers.connected(driver, hello.resume_session_id);
    let _connected = Connected {
        drivers: shared.drivers.as_ref(),
        driver,
        session: id,
    };
    if id == 0 {
        tracing::error!(%driver, "DriverPort::connected returned session id 0");
        return Ended::Closed(CloseReason::Internal);
    }
    let mut writer = FrameWriter::new(send);
    let ack = HelloAck {
        session_id: id,
        server_time_ms: now_ms(),
        ping_interval_ms: cfg.ping_interval_ms,
        // A peer that did not offer datagram support gets pings on the control stream.
        ping_transport: if conn.max_datagram_size().is_some() {
            PingTransport::Datagram
        } else {
            PingTransport::Stream
        },
        resumed,
    };
    if let Err(end) = write(&mut writer, ack.into(), shared).await {
        return end;
    }

    let (reply_tx, reply_rx) = mpsc::channel(REPLY_QUEUE);
    let pings: Arc<dyn PingSink> = Arc::from(pings);
    // Datagrams get a task of their own: a datagram then wakes only that task, not the control
    // reader and the writer polled beside it (each of those polls locks the connection).
    let mut datagrams = AbortOnDrop(tokio::spawn(datagram_loop(
        conn.clone(),
        driver,
        Arc::clone(&pings),
        Arc::clone(shared),
    )));
    // The control loop and the writer share the connection's task: a slow port call in the
    // control loop does not hold up outgoing messages. The first loop to finish decides the
    // close.
    tokio::select! {
        e = control_loop(reader, reply_tx, driver, &*pings, shared) => e,
        e = datagrams.join() => e,
        e = writer_loop(writer, outbox, reply_rx, shared) => e,
        // A session lives no longer than its token; the driver reconnects with a fresh one.
        () = tokio::time::sleep_until(expiry) => Ended::Closed(CloseReason::TokenExpired),
    }
}

/// Aborts the task when the session ends, however it ends.
struct AbortOnDrop(tokio::task::JoinHandle<Ended>);

impl AbortOnDrop {
    async fn join(&mut self) -> Ended {
        match (&mut self.0).await {
            Ok(e) => e,
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(error = %e, "datagram task panicked");
                }
                Ended::Lost
            }
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn datagram_loop(
    conn: Connection,
    driver: DriverId,
    sink: Arc<dyn PingSink>,
    shared: Arc<Shared>,
) -> Ended {
    loop {
        let bytes = match conn.read_datagram().await {
            Ok(b) => b,
            Err(e) => return lost(&e, &shared),
        };
        match LocationPing::decode(&bytes) {
            // A datagram can be mangled or forged without the sender being broken: drop it.
            Err(_) => shared.metrics.dg_undecodable.increment(1),
            Ok(ping) => {
                if let Some(end) = on_ping(&ping, driver, &*sink, &shared) {
                    return end;
                }
            }
        }
    }
}

/// A decoded ping, from a datagram or the control stream. `Some` ends the connection.
fn on_ping(
    ping: &LocationPing,
    driver: DriverId,
    sink: &dyn PingSink,
    shared: &Shared,
) -> Option<Ended> {
    if ping.driver_id != driver.0 {
        // Inside an authenticated, encrypted connection this is a bug or an attack, not noise.
        shared.metrics.dg_wrong_driver.increment(1);
        return Some(Ended::Closed(CloseReason::ProtocolViolation));
    }
    match sink.ping(ping) {
        Ok(()) => shared.metrics.dg_ok.increment(1),
        Err(r) => shared.metrics.ping_rejected(r),
    }
    None
}

async fn control_loop(
    mut reader: FrameReader,
    replies: mpsc::Sender<CellBody>,
    driver: DriverId,
    sink: &dyn PingSink,
    shared: &Shared,
) -> Ended {
    loop {
        let msg = match reader.next().await {
            Ok(Some(m)) => m,
            // The driver finished its side: it is leaving.
            Ok(None) => return Ended::Closed(CloseReason::Normal),
            Err(e) => return read_failed(e, shared),
        };
        shared.metrics.frame(Some(&msg.body));
        let result = match msg.body {
            DriverBody::Hello(_) => return Ended::Closed(CloseReason::ProtocolViolation),
            DriverBody::LocationPing(ping) => match on_ping(&ping, driver, sink, shared) {
                Some(end) => return end,
                None => continue,
            },
            DriverBody::Ack(_) => continue,
            DriverBody::StatusChange(change) => shared.drivers.status(driver, change).await,
            DriverBody::OfferResponse(resp) => shared.drivers.respond(driver, resp).await,
        };
        let reply = match result {
            Ok(()) => CellBody::Ack(Ack { ack_seq: msg.seq }),
            Err(r) if r.closes_connection() => return Ended::Closed(r),
            Err(r) => CellBody::ErrorMsg(ErrorMsg {
                code: r,
                ref_seq: Some(msg.seq),
                message: r.as_str().to_owned(),
            }),
        };
        if replies.send(reply).await.is_err() {
            // The writer ended; its own result decides the close.
            return std::future::pending().await;
        }
    }
}

async fn writer_loop(
    mut writer: FrameWriter,
    mut outbox: mpsc::Receiver<CellBody>,
    mut replies: mpsc::Receiver<CellBody>,
    shared: &Shared,
) -> Ended {
    loop {
        let body = tokio::select! {
            // Answers first: they are small and the driver is waiting on them.
            biased;
            Some(b) = replies.recv() => b,
            b = outbox.recv() => match b {
                Some(b) => b,
                // The dispatch ended this session (the driver connected again).
                None => return Ended::Closed(CloseReason::Superseded),
            },
        };
        let closing = match &body {
            CellBody::Handover(_) => Some(CloseReason::Handover),
            CellBody::ErrorMsg(e) if e.code.closes_connection() => Some(e.code),
            _ => None,
        };
        if let Err(end) = write(&mut writer, body, shared).await {
            return end;
        }
        if let Some(reason) = closing {
            writer.flush(FLUSH_TIMEOUT).await;
            return Ended::Closed(reason);
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
