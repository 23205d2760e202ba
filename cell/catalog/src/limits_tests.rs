//! The catalog inside FoundationDB's limits, on the real embedded store and on the
//! FoundationDB-semantics model (which refuses any key, value or transaction over the limits
//! itself, with FoundationDB's errors), each wrapped in `MeteredKv` (which records what each
//! transaction wrote): a menu over the value limit stored in chunks, a big catalog loaded in
//! pages, a region moved between two cells on one store with every transaction far under the
//! size limit. Every case runs on both (`on_redb::…`, `on_model::…`).

use crate::stored::{MENU_CHUNK_BYTES, WRITE_BUDGET_BYTES};
use crate::testing::{self, rid};
use crate::{Catalog, Category, Menu, MenuItem, Restaurant};
use domain::{Cents, MenuItemId, RegionId, RestaurantId};
use std::sync::Arc;
use store::keys::Subspace;
use store::metered::MeteredKv;
use store::model::{ModelDb, ModelFaults};
use store::{Kv, PageLimits, RedbOptions, RedbStore, SubspaceKv};

/// FoundationDB's value limit.
const VALUE_LIMIT: u64 = 100_000;
/// FoundationDB's transaction size limit.
const TXN_LIMIT: u64 = 10_000_000;

/// The backend a case runs on.
#[derive(Clone, Copy)]
enum On {
    Redb,
    Model,
}

/// A fresh store on `on`, metered; the guard keeps redb's directory.
fn open(on: On) -> (Arc<MeteredKv>, Arc<dyn Kv>, Option<tempfile::TempDir>) {
    let (raw, dir): (Arc<dyn Kv>, _) = match on {
        On::Redb => {
            let dir = tempfile::tempdir().unwrap();
            let kv = RedbStore::open(dir.path(), RedbOptions::default()).unwrap();
            (Arc::new(kv), Some(dir))
        }
        On::Model => (ModelDb::new(ModelFaults::none()).kv(), None),
    };
    let metered = MeteredKv::new(raw);
    let kv: Arc<dyn Kv> = metered.clone();
    (metered, kv, dir)
}

/// Runs each case (an `async fn(On)`) as a test on each backend.
macro_rules! on_both {
    ($($case:ident),* $(,)?) => {
        mod on_redb {
            $(#[tokio::test] async fn $case() { super::$case(super::On::Redb).await })*
        }
        mod on_model {
            $(#[tokio::test] async fn $case() { super::$case(super::On::Model).await })*
        }
    };
}

on_both!(
    a_thousand_item_menu_is_stored_in_chunks_and_loads_whole,
    a_menu_over_the_size_cap_is_refused,
    a_fifty_thousand_restaurant_catalog_loads_in_pages,
    a_region_of_five_thousand_restaurants_moves_between_cells_in_bounded_transactions,
);

/// A menu of `items` items, each with a description of `desc` bytes.
fn big_menu(items: u32, desc: usize) -> Menu {
    let item = |i: u32| MenuItem {
        id: MenuItemId(u64::from(i) + 1),
        name: format!("Dish {i}"),
        description: "x".repeat(desc),
        price: Cents(500 + i64::from(i)),
        available: true,
        customizations: vec![],
    };
    Menu {
        categories: (0..items.div_ceil(100))
            .map(|c| Category {
                name: format!("Category {c}"),
                items: (c * 100..((c + 1) * 100).min(items)).map(item).collect(),
            })
            .collect(),
    }
}

async fn a_thousand_item_menu_is_stored_in_chunks_and_loads_whole(on: On) {
    let (metered, kv, _dir) = open(on);
    let menu = big_menu(1_000, 2_000);
    let json_len = serde_json::to_vec(&menu).unwrap().len();
    assert!(json_len > 2_000_000, "the menu is {json_len} bytes");
    let c = Catalog::load(kv.clone()).await.unwrap();
    c.upsert(testing::restaurant(1), menu.clone())
        .await
        .unwrap();
    // Sold out and back: a menu edit rewrites every chunk in one transaction.
    c.set_item_available(rid(1), MenuItemId(777), false)
        .await
        .unwrap();
    let stats = metered.stats();
    assert!(stats.max_value_bytes <= MENU_CHUNK_BYTES as u64);
    assert!(stats.max_value_bytes < VALUE_LIMIT);
    assert!(stats.max_txn_bytes < TXN_LIMIT);

    let loaded = Catalog::load(kv.clone()).await.unwrap();
    let mut want = menu;
    want.item_mut(MenuItemId(777)).unwrap().available = false;
    assert_eq!(loaded.menu(rid(1)).await.unwrap(), Some(want));

    // A shorter menu leaves no chunk of the longer one behind.
    c.upsert(testing::restaurant(1), testing::menu())
        .await
        .unwrap();
    let loaded = Catalog::load(kv).await.unwrap();
    assert_eq!(loaded.menu(rid(1)).await.unwrap(), Some(testing::menu()));
}

async fn a_menu_over_the_size_cap_is_refused(on: On) {
    let (_, kv, _dir) = open(on);
    let c = Catalog::load(kv).await.unwrap();
    // Valid item by item, but over MAX_MENU_BYTES in total.
    let menu = big_menu(1_000, 2_000);
    let mut huge = menu.clone();
    huge.categories
        .extend(menu.categories.iter().cloned().map(|mut cat| {
            cat.name.push_str(" again");
            cat
        }));
    let r = c.upsert(testing::restaurant(1), huge).await;
    assert!(matches!(r, Err(crate::CatalogError::Invalid(_))), "{r:?}");
}

async fn a_fifty_thousand_restaurant_catalog_loads_in_pages(on: On) {
    let (metered, kv, _dir) = open(on);
    const N: u64 = 50_000;
    let c = Catalog::load(kv.clone()).await.unwrap();
    let menu = testing::menu();
    let batch: Vec<_> = (1..=N)
        .map(|i| (testing::restaurant(i), menu.clone()))
        .collect();
    c.import(batch).await.unwrap();
    let written = metered.stats();
    assert!(written.txns >= N / 200, "{written:?}");
    assert!(
        written.max_txn_bytes <= WRITE_BUDGET_BYTES as u64,
        "{written:?}"
    );

    let limits = PageLimits {
        keys: 1_000,
        bytes: 256 * 1024,
    };
    let loaded = Catalog::load_paged(kv, limits).await.unwrap();
    assert_eq!(loaded.len(), N as usize);
    assert_eq!(loaded.menu(rid(N)).await.unwrap(), Some(menu));
    let read = metered.stats();
    // The restaurant records only (menus are read on demand), no page over its bound.
    assert!(read.reads - written.reads >= N / 1_000, "{read:?}");
    assert!(read.max_read_rows <= limits.keys as u64, "{read:?}");
}

/// Restaurant `local` of the region, every 50th with a 100-item menu (about 210 KB, four
/// chunks), the rest with the small test menu.
fn region_entry(region: RegionId, local: u64) -> (Restaurant, Menu) {
    let mut r = testing::restaurant(local);
    r.id = RestaurantId::new(region, local);
    let menu = if local.is_multiple_of(50) {
        big_menu(100, 2_000)
    } else {
        testing::menu()
    };
    (r, menu)
}

async fn a_region_of_five_thousand_restaurants_moves_between_cells_in_bounded_transactions(on: On) {
    let (metered, raw, _dir) = open(on);
    let cell = |id| SubspaceKv::scoped(raw.clone(), Subspace::cell(id));
    let region = rid(1).region().unwrap();
    const N: u64 = 5_000;
    let from = Catalog::load(cell(1)).await.unwrap();
    from.import((1..=N).map(|i| region_entry(region, i)).collect())
        .await
        .unwrap();
    let to = Catalog::load(cell(2)).await.unwrap();
    assert!(to.is_empty());

    // The router's move: export pages from one cell, import each page into the other.
    let mut after = None;
    let mut pages = 0;
    loop {
        let (page, more) = from.export_region_page(region, after, 500).await.unwrap();
        after = page.last().map(|(r, _)| r.id);
        to.import(page).await.unwrap();
        pages += 1;
        if !more {
            break;
        }
    }
    assert_eq!(pages, N / 500);
    assert_eq!(from.remove_region(region).await.unwrap(), N as usize);

    let stats = metered.stats();
    assert!(stats.max_value_bytes < VALUE_LIMIT, "{stats:?}");
    // A transaction holds at most the budget plus one restaurant; here a tenth of the limit.
    assert!(
        stats.max_txn_bytes <= WRITE_BUDGET_BYTES as u64,
        "{stats:?}"
    );
    assert!(stats.max_txn_bytes < TXN_LIMIT / 4, "{stats:?}");

    let moved = Catalog::load(cell(2)).await.unwrap();
    assert_eq!(moved.region_ids(region).len(), N as usize);
    for local in [1, 50, N] {
        let (r, m) = region_entry(region, local);
        let l = moved.restaurant(r.id).unwrap();
        assert_eq!(l.restaurant, r);
        assert_eq!(moved.menu(r.id).await.unwrap(), Some(m));
    }
    assert!(Catalog::load(cell(1)).await.unwrap().is_empty());
}
