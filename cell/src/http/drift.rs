//! `GET /api/v1/admin/payments/drift`: what payment reconciliation (`crate::reconcile`) found,
//! newest orders first, paged by cursor. Admins only.

use super::admin::require_admin;
use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppQuery, Auth};
use crate::app::App;
use crate::reconcile::{Drift, drift};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most records per page.
pub const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 50;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DriftParams {
    /// Only drift neither repaired nor resolved since.
    pub open: Option<bool>,
    /// The previous page's `next_cursor`.
    #[param(
        pattern = r"^[0-9]{1,19}\.(captured_not_recorded|released_not_recorded|missing_at_provider|amount_mismatch|recorded_not_at_provider)$"
    )]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct DriftList {
    /// Newest orders first; one record per order and kind.
    pub drift: Vec<Drift>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    /// Drift neither repaired nor resolved, over all pages.
    pub open: u64,
}

/// Payment drift found by reconciliation; admins only.
#[utoipa::path(get, path = "/api/v1/admin/payments/drift", params(DriftParams), security(("bearer" = [])),
    responses((status = 200, body = DriftList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list(
    State(app): State<App>,
    Auth(who): Auth,
    AppQuery(p): AppQuery<DriftParams>,
) -> Result<axum::Json<DriftList>, ApiError> {
    require_admin(&who)?;
    if let Some(c) = p.cursor.as_deref()
        && drift::key_of(c).is_none()
    {
        return Err(ApiError::bad_request(
            "drift.invalid_cursor",
            format!("{c:?} is not a drift cursor"),
        ));
    }
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "drift.invalid_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    let kv = &**app.kv();
    let page = drift::list(kv, p.cursor.as_deref(), p.open.unwrap_or(false), limit)
        .await
        .map_err(ApiError::internal)?;
    let open = drift::open_count(kv).await.map_err(ApiError::internal)?;
    Ok(axum::Json(DriftList {
        drift: page.drift,
        next_cursor: page.next,
        open,
    }))
}

#[cfg(test)]
mod tests {
    use crate::reconcile::DriftKind;

    #[test]
    fn the_documented_cursor_pattern_names_every_kind() {
        let doc = serde_json::to_value(super::super::openapi()).unwrap();
        let params = doc["paths"]["/api/v1/admin/payments/drift"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let cursor = params.iter().find(|p| p["name"] == "cursor").unwrap();
        let kinds: Vec<&str> = DriftKind::ALL.iter().map(|k| k.as_str()).collect();
        let want = format!(r"^[0-9]{{1,19}}\.({})$", kinds.join("|"));
        assert_eq!(cursor["schema"]["pattern"], want.as_str());
    }
}
