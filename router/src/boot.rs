//! Wiring: open the map's store (or follow a leader), start the background loops, serve
//! plain HTTP or HTTPS on the public listener until shutdown (the listener itself is
//! `service::http`, shared with the cell).

use crate::cells::CellClient;
use crate::config::Config;
use crate::mapstore::MapStore;
use crate::ops::Control;
use crate::server::RouterApp;
use crate::table::Live;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cell map: {0}")]
    Map(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("tls: {0}")]
    Tls(String),
    #[error("{0}")]
    Config(String),
}

fn open_store(cfg: &Config) -> Result<Arc<dyn store::Kv>, BootError> {
    let s = &cfg.store;
    Ok(store::open(s.backend, &s.data_dir, &s.fdb_cluster_file)?)
}

/// Builds the router: map source, control, background loops.
pub async fn build(
    cfg: Config,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: watch::Receiver<bool>,
) -> Result<RouterApp, BootError> {
    let live = Arc::new(Live::default());
    let verifier = cfg
        .auth
        .verifier()
        .map_err(|e| BootError::Config(e.to_string()))?;
    // With an OIDC issuer configured, its keys are fetched before the router serves.
    verifier.start().await;
    let upstream_tls = cfg
        .upstream
        .client_config()
        .map_err(|e| BootError::Tls(e.to_string()))?;
    let cells = CellClient::new(
        verifier.signer().clone(),
        Duration::from_millis(cfg.http.upstream_timeout_ms),
        upstream_tls.clone(),
    );
    let (store, follow) = if cfg.store.follow.is_empty() {
        (Some(MapStore::new(open_store(&cfg)?)), None)
    } else {
        (None, Some(cfg.store.follow.clone()))
    };
    let control = Arc::new(Control::new(
        live,
        store,
        follow,
        cells,
        Duration::from_millis(cfg.store.poll_ms),
    ));
    if let Err(e) = control.refresh().await {
        // A follower may start before its leader; the refresh loop keeps trying.
        tracing::warn!(error = %e, "initial map load failed");
    }
    crate::health::spawn(control.clone(), cfg.health.clone(), shutdown);
    Ok(RouterApp::new(
        cfg,
        control,
        metrics,
        verifier,
        upstream_tls,
    ))
}

/// Serves `app` on `listener` (HTTPS when `[tls]` is configured; see [`service::http`]) until
/// `shutdown` fires.
pub async fn serve(
    app: RouterApp,
    cfg: &Config,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), BootError> {
    let tls = if cfg.tls.cert_file.is_empty() {
        None
    } else {
        Some(
            service::http::tls_acceptor(cfg.tls.cert_file.as_ref(), cfg.tls.key_file.as_ref())
                .map_err(|e| BootError::Tls(e.to_string()))?,
        )
    };
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    service::http::serve(listener, app.router(), tls, cfg.http.edge.limits(), stop).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_https_when_a_certificate_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        let mut cfg = Config::load(None).unwrap();
        cfg.tls.cert_file = cert.display().to_string();
        cfg.tls.key_file = key.display().to_string();
        cfg.store.data_dir = dir.path().join("data");
        let (_stop, rx) = watch::channel(false);
        let app = build(cfg.clone(), None, rx.clone()).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { serve(app, &cfg, listener, rx).await });

        let ca = reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap();
        let tls = reqwest::Client::builder()
            .add_root_certificate(ca)
            .resolve("localhost", addr)
            .build()
            .unwrap();
        let url = format!("https://localhost:{}/live", addr.port());
        let resp = tls.get(&url).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "ok");
        // A client that does not trust the certificate is refused; plain HTTP gets nothing.
        assert!(reqwest::get(&url).await.is_err());
        let plain = format!("http://127.0.0.1:{}/live", addr.port());
        assert!(reqwest::get(&plain).await.is_err());
    }
}
