//! Every error the router answers itself, mapped once to a status and a JSON body
//! `{"error":{"code","message"}}`, like the cells' errors.

use crate::route::RouteError;
use crate::table::Unroutable;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Unroutable(#[from] Unroutable),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("admin role required")]
    Forbidden,
    #[error("too many requests")]
    RateLimited { retry_after_s: u64 },
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The owning cell did not answer (refused, reset, timed out).
    #[error("cell {cell} did not answer: {reason}")]
    Upstream { cell: String, reason: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this router follows {0}; send admin changes there")]
    Follower(String),
    #[error("{0}")]
    Internal(String),
}

impl RouterError {
    fn parts(&self) -> (StatusCode, &'static str, Option<u64>) {
        use RouterError::*;
        match self {
            Route(RouteError::NotFound) => (StatusCode::NOT_FOUND, "route.not_found", None),
            Route(RouteError::UnknownRestaurant(_)) => (StatusCode::NOT_FOUND, "not_found", None),
            Route(RouteError::BadInput(_)) => (StatusCode::BAD_REQUEST, "request.invalid", None),
            Route(RouteError::NoHint) => (StatusCode::BAD_REQUEST, "route.no_hint", None),
            // A well-formed request whose token carries no home cell: the credentials, not
            // the request, fall short (an admin calling a driver's endpoint, say).
            Unroutable(crate::table::Unroutable::NoHome) => {
                (StatusCode::FORBIDDEN, "route.no_home", None)
            }
            Route(RouteError::MethodNotAllowed { .. }) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "request.method_not_allowed",
                None,
            ),
            Unroutable(crate::table::Unroutable::NoCell) => {
                (StatusCode::NOT_FOUND, "route.no_cell", None)
            }
            Unroutable(crate::table::Unroutable::UnknownCell(_)) => {
                (StatusCode::NOT_FOUND, "route.unknown_cell", None)
            }
            Unroutable(crate::table::Unroutable::Down { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "cell.unavailable", Some(2))
            }
            Unauthorized(_) => (StatusCode::UNAUTHORIZED, "auth.unauthorized", None),
            Forbidden => (StatusCode::FORBIDDEN, "auth.forbidden", None),
            RateLimited { retry_after_s } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                Some(*retry_after_s),
            ),
            TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "request.too_large", None),
            Upstream { .. } => (StatusCode::SERVICE_UNAVAILABLE, "cell.unavailable", Some(1)),
            BadRequest(_) => (StatusCode::BAD_REQUEST, "request.invalid", None),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
            Conflict(_) => (StatusCode::CONFLICT, "conflict", None),
            Follower(_) => (StatusCode::CONFLICT, "router.follower", None),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", None),
        }
    }
}

impl IntoResponse for RouterError {
    fn into_response(self) -> Response {
        let (status, code, retry) = self.parts();
        if status.is_server_error() {
            tracing::warn!(error = %self, "router error");
        }
        let body = json!({"error": {"code": code, "message": self.to_string()}});
        let mut resp = (status, axum::Json(body)).into_response();
        if let RouterError::Route(RouteError::MethodNotAllowed { allow }) = &self {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if let Some(s) = retry {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}
