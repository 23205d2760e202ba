//! Bearer tokens: JWTs whose subject and role say who is calling. Expiry is checked against
//! a `now` passed in (the library's own clock check is off), so tests are exact.
//!
//! Two kinds are accepted by one [`Verifier`]: HS256 tokens we sign ourselves ([`JwtKeys`],
//! with a `kid` per key so a secret rotates without downtime) and RS256/ES256 tokens from an
//! OIDC issuer (`[auth.oidc]`), whose keys a background task fetches and caches. An admin
//! token lives at most [`ADMIN_MAX_TTL`], whoever signed it.
//!
//! Shared by the cells and the router (which verifies the same tokens to rate-limit per token
//! and to route requests that name no place, restaurant or order to the caller's home cell).

mod claims;
pub mod config;
mod hs256;
mod mint;
mod oidc;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod verifier;
#[cfg(test)]
mod verifier_tests;

pub use hs256::{JwtKeys, capped_ttl};
pub use mint::{MintArgs, MintError};
pub use verifier::Verifier;

use domain::{CellId, CustomerId, DriverId, RestaurantId, UnixMs};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest an admin token may live (`exp - iat`): minting caps it, verification refuses
/// anything longer, so a leaked admin token is useful for minutes, not days.
pub const ADMIN_MAX_TTL: Duration = Duration::from_secs(15 * 60);

/// Who a valid token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Principal {
    Customer(CustomerId),
    /// A restaurant's staff or tablet, scoped to that one restaurant.
    Restaurant(RestaurantId),
    Driver(DriverId),
    Admin,
    /// Customer support staff: may read and review fraud flags, nothing else an admin may do.
    /// Like admins, no id, and a token lives at most [`ADMIN_MAX_TTL`].
    Support,
}

impl Principal {
    /// The principal a token with `role` and subject `id` speaks for (admins have no id).
    pub fn from_role(role: Role, id: u64) -> Principal {
        match role {
            Role::Customer => Principal::Customer(CustomerId(id)),
            Role::Restaurant => Principal::Restaurant(RestaurantId(id)),
            Role::Driver => Principal::Driver(DriverId(id)),
            Role::Admin => Principal::Admin,
            Role::Support => Principal::Support,
        }
    }

    pub fn role(&self) -> Role {
        match self {
            Principal::Customer(_) => Role::Customer,
            Principal::Restaurant(_) => Role::Restaurant,
            Principal::Driver(_) => Role::Driver,
            Principal::Admin => Role::Admin,
            Principal::Support => Role::Support,
        }
    }

    pub fn as_actor(&self) -> domain::Actor {
        match *self {
            Principal::Customer(c) => domain::Actor::Customer(c),
            Principal::Restaurant(r) => domain::Actor::Restaurant(r),
            Principal::Driver(d) => domain::Actor::Driver(d),
            // Support acts on no order (the cell's handlers refuse it); were it ever allowed
            // to, it acts as an operator.
            Principal::Admin | Principal::Support => domain::Actor::Admin,
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
    Support,
}

impl Role {
    /// Staff roles: no subject id, lifetime capped at [`ADMIN_MAX_TTL`].
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Admin | Role::Support)
    }
}

/// Everything a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    pub name: Option<String>,
    /// The phone claim as the issuer gave it (unchecked; see the cell's profiles).
    pub phone: Option<String>,
    pub home: Option<CellId>,
    /// When the token stops being valid: long-lived sessions (WebSocket, QUIC) end then.
    pub expires_at: UnixMs,
}

impl Verified {
    /// Time left at `now` (zero once expired).
    pub fn remaining(&self, now: UnixMs) -> Duration {
        Duration::from_millis(u64::try_from(self.expires_at.0 - now.0).unwrap_or(0))
    }
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

    #[test]
    fn support_tokens_are_staff_tokens_capped_like_admin_ones() {
        let keys = JwtKeys::from_secret(b"k");
        let now = UnixMs(1_800_000_000_000);
        let t = keys.issue(
            Principal::Support,
            Some("Sam".into()),
            Duration::from_secs(86_400),
            now,
        );
        let v = keys.verify_full(&t, now).unwrap();
        assert_eq!(v.principal, Principal::Support);
        assert_eq!(v.remaining(now), ADMIN_MAX_TTL);
        assert!(Role::Support.is_staff() && Role::Admin.is_staff());
        assert!(!Role::Customer.is_staff());
        assert_eq!(Principal::from_role(Role::Support, 99), Principal::Support);
    }
}
