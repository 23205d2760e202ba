//! The `cell` binary: arguments → config (validated whole, production rules outside demo
//! mode, exit 78 when unusable) → tracing → bind → open the store → run (which stands by
//! while another instance holds the cell's lease, and fails, exiting non-zero, if it loses
//! it). `check-config` stops after the validation. Nothing else.

use anyhow::Context;
use cell::app::{Clock, OffsetClock, SystemClock};
use cell::auth::{MintArgs, Verifier};
use cell::config::Config;
use clap::{Parser, Subcommand};
use domain::UnixMs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "cell", about = "A city cell of the delivery platform")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the cell.
    Run(RunArgs),
    /// Check the config as `run` would (same flags), print every problem and exit 78, or
    /// print "config ok": for deploy pipelines and CI.
    CheckConfig(RunArgs),
    /// Mint a token signed with the config's secret.
    Token {
        #[command(flatten)]
        mint: MintArgs,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the OpenAPI document.
    Openapi,
    /// Check every order's payment against the sandbox's ledger in the cell's store (run it
    /// while the cell is stopped): print the totals as JSON, exit 1 on any violation.
    CheckPayments(RunArgs),
}

/// What `run` and `check-config` take: the config file and the flags laid over it.
#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    flags: service::RunFlags,
    /// QUIC driver gateway address (overrides quic.listen_addr); port 0 picks a free one.
    #[arg(long)]
    quic_listen: Option<SocketAddr>,
    /// Cell id (overrides cell.id).
    #[arg(long)]
    cell_id: Option<u32>,
}

impl RunArgs {
    /// The config file with the flags applied, validated as a whole (exit 78 with every
    /// problem when unusable), before any socket is bound or the store opened.
    fn config(self) -> Config {
        let mut cfg = service::config::or_exit("cell", Config::load(self.flags.config.as_deref()));
        if let Some(a) = self.flags.listen {
            cfg.http.listen_addr = a;
        }
        if let Some(d) = self.flags.data_dir {
            // Dev certificates live with the data unless configured elsewhere.
            if cfg.quic.dev_cert_dir == cell::gateway::QuicConfig::default().dev_cert_dir {
                cfg.quic.dev_cert_dir = d.join("dev-certs");
            }
            cfg.store.data_dir = d;
        }
        if let Some(q) = self.quic_listen {
            cfg.quic.listen_addr = q;
        }
        if let Some(id) = self.cell_id {
            cfg.cell.id = id;
        }
        cfg.demo.enabled |= self.flags.demo;
        service::config::or_exit("cell", cfg.validate());
        cfg
    }
}

fn main() -> anyhow::Result<()> {
    match Args::parse().cmd {
        Cmd::Run(args) => {
            let log_json = args.flags.log_json;
            let cfg = args.config();
            service::serve_main(log_json, "info,tower_http=warn", run(cfg))
        }
        Cmd::CheckConfig(args) => {
            args.config();
            println!("config ok");
            Ok(())
        }
        Cmd::Token { mint, config } => {
            let cfg = Config::load(config.as_deref())?;
            // Only what signing needs: a token can be minted before the listeners' files exist.
            service::config::check("auth", &cfg.auth)?;
            let a = &cfg.auth;
            let keys = Verifier::from_config(a.jwt_secret.as_bytes(), &a.hs256, None)?;
            let ttl = Duration::from_secs(a.token_ttl_s);
            println!("{}", mint.mint(keys.signer(), ttl, UnixMs::now())?);
            Ok(())
        }
        Cmd::Openapi => {
            println!("{}", cell::http::openapi().to_pretty_json()?);
            Ok(())
        }
        Cmd::CheckPayments(args) => {
            let cfg = args.config();
            let report = tokio::runtime::Runtime::new()?.block_on(async {
                let kv = cell::server::open_store(&cfg)?;
                let kv = store::SubspaceKv::scoped(kv, cell::server::subspace(&cfg));
                cell::saga::check::check_payments(&*kv)
                    .await
                    .map_err(anyhow::Error::msg)
            })?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.ok() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    tracing::info!(config = %cfg.redacted(), "starting cell");
    let metrics = service::metrics::install().context("installing the metrics recorder")?;
    let tls = cfg
        .http
        .tls_acceptor()
        .context("loading http.tls_cert_file, tls_key_file and tls_client_ca_file")?;
    let listener = service::http::bind(cfg.http.listen_addr)
        .with_context(|| format!("binding {}", cfg.http.listen_addr))?;
    let http_addr = listener.local_addr()?;
    let gateway = cell::gateway::bind(&cfg.quic)
        .await
        .context("starting the QUIC driver gateway")?;
    let cell_id = cfg.cell.id;
    let name = cfg.cell.name.clone();
    // Only demo mode may shift the clock; validation refuses the offset otherwise.
    let clock: Arc<dyn Clock> = match cfg.demo.clock_offset_ms {
        0 => Arc::new(SystemClock),
        offset_ms => {
            tracing::warn!(offset_ms, "demo mode: the cell's clock is shifted");
            Arc::new(OffsetClock { offset_ms })
        }
    };
    let quic = cellapi::QuicInfo {
        addr: gateway.local_addr().to_string(),
        server_name: gateway.server_name().to_string(),
        ca_pem: gateway
            .ca_pem_path()
            .and_then(|p| std::fs::read_to_string(p).ok()),
        fingerprint: gateway.fingerprint().to_string(),
    };
    // One machine-readable line for harnesses and scripts: the bound addresses. Printed once
    // the cell serves (after a standby wait, if another instance held the lease).
    let ready = serde_json::json!({
        "cell": cell_id,
        "name": name,
        "http": http_addr.to_string(),
        "tls": tls.is_some(),
        "quic": gateway.local_addr().to_string(),
        "quic_threads": gateway.threads(),
        "quic_server_name": gateway.server_name(),
        "quic_ca": gateway.ca_pem_path().map(|p| p.display().to_string()),
        "quic_fingerprint": gateway.fingerprint(),
    });
    let kv = cell::server::open_store(&cfg)?;
    let listeners = cell::server::Listeners {
        http: listener,
        tls,
        gateway: Some(gateway),
    };
    let on_serving = move |app: &cell::app::App| {
        app.set_quic_info(quic);
        let mut ready = ready;
        ready["restaurants"] = app.catalog().len().into();
        println!("READY {ready}");
        tracing::info!(%http_addr, "cell ready");
    };
    let shutdown = service::shutdown_signal();
    cell::server::run(
        cfg,
        kv,
        clock,
        Some(metrics),
        listeners,
        on_serving,
        shutdown,
    )
    .await?;
    tracing::info!("cell stopped");
    Ok(())
}
