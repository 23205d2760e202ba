//! What every long-running binary of ours (the cell, the router) does the same way: logs to
//! stderr through `tracing` (`RUST_LOG` or a default filter; JSON for log shippers), stops on
//! SIGINT or SIGTERM, and layers TOML config files over an embedded default.
//!
//! # Layout
//! - `lib.rs`: [`init_tracing`], [`shutdown_signal`], [`serve_main`], [`RunFlags`].
//! - `config.rs`: [`config::load_toml`] (layers) and the one validation pass every binary runs
//!   before binding anything: [`config::Problems`], [`config::Validate`],
//!   [`config::ConfigError`], exit status [`config::EX_CONFIG`].
//! - `secret.rs`: where a secret comes from (environment, `*_file`, inline TOML) and the
//!   production rules for it ([`secret::resolve`], [`secret::SecretKeys`]).
//! - `production.rs`: the other rules that apply outside demo mode (no plain HTTP on a
//!   public address, a writable store directory).
//! - `http.rs`: the public listener, plain or TLS 1.3 ([`http::serve`], [`http::tls_acceptor`]).
//! - `metrics.rs`: the Prometheus recorder with its upkeep ([`metrics::install`]).
//! - `conn.rs`: the listener's limits ([`conn::Limits`]: connection cap with a 503 past it,
//!   header-read and idle deadlines).
//! - `limit.rs`: [`limit::Limiter`], token buckets per key (the router's per-IP and per-token
//!   limits, the cell's per-user limit).
//! - `tls.rs`: TLS 1.3 server and client configs ([`tls::server_config`] with a certificate
//!   reloaded from disk, [`tls::client_config`] for the router's connections to cells).
//! - `devcerts.rs`: a development CA and leaf certificates ([`devcerts::generate`]).
//! - `testing.rs` (feature `testing`): the config tests every binary runs, written once.

pub mod config;
pub mod conn;
pub mod devcerts;
pub mod http;
pub mod limit;
pub mod metrics;
pub mod production;
pub mod secret;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use config::{LoadError, load_toml};

/// The flags `run` and `check-config` of every binary take; each binary flattens these into
/// its own arguments and lays them over its config.
#[derive(Debug, clap::Args)]
pub struct RunFlags {
    /// Config file (TOML); unset keys keep their defaults.
    #[arg(long)]
    pub config: Option<std::path::PathBuf>,
    /// HTTP listen address (overrides http.listen_addr); port 0 picks a free one.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Data directory (overrides store.data_dir).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    /// Demo mode (sets demo.enabled): demo data, the dev token endpoint, and the production
    /// rules not applied.
    #[arg(long)]
    pub demo: bool,
    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,
}

/// Installs the global `tracing` subscriber: stderr, `RUST_LOG` if set, else `default_filter`.
pub fn init_tracing(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on the first SIGINT (ctrl-c) or SIGTERM (what systemd and Kubernetes send).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
}

/// Installs tracing ([`init_tracing`]) and runs `main` to completion on a multi-threaded
/// tokio runtime: the start of every server binary.
///
/// # Errors
/// The runtime could not be built, or `main`'s own error.
pub fn serve_main<E: From<std::io::Error>>(
    log_json: bool,
    default_filter: &str,
    main: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), E> {
    init_tracing(log_json, default_filter);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main)
}
