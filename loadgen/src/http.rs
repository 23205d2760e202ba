//! The HTTP side: one pooled keep-alive client, requests that record themselves into the
//! recorder, and unrecorded helpers for warm-up and scraping.

use crate::report::stats::{OpId, Outcome, Recorder};
use anyhow::{Context, bail};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    pub rec: Arc<Recorder>,
}

/// A pooled HTTP/1.1 client: keep-alive, no Nagle, an idle pool as large as the number of
/// requests in flight, and a per-request timeout.
pub fn client(timeout: Duration, max_in_flight: usize) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(max_in_flight)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .context("building the HTTP client")
}

impl Http {
    pub fn new(client: reqwest::Client, base: &str, rec: Arc<Recorder>) -> Self {
        Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            rec,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Sends `req` as operation `op` and records how it ended; latency counts from
    /// `intended`. Returns the body of a 2xx response.
    pub async fn call(
        &self,
        op: OpId,
        intended: Instant,
        req: reqwest::RequestBuilder,
    ) -> Result<Bytes, Outcome> {
        self.rec.mark_sent(op);
        let sent = Instant::now();
        let (outcome, body) = match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(b) if status.is_success() => (Outcome::Ok, Some(b)),
                    Ok(b) => {
                        self.rec.error_sample(
                            op,
                            format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&b[..b.len().min(300)])
                            ),
                        );
                        (Outcome::Status(status.as_u16()), None)
                    }
                    Err(e) => (self.classify(op, &e), None),
                }
            }
            Err(e) => (self.classify(op, &e), None),
        };
        self.rec.record(op, intended, sent, Instant::now(), outcome);
        body.ok_or(outcome)
    }

    fn classify(&self, op: OpId, e: &reqwest::Error) -> Outcome {
        if e.is_timeout() {
            Outcome::Timeout
        } else {
            self.rec.error_sample(op, format!("transport: {e}"));
            Outcome::Transport
        }
    }

    /// An unrecorded GET returning the body of a 2xx (warm-up, scraping).
    pub async fn get_text(&self, path: &str, token: Option<&str>) -> anyhow::Result<String> {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("GET {path}"))?;
        let status = resp.status();
        let body = resp.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {}", &body[..body.len().min(300)]);
        }
        Ok(body)
    }
}
