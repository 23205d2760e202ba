//! `GET /api/v1/drivers/me/earnings`: a driver's deliveries and payouts today and this week
//! (UTC days, weeks from Monday), from the payouts recorded at each delivery
//! ([`crate::earnings`]).

use super::dto::ErrorBody;
use super::error::ApiError;
use super::extract::Auth;
use crate::app::App;
use crate::auth::Principal;
use axum::extract::State;
use domain::UnixMs;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    OpenApiRouter::new().routes(routes!(earnings))
}

const DAY_MS: i64 = 86_400_000;

/// Deliveries and payouts since `since_ms`.
#[derive(Serialize, ToSchema)]
pub struct Period {
    /// Start of the period (Unix ms, UTC).
    pub since_ms: i64,
    pub deliveries: u64,
    pub payout_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct Earnings {
    pub driver_id: String,
    pub today: Period,
    /// Since Monday 00:00 UTC.
    pub week: Period,
}

/// Midnight UTC of `now`'s day, and of the Monday of its week (1970-01-01 was a Thursday).
fn period_starts(now: UnixMs) -> (UnixMs, UnixMs) {
    let day = now.0.div_euclid(DAY_MS);
    let weekday_from_monday = (day + 3).rem_euclid(7);
    (
        UnixMs(day * DAY_MS),
        UnixMs((day - weekday_from_monday) * DAY_MS),
    )
}

/// The calling driver's earnings today and this week.
#[utoipa::path(get, path = "/api/v1/drivers/me/earnings", security(("bearer" = [])),
    responses((status = 200, body = Earnings), (status = 403, body = ErrorBody)))]
async fn earnings(
    State(app): State<App>,
    Auth(who): Auth,
) -> Result<axum::Json<Earnings>, ApiError> {
    let Principal::Driver(d) = who else {
        return Err(ApiError::Forbidden("a driver token is required".into()));
    };
    let now = app.now();
    let (today, week) = period_starts(now);
    let end = UnixMs(now.0.saturating_add(1));
    let kv = &**app.kv();
    let t = crate::earnings::summary(kv, d, today, end)
        .await
        .map_err(ApiError::internal)?;
    let w = crate::earnings::summary(kv, d, week, end)
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(Earnings {
        driver_id: d.to_string(),
        today: Period {
            since_ms: today.0,
            deliveries: t.deliveries,
            payout_cents: t.payout.0,
        },
        week: Period {
            since_ms: week.0,
            deliveries: w.deliveries,
            payout_cents: w.payout.0,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_midnight_utc_and_weeks_on_monday() {
        // 2026-12-07 is a Monday; 15:00 UTC.
        let monday = UnixMs(1_796_655_600_000);
        let (d, w) = period_starts(monday);
        assert_eq!(d, w, "on a Monday the week starts today");
        assert_eq!(d.0 % DAY_MS, 0);
        assert!(monday.0 - d.0 < DAY_MS);
        // The Sunday after: same week, six days later.
        let sunday = UnixMs(monday.0 + 6 * DAY_MS);
        let (d2, w2) = period_starts(sunday);
        assert_eq!(w2, w);
        assert_eq!(d2.0 - d.0, 6 * DAY_MS);
        // The next Monday starts a new week.
        assert_eq!(
            period_starts(UnixMs(monday.0 + 7 * DAY_MS)).1.0,
            w.0 + 7 * DAY_MS
        );
    }
}
