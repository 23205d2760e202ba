//! [`Verifier`]: the one entry point both binaries verify tokens with, whichever key signed
//! them: our HS256 keys, or the OIDC issuer's RS256/ES256 keys.

use crate::config::{Hs256Config, KeyError, OidcConfig};
use crate::oidc::Oidc;
use crate::{AuthError, JwtKeys, Verified};
use domain::UnixMs;
use jsonwebtoken::Algorithm;
use std::sync::Arc;

/// Verifies bearer tokens; cheap to clone (shared key sets).
#[derive(Debug, Clone)]
pub struct Verifier {
    hs: Arc<JwtKeys>,
    oidc: Option<Arc<Oidc>>,
}

impl Verifier {
    /// HS256 only, with these keys.
    pub fn hs256(keys: JwtKeys) -> Self {
        Self {
            hs: Arc::new(keys),
            oidc: None,
        }
    }

    /// From the config: `secret` (the binary's `auth.jwt_secret`) is the current HS256 key,
    /// `hs` names it and lists the previous ones, `oidc` adds an issuer. No I/O besides
    /// reading previous keys' secret files; call [`Verifier::start`] to fetch OIDC keys.
    ///
    /// # Errors
    /// [`KeyError`] when a previous key's secret cannot be loaded.
    pub fn from_config(
        secret: &[u8],
        hs: &Hs256Config,
        oidc: Option<&OidcConfig>,
    ) -> Result<Self, KeyError> {
        let previous = hs
            .previous
            .iter()
            .map(|k| Ok((Some(k.kid.clone()), k.load()?)))
            .collect::<Result<Vec<_>, KeyError>>()?;
        Ok(Self {
            hs: Arc::new(JwtKeys::new(hs.kid.clone(), secret, previous)),
            oidc: oidc.map(|c| Arc::new(Oidc::new(c.clone()))),
        })
    }

    /// The HS256 keys, to sign tokens with.
    pub fn signer(&self) -> &JwtKeys {
        &self.hs
    }

    /// Fetches the OIDC issuer's keys once (bounded by `fetch_timeout_ms`) and spawns the task
    /// that keeps them fresh while this verifier (or a clone) lives. Nothing without an issuer.
    /// A failed first fetch is logged, not fatal: OIDC tokens are refused until keys arrive,
    /// HS256 ones work throughout.
    pub async fn start(&self) {
        if let Some(o) = &self.oidc {
            crate::oidc::start(o).await;
        }
    }

    /// The `kid`s of the OIDC keys in the cache (for logs and tests).
    pub fn oidc_kids(&self) -> Vec<String> {
        self.oidc.as_ref().map(|o| o.kids()).unwrap_or_default()
    }

    /// Verifies signature, issuer and audience (OIDC), expiry against `now`, and shape.
    /// Synchronous: OIDC keys come from the cache; a token naming a `kid` the cache lacks is
    /// refused and prompts a (rate-limited) fetch.
    pub fn verify(&self, token: &str, now: UnixMs) -> Result<Verified, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        match (header.alg, &self.oidc) {
            (Algorithm::HS256, _) => self.hs.verify_with(&header, token, now),
            (Algorithm::RS256 | Algorithm::ES256, Some(o)) => o.verify(&header, token, now),
            _ => Err(AuthError::Invalid),
        }
    }
}
