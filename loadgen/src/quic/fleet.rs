//! The target's QUIC address and trust, driver tokens, and connecting many drivers.

use crate::auth::{TokenSource, Tokens};
use crate::report::machine;
use anyhow::{Context, bail};
use driver_client::{ConnectOptions, DriverClient, Trust, client_endpoint};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Where the cell is and how to trust and authenticate to it.
#[derive(Debug, Clone, clap::Args)]
pub struct QuicTarget {
    /// Base URL of the cell: tokens (dev endpoint) and `/metrics`.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    pub target: String,
    /// The cell's QUIC gateway address (READY's `quic`).
    #[arg(long)]
    pub quic: SocketAddr,
    /// TLS server name (READY's `quic_server_name`).
    #[arg(long, default_value = "localhost")]
    pub quic_server_name: String,
    /// CA PEM to trust (READY's `quic_ca`).
    #[arg(long, conflicts_with = "quic_fingerprint")]
    pub quic_ca: Option<PathBuf>,
    /// Or pin the leaf's SHA-256 fingerprint (READY's `quic_fingerprint`).
    #[arg(long)]
    pub quic_fingerprint: Option<String>,
    /// Get driver tokens from the demo cell's POST /api/v1/dev/token.
    #[arg(long, conflicts_with = "jwt_secret")]
    pub token_from_dev: bool,
    /// Mint HS256 tokens locally with the cell's secret.
    #[arg(long, env = "LOADGEN_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PID of the cell, to report its CPU use (same machine only).
    #[arg(long)]
    pub target_pid: Option<u32>,
    #[command(flatten)]
    pub out: crate::report::output::OutputArgs,
    /// Connection handshakes (with their token fetches) in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connect_parallel: usize,
}

impl QuicTarget {
    pub fn trust(&self) -> anyhow::Result<Trust> {
        Ok(match (&self.quic_ca, &self.quic_fingerprint) {
            (Some(p), _) => Trust::ca_pem_file(p)?,
            (None, Some(f)) => Trust::fingerprint(f)?,
            (None, None) => {
                bail!("give --quic-ca or --quic-fingerprint (see the cell's READY line)")
            }
        })
    }

    pub fn tokens(&self, http: reqwest::Client) -> anyhow::Result<Tokens> {
        let source = match (&self.jwt_secret, self.token_from_dev) {
            (Some(s), _) => TokenSource::Secret(s.clone()),
            (None, true) => TokenSource::Dev,
            (None, false) => bail!("give --token-from-dev (demo cell) or --jwt-secret"),
        };
        Ok(Tokens::new(source, http, &self.target))
    }

    /// Scrapes `/metrics` (None when it fails).
    pub async fn scrape(&self, http: &reqwest::Client) -> Option<BTreeMap<String, f64>> {
        let url = format!("{}/metrics", self.target.trim_end_matches('/'));
        let got = async {
            http.get(&url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        };
        match got.await {
            Ok(text) => Some(crate::report::metrics::parse(&text)),
            Err(e) => {
                eprintln!("scraping {url}: {e}");
                None
            }
        }
    }
}

/// CPU seconds of this process and of the target, for per-process CPU over a window.
#[derive(Debug, Clone, Copy)]
pub struct CpuMark {
    own: Option<f64>,
    target: Option<f64>,
    at: std::time::Instant,
}

impl CpuMark {
    pub fn now(target_pid: Option<u32>) -> Self {
        Self {
            own: machine::cpu_seconds(None),
            target: target_pid.and_then(|p| machine::cpu_seconds(Some(p))),
            at: std::time::Instant::now(),
        }
    }

    /// Cores used since `self` by (loadgen, target).
    pub fn since(&self, target_pid: Option<u32>) -> machine::CpuUse {
        let end = Self::now(target_pid);
        let wall = end.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| (b - a) / wall);
        machine::CpuUse {
            loadgen_cores: cores(self.own, end.own).unwrap_or(0.0),
            target_cores: cores(self.target, end.target),
        }
    }
}

/// Drivers connected (or not).
pub struct Fleet {
    /// `(driver id, client)` in the order asked; `None` where connecting failed.
    pub drivers: Vec<(u64, Option<Arc<DriverClient>>)>,
    pub failures: u64,
    /// Up to 5 failure messages.
    pub failure_samples: Vec<String>,
    pub connect_s: f64,
    /// Client endpoints (UDP sockets) used.
    pub sockets: usize,
}

/// Connects `ids`, each with its own token; `share_sockets` = Some(K) spreads the
/// connections over K shared client endpoints instead of one endpoint per driver.
pub async fn connect(
    t: &QuicTarget,
    tokens: Arc<Tokens>,
    ids: &[u64],
    share_sockets: Option<usize>,
) -> anyhow::Result<Fleet> {
    let trust = t.trust()?;
    let endpoints = match share_sockets {
        Some(k) => {
            let bind: SocketAddr = if t.quic.is_ipv6() {
                "[::]:0".parse()?
            } else {
                "0.0.0.0:0".parse()?
            };
            (0..k.max(1))
                .map(|_| client_endpoint(&trust, bind))
                .collect::<Result<Vec<_>, _>>()
                .context("binding client endpoints")?
        }
        None => Vec::new(),
    };
    let started = std::time::Instant::now();
    let gate = Arc::new(Semaphore::new(t.connect_parallel.max(1)));
    let failures = Arc::new(AtomicU64::new(0));
    let mut set = tokio::task::JoinSet::new();
    for (i, &id) in ids.iter().enumerate() {
        let (gate, tokens, trust) = (gate.clone(), tokens.clone(), trust.clone());
        let endpoint = (!endpoints.is_empty()).then(|| endpoints[i % endpoints.len()].clone());
        let (addr, name) = (t.quic, t.quic_server_name.clone());
        set.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let token = tokens
                .get("driver", &id.to_string())
                .await
                .map_err(|e| format!("driver {id}: token: {e:#}"))?;
            let client = match endpoint {
                Some(ep) => {
                    DriverClient::connect_on(&ep, &ConnectOptions::new(addr, &name, &token)).await
                }
                None => DriverClient::connect(addr, &name, trust, &token, None).await,
            };
            client
                .map(|c| (i, Arc::new(c)))
                .map_err(|e| format!("driver {id}: {e}"))
        });
    }
    let mut drivers: Vec<(u64, Option<Arc<DriverClient>>)> =
        ids.iter().map(|&id| (id, None)).collect();
    let mut samples = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((i, c))) => drivers[i].1 = Some(c),
            Ok(Err(e)) => {
                failures.fetch_add(1, Ordering::Relaxed);
                if samples.len() < 5 {
                    samples.push(e);
                }
            }
            Err(e) => {
                failures.fetch_add(1, Ordering::Relaxed);
                if samples.len() < 5 {
                    samples.push(format!("connect task: {e}"));
                }
            }
        }
    }
    Ok(Fleet {
        drivers,
        failures: failures.load(Ordering::Relaxed),
        failure_samples: samples,
        connect_s: started.elapsed().as_secs_f64(),
        sockets: if endpoints.is_empty() {
            ids.len()
        } else {
            endpoints.len()
        },
    })
}

/// Keeps connections busy-free: reads and discards what the cell sends on the control
/// stream (offers to these drivers would otherwise sit unread).
pub fn drain_control(fleet: &Fleet) {
    for c in fleet.drivers.iter().filter_map(|(_, c)| c.clone()) {
        tokio::spawn(async move { while c.next_message().await.is_some() {} });
    }
}

/// Closes every connection (code 0) and gives the close frames a moment to leave.
pub async fn close(fleet: &Fleet) {
    for c in fleet.drivers.iter().filter_map(|(_, c)| c.as_ref()) {
        c.connection().close(0u32.into(), b"normal");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// The kernel's UDP counters (`/proc/net/snmp`, whole machine): datagrams delivered to
/// sockets and datagrams dropped because a socket's receive buffer was full.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, PartialEq)]
pub struct UdpStats {
    pub in_datagrams: u64,
    pub rcvbuf_errors: u64,
}

impl UdpStats {
    /// Reads the counters; `None` off Linux.
    pub fn read() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/net/snmp").ok()?)
    }

    /// Parses the `Udp:` header and value lines of `/proc/net/snmp`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut lines = text.lines().filter(|l| l.starts_with("Udp:"));
        let (names, values) = (lines.next()?, lines.next()?);
        let get = |want: &str| {
            names
                .split_whitespace()
                .zip(values.split_whitespace())
                .find(|(n, _)| *n == want)
                .and_then(|(_, v)| v.parse().ok())
        };
        Some(Self {
            in_datagrams: get("InDatagrams")?,
            rcvbuf_errors: get("RcvbufErrors")?,
        })
    }

    /// `self − earlier`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            in_datagrams: self.in_datagrams.saturating_sub(earlier.in_datagrams),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(earlier.rcvbuf_errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UdpStats;

    #[test]
    fn udp_counters() {
        let text = "Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors\nUdp: 100 2 3 50 7\nUdpLite: InDatagrams\nUdpLite: 0\n";
        let s = UdpStats::parse(text).unwrap();
        assert_eq!((s.in_datagrams, s.rcvbuf_errors), (100, 7));
        let later = UdpStats {
            in_datagrams: 150,
            rcvbuf_errors: 9,
        };
        assert_eq!(
            later.since(&s),
            UdpStats {
                in_datagrams: 50,
                rcvbuf_errors: 2
            }
        );
    }
}
