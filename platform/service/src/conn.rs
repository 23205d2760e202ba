//! Per-connection limits of the public HTTP listener ([`crate::http::serve`]): a cap on open
//! connections (a `503 server.busy` beyond it), a deadline for the request head, and an idle
//! deadline for a connection that moves no bytes or waits between keep-alive requests.
//!
//! hyper's own `header_read_timeout` is not used: hyper restarts that clock as soon as a
//! response is written, so it would also bound the keep-alive wait and leave no room for an
//! idle timeout longer than the header timeout. Here the head clock runs from the connection
//! opening (first request) or from the first byte of a later request.

use crate::config::{Section, Validate};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Default `header_read_timeout_ms`: a real client sends its request head within one round
/// trip; 10 s covers a stalled mobile link and holds a slow-header connection 10 s at most.
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// Default `idle_timeout_ms`: longer than the idle timeout of our pooling clients (the
/// router's pool to cells: 60 s, loadgen: 90 s), so a server close never races a reuse.
pub const DEFAULT_IDLE_TIMEOUT_MS: u64 = 120_000;
/// Default `max_connections`: far below the units' `LimitNOFILE` (1,048,576) and a few KiB
/// each when idle (a tracking socket), so the cap is reached before memory or descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;

/// Descriptors kept free of HTTP connections: the store's files, outgoing connections,
/// refusals, logs. The cap is lowered to the process's `RLIMIT_NOFILE` minus this.
const FD_RESERVE: usize = 256;
/// Connections past the cap that are answered `503` at the same time; beyond these the
/// connection is closed unanswered, so a flood costs no more descriptors than this.
const MAX_REFUSING: usize = 64;
/// How long a refused connection may take to send its request and read the `503`.
const REFUSE_DEADLINE: Duration = Duration::from_secs(2);

/// `[http.edge]` of both binaries: the listener's limits as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EdgeConfig {
    /// Time a client has to send a request head: from the connection opening (or the first
    /// byte of a later request) to the end of its headers; a slow-header client is closed.
    pub header_read_timeout_ms: u64,
    /// A connection moving no bytes this long is closed (a keep-alive wait for the next
    /// request, a client that stopped reading its response).
    pub idle_timeout_ms: u64,
    /// Open connections (WebSockets included) on the listener; past it, `503 server.busy`
    /// and close. Lowered at startup to fit the process's descriptor limit.
    pub max_connections: usize,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: DEFAULT_HEADER_READ_TIMEOUT_MS,
            idle_timeout_ms: DEFAULT_IDLE_TIMEOUT_MS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl EdgeConfig {
    /// The limits the listener runs with.
    pub fn limits(&self) -> Limits {
        Limits::from_config(
            self.header_read_timeout_ms,
            self.idle_timeout_ms,
            self.max_connections,
        )
    }
}

impl Validate for EdgeConfig {
    fn validate(&self, s: &mut Section<'_>) {
        for (key, value) in [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
            ("max_connections", self.max_connections as u64),
        ] {
            s.ensure(value > 0, key, || {
                "must be greater than 0 (got 0)".to_owned()
            });
        }
    }
}

/// The listener's limits, from the binaries' `[http.edge]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self::from_config(
            DEFAULT_HEADER_READ_TIMEOUT_MS,
            DEFAULT_IDLE_TIMEOUT_MS,
            DEFAULT_MAX_CONNECTIONS,
        )
    }
}

impl Limits {
    /// From the `[http.edge]` keys `header_read_timeout_ms`, `idle_timeout_ms`, `max_connections`.
    pub fn from_config(header_read_timeout_ms: u64, idle_timeout_ms: u64, max: usize) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(header_read_timeout_ms),
            idle_timeout: Duration::from_millis(idle_timeout_ms),
            max_connections: max,
        }
    }

    /// `max_connections`, lowered so that the connections plus [`FD_RESERVE`] fit in the
    /// process's descriptor limit: past the cap a client gets a 503, never an `EMFILE`.
    fn effective_max(&self) -> usize {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes the struct we own and has no other effect.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) } == 0;
        if !ok || lim.rlim_cur == libc::RLIM_INFINITY {
            return self.max_connections;
        }
        let fds = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
        let max = self
            .max_connections
            .min(fds.saturating_sub(FD_RESERVE).max(1));
        if max < self.max_connections {
            tracing::warn!(
                max_connections = self.max_connections,
                nofile = fds,
                effective = max,
                "http.max_connections lowered to fit RLIMIT_NOFILE"
            );
        }
        max
    }
}

/// The listener's connection slots and its budget for refusals.
#[derive(Clone)]
pub(crate) struct Gate {
    slots: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
}

/// What [`Gate::admit`] decided for a new connection.
pub(crate) enum Admission {
    Serve(Slot),
    /// Past the cap: answer `503` holding this refusal slot.
    Refuse(OwnedSemaphorePermit),
    /// Past the cap and the refusal budget: close without an answer.
    Drop,
}

impl Gate {
    pub(crate) fn new(limits: &Limits) -> Self {
        metrics::gauge!("http_connections").set(0.0);
        Self {
            slots: Arc::new(Semaphore::new(limits.effective_max())),
            refusing: Arc::new(Semaphore::new(MAX_REFUSING)),
        }
    }

    pub(crate) fn admit(&self) -> Admission {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            metrics::gauge!("http_connections").increment(1.0);
            return Admission::Serve(Slot(p));
        }
        metrics::counter!("http_connections_refused_total").increment(1);
        match self.refusing.clone().try_acquire_owned() {
            Ok(p) => Admission::Refuse(p),
            Err(_) => Admission::Drop,
        }
    }
}

/// One open connection's place under the cap; dropped with the socket.
pub(crate) struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("http_connections").decrement(1.0);
    }
}

/// What the deadline watch knows of one connection, in ms since it opened.
pub(crate) struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    served: AtomicU64,
    /// When the last response finished (the keep-alive wait began).
    idle_since: AtomicU64,
    /// First byte of the next request head while none is in flight; [`NONE`] if none yet.
    head_since: AtomicU64,
    last_io: AtomicU64,
}

const NONE: u64 = u64::MAX;

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NONE),
            last_io: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(NONE - 1)
    }

    fn io(&self, read: bool) {
        let now = self.now_ms();
        self.last_io.store(now, Ordering::Relaxed);
        if read && self.in_flight.load(Ordering::Acquire) == 0 {
            let _ =
                self.head_since
                    .compare_exchange(NONE, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// A request head was read: its handler runs until the returned guard (moved into the
    /// response body) is dropped.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(NONE, Ordering::Release);
        InFlight(self.clone())
    }

    /// When the connection must be closed, as things stand now.
    pub(crate) fn deadline(&self, limits: &Limits) -> Instant {
        let ms = |m: u64| self.opened + Duration::from_millis(m);
        if self.in_flight.load(Ordering::Acquire) > 0 {
            // A request in flight whose bytes stopped moving (a client that stopped
            // reading its response or sending its body).
            return ms(self.last_io.load(Ordering::Relaxed)) + limits.idle_timeout;
        }
        let head = self.head_since.load(Ordering::Acquire);
        if self.served.load(Ordering::Relaxed) == 0 {
            self.opened + limits.header_read_timeout
        } else if head != NONE {
            ms(head) + limits.header_read_timeout
        } else {
            ms(self.idle_since.load(Ordering::Relaxed)) + limits.idle_timeout
        }
    }
}

/// A request between its head and the end of its response body.
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now_ms(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that holds its request's [`InFlight`] until hyper has written it.
pub(crate) struct Tracked {
    pub(crate) body: axum::body::Body,
    pub(crate) _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket with its [`Slot`] and [`Activity`]: the slot goes with the socket,
/// so an upgraded WebSocket keeps its place under the cap until it closes.
pub(crate) struct Counted<IO> {
    io: IO,
    activity: Arc<Activity>,
    _slot: Slot,
}

impl<IO> Counted<IO> {
    pub(crate) fn new(io: IO, activity: Arc<Activity>, slot: Slot) -> Self {
        Self {
            io,
            activity,
            _slot: slot,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.io(true);
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.io(false);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The answer past the cap: `503 server.busy`, retry in a second, connection closed.
fn busy() -> hyper::Response<axum::body::Body> {
    let body =
        r#"{"error":{"code":"server.busy","message":"too many connections; retry shortly"}}"#;
    hyper::Response::builder()
        .status(hyper::StatusCode::SERVICE_UNAVAILABLE)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header(hyper::header::RETRY_AFTER, "1")
        .header(hyper::header::CONNECTION, "close")
        .body(axum::body::Body::from(body))
        .expect("a static response builds")
}

/// Answers one request on `io` with [`busy`] and closes, within [`REFUSE_DEADLINE`].
pub(crate) async fn refuse<IO>(io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::TokioIo;
    let svc =
        hyper::service::service_fn(|_req| async { Ok::<_, std::convert::Infallible>(busy()) });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), svc);
    let _ = tokio::time::timeout(REFUSE_DEADLINE, conn).await;
}

/// Whether an `accept` error concerns only the connection being accepted (the peer reset
/// it first), as opposed to the listener or the process (`EMFILE`, `ENOBUFS`).
pub(crate) fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// The pause after a listener error, doubling from 5 ms to 1 s while errors repeat, so a
/// process out of descriptors neither spins nor exits.
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Self {
        Self(Duration::ZERO)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }

    pub(crate) fn next(&mut self) -> Duration {
        self.0 = (self.0 * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_head_is_timed_from_open_then_keep_alive_waits_the_idle_timeout() {
        let limits = Limits::from_config(100, 5_000, 1);
        let a = Activity::new();
        let open = a.opened;
        assert_eq!(a.deadline(&limits), open + Duration::from_millis(100));
        let req = a.request();
        a.io(false);
        assert!(a.deadline(&limits) >= open + Duration::from_millis(5_000));
        drop(req);
        let idle = a.deadline(&limits);
        assert!(idle >= open + Duration::from_millis(5_000), "{idle:?}");
        // The first byte of the next head starts the header clock.
        a.io(true);
        assert!(a.deadline(&limits) < open + Duration::from_millis(1_000));
    }

    #[test]
    fn backoff_doubles_to_a_second() {
        let mut b = Backoff::new();
        assert_eq!(b.next(), Duration::from_millis(5));
        assert_eq!(b.next(), Duration::from_millis(10));
        for _ in 0..20 {
            b.next();
        }
        assert_eq!(b.next(), Duration::from_secs(1));
        b.reset();
        assert_eq!(b.next(), Duration::from_millis(5));
    }

    /// Serves a `/live` router under `limits`; the address and a stop switch.
    async fn serve_live(
        limits: Limits,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let router = axum::Router::new().route("/live", axum::routing::get(|| async { "ok" }));
        let listener = crate::http::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::http::serve(listener, router, None, limits, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Sends one keep-alive `GET /live` and reads its answer (small: one read).
    async fn get(s: &mut tokio::net::TcpStream) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /live HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .unwrap();
        let mut buf = vec![0u8; 1024];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// How long until the server closes `s` (EOF), reading nothing else.
    async fn closed_after(s: &mut tokio::net::TcpStream) -> Duration {
        use tokio::io::AsyncReadExt;
        let t = Instant::now();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed within 5 s")
            .unwrap_or(0);
        assert_eq!(n, 0, "{:?}", String::from_utf8_lossy(&buf[..n]));
        t.elapsed()
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
        let (addr, _stop) = serve_live(Limits::from_config(200, 600, 10)).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut s).await.starts_with("HTTP/1.1 200"));
        // Longer than the header timeout: the keep-alive wait is the idle timeout's.
        let idle = closed_after(&mut s).await;
        assert!(idle >= Duration::from_millis(550), "closed after {idle:?}");
        // A connection that never sends its head gets the header timeout.
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = closed_after(&mut silent).await;
        assert!(head < Duration::from_millis(500), "closed after {head:?}");
    }

    #[tokio::test]
    async fn past_the_cap_a_connection_gets_503_until_a_place_frees() {
        let (addr, _stop) = serve_live(Limits::from_config(5_000, 5_000, 1)).await;
        let mut held = tokio::net::TcpStream::connect(addr).await.unwrap();
        assert!(get(&mut held).await.starts_with("HTTP/1.1 200"));
        let mut over = tokio::net::TcpStream::connect(addr).await.unwrap();
        let r = get(&mut over).await;
        assert!(r.starts_with("HTTP/1.1 503"), "{r}");
        assert!(
            r.contains("retry-after: 1") && r.contains("server.busy"),
            "{r}"
        );
        drop(held);
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            if get(&mut s).await.starts_with("HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "the freed place was not reused");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[test]
    fn zero_limits_are_problems() {
        let mut p = crate::config::Problems::new();
        let zero = EdgeConfig {
            header_read_timeout_ms: 0,
            idle_timeout_ms: 0,
            max_connections: 0,
        };
        p.validate("http.edge", &zero);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|p| p.key.starts_with("http.edge.")));
    }
}
