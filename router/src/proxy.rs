//! Forwarding to a cell: HTTP over a keep-alive connection pool (bodies stream both ways),
//! and WebSocket upgrades spliced byte for byte once both sides have switched protocols.
//! A cell whose endpoint is `https://host:port` is reached over TLS 1.3 with its certificate
//! verified against `[upstream] ca_file` (and our client certificate, if configured).

use crate::error::RouterError;
use crate::hold::Reach;
use crate::table::Target;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, Uri, header};
use cellmap::Endpoint;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};

/// Headers that describe one hop's connection, never forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    /// For https cells; `None` without `[upstream] ca_file`.
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    /// `[upstream] source_addrs`: local addresses the WebSocket connections to cells are
    /// spread over, in turn (empty: the kernel picks).
    sources: Arc<[IpAddr]>,
    next_source: Arc<AtomicUsize>,
}

/// A connection to a cell, plain or TLS, for the WebSocket splice.
pub trait CellIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> CellIo for T {}

/// The header a standby cell instance sets on its 503s: the request was not taken.
pub const CELL_STANDBY: &str = "x-cell-standby";

fn strip_hop_by_hop(h: &mut HeaderMap) {
    // Headers named in `Connection` are hop-by-hop too.
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::try_from(n.trim()).ok())
        .collect();
    for n in HOP_BY_HOP.iter().chain(named.iter()) {
        h.remove(n);
    }
}

fn add_forwarded(h: &mut HeaderMap, client: IpAddr) {
    let value = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {client}"),
        None => client.to_string(),
    };
    if let Ok(v) = HeaderValue::try_from(value) {
        h.insert("x-forwarded-for", v);
    }
}

fn endpoint(target: &Target) -> Result<Endpoint<'_>, RouterError> {
    Endpoint::parse(&target.info.http)
        .ok_or_else(|| upstream_error(target, "endpoint is not host:port or https://host:port"))
}

fn upstream_uri(ep: &Endpoint<'_>, uri: &Uri) -> Result<Uri, RouterError> {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{}{}", ep.base_url(), pq)
        .parse()
        .map_err(|e| RouterError::Internal(format!("bad upstream uri: {e}")))
}

fn upstream_error(target: &Target, reason: impl std::fmt::Display) -> RouterError {
    let reason = reason.to_string();
    let kind = if reason.contains("timed out") {
        "timeout"
    } else {
        "connect"
    };
    metrics::counter!("router_upstream_errors_total", "cell" => target.info.name.clone(), "kind" => kind)
        .increment(1);
    RouterError::Upstream {
        cell: target.info.name.clone(),
        reason,
    }
}

impl Upstream {
    /// `tls`: the client config for https cells, `None` when no upstream CA is configured.
    pub fn new(
        timeout: Duration,
        max_idle_per_host: usize,
        tls: Option<rustls::ClientConfig>,
        sources: Vec<IpAddr>,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        // The TLS layer below takes https URIs; plain ones pass through it.
        http.enforce_http(false);
        // Without a CA no https cell is tried (checked before sending), so these empty roots
        // only satisfy the connector's type.
        let connector_tls = tls.clone().unwrap_or_else(|| {
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        });
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(connector_tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle_per_host)
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https);
        Self {
            client,
            tls: tls.map(Arc::new),
            timeout,
            sources: sources.into(),
            next_source: Arc::default(),
        }
    }

    /// The endpoint of `target`, refused when it is https and no CA is configured.
    fn endpoint<'t>(&self, target: &'t Target) -> Result<Endpoint<'t>, RouterError> {
        let ep = endpoint(target)?;
        if ep.tls && self.tls.is_none() {
            return Err(upstream_error(
                target,
                "an https cell, but the router has no [upstream] ca_file to verify it with",
            ));
        }
        Ok(ep)
    }

    /// A fresh connection to the cell: TCP, then TLS with the cell's certificate verified
    /// when its endpoint is https.
    async fn connect(&self, target: &Target) -> Result<Box<dyn CellIo>, RouterError> {
        let ep = self.endpoint(target)?;
        let stream = self.tcp(ep.authority).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::ConnectionRefused {
                target.health.mark_down();
            }
            upstream_error(target, e)
        })?;
        let _ = stream.set_nodelay(true);
        // `endpoint` refused an https cell without a CA, so no config here means plain.
        let Some(tls) = self.tls.clone().filter(|_| ep.tls) else {
            return Ok(Box::new(stream));
        };
        let name = rustls::pki_types::ServerName::try_from(ep.host().to_owned())
            .map_err(|e| upstream_error(target, format!("bad server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls)
            .connect(name, stream)
            .await
            .map_err(|e| upstream_error(target, e))?;
        Ok(Box::new(tls))
    }

    /// A TCP connection to `authority`, from the next of `[upstream] source_addrs` when
    /// configured. One source address reaches one cell address through at most ~28K
    /// ephemeral ports, and every spliced WebSocket holds one: more trackers per cell than
    /// that need several sources.
    async fn tcp(&self, authority: &str) -> std::io::Result<tokio::net::TcpStream> {
        if self.sources.is_empty() {
            return tokio::net::TcpStream::connect(authority).await;
        }
        let source =
            self.sources[self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len()];
        let peer = tokio::net::lookup_host(authority)
            .await?
            .find(|a| a.is_ipv4() == source.is_ipv4())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    format!("{authority} has no address of the family of source {source}"),
                )
            })?;
        let socket = if source.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        bind_address_no_port(&socket);
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(peer).await
    }

    /// Sends `req` to `target` and returns its answer, body streaming. A failure says how
    /// far the request got, for [`crate::hold`]; so does a standby's "not me" answer.
    pub async fn forward(
        &self,
        target: &Target,
        req: Request<Body>,
        client: IpAddr,
    ) -> Result<Response<Body>, (RouterError, Reach)> {
        let ep = self.endpoint(target).map_err(|e| (e, Reach::Final))?;
        let (mut parts, body) = req.into_parts();
        parts.uri = upstream_uri(&ep, &parts.uri).map_err(|e| (e, Reach::Final))?;
        strip_hop_by_hop(&mut parts.headers);
        parts.headers.remove(header::HOST);
        add_forwarded(&mut parts.headers, client);
        let started = Instant::now();
        let resp = tokio::time::timeout(
            self.timeout,
            self.client.request(Request::from_parts(parts, body)),
        )
        .await
        .map_err(|_| (upstream_error(target, "timed out"), Reach::MaybeSent))?
        .map_err(|e| {
            if refused(&e) {
                // Nothing listens: the cell is gone; do not wait for the checker to notice.
                target.health.mark_down();
            }
            // hyper itself resends a request that met a pooled connection closed before
            // anything was written; what is left to us is a failed connect or a broken one.
            let reach = if e.is_connect() {
                Reach::NotSent
            } else {
                Reach::MaybeSent
            };
            (upstream_error(target, e), reach)
        })?;
        target.health.answered(now_ms());
        metrics::histogram!("router_upstream_duration_seconds", "cell" => target.info.name.clone())
            .record(started.elapsed().as_secs_f64());
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE
            && resp.headers().contains_key(CELL_STANDBY)
        {
            // A standby instance answered: the active one is gone and the standby has not
            // taken over yet. It did nothing with the request.
            return Err((
                upstream_error(target, "the cell is standing by"),
                Reach::NotSent,
            ));
        }
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }

    /// A fresh connection for a WebSocket upgrade (see [`Self::upgrade`]); a failure to
    /// connect reached nothing, so it may be retried.
    pub async fn connect_for_upgrade(
        &self,
        target: &Target,
    ) -> Result<Box<dyn CellIo>, (RouterError, Reach)> {
        self.endpoint(target).map_err(|e| (e, Reach::Final))?;
        match tokio::time::timeout(self.timeout, self.connect(target)).await {
            Err(_) => Err((upstream_error(target, "connect timed out"), Reach::NotSent)),
            Ok(Err(e)) => Err((e, Reach::NotSent)),
            Ok(Ok(io)) => Ok(io),
        }
    }

    /// A WebSocket upgrade: handshake with the cell on a fresh connection; if it switches
    /// protocols, answer 101 and splice the two connections until either side closes.
    pub async fn upgrade(
        &self,
        target: &Target,
        stream: Box<dyn CellIo>,
        mut req: Request<Body>,
        client: IpAddr,
    ) -> Result<Response<Body>, RouterError> {
        let from_client = hyper::upgrade::on(&mut req);
        let authority = self.endpoint(target)?.authority;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| upstream_error(target, e))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let (mut parts, _) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = pq
            .parse()
            .map_err(|e| RouterError::Internal(format!("bad path: {e}")))?;
        parts.headers.insert(
            header::HOST,
            HeaderValue::try_from(authority).map_err(|e| RouterError::Internal(e.to_string()))?,
        );
        add_forwarded(&mut parts.headers, client);
        let mut resp = tokio::time::timeout(
            self.timeout,
            sender.send_request(Request::from_parts(parts, Body::empty())),
        )
        .await
        .map_err(|_| upstream_error(target, "timed out"))?
        .map_err(|e| upstream_error(target, e))?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            // The cell refused (401, 403, 404…): pass its answer on.
            let (parts, body) = resp.into_parts();
            return Ok(Response::from_parts(parts, Body::new(body)));
        }
        let from_cell = hyper::upgrade::on(&mut resp);
        let cell = target.info.name.clone();
        tokio::spawn(async move {
            let (Ok(a), Ok(b)) = (from_client.await, from_cell.await) else {
                return;
            };
            let gauge = metrics::gauge!("router_ws_active");
            gauge.increment(1.0);
            let (mut a, mut b) = (TokioIo::new(a), TokioIo::new(b));
            if let Err(e) = crate::splice::splice(&mut a, &mut b).await {
                tracing::debug!(%cell, error = %e, "websocket splice ended");
            }
            gauge.decrement(1.0);
        });
        let mut out = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
        for (k, v) in resp.headers() {
            out = out.header(k, v);
        }
        out.body(Body::empty())
            .map_err(|e| RouterError::Internal(e.to_string()))
    }
}

/// `IP_BIND_ADDRESS_NO_PORT`: the bind before connect takes the address only and leaves
/// the port to `connect`, which may then reuse a port towards another destination; a
/// plain bind would reserve a port per connection for every destination at once.
fn bind_address_no_port(socket: &tokio::net::TcpSocket) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let one: libc::c_int = 1;
        // SAFETY: a valid socket descriptor we own and a c_int option value of the right size.
        let _ = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const one).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = socket;
}

fn now_ms() -> u64 {
    domain::UnixMs::now().0.max(0) as u64
}

/// Whether the error chain holds a refused TCP connect (timeouts and resets do not count:
/// a busy cell is not a dead one).
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Whether the request asks to switch to WebSocket.
pub fn is_upgrade(h: &HeaderMap) -> bool {
    h.get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_dropped_including_named_ones() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::AUTHORIZATION));
        add_forwarded(&mut h, "10.0.0.1".parse().unwrap());
        add_forwarded(&mut h, "10.0.0.2".parse().unwrap());
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2");
    }

    #[tokio::test]
    async fn websocket_connections_to_cells_come_from_the_source_addresses_in_turn() {
        let cell = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let authority = cell.local_addr().unwrap().to_string();
        let sources: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.3".parse().unwrap()];
        let up = Upstream::new(Duration::from_secs(1), 1, None, sources.clone());
        let mut seen = Vec::new();
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(up.tcp(&authority).await.unwrap());
            seen.push(cell.accept().await.unwrap().1.ip());
        }
        assert_eq!(seen, [sources[0], sources[1], sources[0], sources[1]]);
        // Without sources the kernel picks, as before.
        let plain = Upstream::new(Duration::from_secs(1), 1, None, Vec::new());
        held.push(plain.tcp(&authority).await.unwrap());
        assert_eq!(
            cell.accept().await.unwrap().1.ip(),
            IpAddr::from([127, 0, 0, 1])
        );
        // A source of the other family than every address of the cell is refused, not ignored.
        let v6 = Upstream::new(
            Duration::from_secs(1),
            1,
            None,
            vec!["::1".parse().unwrap()],
        );
        let e = v6.tcp(&authority).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrNotAvailable);
    }
}
