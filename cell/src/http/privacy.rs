//! A customer's personal data in the API: who sees which address fields of an order (the
//! customer all of theirs; the assigned driver what `personal::window` allows; nobody else
//! the sealed ones), and the customer's export and erasure (each audited first, in the
//! hash-chained log of `crate::history::audit`).

use super::dto::{AddressDto, ErrorBody};
use super::error::{ApiError, personal_error};
use super::extract::Auth;
use crate::app::App;
use crate::auth::Principal;
use crate::history::audit::{self, Entry};
use crate::personal::erase::EraseError;
use crate::personal::export::{CustomerExport, ExportError};
use crate::personal::window::{self, Shown};
use crate::personal::{Contact, PersonalError};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use domain::{CustomerId, HistoryEntry, Order};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn routes() -> OpenApiRouter<App> {
    // One `routes!` per path: handlers listed together share every path among them.
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(erase))
}

/// The order's personal fields, opened; an erased customer's come back empty.
pub(crate) fn open_contact(app: &App, o: &Order) -> Result<Option<Contact>, ApiError> {
    match app
        .orders()
        .vault()
        .open(o.customer_id, o.id, &o.delivery_address, app.now())
    {
        Ok(c) => Ok(Some(c)),
        Err(PersonalError::KeyDestroyed(_)) => Ok(None),
        Err(e) => Err(personal_error(e)),
    }
}

/// Fills `dto` (built from the stored, sealed address) with what `who` may see of it.
pub(crate) fn reveal(
    app: &App,
    who: &Principal,
    o: &Order,
    history: &[HistoryEntry],
    dto: &mut AddressDto,
) -> Result<(), ApiError> {
    match who {
        Principal::Customer(c) if *c == o.customer_id => {
            if let Some(c) = open_contact(app, o)? {
                dto.formatted = c.formatted.clone();
                dto.phone = c.phone.clone();
                dto.notes = c.notes.clone();
            }
        }
        Principal::Driver(d) if o.driver_id == Some(*d) => {
            let shown = window::shown(
                &app.config().privacy,
                o.status,
                false,
                window::ended_at(history),
                app.now(),
            );
            driver_view(app, o, shown, dto)?;
        }
        // Admins and restaurants see the order, not the customer's sealed fields.
        Principal::Customer(_)
        | Principal::Driver(_)
        | Principal::Restaurant(_)
        | Principal::Admin
        | Principal::Support => {}
    }
    Ok(())
}

/// The address as the order's driver sees it now: the address and notes, or the approximate
/// area with nothing personal. Never the phone.
pub(crate) fn driver_view(
    app: &App,
    o: &Order,
    shown: Shown,
    dto: &mut AddressDto,
) -> Result<(), ApiError> {
    dto.phone = None;
    match shown {
        Shown::Full => {
            if let Some(c) = open_contact(app, o)? {
                dto.formatted = c.formatted.clone();
                dto.notes = c.notes.clone();
            }
        }
        Shown::Approximate => {
            (dto.lat, dto.lng) = window::approximate(dto.lat, dto.lng);
            dto.formatted.clear();
            dto.notes = None;
        }
    }
    Ok(())
}

/// The audit record of a customer's own export or erasure, committed before it happens (the
/// same hash-chained log as staff reads of location history); 503 if it cannot be written.
async fn audit(
    app: &App,
    parts: &Parts,
    me: CustomerId,
    action: &str,
    reason: &str,
) -> Result<(), ApiError> {
    let entry = Entry {
        at: app.now().0,
        actor: format!("customer/{me}"),
        role: "customer".into(),
        action: action.into(),
        delivery_id: None,
        reason: reason.into(),
        client: super::history::client_of(parts),
    };
    audit::append(&**app.kv(), entry)
        .await
        .map(|_| ())
        .map_err(|e| {
            tracing::warn!(error = %e, action, "could not write the audit record: refusing");
            ApiError::Unavailable {
                code: "audit.unavailable",
                message: "the request could not be audited, so nothing was done; retry later"
                    .into(),
                retry_after_s: 2,
            }
        })
}

fn customer(who: &Principal) -> Result<CustomerId, ApiError> {
    match who {
        Principal::Customer(c) => Ok(*c),
        Principal::Restaurant(_) | Principal::Driver(_) | Principal::Admin | Principal::Support => {
            Err(ApiError::Forbidden(
                "only a customer exports or erases their own data".into(),
            ))
        }
    }
}

/// The caller's personal data and orders as one JSON document (GDPR Art. 20). No driver's
/// GPS path: that is the driver's data.
#[utoipa::path(get, path = "/api/v1/customers/me/export", security(("bearer" = [])),
    responses((status = 200, body = CustomerExport), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn export(
    State(app): State<App>,
    Auth(who): Auth,
    parts: Parts,
) -> Result<axum::Json<CustomerExport>, ApiError> {
    let me = customer(&who)?;
    audit(&app, &parts, me, "customer.export", "GDPR Art. 20 export").await?;
    let doc = crate::personal::export::export(&**app.kv(), app.orders().vault(), me, app.now())
        .await
        .map_err(|e| match e {
            ExportError::Personal(p) => personal_error(p),
            ExportError::Repo(r) => r.into(),
            ExportError::Store(s) => ApiError::internal(s),
        })?;
    tracing::info!(customer_id = %me, orders = doc.orders.len(), "customer data exported");
    Ok(axum::Json(doc))
}

/// Erases the caller's personal data (GDPR Art. 17): their data key is destroyed (every
/// sealed address, phone and note, backups included, stays shut), their profile deleted,
/// their orders (kept for accounting) scrubbed of the rest. 204; a repeat is a no-op.
#[utoipa::path(delete, path = "/api/v1/customers/me", security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn erase(
    State(app): State<App>,
    Auth(who): Auth,
    parts: Parts,
) -> Result<StatusCode, ApiError> {
    let me = customer(&who)?;
    audit(&app, &parts, me, "customer.erase", "GDPR Art. 17 erasure").await?;
    let history = app.history().map(|h| &**h);
    crate::personal::erase::erase(&**app.kv(), app.orders().vault(), history, me)
        .await
        .map_err(|e| match e {
            EraseError::Personal(p) => personal_error(p),
            EraseError::Repo(r) => r.into(),
            EraseError::Store(s) => ApiError::internal(s),
            EraseError::History(h) => ApiError::internal(h),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
