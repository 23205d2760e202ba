//! Binding (UDP socket, TLS, transport limits) and the accept loop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};
use schemas::CloseReason;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use super::metrics::{Ended, Metrics};
use super::{DriverPort, Gateway, GatewayError, QuicConfig, conn, socket, tls};

/// Control-stream flow-control window: a few maximum frames. The stream carries small messages;
/// quinn's default (1.25 MB) would let each connection buffer that much.
const STREAM_WINDOW_BYTES: u32 = 64 * 1024;
/// Connections over the cap that we still handshake to tell them `too_many_connections`;
/// beyond this many in flight, new ones are refused without a handshake.
const MAX_REJECTING: usize = 64;
/// How long shutdown waits for connections to close and the endpoint to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Binds the gateway's UDP sockets (one per gateway thread, see [`QuicConfig::threads`]),
/// loads or generates the certificate, and returns the gateway ready for [`spawn`] or
/// [`serve`]. Port 0 is allowed: see [`Gateway::local_addr`].
pub async fn bind(cfg: &QuicConfig) -> Result<Gateway, GatewayError> {
    cfg.check()?;
    let identity = tls::load(cfg)?;
    let ca_pem_path = identity.ca_pem_path.clone();
    let fingerprint = identity.fingerprint.clone();
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls::server_crypto(identity)?)
            .map_err(|e| GatewayError::Config(format!("rustls config unusable for QUIC: {e}")))?;
    // One server config for every thread's endpoint: it holds the key Retry tokens are sealed
    // with, so a token is good on whichever socket the client's next packet reaches.
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(cfg)?));
    // A client whose address changes (NAT rebinding) may hash to another thread's socket,
    // whose endpoint does not know the connection. Refusing migration everywhere makes that
    // one behaviour: the old connection ends (a stateless reset from another thread, or an
    // idle timeout) and the driver reconnects (README, Threads).
    server.migration(false);

    let bound = socket::bind_all(cfg, cfg.threads())?;
    let local_addr = bound.local_addr;
    tracing::info!(
        %local_addr,
        threads = bound.sockets.len(),
        server_name = %cfg.server_name,
        "QUIC driver gateway bound"
    );
    Ok(Gateway {
        sockets: bound.sockets,
        server,
        // One endpoint config too: it holds the stateless-reset key, so a reset sent by any
        // thread carries the token the connection's own endpoint announced, and the client
        // accepts it.
        endpoint: quinn::EndpointConfig::default(),
        cfg: cfg.clone(),
        local_addr,
        ca_pem_path,
        fingerprint,
        socket_recv_buffer_bytes: bound.recv_buffer_bytes,
    })
}

/// Per-connection limits (see `stack-facts.md`, QUIC): small datagram buffer, one control
/// stream, no uni streams, bounded windows.
fn transport(cfg: &QuicConfig) -> Result<TransportConfig, GatewayError> {
    let mut t = TransportConfig::default();
    let idle = IdleTimeout::try_from(Duration::from_millis(cfg.idle_timeout_ms))
        .map_err(|_| GatewayError::Config("idle_timeout_ms too large".into()))?;
    t.max_idle_timeout(Some(idle))
        .keep_alive_interval(
            (cfg.keep_alive_ms > 0).then(|| Duration::from_millis(cfg.keep_alive_ms)),
        )
        .datagram_receive_buffer_size(Some(cfg.datagram_recv_buffer_bytes))
        // The gateway sends no datagrams.
        .datagram_send_buffer_size(0)
        .max_concurrent_bidi_streams(VarInt::from_u32(1))
        .max_concurrent_uni_streams(VarInt::from_u32(0))
        .stream_receive_window(VarInt::from_u32(STREAM_WINDOW_BYTES))
        .receive_window(VarInt::from_u32(STREAM_WINDOW_BYTES))
        .send_window(4 * u64::from(STREAM_WINDOW_BYTES));
    Ok(t)
}

/// State shared by the accept loop and every connection task.
pub(super) struct Shared {
    pub cfg: QuicConfig,
    pub drivers: Arc<dyn DriverPort>,
    pub metrics: Metrics,
    /// Open connections, handshaking ones included: what `max_connections` caps.
    pub active: AtomicUsize,
    /// Over-cap connections being handshaken only to be told `too_many_connections`.
    rejecting: AtomicUsize,
    /// Accepted connections whose handshake has not finished: what Retry and
    /// `max_handshakes` look at.
    pub handshaking: AtomicUsize,
    /// Set before the endpoint is closed, so tasks label the close `server_shutdown`.
    pub shutting_down: AtomicBool,
}

impl Shared {
    fn new(cfg: QuicConfig, drivers: Arc<dyn DriverPort>) -> Self {
        Self {
            cfg,
            drivers,
            metrics: Metrics::new(),
            active: AtomicUsize::new(0),
            rejecting: AtomicUsize::new(0),
            handshaking: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
        }
    }
}

/// Starts serving the gateway on threads of its own: one per bound socket
/// ([`Gateway::threads`]), each a single-threaded tokio runtime with its own quinn endpoint,
/// so a connection's packets, its connection driver and its session tasks stay on one
/// thread. The threads share the connection caps, handshake counters, metrics and the
/// [`DriverPort`]. Returns once every endpoint exists; the returned future resolves when
/// every thread has stopped (after `shutdown`).
pub async fn spawn(
    gw: Gateway,
    drivers: Arc<dyn DriverPort>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = ()> + Send + 'static, GatewayError> {
    let Gateway {
        sockets,
        server,
        endpoint: endpoint_cfg,
        cfg,
        local_addr,
        ..
    } = gw;
    let threads = sockets.len();
    let shared = Arc::new(Shared::new(cfg, drivers));
    let (stop_tx, stop_rx) = watch::channel(false);
    // Each thread holds a sender; the receiver sees the channel close when all have ended.
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let mut ready = Vec::with_capacity(threads);
    for (index, socket) in sockets.into_iter().enumerate() {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                // The threads already started stop: a gateway runs whole or not at all.
                let _ = stop_tx.send(true);
                return Err(GatewayError::Io("building a gateway runtime".into(), e));
            }
        };
        let (ready_tx, ready_rx) = oneshot::channel();
        let (server, endpoint_cfg) = (server.clone(), endpoint_cfg.clone());
        let (shared, stop, done) = (Arc::clone(&shared), stop_rx.clone(), done_tx.clone());
        let started = std::thread::Builder::new()
            .name(format!("quic-gateway-{index}"))
            .spawn(move || {
                runtime.block_on(async move {
                    match endpoint(socket, server, endpoint_cfg) {
                        Ok(endpoint) => {
                            let _ = ready_tx.send(Ok(()));
                            run(endpoint, shared, index, stopped(stop)).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                // Connection tasks still running after the shutdown grace end with the runtime.
                drop(runtime);
                drop(done);
            });
        if let Err(e) = started {
            let _ = stop_tx.send(true);
            return Err(GatewayError::Io("starting a gateway thread".into(), e));
        }
        ready.push(ready_rx);
    }
    drop(done_tx);
    for r in ready {
        let made = r.await.unwrap_or_else(|_| {
            Err(GatewayError::Io(
                "gateway thread".into(),
                std::io::Error::other("ended before its endpoint was made"),
            ))
        });
        if let Err(e) = made {
            let _ = stop_tx.send(true);
            return Err(e);
        }
    }
    tracing::info!(%local_addr, threads, "QUIC driver gateway serving");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    Ok(async move {
        let _ = done_rx.recv().await;
    })
}

/// Serves drivers on the current runtime until `shutdown` resolves, then closes every
/// connection with `server_shutdown` and waits (bounded) for them to end and the endpoints to
/// drain. Every bound socket gets its endpoint, all on this runtime. [`spawn`] is the usual
/// way in; this is for callers that manage the task themselves (tests).
pub async fn serve(
    gw: Gateway,
    drivers: Arc<dyn DriverPort>,
    shutdown: impl Future,
) -> Result<(), GatewayError> {
    let shared = Arc::new(Shared::new(gw.cfg, drivers));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut runs = JoinSet::new();
    for (index, socket) in gw.sockets.into_iter().enumerate() {
        let endpoint = endpoint(socket, gw.server.clone(), gw.endpoint.clone())?;
        runs.spawn(run(
            endpoint,
            Arc::clone(&shared),
            index,
            stopped(stop_rx.clone()),
        ));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    while runs.join_next().await.is_some() {}
    Ok(())
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Makes an endpoint on the current runtime: quinn spawns its endpoint and connection drivers
/// on the runtime that is current here.
fn endpoint(
    socket: std::net::UdpSocket,
    server: quinn::ServerConfig,
    endpoint_cfg: quinn::EndpointConfig,
) -> Result<quinn::Endpoint, GatewayError> {
    quinn::Endpoint::new(
        endpoint_cfg,
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| GatewayError::Io("creating the QUIC endpoint".into(), e))
}

/// One thread's accept loop (`thread` names it in logs).
async fn run(endpoint: quinn::Endpoint, shared: Arc<Shared>, thread: usize, shutdown: impl Future) {
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    tracing::error!(error = %e, "QUIC connection task panicked");
                }
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                admit(incoming, &shared, &mut tasks);
            }
        }
    }
    shared.shutting_down.store(true, Ordering::SeqCst);
    let reason = CloseReason::ServerShutdown;
    endpoint.close(VarInt::from(reason.code()), reason.as_str().as_bytes());
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while tasks.join_next().await.is_some() {}
        endpoint.wait_idle().await;
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            thread,
            "QUIC gateway shutdown grace elapsed; aborting remaining connections"
        );
        tasks.shutdown().await;
    }
    tracing::info!(thread, "QUIC driver gateway thread stopped");
}

fn admit(incoming: quinn::Incoming, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
    let handshaking = shared.handshaking.load(Ordering::SeqCst);
    if !incoming.remote_address_validated() && handshaking >= shared.cfg.retry_above_handshakes {
        // Stateless: the client must come back with the token before we keep anything.
        if incoming.may_retry() {
            shared.metrics.handshake("retry");
            if let Err(e) = incoming.retry() {
                e.into_incoming().ignore();
            }
            return;
        }
    }
    if handshaking >= shared.cfg.max_handshakes {
        shared.metrics.handshake("refused");
        incoming.refuse();
        return;
    }
    let open = shared.active.fetch_add(1, Ordering::SeqCst);
    if open < shared.cfg.max_connections {
        shared.metrics.connections.increment(1.0);
        let handshake = conn::Handshaking::new(Arc::clone(shared));
        tasks.spawn(conn::run(incoming, Arc::clone(shared), handshake));
        return;
    }
    shared.active.fetch_sub(1, Ordering::SeqCst);
    shared
        .metrics
        .ended(Ended::Closed(CloseReason::TooManyConnections));
    if shared.rejecting.fetch_add(1, Ordering::SeqCst) >= MAX_REJECTING {
        shared.rejecting.fetch_sub(1, Ordering::SeqCst);
        incoming.refuse();
        return;
    }
    let shared = Arc::clone(shared);
    tasks.spawn(async move {
        let deadline = shared.cfg.hello_timeout();
        if let Ok(connecting) = incoming.accept()
            && let Ok(Ok(c)) = tokio::time::timeout(deadline, connecting).await
        {
            conn::close(&c, CloseReason::TooManyConnections);
        }
        shared.rejecting.fetch_sub(1, Ordering::SeqCst);
    });
}
