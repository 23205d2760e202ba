//! A customer's copy of their data (GDPR Art. 20): their profile and every order they placed
//! here, with items, amounts, status history, ETA range and the delivery address they gave.
//! Never the driver's GPS path: that is the driver's data.

use super::{PersonalError, Vault};
use crate::orders::repo::{self, RepoError};
use crate::people::{self, Kind};
use domain::{CustomerId, Order, OrderId, UnixMs};
use serde::{Deserialize, Serialize};
use store::Kv;
use utoipa::ToSchema;

/// Orders read per store transaction.
const PAGE: usize = 100;

/// `GET /api/v1/customers/me/export`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerExport {
    pub customer_id: String,
    /// Milliseconds since the Unix epoch.
    pub generated_at: i64,
    /// The customer's data key was destroyed: no personal data is left to export.
    pub erased: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ExportProfile>,
    /// Newest first.
    pub orders: Vec<ExportOrder>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportProfile {
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportAddress {
    pub lat: f64,
    pub lng: f64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub formatted: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportItem {
    pub name: String,
    pub quantity: u32,
    pub unit_price: i64,
    pub customizations: Vec<String>,
    pub line_total: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportStatus {
    pub status: String,
    pub event: String,
    pub at: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportOrder {
    pub order_id: String,
    pub restaurant: String,
    pub status: String,
    pub items: Vec<ExportItem>,
    pub subtotal: i64,
    pub delivery_fee: i64,
    pub tax: i64,
    pub total: i64,
    pub payment_status: String,
    /// The ETA range promised at placement (milliseconds since the Unix epoch).
    pub estimated_delivery_min_at: i64,
    pub estimated_delivery_max_at: i64,
    /// Whether the customer was told of a delay.
    pub delayed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    /// Absent once the customer was erased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_address: Option<ExportAddress>,
    pub status_history: Vec<ExportStatus>,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Personal(#[from] PersonalError),
}

impl From<people::PeopleError> for ExportError {
    fn from(e: people::PeopleError) -> Self {
        match e {
            people::PeopleError::Store(s) => ExportError::Store(s),
            people::PeopleError::Personal(p) => ExportError::Personal(p),
        }
    }
}

/// Every order of `customer` (newest first), page by page.
pub async fn all_orders(kv: &dyn Kv, customer: CustomerId) -> Result<Vec<Order>, RepoError> {
    let mut out: Vec<Order> = Vec::new();
    let mut before: Option<(UnixMs, OrderId)> = None;
    loop {
        let page = repo::list_for_customer(kv, customer, before, PAGE).await?;
        let full = page.len() == PAGE;
        before = page.last().map(|o| (o.created_at, o.id));
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The customer's export document.
pub async fn export(
    kv: &dyn Kv,
    vault: &Vault,
    customer: CustomerId,
    now: UnixMs,
) -> Result<CustomerExport, ExportError> {
    let erased = vault.is_erased(customer)?;
    let sealer = people::Sealer { vault, now };
    let profile = match people::get_opened(kv, &sealer, Kind::Customer, customer.0).await? {
        Some(p) if !erased => Some(ExportProfile {
            display_name: p.display_name.clone(),
            phone: p.phone.clone(),
        }),
        _ => None,
    };
    let mut orders = Vec::new();
    for o in all_orders(kv, customer).await? {
        let history = repo::get_with_history(kv, o.id)
            .await?
            .map(|(_, h)| h)
            .unwrap_or_default();
        let address = if erased {
            None
        } else {
            let c = vault.open(customer, o.id, &o.delivery_address, now)?;
            Some(ExportAddress {
                lat: o.delivery_address.lat,
                lng: o.delivery_address.lng,
                formatted: c.formatted.clone(),
                phone: c.phone.clone(),
                notes: c.notes.clone(),
            })
        };
        orders.push(ExportOrder {
            order_id: o.id.to_string(),
            restaurant: o.restaurant_name.clone(),
            status: o.status.as_str().into(),
            items: o
                .items
                .iter()
                .map(|i| ExportItem {
                    name: i.name.clone(),
                    quantity: i.quantity,
                    unit_price: i.unit_price.0,
                    customizations: i.customizations.iter().map(|c| c.option.clone()).collect(),
                    line_total: i.line_total.0,
                })
                .collect(),
            subtotal: o.subtotal.0,
            delivery_fee: o.delivery_fee.0,
            tax: o.tax.0,
            total: o.total.0,
            payment_status: o.payment_state.as_str().into(),
            estimated_delivery_min_at: o.estimated_delivery_min.0,
            estimated_delivery_max_at: o.estimated_delivery_max.0,
            delayed: o.delayed,
            cancel_reason: o.cancel_reason.clone(),
            delivery_address: address,
            status_history: history
                .iter()
                .map(|h| ExportStatus {
                    status: h.status.as_str().into(),
                    event: h.event.as_str().into(),
                    at: h.at.0,
                })
                .collect(),
            created_at: o.created_at.0,
        });
    }
    Ok(CustomerExport {
        customer_id: customer.to_string(),
        generated_at: now.0,
        erased,
        profile,
        orders,
    })
}
