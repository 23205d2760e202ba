//! From a token's verified claims to who it speaks for: the subject and role claims (their
//! names configurable for an OIDC issuer), expiry against the caller's `now`, and the cap on
//! an admin token's lifetime.

use crate::{ADMIN_MAX_TTL, AuthError, Principal, Role, Verified};
use domain::{CellId, UnixMs};
use serde_json::{Map, Value};

/// Which claims carry what. Our own HS256 tokens use the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// Dotted path to the role: a string, or an array whose first known role wins (e.g.
    /// Keycloak's `realm_access.roles`).
    pub role: String,
    /// The role of a token that carries none; `None` refuses such tokens.
    pub default_role: Option<Role>,
    /// Dotted path to the numeric id of the customer, driver or restaurant (a decimal string
    /// or a number).
    pub subject: String,
    /// Dotted path to the display name.
    pub name: String,
    /// Dotted path to the phone (E.164).
    pub phone: String,
    pub home: String,
}

impl Default for ClaimNames {
    fn default() -> Self {
        Self {
            role: "role".into(),
            default_role: None,
            subject: "sub".into(),
            name: "name".into(),
            phone: "phone_number".into(),
            home: "home".into(),
        }
    }
}

fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut v = claims.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

fn role_of(v: &Value) -> Option<Role> {
    let one = |s: &str| serde_json::from_value::<Role>(Value::String(s.to_owned())).ok();
    match v {
        Value::String(s) => one(s),
        Value::Array(items) => items.iter().filter_map(Value::as_str).find_map(one),
        _ => None,
    }
}

fn seconds(claims: &Map<String, Value>, key: &str) -> Option<u64> {
    claims.get(key)?.as_u64()
}

impl ClaimNames {
    /// Maps signature-checked claims to what the token says. Refuses a token that is expired
    /// at `now`, not yet valid, has no usable subject or role, or is an admin token whose
    /// lifetime (`exp - iat`) exceeds [`ADMIN_MAX_TTL`].
    pub(crate) fn map(
        &self,
        claims: &Map<String, Value>,
        now: UnixMs,
    ) -> Result<Verified, AuthError> {
        let exp = seconds(claims, "exp").ok_or(AuthError::Invalid)?;
        let now_s = (now.0.max(0) / 1000) as u64;
        if exp.saturating_mul(1000) <= now.0.max(0) as u64 {
            return Err(AuthError::Expired);
        }
        // A small allowance for issuers whose clock runs ahead of ours.
        if seconds(claims, "nbf").is_some_and(|nbf| nbf > now_s + 60) {
            return Err(AuthError::Invalid);
        }
        let role = match lookup(claims, &self.role) {
            Some(v) => role_of(v).ok_or(AuthError::Invalid)?,
            None => self.default_role.ok_or(AuthError::Invalid)?,
        };
        if role.is_staff() {
            // Without `iat` the lifetime is unknown: such an admin token is refused.
            let iat = seconds(claims, "iat").ok_or(AuthError::Invalid)?;
            if exp.saturating_sub(iat) > ADMIN_MAX_TTL.as_secs() {
                return Err(AuthError::Invalid);
            }
        }
        let id = match lookup(claims, &self.subject) {
            _ if role.is_staff() => 0,
            Some(Value::String(s)) => s.parse().map_err(|_| AuthError::Invalid)?,
            Some(Value::Number(n)) => n.as_u64().ok_or(AuthError::Invalid)?,
            _ => return Err(AuthError::Invalid),
        };
        let name = lookup(claims, &self.name)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let phone = lookup(claims, &self.phone)
            .and_then(Value::as_str)
            .map(str::to_owned);
        let home = match lookup(claims, &self.home).and_then(Value::as_u64) {
            Some(h) => Some(
                u32::try_from(h)
                    .ok()
                    .and_then(|h| CellId::new(h).ok())
                    .ok_or(AuthError::Invalid)?,
            ),
            None => None,
        };
        Ok(Verified {
            principal: Principal::from_role(role, id),
            name,
            phone,
            home,
            expires_at: UnixMs(i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX)),
        })
    }
}
