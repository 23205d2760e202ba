//! Certificate reload and mutual TLS against a real listener ([`crate::http::serve`]), with
//! certificates from [`crate::devcerts`].

use super::*;
use crate::devcerts;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

async fn listen(config: Arc<rustls::ServerConfig>) -> std::net::SocketAddr {
    let router = axum::Router::new().route("/live", axum::routing::get(|| async { "ok" }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(crate::http::serve(
        listener,
        router,
        Some(acceptor),
        crate::http::Limits::default(),
        std::future::pending(),
    ));
    addr
}

async fn connect(
    addr: std::net::SocketAddr,
    client: rustls::ClientConfig,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = TlsConnector::from(Arc::new(client))
        .connect(name, tcp)
        .await?;
    // TLS 1.3 client auth fails after the client's handshake ends: a request shows it.
    get_live(&mut tls).await?;
    Ok(tls)
}

/// One keep-alive `GET /live` on an open connection.
async fn get_live(tls: &mut TlsStream<TcpStream>) -> std::io::Result<()> {
    tls.write_all(b"GET /live HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await?;
    let mut buf = [0u8; 1024];
    let n = tls.read(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf[..n]);
    if text.starts_with("HTTP/1.1 200") && text.ends_with("ok") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("unexpected answer {text:?}")))
    }
}

fn presented(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}

#[tokio::test]
async fn a_swapped_certificate_is_presented_to_new_handshakes_while_old_connections_go_on() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    devcerts::generate(a.path(), &["server"]).unwrap();
    devcerts::generate(b.path(), &["server"]).unwrap();
    let live = tempfile::tempdir().unwrap();
    let (cert, key) = devcerts::leaf_files(live.path(), "server");
    let copy = |from: &Path| {
        let (c, k) = devcerts::leaf_files(from, "server");
        std::fs::copy(k, &key).unwrap();
        std::fs::copy(c, &cert).unwrap();
    };
    copy(a.path());
    let config = server_config(&cert, &key, None, Duration::ZERO).unwrap();
    let addr = listen(config).await;
    // The client trusts both CAs, so only the presented certificate tells them apart.
    let both = tempfile::NamedTempFile::new().unwrap();
    let pems = [a.path(), b.path()].map(|d| std::fs::read_to_string(d.join(devcerts::CA_FILE)));
    std::fs::write(both.path(), pems.map(Result::unwrap).concat()).unwrap();
    let client = || client_config(both.path(), None).unwrap();
    let leaf_of = |d: &Path| read_chain(&devcerts::leaf_files(d, "server").0).unwrap()[0].clone();

    let mut old = connect(addr, client()).await.unwrap();
    assert_eq!(presented(&old), leaf_of(a.path()));
    copy(b.path());
    let new = connect(addr, client()).await.unwrap();
    assert_eq!(presented(&new), leaf_of(b.path()));
    get_live(&mut old).await.unwrap();

    // A half-written renewal (a key that is not the certificate's) keeps the last good pair.
    std::fs::copy(devcerts::leaf_files(a.path(), "server").1, &key).unwrap();
    let kept = connect(addr, client()).await.unwrap();
    assert_eq!(presented(&kept), leaf_of(b.path()));
}

#[tokio::test]
async fn a_client_ca_requires_client_certificates_it_signed() {
    let (ca, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    devcerts::generate(ca.path(), &["server", "client"]).unwrap();
    devcerts::generate(other.path(), &["client"]).unwrap();
    let (cert, key) = devcerts::leaf_files(ca.path(), "server");
    let ca_file = ca.path().join(devcerts::CA_FILE);
    let config = server_config(&cert, &key, Some(&ca_file), Duration::from_secs(5)).unwrap();
    let addr = listen(config).await;

    let with = |d: &Path| {
        let (c, k) = devcerts::leaf_files(d, "client");
        client_config(&ca_file, Some((&c, &k))).unwrap()
    };
    connect(addr, with(ca.path())).await.unwrap();
    assert!(connect(addr, with(other.path())).await.is_err());
    assert!(
        connect(addr, client_config(&ca_file, None).unwrap())
            .await
            .is_err()
    );
    // And the client refuses a server its CA did not sign.
    let foreign = client_config(&other.path().join(devcerts::CA_FILE), None).unwrap();
    assert!(connect(addr, foreign).await.is_err());
}

#[test]
fn unreadable_files_are_named() {
    let e = client_config(Path::new("/nonexistent/ca.pem"), None).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
}
