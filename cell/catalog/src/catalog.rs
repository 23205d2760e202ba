//! [`Catalog`]: the store is the source of truth, memory serves every read. How records sit
//! in the store (keys, menu chunks, paging) is `stored.rs`.
//!
//! # Writes
//! Every write is: validate → store transaction(s) (durable on return) → build a new
//! [`Listing`] → swap it into the in-memory index. Writers are serialized by an async mutex
//! held across the commit and the swap, so memory applies commits in commit order. The
//! read-modify-write toggles read the *stored* record inside the transaction, so memory can
//! never feed a stale record back into the store.

use crate::error::{CatalogError, Result};
use crate::geo::Index;
use crate::listing::Listing;
use crate::model::{Menu, Restaurant, validate};
use crate::pricing::{CartError, CartRequest, PricedCart, PricingConfig, price_cart_tz};
use crate::search::{QueryError, SearchPage, SearchQuery};
use crate::stored::{
    self, Encoded, MENU, REST, WRITE_BUDGET_BYTES, WRITE_BUDGET_RESTAURANTS, decode, encode,
    menu_prefix, rest_key,
};
use bytes::Bytes;
use domain::{MenuItemId, RegionId, RestaurantId, UnixMs};
use parking_lot::RwLock;
use std::sync::Arc;
use store::keys::pack;
use store::{Kv, PageLimits, TxnError};

/// The restaurants and menus of this cell.
pub struct Catalog {
    kv: Arc<dyn Kv>,
    /// Read by every search and menu request; written only by the swap at the end of a
    /// write, which holds it for a few microseconds.
    index: RwLock<Index>,
    /// Serializes writers across commit and swap (see the module doc).
    writer: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("restaurants", &self.len())
            .field("backend", &self.kv.backend_name())
            .finish()
    }
}

/// Groups encoded restaurants into transactions of at most [`WRITE_BUDGET_BYTES`] and
/// [`WRITE_BUDGET_RESTAURANTS`] (a restaurant bigger than the budget goes alone).
fn write_groups(records: &[Encoded]) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in records.iter().enumerate() {
        let full = i - start >= WRITE_BUDGET_RESTAURANTS || bytes + e.bytes() > WRITE_BUDGET_BYTES;
        if i > start && full {
            groups.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += e.bytes();
    }
    if start < records.len() {
        groups.push(start..records.len());
    }
    groups
}

impl Catalog {
    /// Loads every restaurant and menu from `kv` into memory (startup), reading in pages of
    /// [`PageLimits::DEFAULT`].
    pub async fn load(kv: Arc<dyn Kv>) -> Result<Catalog> {
        Self::load_paged(kv, PageLimits::DEFAULT).await
    }

    /// [`Catalog::load`] with explicit page bounds (tests use small pages).
    pub async fn load_paged(kv: Arc<dyn Kv>, limits: PageLimits) -> Result<Catalog> {
        let started = std::time::Instant::now();
        let (rests, mut menus) = stored::load_all(&*kv, limits).await?;
        let mut index = Index::default();
        for r in rests {
            let mk = menu_prefix(r.id);
            let json = menus.remove(&r.id.0).ok_or_else(|| CatalogError::Corrupt {
                key: format!("{:?}", store::keys::Bytes::from(mk.as_slice())),
                reason: format!("restaurant {} has no menu", r.id),
            })?;
            let menu: Menu = decode(&mk, &json)?;
            validate(&r, &menu).map_err(|e| CatalogError::Corrupt {
                key: format!("rest/{}", r.id),
                reason: e.to_string(),
            })?;
            index.put(Arc::new(Listing::build(r, menu)));
        }
        if !menus.is_empty() {
            tracing::warn!(orphans = menus.len(), "menus without a restaurant ignored");
        }
        tracing::info!(
            restaurants = index.listings.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "catalog loaded"
        );
        Ok(Catalog {
            kv,
            index: RwLock::new(index),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Number of restaurants.
    pub fn len(&self) -> usize {
        self.index.read().listings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts or replaces a restaurant and its menu (idempotent).
    pub async fn upsert(&self, restaurant: Restaurant, menu: Menu) -> Result<()> {
        self.import(vec![(restaurant, menu)]).await.map(|_| ())
    }

    /// Upserts many restaurants (a region moving in, the demo seeder); idempotent, so a
    /// retried or repeated import converges to the same state. Everything is validated before
    /// anything is written; then groups of at most 1 MB and 200 restaurants commit one after
    /// another (far inside FoundationDB's transaction limit), so a failure part-way leaves a
    /// prefix written, which the retry completes.
    pub async fn import(&self, batch: Vec<(Restaurant, Menu)>) -> Result<usize> {
        let mut encoded = Vec::with_capacity(batch.len());
        for (r, m) in &batch {
            validate(r, m)?;
            encoded.push(Encoded::new(r, m)?);
        }
        let n = batch.len();
        let _w = self.writer.lock().await;
        let encoded = Arc::new(encoded);
        let mut rest = batch.into_iter();
        for group in write_groups(&encoded) {
            let (records, range) = (encoded.clone(), group.clone());
            store::transact(&*self.kv, move |txn| {
                let (records, range) = (records.clone(), range.clone());
                Box::pin(async move {
                    for e in &records[range] {
                        e.write(txn);
                    }
                    Ok::<_, TxnError<CatalogError>>(())
                })
            })
            .await?;
            let listings: Vec<_> = rest
                .by_ref()
                .take(group.len())
                .map(|(r, m)| Arc::new(Listing::build(r, m)))
                .collect();
            let mut index = self.index.write();
            for l in listings {
                index.put(l);
            }
        }
        tracing::debug!(restaurants = n, "catalog import committed");
        Ok(n)
    }

    /// Marks a menu item available or sold out.
    pub async fn set_item_available(
        &self,
        restaurant: RestaurantId,
        item: MenuItemId,
        available: bool,
    ) -> Result<()> {
        self.modify(restaurant, move |_, menu| {
            let it = menu
                .item_mut(item)
                .ok_or(CatalogError::UnknownItem { restaurant, item })?;
            let changed = it.available != available;
            it.available = available;
            Ok((false, changed))
        })
        .await
    }

    /// The owner's open/close toggle: `open = false` closes the restaurant regardless of its
    /// hours; `open = true` lifts that (it is then open whenever its hours say so).
    pub async fn set_open(&self, restaurant: RestaurantId, open: bool) -> Result<()> {
        self.modify(restaurant, move |r, _| {
            let changed = r.manually_closed == open;
            r.manually_closed = !open;
            Ok((changed, false))
        })
        .await
    }

    /// Read-modify-write of one restaurant inside a transaction. `f` returns which of
    /// (restaurant, menu) it changed; unchanged records are not rewritten, and when nothing
    /// changed nothing is committed.
    async fn modify<F>(&self, id: RestaurantId, f: F) -> Result<()>
    where
        F: Fn(&mut Restaurant, &mut Menu) -> Result<(bool, bool)> + Send + Sync + 'static,
    {
        let _w = self.writer.lock().await;
        let f = Arc::new(f);
        let updated = store::transact(&*self.kv, move |txn| {
            let f = f.clone();
            Box::pin(async move {
                let rk = rest_key(id);
                let (Some(rv), Some(mut m)) =
                    (txn.get(&rk).await?, stored::read_menu(txn, id).await?)
                else {
                    return Err(TxnError::Abort(CatalogError::UnknownRestaurant(id)));
                };
                let mut r: Restaurant = decode(&rk, &rv).map_err(TxnError::Abort)?;
                let (rest_changed, menu_changed) = f(&mut r, &mut m).map_err(TxnError::Abort)?;
                if rest_changed {
                    txn.set(&rk, &encode(&r));
                }
                if menu_changed {
                    let chunks = stored::encode_menu(id, &m)
                        .map_err(|e| TxnError::Abort(CatalogError::Invalid(e)))?;
                    stored::write_menu(txn, id, &chunks);
                }
                Ok((r, m))
            })
        })
        .await?;
        let (r, m) = updated;
        validate(&r, &m).map_err(|e| CatalogError::Corrupt {
            key: format!("rest/{id}"),
            reason: e.to_string(),
        })?;
        // Rebuild even when nothing changed: memory then surely matches the store.
        let listing = Arc::new(Listing::build(r, m));
        self.index.write().put(listing);
        Ok(())
    }

    /// Every restaurant of `region` with its menu, ordered by id: what moves to another cell.
    pub fn export_region(&self, region: RegionId) -> Vec<(Restaurant, Menu)> {
        self.export_region_page(region, None, usize::MAX).0
    }

    /// The ids of `region`'s restaurants, ascending.
    pub fn region_ids(&self, region: RegionId) -> Vec<RestaurantId> {
        let mut ids: Vec<RestaurantId> = self
            .index
            .read()
            .listings
            .keys()
            .filter(|id| id.region().is_ok_and(|r| r == region))
            .copied()
            .collect();
        ids.sort_unstable();
        ids
    }

    /// One page of [`Catalog::export_region`]: up to `limit` restaurants with ids above
    /// `after`, and whether more follow. Only the page is copied.
    pub fn export_region_page(
        &self,
        region: RegionId,
        after: Option<RestaurantId>,
        limit: usize,
    ) -> (Vec<(Restaurant, Menu)>, bool) {
        let ids = self.region_ids(region);
        let start = after.map_or(0, |a| ids.partition_point(|id| *id <= a));
        let index = self.index.read();
        let page = ids[start..]
            .iter()
            .take(limit)
            .filter_map(|id| index.get(*id))
            .map(|l| (l.restaurant.clone(), l.menu.clone()))
            .collect::<Vec<_>>();
        let more = start + limit < ids.len();
        (page, more)
    }

    /// How many restaurants this cell holds per region.
    pub fn region_counts(&self) -> Vec<(RegionId, usize)> {
        let mut counts = std::collections::BTreeMap::new();
        for id in self.index.read().listings.keys() {
            if let Ok(r) = id.region() {
                *counts.entry(r).or_insert(0) += 1;
            }
        }
        counts.into_iter().collect()
    }

    /// Deletes every restaurant of `region` (after the region moved to another cell and the
    /// router's map points there). Returns how many were removed.
    pub async fn remove_region(&self, region: RegionId) -> Result<usize> {
        let _w = self.writer.lock().await;
        let ids = self.region_ids(region);
        let begin = RestaurantId::new(region, 0);
        let end = RestaurantId(begin.0 + (1 << 41));
        store::transact(&*self.kv, move |txn| {
            Box::pin(async move {
                for space in [REST, MENU] {
                    txn.clear_range(&pack(&(space, begin.0)), &pack(&(space, end.0)));
                }
                Ok::<_, TxnError<CatalogError>>(())
            })
        })
        .await?;
        let mut index = self.index.write();
        for id in &ids {
            index.remove(*id);
        }
        Ok(ids.len())
    }

    /// The restaurant and its menu, as of the last write.
    pub fn menu(&self, id: RestaurantId) -> Option<Arc<Listing>> {
        self.index.read().get(id).cloned()
    }

    /// The pre-serialized menu body (see [`crate::MenuBody`]): a reference-count bump.
    pub fn menu_json(&self, id: RestaurantId) -> Option<Bytes> {
        self.index.read().get(id).map(|l| l.menu_json.clone())
    }

    /// Open restaurants delivering to the query point, nearest first (see [`crate::search`]).
    pub fn search(
        &self,
        q: &SearchQuery,
        now: UnixMs,
        pricing: &PricingConfig,
    ) -> std::result::Result<SearchPage, QueryError> {
        crate::search::search(&self.index.read(), q, now, pricing)
    }

    /// Validates and prices a cart for restaurant `id` (see [`crate::price_cart`]).
    pub fn price_cart(
        &self,
        id: RestaurantId,
        cart: &CartRequest,
        now: UnixMs,
        pricing: &PricingConfig,
    ) -> std::result::Result<PricedCart, CartError> {
        let listing = self.menu(id).ok_or(CartError::UnknownRestaurant(id))?;
        price_cart_tz(
            &listing.restaurant,
            listing.tz,
            &listing.menu,
            cart,
            now,
            pricing,
        )
    }
}
