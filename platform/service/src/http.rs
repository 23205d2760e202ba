//! The public HTTP listener of both binaries: plain HTTP, or HTTPS (TLS 1.3 only, rustls)
//! when a certificate is configured, serving an axum `Router` until shutdown.
//!
//! Plain connections go through `axum::serve`; TLS connections are accepted here and handed
//! to hyper's auto (HTTP/1.1) connection builder with upgrades, so WebSockets work on both.
//! Every request carries `ConnectInfo<SocketAddr>` (the peer), which rate limits key on.

use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

pub use crate::tls::{TlsAcceptor, TlsError, tls_acceptor};

/// Serves `router` on `listener` (HTTPS when `tls` is given) until `shutdown` resolves.
/// Plain HTTP drains in-flight requests on shutdown; the TLS loop stops accepting and leaves
/// open connections to finish on their own tasks.
///
/// # Errors
/// Accepting on the listener failed.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let Some(acceptor) = tls else {
        use axum::serve::ListenerExt;
        let svc = router.into_make_service_with_connect_info::<SocketAddr>();
        // Proxied bodies are written in several pieces (head, then body chunks): without
        // NODELAY, Nagle holds the second write for the client's delayed ACK, tens of ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        return axum::serve(listener, svc)
            .with_graceful_shutdown(shutdown)
            .await;
    };
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => r?,
            () = &mut shutdown => return Ok(()),
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            // A failed handshake (plain HTTP, an untrusted client) only ends this connection.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let mut r = router.clone();
                async move {
                    use tower::Service;
                    r.call(req.map(axum::body::Body::new)).await
                }
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await;
        });
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
        let server = tokio::spawn(serve(listener, router, Some(acceptor), async {
            let _ = stopped.await;
        }));

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
