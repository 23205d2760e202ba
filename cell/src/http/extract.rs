//! Extractors whose rejections are [`ApiError`]s, so bad input gets our JSON error body, and
//! the bearer-token extractor.

use super::error::ApiError;
use crate::app::App;
use crate::auth::{AuthError, Principal, Verified};
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

/// JSON body; a bad body is a 400 (or 413) with our error shape.
pub struct AppJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(AppJson(v)),
            Err(JsonRejection::BytesRejection(b))
                if b.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::PayloadTooLarge {
                    limit: super::MAX_BODY_BYTES,
                })
            }
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::bad_request(
                "request.content_type",
                "expected Content-Type: application/json",
            )),
            Err(e) => Err(ApiError::bad_request("request.invalid_json", e.body_text())),
        }
    }
}

/// Query string; a bad one is a 400 naming the problem.
pub struct AppQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for AppQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| AppQuery(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::bad_request("request.invalid_query", e.body_text())
            })
    }
}

/// Path parameters; a malformed id is a 400 (an unknown one is a 404 from the handler).
pub struct AppPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for AppPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| AppPath(p.0))
            .map_err(|e: PathRejection| {
                ApiError::bad_request("request.invalid_path", e.body_text())
            })
    }
}

/// The caller, from `Authorization: Bearer <jwt>`. 401 when absent or invalid; 429 past the
/// caller's per-user request rate (`crate::limits`, admins exempt). REST takes the header only: a token in a URL ends up in access logs and browser history.
pub struct Auth(pub Principal);

impl FromRequestParts<App> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized(AuthError::Missing))?;
        let now = app.now();
        let v = app.verifier().verify(token, now)?;
        // Checked after verification, so a forged token cannot spend someone else's allowance.
        if let Err(retry_after_s) = app.api_limiter().check(&v.principal, now) {
            let (rps, burst) = app.api_limiter().limit();
            return Err(ApiError::Limited {
                code: "request.rate_limited",
                message: format!(
                    "more than {rps} requests per second (burst {burst}) from this user; retry in {retry_after_s} s"
                ),
                limit: super::error::LimitDetail {
                    max: rps,
                    window_s: 1,
                    retry_after_s,
                },
            });
        }
        // The token's name and phone claims become the person's profile (customers and
        // drivers: a restaurant token names a member of staff, not the restaurant). A failed
        // write costs the profile, never the request.
        let who = match v.principal {
            Principal::Customer(c) => Some((crate::people::Kind::Customer, c.0)),
            Principal::Driver(d) => Some((crate::people::Kind::Driver, d.0)),
            _ => None,
        };
        // Boxed: the store read and write it may do would otherwise make every request's
        // extractor future (moved on each poll setup) several times larger.
        if let Some((kind, id)) = who
            && !app
                .claim_sync()
                .is_current(kind, id, v.name.as_deref(), v.phone.as_deref())
            && let Err(e) = Box::pin(app.claim_sync().apply(
                &**app.kv(),
                &crate::people::Sealer {
                    vault: app.orders().vault(),
                    now: app.now(),
                },
                kind,
                id,
                v.name.as_deref(),
                v.phone.as_deref(),
            ))
            .await
        {
            tracing::warn!(error = %e, "could not apply the token's profile claims");
        }
        Ok(Auth(v.principal))
    }
}

/// A staff caller (admin or support) and the name their token carries; other roles get 403.
pub struct Staff {
    pub role: &'static str,
    pub name: Option<String>,
}

impl FromRequestParts<App> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized(AuthError::Missing))?;
        let v = app.verifier().verify(token, app.now())?;
        let role = match v.principal {
            Principal::Admin => "admin",
            Principal::Support => "support",
            Principal::Customer(_) | Principal::Restaurant(_) | Principal::Driver(_) => {
                return Err(ApiError::Forbidden("admin or support role required".into()));
            }
        };
        Ok(Staff { role, name: v.name })
    }
}

/// The caller of a WebSocket upgrade: the header, or `?token=` (browsers cannot set headers
/// on a WebSocket upgrade), accepted only on an upgrade request. Keeps the whole
/// [`Verified`] so the socket can end when the token expires.
pub struct WsAuth(pub Verified, pub WsToken);

/// The raw token a WebSocket was opened with, for the per-token subscription cap.
pub struct WsToken(pub String);

impl FromRequestParts<App> for WsAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = bearer(parts)
            .or_else(|| is_ws_upgrade(parts).then(|| query_token(parts)).flatten())
            .ok_or(ApiError::Unauthorized(AuthError::Missing))?;
        let verified = app.verifier().verify(token, app.now())?;
        Ok(WsAuth(verified, WsToken(token.to_owned())))
    }
}

/// The bearer token from the `Authorization` header.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let h = parts.headers.get(header::AUTHORIZATION)?;
    h.to_str().ok()?.strip_prefix("Bearer ").map(str::trim)
}

fn query_token(parts: &Parts) -> Option<&str> {
    parts
        .uri
        .query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .filter(|t| !t.is_empty())
}

/// `Upgrade: websocket` on a GET.
fn is_ws_upgrade(parts: &Parts) -> bool {
    parts.method == axum::http::Method::GET
        && parts
            .headers
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}
