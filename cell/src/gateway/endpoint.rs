//! Binding (UDP socket, TLS, transport limits) and the accept loop.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use quinn::{IdleTimeout, TransportConfig, VarInt};
use schemas::CloseReason;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::metrics::{Ended, Metrics};
use super::{DriverPort, Gateway, GatewayError, QuicConfig, conn, tls};

/// Control-stream flow-control window: a few maximum frames. The stream carries small messages;
/// quinn's default (1.25 MB) would let each connection buffer that much.
const STREAM_WINDOW_BYTES: u32 = 64 * 1024;
/// Connections over the cap that we still handshake to tell them `too_many_connections`;
/// beyond this many in flight, new ones are refused without a handshake.
const MAX_REJECTING: usize = 64;
/// How long shutdown waits for connections to close and the endpoint to drain.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Binds the UDP socket, loads or generates the certificate, and returns the gateway ready for
/// [`serve`]. Port 0 is allowed: see [`Gateway::local_addr`].
pub async fn bind(cfg: &QuicConfig) -> Result<Gateway, GatewayError> {
    cfg.check()?;
    let identity = tls::load(cfg)?;
    let ca_pem_path = identity.ca_pem_path.clone();
    let fingerprint = identity.fingerprint.clone();
    let crypto =
        quinn::crypto::rustls::QuicServerConfig::try_from(tls::server_crypto(identity)?)
            .map_err(|e| GatewayError::Config(format!("rustls config unusable for QUIC: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(Arc::new(transport(cfg)?));

    let (socket, socket_recv_buffer_bytes) = udp_socket(cfg)?;
    let local_addr = socket
        .local_addr()
        .map_err(|e| GatewayError::Io("local address".into(), e))?;
    tracing::info!(%local_addr, server_name = %cfg.server_name, "QUIC driver gateway bound");
    Ok(Gateway {
        socket,
        server,
        cfg: cfg.clone(),
        local_addr,
        ca_pem_path,
        fingerprint,
        socket_recv_buffer_bytes,
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

/// The UDP socket with SO_RCVBUF raised: bursts of pings arrive faster than one core drains
/// them, and the default ~208 KiB lost a quarter of a burst in our measurements.
/// Returns the socket and the receive buffer size the kernel reports.
fn udp_socket(cfg: &QuicConfig) -> Result<(std::net::UdpSocket, usize), GatewayError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let io = |what: &str| {
        let what = what.to_owned();
        move |e| GatewayError::Io(what, e)
    };
    let addr = cfg.listen_addr;
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(io("creating the UDP socket"))?;
    if addr.is_ipv6() {
        // Dual stack where the OS allows it; failure just means IPv6 only.
        let _ = sock.set_only_v6(false);
    }
    let want = cfg.socket_recv_buffer_bytes;
    if let Err(e) = sock.set_recv_buffer_size(want) {
        tracing::warn!(error = %e, want, "setting SO_RCVBUF failed");
    }
    let mut granted = sock.recv_buffer_size().map_err(io("reading SO_RCVBUF"))?;
    if usable(granted) < want {
        // Above net.core.rmem_max only SO_RCVBUFFORCE (CAP_NET_ADMIN) gets the size.
        force_recv_buffer(&sock, want);
        granted = sock.recv_buffer_size().map_err(io("reading SO_RCVBUF"))?;
    }
    if usable(granted) < want {
        tracing::warn!(
            requested_bytes = want,
            granted_bytes = granted,
            "the kernel clamped SO_RCVBUF: bursts of pings may be dropped; raise net.core.rmem_max"
        );
    }
    sock.bind(&addr.into())
        .map_err(io("binding the UDP socket"))?;
    Ok((sock.into(), granted))
}

/// Linux reports twice the size set (it counts its bookkeeping); other systems the size.
fn usable(reported: usize) -> usize {
    if cfg!(target_os = "linux") {
        reported / 2
    } else {
        reported
    }
}

#[cfg(target_os = "linux")]
fn force_recv_buffer(sock: &socket2::Socket, want: usize) {
    use std::os::fd::AsRawFd;
    let Ok(val) = libc::c_int::try_from(want) else {
        return;
    };
    // SAFETY: a valid fd owned by `sock`, and a pointer to a c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&raw const val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "SO_RCVBUFFORCE refused");
    }
}

#[cfg(not(target_os = "linux"))]
fn force_recv_buffer(_: &socket2::Socket, _: usize) {}

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

/// Starts serving the gateway the way its config says: on a dedicated runtime of
/// `runtime_threads` threads (its own OS threads), or with `runtime_threads = 0` as a task of
/// the current runtime. Returns once the endpoint exists; the returned future resolves when the
/// gateway has stopped (after `shutdown`).
pub async fn spawn(
    gw: Gateway,
    drivers: Arc<dyn DriverPort>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = ()> + Send + 'static, GatewayError> {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let threads = gw.cfg.runtime_threads;
    if threads == 0 {
        let (endpoint, shared) = start(gw, drivers)?;
        tokio::spawn(async move {
            run(endpoint, shared, shutdown).await;
            let _ = done_tx.send(());
        });
    } else {
        let runtime = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(threads);
            b
        }
        .enable_all()
        .thread_name("quic-gateway")
        .build()
        .map_err(|e| GatewayError::Io("building the gateway runtime".into(), e))?;
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("quic-gateway".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match start(gw, drivers) {
                        Ok((endpoint, shared)) => {
                            let _ = ready_tx.send(Ok(()));
                            run(endpoint, shared, shutdown).await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
                // Connection tasks still running after the shutdown grace end with the runtime.
                drop(runtime);
                let _ = done_tx.send(());
            })
            .map_err(|e| GatewayError::Io("starting the gateway thread".into(), e))?;
        ready_rx.await.map_err(|_| {
            GatewayError::Io(
                "gateway thread".into(),
                std::io::Error::other("ended before the endpoint was made"),
            )
        })??;
    }
    Ok(async move {
        let _ = done_rx.await;
    })
}

/// Serves drivers on the current runtime until `shutdown` resolves, then closes every
/// connection with `server_shutdown` and waits (bounded) for them to end and the endpoint to
/// drain. [`spawn`] is the usual way in; this is for callers that manage the task themselves.
pub async fn serve(
    gw: Gateway,
    drivers: Arc<dyn DriverPort>,
    shutdown: impl Future,
) -> Result<(), GatewayError> {
    let (endpoint, shared) = start(gw, drivers)?;
    run(endpoint, shared, shutdown).await;
    Ok(())
}

/// Makes the endpoint on the current runtime: quinn spawns its endpoint and connection drivers
/// on the runtime that is current here.
fn start(
    gw: Gateway,
    drivers: Arc<dyn DriverPort>,
) -> Result<(quinn::Endpoint, Arc<Shared>), GatewayError> {
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(gw.server),
        gw.socket,
        Arc::new(quinn::TokioRuntime),
    )
    .map_err(|e| GatewayError::Io("creating the QUIC endpoint".into(), e))?;
    let shared = Arc::new(Shared {
        cfg: gw.cfg,
        drivers,
        metrics: Metrics::new(),
        active: AtomicUsize::new(0),
        rejecting: AtomicUsize::new(0),
        handshaking: AtomicUsize::new(0),
        shutting_down: AtomicBool::new(false),
    });
    Ok((endpoint, shared))
}

async fn run(endpoint: quinn::Endpoint, shared: Arc<Shared>, shutdown: impl Future) {
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
        tracing::warn!("QUIC gateway shutdown grace elapsed; aborting remaining connections");
        tasks.shutdown().await;
    }
    tracing::info!("QUIC driver gateway stopped");
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
