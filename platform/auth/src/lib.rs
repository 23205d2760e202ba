//! Bearer tokens: HS256 JWTs whose subject and role say who is calling. Expiry is checked
//! against a `now` passed in (the library's own clock check is off), so tests are exact.
//!
//! Shared by the cells and the router (which verifies the same tokens to rate-limit per token
//! and to route requests that name no place, restaurant or order to the caller's home cell).

mod mint;

pub use mint::{MintArgs, MintError};

use domain::{CellId, CustomerId, DriverId, RestaurantId, UnixMs};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who a valid token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Customer(CustomerId),
    /// A restaurant's staff or tablet, scoped to that one restaurant.
    Restaurant(RestaurantId),
    Driver(DriverId),
    Admin,
}

impl Principal {
    /// The principal a token with `role` and subject `id` speaks for (admins have no id).
    pub fn from_role(role: Role, id: u64) -> Principal {
        match role {
            Role::Customer => Principal::Customer(CustomerId(id)),
            Role::Restaurant => Principal::Restaurant(RestaurantId(id)),
            Role::Driver => Principal::Driver(DriverId(id)),
            Role::Admin => Principal::Admin,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Customer(_) => Role::Customer,
            Principal::Restaurant(_) => Role::Restaurant,
            Principal::Driver(_) => Role::Driver,
            Principal::Admin => Role::Admin,
        }
    }

    pub fn as_actor(&self) -> domain::Actor {
        match *self {
            Principal::Customer(c) => domain::Actor::Customer(c),
            Principal::Restaurant(r) => domain::Actor::Restaurant(r),
            Principal::Driver(d) => domain::Actor::Driver(d),
            Principal::Admin => domain::Actor::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Restaurant,
    Driver,
    Admin,
}

/// The claims we sign. `sub` is the numeric id of the customer, driver or restaurant.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    /// Seconds since the epoch.
    exp: u64,
    iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The caller's home cell: where the router sends requests that carry no other hint
    /// (a customer's order list, a driver's status). Cells ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    home: Option<u16>,
}

/// Everything a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    pub name: Option<String>,
    pub home: Option<CellId>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
}

/// Signing and verifying keys, built once from config.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<redacted>)")
    }
}

impl JwtKeys {
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked by `verify` against the caller's `now`.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// Issues a token for `who`, valid for `ttl` from `now`.
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
        };
        let iat = (now.0 / 1000).max(0) as u64;
        let claims = Claims {
            sub,
            role,
            iat,
            exp: iat + ttl.as_secs(),
            name,
            home: home.map(CellId::get),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
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

    /// [`JwtKeys::verify`], also returning the home cell.
    pub fn verify_full(&self, token: &str, now: UnixMs) -> Result<Verified, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| AuthError::Invalid)?;
        let c = data.claims;
        if c.exp.saturating_mul(1000) <= now.0.max(0) as u64 {
            return Err(AuthError::Expired);
        }
        let id: u64 = c.sub.parse().map_err(|_| AuthError::Invalid)?;
        let who = Principal::from_role(c.role, id);
        let home = match c.home {
            Some(h) => Some(CellId::new(u32::from(h)).map_err(|_| AuthError::Invalid)?),
            None => None,
        };
        Ok(Verified {
            principal: who,
            name: c.name,
            home,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_then_verify() {
        let keys = JwtKeys::from_secret(b"k");
        let now = UnixMs(1_800_000_000_000);
        let t = keys.issue(
            Principal::Driver(DriverId(7)),
            Some("Ada".into()),
            Duration::from_secs(60),
            now,
        );
        assert_eq!(
            keys.verify(&t, now).unwrap(),
            (Principal::Driver(DriverId(7)), Some("Ada".into()))
        );
        assert_eq!(
            keys.verify(&t, now.plus(Duration::from_secs(61))),
            Err(AuthError::Expired)
        );
        assert_eq!(
            JwtKeys::from_secret(b"other").verify(&t, now),
            Err(AuthError::Invalid)
        );
        assert_eq!(keys.verify("not.a.jwt", now), Err(AuthError::Invalid));
        let homed = keys.issue_with_home(
            Principal::Customer(CustomerId(3)),
            None,
            Some(CellId::new(2).unwrap()),
            Duration::from_secs(60),
            now,
        );
        assert_eq!(
            keys.verify_full(&homed, now).unwrap().home,
            CellId::new(2).ok()
        );
        assert_eq!(keys.verify_full(&t, now).unwrap().home, None);
        // A tampered payload fails the signature check.
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1].insert(3, 'x');
        assert_eq!(keys.verify(&parts.join("."), now), Err(AuthError::Invalid));
    }
}
