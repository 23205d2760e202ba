//! The one error type of the HTTP API and its one mapping to status codes. Handlers return
//! only [`ApiError`]; the body is always `{"error": {"code", "message"}}` (plus `status` for
//! a refused transition). Internal causes are logged once and never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::OrderStatus;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed or invalid input; `code` is stable (e.g. `cart.unknown_item`).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no token, or a bad or expired one.
    #[error("{0}")]
    Unauthorized(#[from] crate::auth::AuthError),
    /// 403: a valid token for the wrong party.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    /// 402: the payment was declined.
    #[error("{message}")]
    PaymentRequired { code: String, message: String },
    /// 409: the order's state does not allow this.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        status: Option<OrderStatus>,
    },
    /// 405: the path exists, the method does not.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// 413.
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422: well-formed but not possible now (restaurant closed, address out of range).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// 429: the caller sends faster than its limit allows.
    #[error("{message}")]
    TooManyRequests { code: &'static str, message: String },
    /// 429 with Retry-After and the limit in the body: a per-user limit (orders per window,
    /// API requests per second) was reached.
    #[error("{message}")]
    Limited {
        code: &'static str,
        message: String,
        limit: LimitDetail,
    },
    /// 503 with Retry-After: a dependency (payment provider, store) is unavailable.
    #[error("{message}")]
    Unavailable {
        code: &'static str,
        message: String,
        retry_after_s: u32,
    },
    /// 500: logged with its cause, answered with a generic message.
    #[error("internal error: {0}")]
    Internal(String),
    /// 404 with its own code: the resource does not exist in this cell's setup (e.g.
    /// `payments.not_sandbox`).
    #[error("{message}")]
    Absent { code: &'static str, message: String },
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<OrderStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<LimitDetail>,
}

/// The limit a 429 refers to: at most `max` per `window_s` seconds; `retry_after_s` as in
/// the `Retry-After` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LimitDetail {
    pub max: u32,
    pub window_s: u64,
    pub retry_after_s: u64,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn not_found(what: &'static str, id: impl ToString) -> Self {
        ApiError::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    /// Status, stable code and public message. Exhaustive: no `_` arm.
    fn parts(&self) -> (StatusCode, &str, String) {
        match self {
            ApiError::BadRequest { code, message } => {
                (StatusCode::BAD_REQUEST, code, message.clone())
            }
            ApiError::Unauthorized(e) => {
                (StatusCode::UNAUTHORIZED, "auth.unauthorized", e.to_string())
            }
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "auth.forbidden", m.clone()),
            ApiError::Absent { code, message } => (StatusCode::NOT_FOUND, code, message.clone()),
            ApiError::NotFound { what, id } => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} {id} not found"),
            ),
            ApiError::PaymentRequired { code, message } => {
                (StatusCode::PAYMENT_REQUIRED, code.as_str(), message.clone())
            }
            ApiError::Conflict { code, message, .. } => {
                (StatusCode::CONFLICT, code, message.clone())
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "request.method_not_allowed",
                self.to_string(),
            ),
            ApiError::PayloadTooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.too_large",
                self.to_string(),
            ),
            ApiError::Unprocessable { code, message } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, message.clone())
            }
            ApiError::TooManyRequests { code, message } => {
                (StatusCode::TOO_MANY_REQUESTS, code, message.clone())
            }
            ApiError::Limited { code, message, .. } => {
                (StatusCode::TOO_MANY_REQUESTS, code, message.clone())
            }
            ApiError::Unavailable { code, message, .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, message.clone())
            }
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error; it has been logged".to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "internal error");
        }
        let current = match &self {
            ApiError::Conflict { status, .. } => *status,
            _ => None,
        };
        let limit = match &self {
            ApiError::Limited { limit, .. } => Some(*limit),
            _ => None,
        };
        let body = Body {
            error: Detail {
                code,
                message,
                status: current,
                limit,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        let retry_after = match self {
            ApiError::Unavailable { retry_after_s, .. } => Some(u64::from(retry_after_s)),
            ApiError::Limited { limit, .. } => Some(limit.retry_after_s),
            _ => None,
        };
        if let Some(s) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

impl From<crate::orders::repo::RepoError> for ApiError {
    fn from(e: crate::orders::repo::RepoError) -> Self {
        use crate::orders::repo::RepoError;
        match e {
            RepoError::NotFound(id) => ApiError::not_found("order", id),
            RepoError::Transition(t) => transition_error(t),
            RepoError::Changed { id, now } => ApiError::Conflict {
                code: "order.changed",
                message: format!("order {id} changed concurrently; it is now {now}"),
                status: Some(now),
            },
            RepoError::DriverBusy { driver, order } => ApiError::Conflict {
                code: "driver.busy",
                message: format!("driver {driver} is already on order {order}"),
                status: None,
            },
            RepoError::IdempotencyMismatch => ApiError::Unprocessable {
                code: "idempotency.mismatch",
                message: "this Idempotency-Key was already used for a different request".into(),
            },
            RepoError::IdTaken(id) => ApiError::internal(format!(
                "order id {id} was issued twice; the order that holds it was left alone"
            )),
            RepoError::Store(s) => store_error(s),
        }
    }
}

/// A store failure: `Unavailable` (a failed commit, the store is recovering) and `Fenced`
/// (another instance took the cell over) are 503s the client retries; anything else is
/// internal.
pub fn store_error(e: store::StoreError) -> ApiError {
    match e {
        store::StoreError::Unavailable { reason } => {
            tracing::debug!(%reason, "store unavailable");
            ApiError::Unavailable {
                code: "store.unavailable",
                message: "the order store cannot accept writes right now; retry later (with the same Idempotency-Key)".into(),
                retry_after_s: 2,
            }
        }
        store::StoreError::Fenced { reason } => {
            tracing::debug!(%reason, "write fenced: the cell's lease is lost");
            ApiError::Unavailable {
                code: "cell.fenced",
                message: "this instance of the cell lost its lease to another and is stopping; retry (with the same Idempotency-Key)".into(),
                retry_after_s: 1,
            }
        }
        e => ApiError::internal(e),
    }
}

pub fn transition_error(e: domain::TransitionError) -> ApiError {
    match e {
        domain::TransitionError::Invalid { from, .. } => ApiError::Conflict {
            code: "order.invalid_transition",
            message: e.to_string(),
            status: Some(from),
        },
        domain::TransitionError::Forbidden { .. } => ApiError::Forbidden(e.to_string()),
    }
}

/// A personal-data failure: an erased customer's data is gone for good (409
/// `key_destroyed`); an unreadable field is a broken record (500); keys out of reach, 503.
pub fn personal_error(e: crate::personal::PersonalError) -> ApiError {
    use crate::personal::PersonalError;
    match e {
        PersonalError::KeyDestroyed(_) => ApiError::Conflict {
            code: "key_destroyed",
            message: "this customer's personal data was erased".into(),
            status: None,
        },
        PersonalError::Open { .. } => ApiError::internal(e.to_string()),
        PersonalError::Key(_) => ApiError::Unavailable {
            code: "personal.keys_unavailable",
            message: "the key store is unavailable; try again".into(),
            retry_after_s: 1,
        },
    }
}
