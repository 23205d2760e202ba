//! Errors of the catalog. Cart errors live with pricing ([`crate::CartError`]); query errors
//! with search ([`crate::QueryError`]).

use domain::{MenuItemId, RestaurantId};

/// A record that fails [`crate::model::validate`]: the message says what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValidationError(String);

impl ValidationError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }

    /// Prefixes where the problem is ("restaurant 42: item 7: price must be …").
    pub(crate) fn context(self, what: String) -> Self {
        Self(format!("{what}: {}", self.0))
    }
}

/// Errors of the catalog's write and load paths.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The record is malformed; nothing was written.
    #[error("invalid catalog record: {0}")]
    Invalid(#[from] ValidationError),
    #[error("restaurant {0} not found")]
    UnknownRestaurant(RestaurantId),
    #[error("item {item} not found on the menu of restaurant {restaurant}")]
    UnknownItem {
        restaurant: RestaurantId,
        item: MenuItemId,
    },
    /// Stored bytes do not decode: the store holds something this version cannot read.
    #[error("corrupt catalog record at {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The store failed; the write may or may not have happened (retry is safe: every write
    /// is idempotent).
    #[error(transparent)]
    Store(#[from] store::StoreError),
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

impl From<store::TxnError<CatalogError>> for CatalogError {
    fn from(e: store::TxnError<CatalogError>) -> Self {
        match e {
            store::TxnError::Store(e) => CatalogError::Store(e),
            store::TxnError::Abort(e) => e,
        }
    }
}
