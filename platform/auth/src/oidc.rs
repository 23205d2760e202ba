//! Tokens from an OIDC issuer: its signing keys (JWKS) cached by `kid`, verification against
//! that cache (synchronous, no I/O), and the task that fetches the keys: at start, every
//! `refresh_interval_s`, and early when a token names a `kid` the cache lacks (the issuer
//! rotated), never more often than `min_refetch_interval_s`.

use crate::claims::ClaimNames;
use crate::config::OidcConfig;
use crate::{AuthError, Verified};
use domain::UnixMs;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Instant;
use tokio::sync::Notify;

/// One published key, usable with exactly one algorithm (no algorithm confusion).
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    validation: Validation,
}

/// What verification reads; the fetch task replaces it whole.
pub(crate) struct Oidc {
    cfg: OidcConfig,
    names: ClaimNames,
    keys: RwLock<Arc<HashMap<String, Key>>>,
    /// Woken by a token with an unknown `kid`.
    wanted: Notify,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc")
            .field("issuer", &self.cfg.issuer)
            .field("kids", &self.kids())
            .finish_non_exhaustive()
    }
}

/// Why the keys could not be fetched (logged; the cached keys stay in use).
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error("{url}: {source}")]
    Http { url: String, source: reqwest::Error },
    #[error("discovery document at {0} has no jwks_uri")]
    NoJwksUri(String),
}

impl Oidc {
    pub(crate) fn new(cfg: OidcConfig) -> Self {
        let names = ClaimNames {
            role: cfg.role_claim.clone(),
            default_role: cfg.default_role,
            subject: cfg.subject_claim.clone(),
            name: cfg.name_claim.clone(),
            phone: cfg.phone_claim.clone(),
            ..ClaimNames::default()
        };
        Self {
            cfg,
            names,
            keys: RwLock::new(Arc::default()),
            wanted: Notify::new(),
        }
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        let mut k: Vec<String> = self.snapshot().keys().cloned().collect();
        k.sort();
        k
    }

    fn snapshot(&self) -> Arc<HashMap<String, Key>> {
        Arc::clone(&self.keys.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Verifies an RS256/ES256 token (its header already decoded) against the cached keys.
    pub(crate) fn verify(
        &self,
        header: &Header,
        token: &str,
        now: UnixMs,
    ) -> Result<Verified, AuthError> {
        let kid = header.kid.as_deref().ok_or(AuthError::Invalid)?;
        let Some(key) = self.snapshot().get(kid).cloned() else {
            // Maybe the issuer rotated: ask the fetch task to look (it rate-limits).
            self.wanted.notify_one();
            return Err(AuthError::Invalid);
        };
        if key.validation.algorithms != [header.alg] {
            return Err(AuthError::Invalid);
        }
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &key.validation)
                .map_err(|_| AuthError::Invalid)?;
        self.names.map(&data.claims, now)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        // Expiry is checked against the caller's `now`, by `ClaimNames::map`.
        v.validate_exp = false;
        v.required_spec_claims = ["exp", "iss", "aud"].map(String::from).into();
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[&self.cfg.audience]);
        v
    }

    /// The usable signature keys of a JWKS: RSA (RS256) and P-256 (ES256) keys with a `kid`.
    fn keys_of(&self, set: &JwkSet) -> HashMap<String, Key> {
        let mut out = HashMap::new();
        for jwk in &set.keys {
            let c = &jwk.common;
            let (Some(kid), false) = (
                &c.key_id,
                c.public_key_use
                    .as_ref()
                    .is_some_and(|u| *u != PublicKeyUse::Signature),
            ) else {
                continue;
            };
            let alg = match (&jwk.algorithm, c.key_algorithm) {
                (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
                (AlgorithmParameters::EllipticCurve(p), None | Some(KeyAlgorithm::ES256))
                    if p.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                _ => continue,
            };
            if let Ok(decoding) = DecodingKey::from_jwk(jwk) {
                out.insert(
                    kid.clone(),
                    Key {
                        decoding,
                        validation: self.validation(alg),
                    },
                );
            }
        }
        out
    }

    async fn fetch(
        &self,
        client: &reqwest::Client,
        jwks_uri: &mut Option<String>,
    ) -> Result<usize, FetchError> {
        let url = match (&self.cfg.jwks_url, &*jwks_uri) {
            (Some(u), _) | (None, Some(u)) => u.clone(),
            (None, None) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.cfg.issuer.trim_end_matches('/')
                );
                let doc: Value = get_json(client, &url).await?;
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| FetchError::NoJwksUri(url.clone()))?;
                *jwks_uri = Some(uri.to_owned());
                uri.to_owned()
            }
        };
        let set: JwkSet = get_json(client, &url).await?;
        let keys = self.keys_of(&set);
        let n = keys.len();
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
        Ok(n)
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    url: &str,
) -> Result<T, FetchError> {
    let http = |source| FetchError::Http {
        url: url.to_owned(),
        source,
    };
    client
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(http)?
        .json()
        .await
        .map_err(http)
}

/// Fetches the keys once, then keeps them fresh until `oidc` is dropped. Returns once the
/// first fetch has succeeded or failed, so a binary can start with keys in hand.
pub(crate) async fn start(oidc: &Arc<Oidc>) {
    let client = match reqwest::Client::builder()
        .timeout(oidc.cfg.fetch_timeout())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the JWKS client; OIDC tokens will be refused");
            return;
        }
    };
    let mut jwks_uri = None;
    let ok = fetch_logged(oidc, &client, &mut jwks_uri).await;
    tokio::spawn(refresh(Arc::downgrade(oidc), client, jwks_uri, ok));
}

async fn fetch_logged(
    oidc: &Oidc,
    client: &reqwest::Client,
    jwks_uri: &mut Option<String>,
) -> bool {
    match oidc.fetch(client, jwks_uri).await {
        Ok(n) => {
            tracing::info!(issuer = %oidc.cfg.issuer, keys = n, kids = ?oidc.kids(), "OIDC signing keys fetched");
            true
        }
        Err(e) => {
            tracing::warn!(issuer = %oidc.cfg.issuer, error = %e, "OIDC signing keys not fetched; keeping the cached ones");
            false
        }
    }
}

async fn refresh(
    oidc: Weak<Oidc>,
    client: reqwest::Client,
    mut jwks_uri: Option<String>,
    mut ok: bool,
) {
    let mut last = Instant::now();
    loop {
        let Some(o) = oidc.upgrade() else { return };
        // After a failure, retry at the short interval rather than waiting a full period.
        let period = if ok {
            o.cfg.refresh_interval()
        } else {
            o.cfg.min_refetch_interval()
        };
        let min = o.cfg.min_refetch_interval();
        tokio::select! {
            () = tokio::time::sleep_until((last + period).into()) => {}
            () = o.wanted.notified() => {
                // Coalesces a burst of unknown kids into one fetch, at most one per `min`.
                tokio::time::sleep_until((last + min).into()).await;
            }
        }
        last = Instant::now();
        ok = fetch_logged(&o, &client, &mut jwks_uri).await;
        // Requests made before the keys changed are answered by this fetch: drop a stored
        // wake-up (a zero timeout still polls the future once, taking the permit).
        let _ = tokio::time::timeout(std::time::Duration::ZERO, o.wanted.notified()).await;
    }
}
