//! HS256 tokens: the keys we sign with and the ones that still verify.
//!
//! The current key signs (its `kid`, if it has one, goes in the header); previous keys only
//! verify, so a secret rotates without downtime: deploy the new key as current with the old
//! one under `previous`, and drop the old one once the longest token lifetime has passed.

use crate::claims::ClaimNames;
use crate::{ADMIN_MAX_TTL, AuthError, Principal, Role, Verified};
use domain::{CellId, UnixMs};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::Duration;

/// One HS256 secret and the `kid` it is published under (`None`: tokens carry no `kid`).
#[derive(Clone)]
struct HsKey {
    kid: Option<String>,
    decoding: DecodingKey,
}

impl HsKey {
    fn new(kid: Option<String>, secret: &[u8]) -> Self {
        Self {
            kid,
            decoding: DecodingKey::from_secret(secret),
        }
    }
}

/// The claims we sign. `sub` is the numeric id of the customer, driver or restaurant.
#[derive(Debug, Serialize)]
struct Claims {
    sub: String,
    role: Role,
    /// Seconds since the epoch.
    exp: u64,
    iat: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The caller's home cell: where the router sends requests that carry no other hint
    /// (a customer's order list, a driver's status). Cells ignore it.
    #[serde(skip_serializing_if = "Option::is_none")]
    home: Option<u16>,
}

/// Signing and verifying HS256 keys, built once from config.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    current: HsKey,
    previous: Vec<HsKey>,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("current_kid", &self.current.kid)
            .field(
                "previous_kids",
                &self.previous.iter().map(|k| &k.kid).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// One key without a `kid`.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self::new(None, secret, Vec::new())
    }

    /// The current key (`kid`, `secret`) and previous keys that still verify.
    pub fn new(
        kid: Option<String>,
        secret: &[u8],
        previous: Vec<(Option<String>, Vec<u8>)>,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against the caller's `now`, by `ClaimNames::map`.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret),
            current: HsKey::new(kid, secret),
            previous: previous
                .into_iter()
                .map(|(kid, s)| HsKey::new(kid, &s))
                .collect(),
            validation,
        }
    }

    /// Issues a token for `who`, valid for `ttl` from `now` (an admin's at most
    /// [`ADMIN_MAX_TTL`]).
    pub fn issue(
        &self,
        who: Principal,
        name: Option<String>,
        ttl: Duration,
        now: UnixMs,
    ) -> String {
        self.issue_with_home(who, name, None, ttl, now)
    }

    /// [`JwtKeys::issue`] with a home cell for the router.
    pub fn issue_with_home(
        &self,
        who: Principal,
        name: Option<String>,
        home: Option<CellId>,
        ttl: Duration,
        now: UnixMs,
    ) -> String {
        let (sub, role) = match who {
            Principal::Customer(c) => (c.0.to_string(), Role::Customer),
            Principal::Restaurant(r) => (r.0.to_string(), Role::Restaurant),
            Principal::Driver(d) => (d.0.to_string(), Role::Driver),
            Principal::Admin => ("0".to_string(), Role::Admin),
            Principal::Support => ("0".to_string(), Role::Support),
        };
        let ttl = capped_ttl(role, ttl);
        let iat = (now.0 / 1000).max(0) as u64;
        let claims = Claims {
            sub,
            role,
            iat,
            exp: iat + ttl.as_secs(),
            name,
            home: home.map(CellId::get),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid.clone_from(&self.current.kid);
        jsonwebtoken::encode(&header, &claims, &self.encoding)
            .expect("HS256 signing of our own claims cannot fail")
    }

    /// Verifies signature, expiry (against `now`) and shape; returns the principal and the
    /// display name carried in the token.
    pub fn verify(
        &self,
        token: &str,
        now: UnixMs,
    ) -> Result<(Principal, Option<String>), AuthError> {
        self.verify_full(token, now).map(|v| (v.principal, v.name))
    }

    /// [`JwtKeys::verify`], also returning the home cell and the expiry.
    pub fn verify_full(&self, token: &str, now: UnixMs) -> Result<Verified, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        self.verify_with(&header, token, now)
    }

    /// Verification once the header is known to say HS256.
    pub(crate) fn verify_with(
        &self,
        header: &Header,
        token: &str,
        now: UnixMs,
    ) -> Result<Verified, AuthError> {
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::Invalid);
        }
        let keys = std::iter::once(&self.current).chain(&self.previous);
        let claims = match &header.kid {
            // A `kid` names exactly one key; an unknown one is refused outright.
            Some(kid) => {
                let key = keys
                    .into_iter()
                    .find(|k| k.kid.as_deref() == Some(kid.as_str()))
                    .ok_or(AuthError::Invalid)?;
                self.decode(token, key)?
            }
            // Tokens from before keys had a `kid` (or minted by tools that set none): any of
            // our keys may have signed them.
            None => keys
                .into_iter()
                .find_map(|k| self.decode(token, k).ok())
                .ok_or(AuthError::Invalid)?,
        };
        ClaimNames::default().map(&claims, now)
    }

    fn decode(&self, token: &str, key: &HsKey) -> Result<Map<String, Value>, AuthError> {
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|_| AuthError::Invalid)
    }
}

/// `ttl`, capped at [`ADMIN_MAX_TTL`] for admins and support staff.
pub fn capped_ttl(role: Role, ttl: Duration) -> Duration {
    if role.is_staff() {
        ttl.min(ADMIN_MAX_TTL)
    } else {
        ttl
    }
}
