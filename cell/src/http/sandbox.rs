//! The payment sandbox's fault endpoint (admin only), for tests, `./dev city` and the
//! simulator: `GET`/`PUT /api/v1/admin/payments/sandbox/faults`. The body's fields are all
//! optional (missing = unchanged); the answer is the fault state now. 404
//! `payments.not_sandbox` when the provider is not the sandbox.

use super::admin::require_admin;
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppJson, Auth};
use crate::app::App;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(get_faults, put_faults))
}

/// The longest outage the fault endpoint plays (the schema's maximum).
const MAX_DOWN_MS: u64 = 86_400_000;

/// A change to the sandbox's fault modes; every field optional, missing = unchanged.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FaultsPatch {
    /// Share of calls (0-100) that fail as unavailable.
    #[schema(minimum = 0, maximum = 100)]
    pub fail_percent: Option<u8>,
    /// Every call goes unanswered (times out).
    pub timeout: Option<bool>,
    /// Every call fails as unavailable for this long from now (at most a day); 0 = up again.
    #[schema(minimum = 0, maximum = 86400000)]
    pub down_for_ms: Option<u64>,
    /// Captures are declined as if the authorization expired.
    pub decline_after_authorize: Option<bool>,
}

/// The sandbox's fault modes now.
#[derive(Serialize, ToSchema)]
pub struct FaultsState {
    pub fail_percent: u8,
    pub timeout: bool,
    /// How much longer the provider is down (0 = up).
    pub down_for_ms: u64,
    pub decline_after_authorize: bool,
}

impl From<payments::FaultState> for FaultsState {
    fn from(s: payments::FaultState) -> Self {
        FaultsState {
            fail_percent: s.fail_percent,
            timeout: s.timeout,
            down_for_ms: s.down_for_ms,
            decline_after_authorize: s.decline_after_authorize,
        }
    }
}

fn sandbox(app: &App) -> Result<&std::sync::Arc<payments::SandboxGateway>, ApiError> {
    app.sandbox().ok_or_else(|| ApiError::Absent {
        code: "payments.not_sandbox",
        message: "the payment provider is not the sandbox".into(),
    })
}

/// The sandbox's fault modes. Admins only.
#[utoipa::path(get, path = "/api/v1/admin/payments/sandbox/faults", security(("bearer" = [])),
    responses((status = 200, body = FaultsState), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_faults(
    State(app): State<App>,
    Auth(who): Auth,
) -> Result<axum::Json<FaultsState>, ApiError> {
    require_admin(&who)?;
    Ok(axum::Json(sandbox(&app)?.faults().into()))
}

/// Changes the sandbox's fault modes and answers the new state. Admins only.
#[utoipa::path(put, path = "/api/v1/admin/payments/sandbox/faults", request_body = FaultsPatch,
    security(("bearer" = [])),
    responses((status = 200, body = FaultsState), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn put_faults(
    State(app): State<App>,
    Auth(who): Auth,
    AppJson(patch): AppJson<FaultsPatch>,
) -> Result<axum::Json<FaultsState>, ApiError> {
    require_admin(&who)?;
    let sandbox = sandbox(&app)?;
    if patch.down_for_ms.is_some_and(|ms| ms > MAX_DOWN_MS) {
        return Err(ApiError::bad_request(
            "payments.invalid_faults",
            format!("down_for_ms must be at most {MAX_DOWN_MS} (a day)"),
        ));
    }
    let patch = payments::FaultPatch {
        fail_percent: patch.fail_percent,
        timeout: patch.timeout,
        down_for_ms: patch.down_for_ms,
        decline_after_authorize: patch.decline_after_authorize,
    };
    let state = sandbox
        .set_faults(patch)
        .map_err(|m| ApiError::bad_request("payments.invalid_faults", m))?;
    Ok(axum::Json(state.into()))
}
