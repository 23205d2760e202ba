//! The token sections both binaries share: `[auth.hs256]` (the current key's `kid` and the
//! previous keys that still verify) and `[auth.oidc]` (an external issuer). The current
//! HS256 secret itself stays in each binary's `[auth]`.

use crate::Role;
use serde::{Deserialize, Serialize};
use service::config::{Section, Validate};
use std::path::PathBuf;
use std::time::Duration;

/// Shortest HS256 secret accepted for a previous key (the current one is checked with the
/// binary's own `auth.jwt_secret` rule).
pub const MIN_SECRET_BYTES: usize = 16;

/// `[auth.hs256]`: HS256 key rotation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hs256Config {
    /// The `kid` of `auth.jwt_secret`, written in the header of every token we sign. Unset:
    /// tokens carry no `kid` (as before keys had one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Retired secrets that still verify tokens signed with them until those expire.
    #[serde(default)]
    pub previous: Vec<PreviousKey>,
}

/// `[[auth.hs256.previous]]`: a retired HS256 secret, from the file or inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousKey {
    pub kid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// A file holding the secret (trailing newline ignored), e.g. a mounted Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

impl PreviousKey {
    /// The secret's bytes.
    ///
    /// # Errors
    /// [`KeyError`] when the file cannot be read or neither source is set.
    pub fn load(&self) -> Result<Vec<u8>, KeyError> {
        match (&self.secret, &self.secret_file) {
            (Some(s), None) => Ok(s.as_bytes().to_vec()),
            (None, Some(p)) => {
                let text = std::fs::read_to_string(p).map_err(|e| KeyError {
                    kid: self.kid.clone(),
                    message: format!("{}: {e}", p.display()),
                })?;
                Ok(text.trim_end_matches(['\r', '\n']).as_bytes().to_vec())
            }
            _ => Err(KeyError {
                kid: self.kid.clone(),
                message: "set exactly one of secret and secret_file".into(),
            }),
        }
    }
}

/// A previous key whose secret could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("auth.hs256.previous (kid {kid}): {message}")]
pub struct KeyError {
    pub kid: String,
    pub message: String,
}

impl Hs256Config {
    /// Replaces inline secrets for logging the effective config.
    pub fn redact(&mut self) {
        for k in &mut self.previous {
            if k.secret.is_some() {
                k.secret = Some("<redacted>".into());
            }
        }
    }
}

impl Validate for Hs256Config {
    fn validate(&self, s: &mut Section<'_>) {
        if let Some(kid) = &self.kid {
            s.ensure(!kid.is_empty(), "kid", || {
                "must not be empty (omit it for none)".into()
            });
        }
        let mut seen: Vec<&str> = self.kid.iter().map(String::as_str).collect();
        for (i, k) in self.previous.iter().enumerate() {
            let key = |f: &str| format!("previous[{i}].{f}");
            s.ensure(!k.kid.is_empty(), &key("kid"), || {
                "must not be empty".into()
            });
            s.ensure(
                k.kid.is_empty() || !seen.contains(&k.kid.as_str()),
                &key("kid"),
                || format!("{:?} is used by another key", k.kid),
            );
            seen.push(&k.kid);
            match (&k.secret, &k.secret_file) {
                (Some(secret), None) => {
                    s.ensure(secret.len() >= MIN_SECRET_BYTES, &key("secret"), || {
                        format!(
                            "must be at least {MIN_SECRET_BYTES} bytes (got {})",
                            secret.len()
                        )
                    })
                }
                (None, Some(_)) => {}
                _ => s.push(&key("secret"), "set exactly one of secret and secret_file"),
            }
        }
    }
}

/// `[auth.oidc]`: accept RS256/ES256 tokens from this issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Must equal the tokens' `iss`; its discovery document is read when `jwks_url` is unset.
    pub issuer: String,
    /// Must be one of the tokens' `aud`.
    pub audience: String,
    /// Where the signing keys are; unset: the `jwks_uri` of
    /// `<issuer>/.well-known/openid-configuration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// How often the keys are fetched again.
    #[serde(default = "default_refresh")]
    pub refresh_interval_s: u64,
    /// Least time between two fetches, also when tokens name a `kid` we do not know: a flood
    /// of made-up kids costs the issuer one request per interval.
    #[serde(default = "default_min_refetch")]
    pub min_refetch_interval_s: u64,
    #[serde(default = "default_fetch_timeout")]
    pub fetch_timeout_ms: u64,
    /// Dotted path of the role claim: a role name or an array of them
    /// (`customer`, `restaurant`, `driver`, `admin`).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The role of tokens without a role claim; unset: such tokens are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_role: Option<Role>,
    /// Dotted path of the claim holding the numeric customer, driver or restaurant id.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// Dotted path of the person's display name (OIDC's standard `name`): it becomes their
    /// profile's name in each cell they use.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    /// Dotted path of the person's phone in E.164 (OIDC's standard `phone_number`): it becomes
    /// their profile's phone (personal data: read by admins only).
    #[serde(default = "default_phone_claim")]
    pub phone_claim: String,
}

fn default_refresh() -> u64 {
    300
}
fn default_min_refetch() -> u64 {
    30
}
fn default_fetch_timeout() -> u64 {
    5000
}
fn default_role_claim() -> String {
    "role".into()
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_name_claim() -> String {
    "name".into()
}
fn default_phone_claim() -> String {
    "phone_number".into()
}

impl OidcConfig {
    pub fn refresh_interval(&self) -> Duration {
        Duration::from_secs(self.refresh_interval_s)
    }
    pub fn min_refetch_interval(&self) -> Duration {
        Duration::from_secs(self.min_refetch_interval_s)
    }
    pub fn fetch_timeout(&self) -> Duration {
        Duration::from_millis(self.fetch_timeout_ms)
    }
}

/// `https://`, or `http://` to a loopback host (a test issuer, a sidecar).
fn acceptable_url(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

impl Validate for OidcConfig {
    fn validate(&self, s: &mut Section<'_>) {
        s.ensure(acceptable_url(&self.issuer), "issuer", || {
            format!(
                "must be an https:// URL (http:// only to loopback) (got {:?})",
                self.issuer
            )
        });
        s.ensure(!self.audience.is_empty(), "audience", || {
            "must not be empty".into()
        });
        if let Some(u) = &self.jwks_url {
            s.ensure(acceptable_url(u), "jwks_url", || {
                format!("must be an https:// URL (http:// only to loopback) (got {u:?})")
            });
        }
        s.ensure(
            self.min_refetch_interval_s >= 1,
            "min_refetch_interval_s",
            || format!("must be at least 1 (got {})", self.min_refetch_interval_s),
        );
        s.ensure(
            self.refresh_interval_s >= self.min_refetch_interval_s.max(1),
            "refresh_interval_s",
            || {
                format!(
                    "must be at least min_refetch_interval_s ({}) (got {})",
                    self.min_refetch_interval_s, self.refresh_interval_s
                )
            },
        );
        s.ensure(
            (100..=60_000).contains(&self.fetch_timeout_ms),
            "fetch_timeout_ms",
            || format!("must be in 100..=60000 (got {})", self.fetch_timeout_ms),
        );
        s.ensure(!self.role_claim.is_empty(), "role_claim", || {
            "must not be empty".into()
        });
        s.ensure(!self.subject_claim.is_empty(), "subject_claim", || {
            "must not be empty".into()
        });
    }
}
