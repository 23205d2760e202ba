//! How the catalog sits in the store, within FoundationDB's limits (values ≤ 100 KB, a
//! transaction ≤ 10 MB and ≤ 5 s).
//!
//! # Keys
//! Under the cell's subspace (the cell opens its store scoped to `("c", cell_id)`):
//! - `("rest", restaurant_id)` → [`Restaurant`] JSON.
//! - `("menu", restaurant_id, chunk)` → chunk `chunk` (0, 1, …) of the [`Menu`] JSON, each at
//!   most [`MENU_CHUNK_BYTES`]: a 1,000-item menu is megabytes, far over the value limit, so it
//!   is stored in pieces and reassembled on read. A menu write clears the menu's range and
//!   writes every chunk in one transaction, so a reader never sees half a menu.
//!
//! Two key spaces so the frequent small writes (the open/close toggle) rewrite only what they
//! change. Ids sort by region first (the region is in the id's top bits), so a region's
//! restaurants are one contiguous key range in each space.
//!
//! # Paging
//! [`load_restaurants`] reads the restaurant records with [`store::Pages`] (bounded pages,
//! each its own read transaction), so a big city's catalog never needs one long transaction.
//! The pages are not one snapshot; that is sound at startup, where nothing else writes this
//! cell's catalog. Menus are not loaded: [`read_menu_json`] reads one when it is asked for.
//! Writers group restaurants into transactions of at most [`WRITE_BUDGET_BYTES`].

use crate::error::{CatalogError, Result, ValidationError};
use crate::model::{Menu, Restaurant};
use domain::RestaurantId;
use store::keys::{Bytes, pack};
use store::{Kv, PageLimits, Pages, RangeRequest, Txn, TxnError};

/// Key space of restaurant records.
pub const REST: &str = "rest";
/// Key space of menu chunks.
pub const MENU: &str = "menu";
/// Largest menu chunk: well under FoundationDB's 100 KB value limit, with room for the key.
pub const MENU_CHUNK_BYTES: usize = 64 * 1024;
/// Largest menu (encoded). A menu is written in one transaction; this keeps that transaction
/// under half of FoundationDB's 10 MB. The largest valid-looking real menus (1,000 items with
/// full descriptions) are about 2.5 MB.
pub const MAX_MENU_BYTES: usize = 4 << 20;
/// What one import transaction writes at most (unless a single restaurant is bigger, up to
/// [`MAX_MENU_BYTES`]): a tenth of FoundationDB's transaction limit.
pub const WRITE_BUDGET_BYTES: usize = 1 << 20;
/// Restaurants per import transaction at most, whatever their size.
pub const WRITE_BUDGET_RESTAURANTS: usize = 200;

pub fn rest_key(id: RestaurantId) -> Vec<u8> {
    pack(&(REST, id.0))
}

/// The prefix of every chunk of `id`'s menu.
pub fn menu_prefix(id: RestaurantId) -> Vec<u8> {
    pack(&(MENU, id.0))
}

fn menu_chunk_key(id: RestaurantId, chunk: u32) -> Vec<u8> {
    pack(&(MENU, id.0, chunk))
}

pub(crate) fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| CatalogError::Corrupt {
        key: format!("{:?}", Bytes::from(key)),
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("catalog records always serialize")
}

/// A restaurant and its menu encoded for the store, ready to be written.
pub(crate) struct Encoded {
    pub id: RestaurantId,
    pub rest: Vec<u8>,
    pub menu: Vec<Vec<u8>>,
}

impl Encoded {
    /// Encodes both records; refuses a menu over [`MAX_MENU_BYTES`].
    pub fn new(r: &Restaurant, m: &Menu) -> Result<Self, ValidationError> {
        Ok(Self {
            id: r.id,
            rest: encode(r),
            menu: encode_menu(r.id, m)?,
        })
    }

    /// Bytes this restaurant's write puts in a transaction.
    pub fn bytes(&self) -> usize {
        // An upper bound for the keys: each is under 40 bytes with the cell's prefix; the menu's
        // range clear counts two.
        let keys = 40 * (3 + self.menu.len());
        keys + self.rest.len() + self.menu.iter().map(Vec::len).sum::<usize>()
    }

    pub fn write(&self, txn: &dyn Txn) {
        txn.set(&rest_key(self.id), &self.rest);
        write_menu(txn, self.id, &self.menu);
    }
}

/// The menu JSON cut into chunks of at most [`MENU_CHUNK_BYTES`].
pub(crate) fn encode_menu(id: RestaurantId, m: &Menu) -> Result<Vec<Vec<u8>>, ValidationError> {
    let json = encode(m);
    if json.len() > MAX_MENU_BYTES {
        return Err(ValidationError::new(format!(
            "restaurant {id}: the menu is {} bytes encoded, the limit is {MAX_MENU_BYTES}",
            json.len()
        )));
    }
    Ok(json.chunks(MENU_CHUNK_BYTES).map(<[u8]>::to_vec).collect())
}

/// Replaces `id`'s menu: clears every old chunk (a shorter menu leaves none behind), then
/// writes the new ones, in the caller's transaction.
pub(crate) fn write_menu(txn: &dyn Txn, id: RestaurantId, chunks: &[Vec<u8>]) {
    let prefix = menu_prefix(id);
    txn.clear_range(&prefix, &store::keys::prefix_end(&prefix));
    for (i, chunk) in chunks.iter().enumerate() {
        txn.set(&menu_chunk_key(id, i as u32), chunk);
    }
}

/// Reads `id`'s menu whole, in the caller's transaction; `None` if it has none.
pub(crate) async fn read_menu(
    txn: &dyn Txn,
    id: RestaurantId,
) -> std::result::Result<Option<Menu>, TxnError<CatalogError>> {
    let prefix = menu_prefix(id);
    let rows = txn.get_range(RangeRequest::prefix(&prefix)).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let json: Vec<u8> = rows.into_iter().flat_map(|r| r.value).collect();
    decode(&prefix, &json).map(Some).map_err(TxnError::Abort)
}

/// Every restaurant record, read in bounded pages (startup: menus are read on demand).
pub(crate) async fn load_restaurants(kv: &dyn Kv, limits: PageLimits) -> Result<Vec<Restaurant>> {
    let mut rests = Vec::new();
    let mut pages = Pages::prefix(&pack(&(REST,)), limits);
    while let Some(page) = pages.next(kv).await? {
        for row in page {
            rests.push(decode::<Restaurant>(&row.key, &row.value)?);
        }
    }
    Ok(rests)
}

/// `id`'s menu JSON as stored (chunks joined), in one read transaction; `None` if it has
/// none.
pub(crate) async fn read_menu_json(kv: &dyn Kv, id: RestaurantId) -> Result<Option<Vec<u8>>> {
    let prefix = menu_prefix(id);
    let rows = store::read(kv, move |txn| {
        let prefix = prefix.clone();
        Box::pin(async move {
            let rows = txn.get_range(RangeRequest::prefix(&prefix)).await?;
            Ok::<_, TxnError<CatalogError>>(rows)
        })
    })
    .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut json = Vec::with_capacity(rows.iter().map(|r| r.value.len()).sum());
    for r in rows {
        json.extend_from_slice(&r.value);
    }
    Ok(Some(json))
}
