//! The catalog over the real embedded store: round trips through restarts, toggles, menu
//! bodies, export/import.

use crate::demo::{self, DemoSpec};
use crate::pricing::{CartError, CartLine, CartRequest, PricingConfig};
use crate::search::SearchQuery;
use crate::testing::{self, LAT, LNG, NOON, rid};
use crate::{Catalog, CatalogError};
use domain::{Address, MenuItemId, RegionId, RestaurantId};
use std::sync::Arc;
use store::{Kv, RedbOptions, RedbStore};

fn open(dir: &std::path::Path) -> Arc<dyn Kv> {
    Arc::new(RedbStore::open(dir, RedbOptions::default()).unwrap())
}

fn search_ids(c: &Catalog) -> Vec<RestaurantId> {
    let q = SearchQuery {
        lat: LAT,
        lng: LNG,
        radius_m: 5_000,
        cuisine: None,
        page: 1,
        page_size: 50,
    };
    let page = c.search(&q, NOON, &PricingConfig::default()).unwrap();
    page.restaurants.iter().map(|h| h.id).collect()
}

#[tokio::test]
async fn upsert_then_load_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = Catalog::load(open(dir.path())).await.unwrap();
        assert!(c.is_empty());
        c.upsert(testing::restaurant(1), testing::menu())
            .await
            .unwrap();
        // Idempotent.
        c.upsert(testing::restaurant(1), testing::menu())
            .await
            .unwrap();
        c.upsert(testing::restaurant(2), testing::menu())
            .await
            .unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(search_ids(&c), vec![rid(1), rid(2)]);
    }
    let c = Catalog::load(open(dir.path())).await.unwrap();
    assert_eq!(c.len(), 2);
    let l = c.restaurant(rid(1)).unwrap();
    assert_eq!(l.restaurant, testing::restaurant(1));
    assert_eq!(c.menu(rid(1)).await.unwrap(), Some(testing::menu()));
    assert_eq!(search_ids(&c), vec![rid(1), rid(2)]);
    assert!(c.restaurant(rid(3)).is_none());
    assert_eq!(c.menu(rid(3)).await.unwrap(), None);
    assert_eq!(c.menu_json(rid(3)).await.unwrap(), None);
}

#[tokio::test]
async fn menu_body_has_the_seed_shape() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::load(open(dir.path())).await.unwrap();
    c.upsert(testing::restaurant(1), testing::menu())
        .await
        .unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&c.menu_json(rid(1)).await.unwrap().unwrap()).unwrap();
    assert_eq!(body["restaurant"]["name"], "Test Kitchen 1");
    assert_eq!(body["restaurant"]["address"], "1 Main St, Berlin");
    assert_eq!(body["restaurant"]["hours"]["mon"][0]["open"], "11:00");
    assert_eq!(body["restaurant"]["rating"], 4.5);
    assert_eq!(body["restaurant"]["id"], rid(1).to_string());
    let item = &body["categories"][0]["items"][0];
    assert_eq!(item["id"], "1");
    assert_eq!(item["price"], 1000);
    assert_eq!(item["available"], true);
    assert_eq!(item["customizations"][0]["options"][2]["name"], "Large");
    assert_eq!(item["customizations"][0]["options"][2]["price_delta"], 300);
}

#[tokio::test]
async fn availability_and_open_toggles_are_durable_and_visible() {
    let dir = tempfile::tempdir().unwrap();
    let cart = CartRequest {
        items: vec![CartLine {
            item_id: MenuItemId(2),
            quantity: 1,
            customizations: vec![],
        }],
        address: Address {
            lat: LAT,
            lng: LNG,
            formatted: String::new(),
            sealed: None,
        },
    };
    let cfg = PricingConfig::default();
    {
        let c = Catalog::load(open(dir.path())).await.unwrap();
        c.upsert(testing::restaurant(1), testing::menu())
            .await
            .unwrap();
        let before = c.menu_json(rid(1)).await.unwrap().unwrap();
        assert!(c.price_cart(rid(1), &cart, NOON, &cfg).await.is_ok());

        c.set_item_available(rid(1), MenuItemId(2), false)
            .await
            .unwrap();
        // The next read sees it: listing, cached body and pricing.
        let menu = c.menu(rid(1)).await.unwrap().unwrap();
        assert!(!menu.item(MenuItemId(2)).unwrap().available);
        assert_ne!(c.menu_json(rid(1)).await.unwrap().unwrap(), before);
        assert_eq!(
            c.price_cart(rid(1), &cart, NOON, &cfg).await,
            Err(CartError::ItemUnavailable(MenuItemId(2), "Cola".into()))
        );
        // A reader holding the old snapshot keeps a consistent view.
        assert!(before.windows(5).any(|w| w == b"\"Cola"));

        c.set_open(rid(1), false).await.unwrap();
        c.set_open(rid(1), false).await.unwrap(); // idempotent
        assert!(search_ids(&c).is_empty());
        assert_eq!(
            c.price_cart(rid(1), &cart, NOON, &cfg).await,
            Err(CartError::ItemUnavailable(MenuItemId(2), "Cola".into()))
        );

        assert!(matches!(
            c.set_item_available(rid(1), MenuItemId(99), true).await,
            Err(CatalogError::UnknownItem { .. })
        ));
        assert!(matches!(
            c.set_open(rid(7), true).await,
            Err(CatalogError::UnknownRestaurant(_))
        ));
        assert_eq!(
            c.price_cart(rid(7), &cart, NOON, &cfg).await,
            Err(CartError::UnknownRestaurant(rid(7)))
        );
    }
    // After a restart both changes are still there.
    let c = Catalog::load(open(dir.path())).await.unwrap();
    let l = c.restaurant(rid(1)).unwrap();
    assert!(l.restaurant.manually_closed);
    let menu = c.menu(rid(1)).await.unwrap().unwrap();
    assert!(!menu.item(MenuItemId(2)).unwrap().available);
    c.set_open(rid(1), true).await.unwrap();
    c.set_item_available(rid(1), MenuItemId(2), true)
        .await
        .unwrap();
    assert_eq!(search_ids(&c), vec![rid(1)]);
    assert!(c.price_cart(rid(1), &cart, NOON, &cfg).await.is_ok());
}

#[tokio::test]
async fn invalid_records_are_rejected_before_writing() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::load(open(dir.path())).await.unwrap();
    let mut bad = testing::restaurant(1);
    bad.timezone = "Nowhere/Special".into();
    assert!(matches!(
        c.upsert(bad, testing::menu()).await,
        Err(CatalogError::Invalid(_))
    ));
    let mut menu = testing::menu();
    menu.categories[1].items[0].customizations = menu.categories[0].items[0].customizations.clone();
    menu.categories[1].items[0].customizations[1].options[0].name = "large".into();
    let err = c.upsert(testing::restaurant(1), menu).await.unwrap_err();
    assert!(err.to_string().contains("repeats"), "{err}");
    // A batch with one bad record writes nothing.
    let mut worse = testing::restaurant(3);
    worse.lat = 200.0;
    let batch = vec![
        (testing::restaurant(2), testing::menu()),
        (worse, testing::menu()),
    ];
    assert!(c.import(batch).await.is_err());
    assert!(c.is_empty());
    drop(c);
    assert!(Catalog::load(open(dir.path())).await.unwrap().is_empty());
}

#[tokio::test]
async fn export_import_moves_a_region_idempotently() {
    let src_dir = tempfile::tempdir().unwrap();
    let dst_dir = tempfile::tempdir().unwrap();
    let city = demo::generate(&DemoSpec {
        restaurants: 400,
        ..DemoSpec::berlin(3)
    })
    .unwrap();
    let src = Catalog::load(open(src_dir.path())).await.unwrap();
    assert_eq!(src.import(city.clone()).await.unwrap(), 400);
    assert_eq!(src.import(city.clone()).await.unwrap(), 400); // again: same state
    assert_eq!(src.len(), 400);

    let region: RegionId = RegionId::from_latlng(LAT, LNG).unwrap();
    let moving = src.export_region(region).await.unwrap();
    let expected = city
        .iter()
        .filter(|(r, _)| r.id.region().unwrap() == region)
        .count();
    assert_eq!(moving.len(), expected);
    assert!(!moving.is_empty() && moving.len() < 400, "{}", moving.len());
    assert!(moving.windows(2).all(|w| w[0].0.id < w[1].0.id));

    let dst = Catalog::load(open(dst_dir.path())).await.unwrap();
    dst.import(moving.clone()).await.unwrap();
    dst.import(moving.clone()).await.unwrap();
    assert_eq!(dst.export_region(region).await.unwrap(), moving);
    drop(dst);
    let dst = Catalog::load(open(dst_dir.path())).await.unwrap();
    assert_eq!(dst.export_region(region).await.unwrap(), moving);
    assert_eq!(dst.len(), moving.len());

    // The source drops the region once it has moved; the rest stays, also after a restart.
    assert_eq!(src.remove_region(region).await.unwrap(), moving.len());
    assert!(src.export_region(region).await.unwrap().is_empty());
    assert_eq!(src.len(), 400 - moving.len());
    drop(src);
    let src = Catalog::load(open(src_dir.path())).await.unwrap();
    assert_eq!(src.len(), 400 - moving.len());
    assert!(src.export_region(region).await.unwrap().is_empty());
}

/// An edit through any write path is in the next menu read, whether the menu was cached (read
/// before the edit), not cached (never read), or the cache holds nothing.
#[tokio::test]
async fn an_edited_menu_is_served_fresh_cached_or_not() {
    let body = |b: bytes::Bytes| serde_json::from_slice::<serde_json::Value>(&b).unwrap();
    for capacity in [0, 1, 100] {
        let dir = tempfile::tempdir().unwrap();
        let c = Catalog::load_with(open(dir.path()), store::PageLimits::DEFAULT, Some(capacity))
            .await
            .unwrap();
        c.import(vec![
            (testing::restaurant(1), testing::menu()),
            (testing::restaurant(2), testing::menu()),
        ])
        .await
        .unwrap();
        // Restaurant 1 is read (cached where there is room), restaurant 2 is not.
        let cola = |b: &serde_json::Value| b["categories"][1]["items"][0]["available"].clone();
        assert_eq!(
            cola(&body(c.menu_json(rid(1)).await.unwrap().unwrap())),
            true
        );
        assert_eq!(
            cola(&body(c.menu_json(rid(1)).await.unwrap().unwrap())),
            true
        );
        // Parsed (as pricing does) before the edit too, so the parsed copy is cached with the
        // body and must go with it.
        let parsed = c.menu_shared(rid(1)).await.unwrap().unwrap();
        assert!(parsed.item(MenuItemId(2)).unwrap().available);
        for id in [rid(1), rid(2)] {
            c.set_item_available(id, MenuItemId(2), false)
                .await
                .unwrap();
            let b = body(c.menu_json(id).await.unwrap().unwrap());
            assert_eq!(cola(&b), false, "capacity {capacity}, {id}");
            c.set_open(id, false).await.unwrap();
            let b = body(c.menu_json(id).await.unwrap().unwrap());
            assert_eq!(
                b["restaurant"]["manually_closed"], true,
                "capacity {capacity}"
            );
            let menu = c.menu(id).await.unwrap().unwrap();
            assert!(!menu.item(MenuItemId(2)).unwrap().available);
        }
        // A whole new menu (an upsert) replaces the cached one.
        let mut menu = testing::menu();
        menu.categories[0].name = "Renamed".into();
        c.upsert(testing::restaurant(1), menu.clone())
            .await
            .unwrap();
        let b = body(c.menu_json(rid(1)).await.unwrap().unwrap());
        assert_eq!(b["categories"][0]["name"], "Renamed");
        assert_eq!(c.menu(rid(1)).await.unwrap(), Some(menu));
        // A region that moved away is gone from the cache too.
        c.remove_region(rid(1).region().unwrap()).await.unwrap();
        assert_eq!(c.menu_json(rid(1)).await.unwrap(), None);
        let s = c.menu_cache_stats();
        assert!(s.entries <= capacity, "{s:?}");
        if capacity == 0 {
            assert_eq!(s.hits, 0, "{s:?}");
        }
    }
}

#[tokio::test]
async fn a_menu_is_read_once_then_served_from_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let c = Catalog::load(open(dir.path())).await.unwrap();
    c.upsert(testing::restaurant(1), testing::menu())
        .await
        .unwrap();
    let first = c.menu_json(rid(1)).await.unwrap().unwrap();
    let second = c.menu_json(rid(1)).await.unwrap().unwrap();
    assert_eq!(first, second);
    let s = c.menu_cache_stats();
    assert_eq!((s.hits, s.misses, s.entries), (1, 1, 1), "{s:?}");
    assert_eq!(s.bytes, first.len());
    assert_eq!(s.capacity, crate::MIN_MENU_CACHE);
    // An unknown restaurant is no miss: nothing was read for a menu.
    assert_eq!(c.menu_json(rid(9)).await.unwrap(), None);
}

/// Handlers run on a multi-threaded runtime: the catalog and its futures must be Send.
#[allow(dead_code, clippy::let_underscore_future)]
fn futures_are_send(c: &Catalog) {
    fn send<T: Send + Sync>(_: &T) {}
    fn send_fut<T: Send>(_: &T) {}
    send(c);
    send_fut(&c.upsert(testing::restaurant(1), testing::menu()));
    send_fut(&c.import(Vec::new()));
    send_fut(&c.set_item_available(rid(1), MenuItemId(1), true));
    send_fut(&c.set_open(rid(1), true));
    send_fut(&c.remove_region(RegionId::from_latlng(LAT, LNG).unwrap()));
    send_fut(&Catalog::load(Arc::new(
        RedbStore::open(std::path::Path::new("/"), RedbOptions::default()).unwrap(),
    )));
}
