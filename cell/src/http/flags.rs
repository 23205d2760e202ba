//! Fraud flags for staff (`crate::fraud`): `GET /api/v1/admin/flags` lists them newest first
//! (filters by state and rule, paged by cursor) and `POST /api/v1/admin/flags/{flag}/review`
//! clears or confirms one, recording who, when and the note with the flag. Admins and support
//! staff only.

use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::{AppJson, AppPath, AppQuery, Staff};
use crate::app::App;
use crate::fraud::flags::{self, Filter, FlagError};
use crate::fraud::{Decision, Flag, FlagState, Review, RuleKind};
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Most flags per page.
pub const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 50;
/// Longest review note, in bytes.
pub const MAX_NOTE_BYTES: usize = 2_000;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(review))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FlagListParams {
    /// Only flags in this state.
    #[param(inline, value_type = Option<FlagState>)]
    pub state: Option<String>,
    /// Only flags of this rule (the flag's kind; `kind=` is accepted too).
    #[param(inline, value_type = Option<RuleKind>)]
    #[serde(alias = "kind")]
    pub rule: Option<String>,
    /// The previous page's `next_cursor`.
    #[param(pattern = "^[0-9]{1,18}-[a-z0-9._]{1,128}$")]
    pub cursor: Option<String>,
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct FlagList {
    /// Newest first.
    pub flags: Vec<Flag>,
    /// Pass as `cursor` for the next (older) page; null on the last page. A page may hold
    /// fewer than `limit` flags and still have a next one (a filter that matches few flags
    /// reads a bounded number per page).
    pub next_cursor: Option<String>,
}

/// Flags, newest first; admins and support staff.
#[utoipa::path(get, path = "/api/v1/admin/flags", params(FlagListParams), security(("bearer" = [])),
    responses((status = 200, body = FlagList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn list(
    State(app): State<App>,
    _staff: Staff,
    AppQuery(p): AppQuery<FlagListParams>,
) -> Result<axum::Json<FlagList>, ApiError> {
    let state = match p.state.as_deref() {
        None => None,
        Some(s) => Some(FlagState::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                "flags.invalid_state",
                format!("unknown flag state {s:?}: open, cleared or confirmed"),
            )
        })?),
    };
    let rule = match p.rule.as_deref() {
        None => None,
        Some(r) => Some(RuleKind::parse(r).ok_or_else(|| {
            ApiError::bad_request("flags.invalid_rule", format!("unknown rule {r:?}"))
        })?),
    };
    if let Some(c) = p.cursor.as_deref()
        && !flags::valid_id(c)
    {
        return Err(ApiError::bad_request(
            "flags.invalid_cursor",
            format!("{c:?} is not a flag cursor"),
        ));
    }
    let limit = p.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "flags.invalid_limit",
            format!("limit must be 1..={MAX_LIMIT}"),
        ));
    }
    let page = flags::list(
        &**app.kv(),
        Filter { state, rule },
        p.cursor.as_deref(),
        limit,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(axum::Json(FlagList {
        flags: page.flags,
        next_cursor: page.next,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub decision: Decision,
    /// Why; stored with the flag.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: String,
}

/// Clears or confirms an open flag; who, when, the decision and the note are stored with it.
/// A flag is reviewed once (409 after that).
#[utoipa::path(post, path = "/api/v1/admin/flags/{flag}/review",
    params(("flag" = String, Path, pattern = "^[0-9]{1,18}-[a-z0-9._]{1,128}$")),
    request_body = ReviewRequest, security(("bearer" = [])),
    responses((status = 200, body = Flag), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn review(
    State(app): State<App>,
    staff: Staff,
    AppPath(flag): AppPath<String>,
    AppJson(req): AppJson<ReviewRequest>,
) -> Result<axum::Json<Flag>, ApiError> {
    if !flags::valid_id(&flag) {
        return Err(ApiError::bad_request(
            "request.invalid_id",
            format!("{flag:?} is not a flag id"),
        ));
    }
    if req.note.len() > MAX_NOTE_BYTES {
        return Err(ApiError::bad_request(
            "flags.note_too_long",
            format!("note is longer than {MAX_NOTE_BYTES} bytes"),
        ));
    }
    let r = Review {
        role: staff.role.to_string(),
        name: staff.name,
        decision: req.decision,
        note: req.note,
        at: app.now().0,
    };
    match flags::review(&**app.kv(), &flag, r).await {
        Ok((f, open)) => {
            metrics::gauge!("cell_fraud_flags_open").set(open as f64);
            tracing::info!(flag = %f.id, role = staff.role, decision = ?req.decision, "fraud flag reviewed");
            Ok(axum::Json(f))
        }
        Err(FlagError::NotFound(id)) => Err(ApiError::not_found("flag", id)),
        Err(FlagError::AlreadyReviewed(id)) => Err(ApiError::Conflict {
            code: "flags.already_reviewed",
            message: format!("flag {id} was already reviewed"),
            status: None,
        }),
        Err(e) => Err(ApiError::internal(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fraud::flags::ID_PATTERN;

    #[test]
    fn the_documented_pattern_is_the_one_ids_are_checked_against() {
        assert_eq!(ID_PATTERN, "^[0-9]{1,18}-[a-z0-9._]{1,128}$");
        assert!(flags::valid_id("1700000000000-e12.gps_spoof"));
        for bad in [
            "",
            "1-",
            "-x",
            "x-y",
            "1-A",
            "1-a/b",
            "1234567890123456789-a",
        ] {
            assert!(!flags::valid_id(bad), "{bad:?}");
        }
    }
}
