//! [`Catalog`]: the store is the source of truth. Restaurant records (what search reads) are
//! all in memory; menus are read from the store on demand and kept in a bounded cache
//! (`menu_cache.rs`). How records sit in the store (keys, menu chunks, paging) is `stored.rs`.
//!
//! # Startup
//! [`Catalog::load`] reads only the restaurant records, in pages, and builds the search
//! index: at 50,000 restaurants that is a fraction of a second, and the cell serves as soon
//! as it returns. Menus fill the cache as they are read.
//!
//! # Writes
//! Every write is: validate → store transaction(s) (durable on return) → build a new
//! [`Listing`] → swap it into the in-memory index and drop the menu's cache entry. Writers are
//! serialized by an async mutex held across the commit and the swap, so memory applies commits
//! in commit order. The read-modify-write toggles read the *stored* record inside the
//! transaction, so memory can never feed a stale record back into the store.

use crate::error::{CatalogError, Result};
use crate::geo::Index;
use crate::listing::{Listing, menu_body};
use crate::menu_cache::{MenuCache, MenuCacheStats};
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
use std::time::Instant;
use store::keys::pack;
use store::{Kv, PageLimits, TxnError};

/// The restaurants and menus of this cell.
pub struct Catalog {
    kv: Arc<dyn Kv>,
    /// Read by every search and menu request; written only by the swap at the end of a
    /// write, which holds it for a few microseconds.
    index: RwLock<Index>,
    /// Bodies of recently read menus.
    menus: MenuCache,
    /// The configured cache capacity; `None`: it follows the catalog's size
    /// ([`menu_cache_capacity`]).
    menu_cache_fixed: Option<usize>,
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

/// Menus the cache holds when the caller does not say: a fifth of the restaurants, at least
/// this many (a small cell then keeps all its menus).
pub const MIN_MENU_CACHE: usize = 1_000;

/// The default menu cache capacity for `restaurants`: a fifth of them, at least
/// [`MIN_MENU_CACHE`]. A fifth keeps the popular menus in memory: orders concentrate on a
/// minority of restaurants, and a miss costs one store read.
pub fn menu_cache_capacity(restaurants: usize) -> usize {
    (restaurants / 5).max(MIN_MENU_CACHE)
}

impl Catalog {
    /// Loads every restaurant record from `kv` (startup), reading in pages of
    /// [`PageLimits::DEFAULT`], with a menu cache of a fifth of the restaurants (at least
    /// [`MIN_MENU_CACHE`]).
    pub async fn load(kv: Arc<dyn Kv>) -> Result<Catalog> {
        Self::load_with(kv, PageLimits::DEFAULT, None).await
    }

    /// [`Catalog::load`] with explicit page bounds (tests use small pages).
    pub async fn load_paged(kv: Arc<dyn Kv>, limits: PageLimits) -> Result<Catalog> {
        Self::load_with(kv, limits, None).await
    }

    /// [`Catalog::load`] with explicit page bounds and menu cache capacity (`None`: a fifth of
    /// the restaurants loaded, at least [`MIN_MENU_CACHE`]).
    pub async fn load_with(
        kv: Arc<dyn Kv>,
        limits: PageLimits,
        menu_cache: Option<usize>,
    ) -> Result<Catalog> {
        let started = Instant::now();
        let rests = stored::load_restaurants(&*kv, limits).await?;
        let read_ms = started.elapsed().as_millis() as u64;
        let mut index = Index::default();
        index.listings.reserve(rests.len());
        for r in rests {
            // Menus were validated when written; the record is checked again because search
            // relies on it (coordinates, time zone, hours).
            validate(&r, &Menu::default()).map_err(|e| CatalogError::Corrupt {
                key: format!("rest/{}", r.id),
                reason: e.to_string(),
            })?;
            index.put(Arc::new(Listing::build(r)));
        }
        index.compact();
        let capacity = menu_cache.unwrap_or(menu_cache_capacity(index.listings.len()));
        tracing::info!(
            restaurants = index.listings.len(),
            read_ms,
            elapsed_ms = started.elapsed().as_millis() as u64,
            menu_cache = capacity,
            "catalog loaded"
        );
        Ok(Catalog {
            kv,
            index: RwLock::new(index),
            menus: MenuCache::new(capacity),
            menu_cache_fixed: menu_cache,
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
                .map(|(r, _)| Arc::new(Listing::build(r)))
                .collect();
            let mut index = self.index.write();
            for l in listings {
                let id = l.restaurant.id;
                index.put(l);
                self.menus.invalidate(id);
            }
        }
        self.index.write().compact();
        self.fit_menu_cache();
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
        let listing = Arc::new(Listing::build(r));
        self.index.write().put(listing);
        self.menus.invalidate(id);
        Ok(())
    }

    /// Every restaurant of `region` with its menu, ordered by id: what moves to another cell.
    pub async fn export_region(&self, region: RegionId) -> Result<Vec<(Restaurant, Menu)>> {
        Ok(self.export_region_page(region, None, usize::MAX).await?.0)
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
    /// `after`, and whether more follow. Only the page is copied; menus are read from the
    /// store (not through the cache: an export would evict the hot menus).
    pub async fn export_region_page(
        &self,
        region: RegionId,
        after: Option<RestaurantId>,
        limit: usize,
    ) -> Result<(Vec<(Restaurant, Menu)>, bool)> {
        let ids = self.region_ids(region);
        let start = after.map_or(0, |a| ids.partition_point(|id| *id <= a));
        let rests: Vec<Restaurant> = {
            let index = self.index.read();
            ids[start..]
                .iter()
                .take(limit)
                .filter_map(|id| index.get(*id))
                .map(|l| l.restaurant.clone())
                .collect()
        };
        let mut page = Vec::with_capacity(rests.len());
        for r in rests {
            let json = stored::read_menu_json(&*self.kv, r.id)
                .await?
                .ok_or_else(|| no_menu(r.id))?;
            let menu: Menu = decode(&menu_prefix(r.id), &json)?;
            page.push((r, menu));
        }
        let more = start + limit < ids.len();
        Ok((page, more))
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
            self.menus.invalidate(*id);
        }
        drop(index);
        self.fit_menu_cache();
        Ok(ids.len())
    }

    /// The restaurant's record, as of the last write.
    pub fn restaurant(&self, id: RestaurantId) -> Option<Arc<Listing>> {
        self.index.read().get(id).cloned()
    }

    /// The menu response body (see [`crate::MenuBody`]): from the cache, or read from the store
    /// (one read transaction) and cached. `Ok(None)` for an unknown restaurant.
    pub async fn menu_json(&self, id: RestaurantId) -> Result<Option<Bytes>> {
        // An unknown id costs no store read.
        if self.restaurant(id).is_none() {
            return Ok(None);
        }
        if let Some(body) = self.menus.get(id) {
            return Ok(Some(body));
        }
        let epoch = self.menus.epoch();
        let started = Instant::now();
        let Some(json) = stored::read_menu_json(&*self.kv, id).await? else {
            return match self.restaurant(id) {
                // Deleted or moved while we read.
                None => Ok(None),
                Some(_) => Err(no_menu(id)),
            };
        };
        // The header from the record as of now: a write since the store read bumped the epoch,
        // so this body is returned but not cached.
        let Some(listing) = self.restaurant(id) else {
            return Ok(None);
        };
        let body = menu_body(&listing.restaurant, &json).ok_or_else(|| CatalogError::Corrupt {
            key: format!("{:?}", store::keys::Bytes::from(menu_prefix(id).as_slice())),
            reason: "the stored menu is not a menu object".into(),
        })?;
        let read_us = started.elapsed().as_micros() as u64;
        self.menus.fill(id, body.clone(), epoch, read_us);
        Ok(Some(body))
    }

    /// The menu (see [`Catalog::menu_shared`]), as an owned copy.
    pub async fn menu(&self, id: RestaurantId) -> Result<Option<Menu>> {
        Ok(self.menu_shared(id).await?.map(|m| (*m).clone()))
    }

    /// The menu, parsed from its body (cached or read as by [`Catalog::menu_json`]). A cached
    /// body is parsed once and the result kept with it, so pricing orders from a hot menu
    /// parses nothing.
    pub async fn menu_shared(&self, id: RestaurantId) -> Result<Option<Arc<Menu>>> {
        if self.restaurant(id).is_none() {
            return Ok(None);
        }
        // The body is a menu with a `restaurant` field in front, which `Menu` ignores.
        let parse = |body: &[u8]| decode::<Menu>(&menu_prefix(id), body).map(Arc::new);
        if let Some((body, parsed)) = self.menus.get_parsed(id) {
            if let Some(menu) = parsed.get() {
                return Ok(Some(menu.clone()));
            }
            // Two first pricings may both parse; the first to finish is kept (same body).
            let menu = parse(&body)?;
            return Ok(Some(parsed.get_or_init(|| menu).clone()));
        }
        let Some(body) = self.menu_json(id).await? else {
            return Ok(None);
        };
        parse(&body).map(Some)
    }

    /// Resizes the menu cache to the catalog's size, unless its capacity was configured.
    fn fit_menu_cache(&self) {
        if self.menu_cache_fixed.is_none() {
            self.menus.set_capacity(menu_cache_capacity(self.len()));
        }
    }

    /// Menu cache counters: hits, misses, the time misses spent reading, size.
    pub fn menu_cache_stats(&self) -> MenuCacheStats {
        self.menus.stats()
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

    /// Validates and prices a cart for restaurant `id` (see [`crate::price_cart`]). The menu
    /// comes through the cache; a store failure while reading it is
    /// [`CartError::Unavailable`].
    pub async fn price_cart(
        &self,
        id: RestaurantId,
        cart: &CartRequest,
        now: UnixMs,
        pricing: &PricingConfig,
    ) -> std::result::Result<PricedCart, CartError> {
        let listing = self
            .restaurant(id)
            .ok_or(CartError::UnknownRestaurant(id))?;
        let menu = match self.menu_shared(id).await {
            Ok(Some(menu)) => menu,
            Ok(None) => return Err(CartError::UnknownRestaurant(id)),
            Err(e) => return Err(CartError::Unavailable(e.to_string())),
        };
        price_cart_tz(&listing.restaurant, listing.tz, &menu, cart, now, pricing)
    }
}

fn no_menu(id: RestaurantId) -> CatalogError {
    CatalogError::Corrupt {
        key: format!("{:?}", store::keys::Bytes::from(menu_prefix(id).as_slice())),
        reason: format!("restaurant {id} has no menu"),
    }
}
