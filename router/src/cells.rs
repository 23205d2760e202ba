//! The router's client for the cells' admin API (status, regions, export/import, map push),
//! authenticated with a short-lived admin token signed with the shared secret. The wire types
//! and paths are the cells' own, from `cellapi`. A cell's address is its map endpoint
//! (`host:port` or `https://host:port`, see [`cellmap::Endpoint`]); https is verified
//! against `[upstream] ca_file`.

use auth::{JwtKeys, Principal};
use cellapi::{CellStatus, ExportPage, ExportQuery, ImportRequest, MapAck, RegionsResponse, paths};
use cellmap::{CellMap, RegionKey};
use domain::UnixMs;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum CellCallError {
    #[error("cell at {addr} did not answer: {reason}")]
    Unreachable { addr: String, reason: String },
    #[error("cell at {addr} answered {status}: {body}")]
    Refused {
        addr: String,
        status: u16,
        body: String,
    },
}

/// Restaurants per export/import page. A page is ~1 MiB (a restaurant with its menu is
/// ~17 KiB), under the cells' [`cellapi::MAX_ADMIN_BODY_BYTES`].
const COPY_PAGE: usize = 50;
const _: () = assert!(COPY_PAGE <= cellapi::MAX_EXPORT_PAGE);

/// An error with its causes, `a: b: c`: reqwest's own message leaves out why a request
/// failed (refused, a certificate not signed by our CA), which is what an operator needs.
fn with_sources(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out = format!("{out}: {s_text}");
        }
        cur = s.source();
    }
    out
}

#[derive(Clone)]
pub struct CellClient {
    http: reqwest::Client,
    keys: JwtKeys,
    /// Whether `[upstream] ca_file` is set; without it https cells are not tried.
    upstream_ca: bool,
}

impl CellClient {
    /// `tls`: the client config for https cells (their CA, optionally our certificate).
    pub fn new(keys: JwtKeys, timeout: Duration, tls: Option<rustls::ClientConfig>) -> Self {
        let upstream_ca = tls.is_some();
        let mut b = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2));
        if let Some(tls) = tls {
            b = b.tls_backend_preconfigured(tls);
        }
        let http = b.build().expect("a reqwest client with rustls builds");
        Self {
            http,
            keys,
            upstream_ca,
        }
    }

    /// Whether this router can call a cell at `addr`: a well-formed endpoint, and a CA for
    /// an https one.
    ///
    /// # Errors
    /// Why not, naming the endpoint.
    pub fn check_endpoint(&self, addr: &str) -> Result<(), String> {
        self.base_url(addr)
            .map(drop)
            .map_err(|reason| format!("cell endpoint {addr:?}: {reason}"))
    }

    fn base_url(&self, addr: &str) -> Result<String, &'static str> {
        let ep = cellmap::Endpoint::parse(addr).ok_or("not host:port or https://host:port")?;
        if ep.tls && !self.upstream_ca {
            return Err(
                "an https cell, but the router has no [upstream] ca_file to verify it with",
            );
        }
        Ok(ep.base_url())
    }

    /// `{scheme}://host:port{path}` for the cell at `addr`.
    fn url(&self, addr: &str, path: &str) -> Result<String, CellCallError> {
        let base = self
            .base_url(addr)
            .map_err(|reason| CellCallError::Unreachable {
                addr: addr.into(),
                reason: reason.into(),
            })?;
        Ok(format!("{base}{path}"))
    }

    fn token(&self) -> String {
        self.keys.issue(
            Principal::Admin,
            Some("router".into()),
            Duration::from_secs(300),
            UnixMs::now(),
        )
    }

    async fn call(
        &self,
        addr: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, CellCallError> {
        let resp =
            req.bearer_auth(self.token())
                .send()
                .await
                .map_err(|e| CellCallError::Unreachable {
                    addr: addr.into(),
                    reason: with_sources(&e),
                })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        Err(CellCallError::Refused {
            addr: addr.into(),
            status,
            body,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        addr: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, CellCallError> {
        self.call(addr, req)
            .await?
            .json()
            .await
            .map_err(|e| CellCallError::Unreachable {
                addr: addr.into(),
                reason: format!("unreadable answer: {e}"),
            })
    }

    pub async fn status(&self, addr: &str) -> Result<CellStatus, CellCallError> {
        let url = self.url(addr, paths::STATUS)?;
        self.json(addr, self.http.get(url)).await
    }

    /// Regions the cell holds restaurants in, with counts.
    pub async fn regions(&self, addr: &str) -> Result<BTreeMap<RegionKey, u64>, CellCallError> {
        let url = self.url(addr, paths::REGIONS)?;
        let r: RegionsResponse = self.json(addr, self.http.get(url)).await?;
        Ok(r.regions)
    }

    /// Copies every restaurant and menu of `region` from one cell to another, page by page.
    /// Idempotent (imports are upserts), so a copy that failed half-way is simply rerun.
    pub async fn copy_region(
        &self,
        region: RegionKey,
        from: &str,
        to: &str,
    ) -> Result<u64, CellCallError> {
        let mut query = ExportQuery {
            after: None,
            limit: Some(COPY_PAGE),
        };
        let mut copied = 0;
        loop {
            let url = self.url(from, &paths::region_export(region, &query))?;
            // Entries stay raw JSON: the router copies them without reading them.
            let page: ExportPage = self.json(from, self.http.get(url)).await?;
            if !page.restaurants.is_empty() {
                let n = page.restaurants.len() as u64;
                let url = self.url(to, &paths::region_import(region))?;
                let body = ImportRequest {
                    restaurants: page.restaurants,
                };
                self.call(to, self.http.post(url).json(&body)).await?;
                copied += n;
            }
            match page.next_after {
                Some(a) => query.after = Some(a),
                None => return Ok(copied),
            }
        }
    }

    /// Pushes the map; returns the version the cell holds afterwards.
    pub async fn push_map(&self, addr: &str, map: &CellMap) -> Result<u64, CellCallError> {
        let url = self.url(addr, paths::CELL_MAP)?;
        let ack: MapAck = self.json(addr, self.http.put(url).json(map)).await?;
        Ok(ack.version)
    }
}

impl CellClient {
    /// A leader router's map (`GET {base}/admin/v1/map`), for followers.
    pub async fn fetch_map(&self, base: &str) -> Result<CellMap, CellCallError> {
        let base = base.trim_end_matches('/');
        let url = format!("{base}/admin/v1/map");
        self.json(base, self.http.get(url)).await
    }
}
