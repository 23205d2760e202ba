//! `router`: run the global router, or operate it (cells, regions, map, audit) through its
//! admin API.

use anyhow::{Context, bail};
use auth::{MintArgs, Principal};
use clap::{Parser, Subcommand};
use domain::UnixMs;
use router::config::Config;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "router", about = "Global router of the delivery platform")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

/// Where the admin commands send their requests.
#[derive(clap::Args)]
struct Remote {
    /// The router's base URL.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:8080",
        env = "ROUTER_URL"
    )]
    router: String,
    /// CA (PEM) to trust for an https router URL (the local city's .data/tls/ca.pem);
    /// default: the system's roots.
    #[arg(long, global = true, env = "ROUTER_CA")]
    ca: Option<PathBuf>,
    /// Admin token; default: one signed with the config's secret.
    #[arg(long, global = true, env = "ROUTER_TOKEN")]
    token: Option<String>,
    #[arg(long, global = true)]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the router.
    Run(RunArgs),
    /// Check the config as `run` would (same flags), print every problem and exit 78, or
    /// print "config ok": for deploy pipelines and CI.
    CheckConfig(RunArgs),
    /// Print a signed token (dev and ops).
    Token {
        #[command(flatten)]
        mint: MintArgs,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Cells: list, add, drain, remove.
    Cells {
        #[command(subcommand)]
        op: CellsOp,
        #[command(flatten)]
        remote: Remote,
    },
    /// Regions: move one to another cell.
    Regions {
        #[command(subcommand)]
        op: RegionsOp,
        #[command(flatten)]
        remote: Remote,
    },
    /// Print the current map.
    Map {
        #[command(flatten)]
        remote: Remote,
    },
    /// Write a development CA and certificates for HTTPS listeners (a local city, tests):
    /// OUT/ca.pem and OUT/NAME.pem + OUT/NAME.key per name, valid for NAME, localhost and
    /// the loopback addresses. Existing files are kept when the set is complete.
    DevCerts {
        #[arg(long)]
        out: PathBuf,
        /// Certificates to issue (also usable as client certificates for mutual TLS).
        #[arg(long = "name", default_value = "router")]
        names: Vec<String>,
    },
    /// Print the audit log (newest first).
    Audit {
        #[arg(long, default_value = "50")]
        limit: usize,
        #[command(flatten)]
        remote: Remote,
    },
}

/// What `run` and `check-config` take: the config file and the flags laid over it.
#[derive(clap::Args)]
struct RunArgs {
    #[command(flatten)]
    flags: service::RunFlags,
    /// Follow another router's map instead of opening a store.
    #[arg(long)]
    follow: Option<String>,
}

impl RunArgs {
    /// The config file with the flags applied, validated as a whole (exit 78 with every
    /// problem when unusable), before any socket is bound or the store opened.
    fn config(self) -> Config {
        let mut cfg =
            service::config::or_exit("router", Config::layered(self.flags.config.as_deref()));
        if let Some(a) = self.flags.listen {
            cfg.http.listen_addr = a;
        }
        if let Some(d) = self.flags.data_dir {
            cfg.store.data_dir = d;
        }
        if let Some(f) = self.follow {
            cfg.store.follow = f;
        }
        cfg.demo.enabled |= self.flags.demo;
        service::config::or_exit("router", cfg.validate());
        cfg
    }
}

#[derive(Subcommand)]
enum CellsOp {
    /// Cells with state, health and load.
    List,
    /// Add the cell answering at HTTP address ADDR: host:port, or https://host:port for a
    /// cell serving HTTPS (verified against the router's `[upstream] ca_file`).
    Add {
        http: String,
        /// H3 regions (resolution 5) to own; default: where it has restaurants, unowned.
        #[arg(long = "region")]
        regions: Vec<String>,
        /// A standby instance of the cell (repeatable): promoted when HTTP stops answering
        /// and the standby holds the cell's lease.
        #[arg(long = "standby")]
        standby: Vec<String>,
    },
    /// Move every region of cell ID to cell --to, then wait for its orders to end.
    Drain {
        id: u32,
        #[arg(long)]
        to: u32,
    },
    /// Remove a drained cell.
    Remove { id: u32 },
}

#[derive(Subcommand)]
enum RegionsOp {
    /// Copy REGION's restaurants to cell --to, then route the region there.
    Move {
        region: String,
        #[arg(long)]
        to: u32,
    },
    /// The region (resolution-5 H3 cell) at a position.
    At { lat: f64, lng: f64 },
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.cmd {
        Cmd::Run(args) => {
            let log_json = args.flags.log_json;
            let cfg = args.config();
            service::serve_main(log_json, "info", run(cfg))
        }
        Cmd::CheckConfig(args) => {
            args.config();
            println!("config ok");
            Ok(())
        }
        Cmd::Token { mint, config } => {
            let cfg = Config::load_for_signing(config.as_deref())?;
            let keys = cfg.auth.verifier()?;
            let ttl = Duration::from_secs(cfg.auth.token_ttl_s);
            println!("{}", mint.mint(keys.signer(), ttl, UnixMs::now())?);
            Ok(())
        }
        Cmd::Cells { op, remote } => {
            let (method, path, body) = match op {
                CellsOp::List => ("GET", "/admin/v1/cells".to_string(), None),
                CellsOp::Add {
                    http,
                    regions,
                    standby,
                } => {
                    let regions = (!regions.is_empty()).then_some(regions);
                    (
                        "POST",
                        "/admin/v1/cells".into(),
                        Some(
                            serde_json::json!({"http": http, "regions": regions, "standby": standby}),
                        ),
                    )
                }
                CellsOp::Drain { id, to } => (
                    "POST",
                    format!("/admin/v1/cells/{id}/drain"),
                    Some(serde_json::json!({"to": to.to_string()})),
                ),
                CellsOp::Remove { id } => ("DELETE", format!("/admin/v1/cells/{id}"), None),
            };
            admin_call(&remote, method, &path, body)
        }
        Cmd::Regions { op, remote } => match op {
            RegionsOp::Move { region, to } => admin_call(
                &remote,
                "POST",
                &format!("/admin/v1/regions/{region}/move"),
                Some(serde_json::json!({"to": to.to_string()})),
            ),
            RegionsOp::At { lat, lng } => {
                let r = domain::RegionId::from_latlng(lat, lng)
                    .map_err(|e| anyhow::anyhow!("({lat}, {lng}): {e}"))?;
                println!("{r}");
                Ok(())
            }
        },
        Cmd::DevCerts { out, names } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let wrote = service::devcerts::generate(&out, &names)?;
            let ca = out.join(service::devcerts::CA_FILE);
            let verb = if wrote { "wrote" } else { "kept" };
            println!(
                "{verb} dev certificates in {}; CA: {}",
                out.display(),
                ca.display()
            );
            Ok(())
        }
        Cmd::Map { remote } => admin_call(&remote, "GET", "/admin/v1/map", None),
        Cmd::Audit { limit, remote } => admin_call(
            &remote,
            "GET",
            &format!("/admin/v1/audit?limit={limit}"),
            None,
        ),
    }
}

/// One admin request; prints the JSON answer, fails on an error status.
fn admin_call(
    remote: &Remote,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let token = match &remote.token {
        Some(t) => t.clone(),
        None => {
            let cfg = Config::load_for_signing(remote.config.as_deref())?;
            // Short-lived: admin tokens live at most `auth::ADMIN_MAX_TTL` anyway.
            cfg.auth.verifier()?.signer().issue(
                Principal::Admin,
                Some(format!("cli:{}", whoami())),
                Duration::from_secs(600),
                UnixMs::now(),
            )
        }
    };
    let url = format!("{}{path}", remote.router.trim_end_matches('/'));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut client = reqwest::Client::builder();
        if let Some(ca) = &remote.ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            client = client.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        let client = client.build()?;
        let mut req = client
            .request(method.parse()?, &url)
            .bearer_auth(token)
            .timeout(Duration::from_secs(300));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = resp.status();
        let text = resp.text().await?;
        let pretty = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or(text);
        println!("{pretty}");
        if !status.is_success() {
            bail!("{method} {path}: {status}");
        }
        Ok(())
    })
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    tracing::info!(config = %cfg.redacted(), "starting router");
    let metrics = service::metrics::install().context("installing the metrics recorder")?;
    let listener = service::http::bind(cfg.http.listen_addr)
        .with_context(|| format!("binding {}", cfg.http.listen_addr))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = router::boot::build(cfg.clone(), Some(metrics), stop_rx.clone()).await?;
    println!(
        "READY {}",
        serde_json::json!({
            "http": addr.to_string(),
            "tls": !cfg.tls.cert_file.is_empty(),
            "map_version": app.control().live.version(),
            "follow": cfg.store.follow,
        })
    );
    tokio::spawn(async move {
        service::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    router::boot::serve(app, &cfg, listener, stop_rx).await?;
    tracing::info!("router stopped");
    Ok(())
}
