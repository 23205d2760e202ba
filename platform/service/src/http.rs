//! The public HTTP listener of both binaries: plain HTTP, or HTTPS (TLS 1.3 only, rustls)
//! when a certificate is configured, serving an axum `Router` until shutdown.
//!
//! Connections, plain or TLS, are accepted here and handed to hyper's auto (HTTP/1.1)
//! connection builder with upgrades, so WebSockets work on both, under the limits of
//! [`crate::conn`] (connection cap, header and idle deadlines).
//! Every request carries `ConnectInfo<SocketAddr>` (the peer), which rate limits key on.

use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub use crate::conn::Limits;
pub use crate::tls::{TlsAcceptor, TlsError, tls_acceptor};

/// Pending connections the kernel queues for `accept` (capped by `net.core.somaxconn`).
/// A burst (clients reconnecting, a slow-header flood) waits in the queue instead of having
/// its SYNs dropped, which costs a client a 1 s retransmit; 128 overflowed under 2,000
/// connects in the attack test.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Binds the public listener with [`LISTEN_BACKLOG`] (`SO_REUSEADDR` on, so a restarted
/// process rebinds over connections in `TIME_WAIT`).
///
/// # Errors
/// The address is in use or cannot be bound.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `router` on `listener` (HTTPS when `tls` is given) under `limits` until `shutdown`
/// resolves, then drains: idle connections close, in-flight requests finish.
///
/// Past `limits.max_connections` a connection is answered `503 server.busy` and closed.
/// Accept errors of the process (`EMFILE`, `ENFILE`, `ENOBUFS`) are logged and retried after
/// a pause; they never end the listener.
///
/// # Errors
/// None today; the `Result` is kept for listener errors that must stop the process.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use crate::conn::{Admission, Backoff, Gate, is_connection_error, refuse};
    let gate = Gate::new(&limits);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut backoff = Backoff::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => {
                backoff.reset();
                a
            }
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                let pause = backoff.next();
                tracing::warn!(error = %e, pause_ms = pause.as_millis() as u64, "accept failed");
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        // Proxied bodies are written in several pieces (head, then body chunks): without
        // NODELAY, Nagle holds the second write for the client's delayed ACK, tens of ms.
        let _ = tcp.set_nodelay(true);
        match gate.admit() {
            Admission::Serve(slot) => {
                let conn = Connection {
                    peer,
                    router: router.clone(),
                    limits,
                    stop: stop_rx.clone(),
                };
                tokio::spawn(conn.run(tcp, slot, tls.clone()));
            }
            Admission::Refuse(permit) => {
                let tls = tls.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tls {
                        None => refuse(tcp).await,
                        Some(a) => {
                            let hs =
                                tokio::time::timeout(limits.header_read_timeout, a.accept(tcp));
                            if let Ok(Ok(tls)) = hs.await {
                                refuse(tls).await;
                            }
                        }
                    }
                });
            }
            Admission::Drop => drop(tcp),
        }
    }
    drop(stop_rx);
    let _ = stop_tx.send(true);
    // Every connection task holds a receiver: this returns once all have ended.
    stop_tx.closed().await;
    Ok(())
}

/// One accepted connection: TLS handshake (if any), then hyper's auto (HTTP/1.1) connection
/// with upgrades, watched for its header and idle deadlines.
struct Connection {
    peer: SocketAddr,
    router: axum::Router,
    limits: Limits,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Connection {
    async fn run(
        self,
        tcp: tokio::net::TcpStream,
        slot: crate::conn::Slot,
        tls: Option<TlsAcceptor>,
    ) {
        use crate::conn::{Activity, Counted};
        let activity = Activity::new();
        let io = Counted::new(tcp, activity.clone(), slot);
        match tls {
            None => self.drive(io, activity).await,
            Some(acceptor) => {
                // The handshake is part of the head: a client that stalls in it is slow too.
                let hs = tokio::time::timeout(self.limits.header_read_timeout, acceptor.accept(io));
                // A failed handshake (plain HTTP, an untrusted client) only ends this connection.
                if let Ok(Ok(tls)) = hs.await {
                    self.drive(tls, activity).await;
                }
            }
        }
    }

    async fn drive<IO>(mut self, io: IO, activity: std::sync::Arc<crate::conn::Activity>)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use crate::conn::Tracked;
        use hyper_util::rt::{TokioExecutor, TokioIo};
        use hyper_util::server::conn::auto::Builder;
        let (peer, router, watched) = (self.peer, self.router.clone(), activity.clone());
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let in_flight = watched.request();
            let mut r = router.clone();
            async move {
                use tower::Service;
                let resp = r.call(req.map(axum::body::Body::new)).await?;
                Ok::<_, std::convert::Infallible>(resp.map(|body| {
                    axum::body::Body::new(Tracked {
                        body,
                        _in_flight: in_flight,
                    })
                }))
            }
        });
        let builder = Builder::new(TokioExecutor::new());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            let deadline = activity.deadline(&self.limits);
            tokio::select! {
                _ = conn.as_mut() => return,
                () = tokio::time::sleep_until(deadline.into()) => {
                    // Past its head or idle deadline: dropping the connection closes it.
                    if activity.deadline(&self.limits) <= std::time::Instant::now() {
                        return;
                    }
                }
                _ = self.stop.changed(), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[tokio::test]
    async fn serves_tls_13_only_and_refuses_plain_http() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let acceptor = tls_acceptor(&cert, &key).unwrap();
        let router = axum::Router::new().route("/live", axum::routing::get(|| async { "ok" }));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            router,
            Some(acceptor),
            Limits::default(),
            async {
                let _ = stopped.await;
            },
        ));

        let ca = reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap();
        let client = |max: Option<reqwest::tls::Version>| {
            let mut b = reqwest::Client::builder()
                .add_root_certificate(ca.clone())
                .resolve("localhost", addr);
            if let Some(v) = max {
                b = b.tls_version_max(v);
            }
            b.build().unwrap()
        };
        let url = format!("https://localhost:{}/live", addr.port());
        let resp = client(None).get(&url).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
        // A TLS 1.2 client, one that does not trust the certificate, and plain HTTP all fail.
        let tls12 = client(Some(reqwest::tls::Version::TLS_1_2));
        assert!(tls12.get(&url).send().await.is_err());
        assert!(reqwest::get(&url).await.is_err());
        let plain = format!("http://127.0.0.1:{}/live", addr.port());
        assert!(reqwest::get(&plain).await.is_err());
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[test]
    fn a_missing_key_file_is_named() {
        let Err(e) = tls_acceptor(Path::new("/nonexistent/c.pem"), Path::new("/k.pem")) else {
            panic!("a missing certificate file was accepted");
        };
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
    }
}
