//! Gateway tests over real loopback QUIC, with [`port::TestPort`] standing in for the dispatch
//! and the real `driver-client` crate as the driver. Each test binds its own gateway on port 0
//! with a dev certificate in a temp dir.

mod port;
mod session;
mod threads;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use driver_client::{ConnectOptions, DriverClient, Trust};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{QuicConfig, bind, fingerprint, serve};
use port::TestPort;

pub struct Cell {
    pub addr: SocketAddr,
    pub server_name: String,
    pub trust: Trust,
    pub fingerprint: String,
    pub port: Arc<TestPort>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

pub fn test_config(dir: &std::path::Path) -> QuicConfig {
    QuicConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        dev_cert_dir: dir.to_owned(),
        // Two sockets on every test's address, whatever the machine's cores: each test also
        // runs over the shared state the threads use (caps, counters, port).
        gateway_threads: 2,
        ..QuicConfig::default()
    }
}

pub async fn start(tweak: impl FnOnce(&mut QuicConfig)) -> Cell {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = test_config(dir.path());
    tweak(&mut cfg);
    let gw = bind(&cfg).await.unwrap();
    let ca = std::fs::read(gw.ca_pem_path().unwrap()).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let port = Arc::new(TestPort::default());
    Cell {
        addr: gw.local_addr(),
        server_name: gw.server_name().to_owned(),
        trust: Trust::CaPem(ca),
        fingerprint: gw.fingerprint().to_owned(),
        port: Arc::clone(&port),
        shutdown: Some(tx),
        task: tokio::spawn(async move { serve(gw, port, rx).await.unwrap() }),
        _dir: dir,
    }
}

impl Cell {
    pub fn opts(&self, token: &str) -> ConnectOptions {
        let mut o = ConnectOptions::new(self.addr, &self.server_name, token);
        o.hello_timeout = Duration::from_secs(5);
        o
    }

    pub async fn try_connect(
        &self,
        driver: u64,
    ) -> Result<DriverClient, driver_client::ClientError> {
        DriverClient::connect(
            self.addr,
            &self.server_name,
            self.trust.clone(),
            &format!("driver-{driver}"),
            None,
        )
        .await
    }

    pub async fn connect(&self, driver: u64) -> DriverClient {
        self.try_connect(driver).await.unwrap()
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve returns after shutdown")
            .unwrap();
    }
}

/// Polls `f` until it holds (panics after 10 s).
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[test]
fn config_defaults_validate_and_round_trip() {
    let cfg = QuicConfig::default();
    cfg.check().unwrap();
    assert!(cfg.dev_mode());
    assert_eq!(cfg.gateway_threads, 0, "one thread per available core");
    assert!(cfg.threads() >= 1);
    assert!(
        cfg.datagram_recv_buffer_bytes <= 64 * 1024,
        "keep it small (stack facts)"
    );
    assert_eq!(cfg.socket_recv_buffer_bytes, 4 * 1024 * 1024);
    let text = toml::to_string(&cfg).unwrap();
    assert_eq!(toml::from_str::<QuicConfig>(&text).unwrap(), cfg);
    // Partial tables take defaults; unknown keys are errors.
    let partial: QuicConfig = toml::from_str("max_connections = 7").unwrap();
    assert_eq!(partial.max_connections, 7);
    assert!(toml::from_str::<QuicConfig>("max_conections = 7").is_err());
}

#[test]
fn config_rejects_unusable_values() {
    let bad = [
        QuicConfig {
            cert_path: "cert.pem".into(),
            ..QuicConfig::default()
        },
        QuicConfig {
            max_connections: 0,
            ..QuicConfig::default()
        },
        QuicConfig {
            datagram_recv_buffer_bytes: 100,
            ..QuicConfig::default()
        },
        QuicConfig {
            max_frame_bytes: 100_000,
            ..QuicConfig::default()
        },
        QuicConfig {
            keep_alive_ms: 40_000,
            ..QuicConfig::default()
        },
        QuicConfig {
            gateway_threads: super::config::MAX_GATEWAY_THREADS + 1,
            ..QuicConfig::default()
        },
    ];
    for cfg in bad {
        assert!(cfg.check().is_err(), "{cfg:?}");
    }
}

#[test]
fn alpn_matches_the_client() {
    assert_eq!(super::ALPN, driver_client::ALPN);
}

#[tokio::test]
async fn dev_certificate_is_written_reused_and_fingerprinted() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = test_config(dir.path());
    let a = bind(&cfg).await.unwrap();
    let ca = a.ca_pem_path().unwrap().to_owned();
    assert!(ca.exists() && dir.path().join("key.pem").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "key.pem readable by others: {mode:o}");
    }
    // The fingerprint is the leaf's (first certificate of cert.pem).
    let pem = std::fs::read(dir.path().join("cert.pem")).unwrap();
    let leaf = {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap()
    };
    assert_eq!(a.fingerprint(), fingerprint(&leaf));
    assert_eq!(a.fingerprint().len(), 32 * 3 - 1);
    // A restart reuses the pair: clients keep trusting it.
    let b = bind(&cfg).await.unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.local_addr(), b.local_addr());
    // SO_RCVBUF: 4 MiB asked; Linux reports double what it grants.
    assert!(a.socket_recv_buffer_bytes() > 0);

    // The same files as a configured certificate: not dev mode, no CA path.
    let configured = QuicConfig {
        cert_path: dir.path().join("cert.pem"),
        key_path: dir.path().join("key.pem"),
        ..test_config(dir.path())
    };
    let c = bind(&configured).await.unwrap();
    assert!(c.ca_pem_path().is_none());
    assert_eq!(c.fingerprint(), a.fingerprint());
    let missing = QuicConfig {
        cert_path: dir.path().join("nope.pem"),
        key_path: dir.path().join("key.pem"),
        ..test_config(dir.path())
    };
    assert!(bind(&missing).await.is_err());
}
