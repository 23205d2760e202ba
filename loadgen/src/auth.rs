//! Bearer tokens for the simulated parties: fetched from the cell's demo-only
//! `POST /api/v1/dev/token`, or minted here with the cell's HS256 secret.

use anyhow::{Context, bail};
use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where tokens come from.
#[derive(Clone)]
pub enum TokenSource {
    /// The demo cell's dev endpoint.
    Dev,
    /// Minted locally with the shared HS256 secret.
    Secret(String),
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    role: &'a str,
    iat: u64,
    exp: u64,
}

/// Mints an HS256 token with claims `{sub, role, iat, exp}` valid for `ttl_s`.
pub fn mint(secret: &str, role: &str, sub: &str, ttl_s: u64) -> anyhow::Result<String> {
    let iat = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = Claims {
        sub,
        role,
        iat,
        exp: iat + ttl_s,
    };
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .context("signing a token")
}

#[derive(Deserialize)]
struct DevToken {
    token: String,
}

/// Tokens by (role, subject), fetched or minted once and cached.
pub struct Tokens {
    source: TokenSource,
    client: reqwest::Client,
    base: String,
    cache: Mutex<HashMap<(String, String), String>>,
}

impl Tokens {
    pub fn new(source: TokenSource, client: reqwest::Client, base: &str) -> Self {
        Self {
            source,
            client,
            base: base.trim_end_matches('/').to_string(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The token for `role` and `sub`, from the cache when there.
    pub async fn get(&self, role: &str, sub: &str) -> anyhow::Result<String> {
        let key = (role.to_string(), sub.to_string());
        if let Some(t) = self.lock().get(&key) {
            return Ok(t.clone());
        }
        let token = match &self.source {
            TokenSource::Secret(s) => mint(s, role, sub, 24 * 3600)?,
            TokenSource::Dev => {
                let resp = self
                    .client
                    .post(format!("{}/api/v1/dev/token", self.base))
                    .json(&serde_json::json!({ "role": role, "sub": sub }))
                    .send()
                    .await
                    .context("POST /api/v1/dev/token")?;
                let status = resp.status();
                if !status.is_success() {
                    bail!(
                        "POST /api/v1/dev/token: {status} (is the cell in --demo mode?): {}",
                        resp.text().await.unwrap_or_default()
                    );
                }
                resp.json::<DevToken>().await?.token
            }
        };
        self.lock().insert(key, token.clone());
        Ok(token)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
