//! Placement as one call without HTTP, the way a simulator calls it, against the real
//! embedded store and the FoundationDB-semantics model with faults, the catalog and sandbox
//! payments: an order is created and authorized once; a retry with its key gets it back even after the menu changed and the region moved away
//! (replay comes before re-validation and the ownership check); a new order of a moved
//! region is refused before any payment; a key reused for another request is refused.

use super::repo::RepoError;
use super::test_stores::{self, TestStore};
use super::{Orders, PlaceError, PlaceOrder, Pricing};
use crate::ownership::Ownership;
use catalog::{CartError, CartLine, CartRequest, Catalog, Category, Menu, MenuItem, Restaurant};
use cellmap::{CellMap, Change, RegionKey};
use domain::{Address, CellId, Cents, CustomerId, MenuItemId, RegionId, SnowflakeGen};
use payments::{SandboxConfig, SandboxGateway};
use std::sync::Arc;
use store::{Kv, LogId};

use catalog::testing::{LAT, LNG, NOON};

fn region() -> RegionId {
    RegionId::from_latlng(LAT, LNG).unwrap()
}

pub(crate) fn restaurant() -> Restaurant {
    catalog::testing::restaurant(1)
}

/// One plain item (catalog's fixture menu has a required customization group).
fn menu(available: bool) -> Menu {
    Menu {
        categories: vec![Category {
            name: "Pizzas".into(),
            items: vec![MenuItem {
                id: MenuItemId(1),
                name: "Margherita".into(),
                description: String::new(),
                price: Cents(1000),
                available,
                customizations: vec![],
            }],
        }],
    }
}

/// A cell's order flows over one test store, with one restaurant in its catalog.
pub(crate) struct Cell {
    pub store: TestStore,
    pub orders: Orders,
    pub catalog: Arc<Catalog>,
    pub ownership: Arc<Ownership>,
    pub payments: Arc<SandboxGateway>,
}

pub(crate) async fn cell(store: TestStore) -> Cell {
    cell_with(
        store,
        Arc::new(SandboxGateway::new(&SandboxConfig::default())),
    )
    .await
}

/// [`cell`] with the given sandbox (one kept in the store, or with fault modes).
pub(crate) async fn cell_with(store: TestStore, payments: Arc<SandboxGateway>) -> Cell {
    let kv: Arc<dyn Kv> = store.kv.clone();
    let catalog = Arc::new(Catalog::load(kv.clone()).await.unwrap());
    catalog.upsert(restaurant(), menu(true)).await.unwrap();
    let ownership = Arc::new(Ownership::new(1));
    let orders = Orders::new(
        kv,
        LogId(1),
        SnowflakeGen::new(CellId::new(1).unwrap()),
        payments.clone(),
        "eur".into(),
        Pricing {
            catalog: catalog.clone(),
            config: Default::default(),
        },
        ownership.clone(),
        crate::personal::test_vault(),
    );
    Cell {
        store,
        orders,
        catalog,
        ownership,
        payments,
    }
}

pub(crate) fn request(key: &str, fingerprint: u64) -> PlaceOrder {
    PlaceOrder {
        customer: CustomerId(7),
        idempotency_key: key.into(),
        fingerprint,
        restaurant_id: restaurant().id,
        cart: CartRequest {
            items: vec![CartLine {
                item_id: MenuItemId(1),
                quantity: 2,
                customizations: vec![],
            }],
            address: Address {
                lat: LAT + 0.01,
                lng: LNG,
                formatted: String::new(),
                sealed: None,
            },
        },
        payment_method_id: "pm_card_visa".into(),
        contact: crate::personal::Contact {
            formatted: "2 Main St".into(),
            phone: Some("+4930123456".into()),
            notes: Some("back door".into()),
        },
    }
}

/// A map in which cell 2 owns the restaurant's region.
fn moved_away() -> CellMap {
    let other = cellmap::testing::cell_info(2, "other");
    CellMap::default()
        .apply(&Change::AddCell {
            cell: other,
            regions: vec![RegionKey(region())],
        })
        .unwrap()
}

#[tokio::test]
async fn a_retry_gets_its_order_back_after_the_menu_changed_and_the_region_moved() {
    for s in test_stores::both() {
        retry_gets_its_order_back(cell(s).await).await;
    }
}

async fn retry_gets_its_order_back(c: Cell) {
    let first = c.orders.place(request("k1", 1), NOON).await.unwrap();
    assert!(first.created);
    assert_eq!(
        first.order.total,
        c.orders
            .quote(restaurant().id, &request("k1", 1).cart, NOON)
            .await
            .unwrap()
            .total
    );
    assert_eq!(c.payments.ledger().len(), 1);

    // The item sold out and the region moved: a retry still gets the order it placed.
    c.catalog.upsert(restaurant(), menu(false)).await.unwrap();
    c.ownership.set_map(moved_away());
    let again = c.orders.place(request("k1", 1), NOON).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.order, first.order);
    assert_eq!(c.payments.ledger().len(), 1, "authorized once");

    // The same key with another request is refused.
    assert!(matches!(
        c.orders.place(request("k1", 2), NOON).await,
        Err(PlaceError::Repo(RepoError::IdempotencyMismatch))
    ));
}

#[tokio::test]
async fn a_new_order_is_priced_first_then_refused_if_its_region_moved() {
    for s in test_stores::both() {
        new_order_refused_if_its_region_moved(cell(s).await).await;
    }
}

async fn new_order_refused_if_its_region_moved(c: Cell) {
    c.ownership.set_map(moved_away());
    // An invalid cart is reported as such, wherever the region is.
    let mut bad = request("k2", 3);
    bad.cart.items.clear();
    assert!(matches!(
        c.orders.place(bad, NOON).await,
        Err(PlaceError::Cart(CartError::EmptyCart))
    ));
    match c.orders.place(request("k2", 3), NOON).await {
        Err(PlaceError::RegionMoved {
            restaurant: r,
            owner,
        }) => {
            assert_eq!((r, owner.name.as_str()), (restaurant().id, "other"));
        }
        other => panic!("expected RegionMoved, got {other:?}"),
    }
    assert!(c.payments.ledger().is_empty(), "nothing authorized");
}

#[tokio::test]
async fn the_sixth_order_in_an_hour_is_refused_until_the_first_leaves_the_window() {
    for s in test_stores::both() {
        sixth_order_refused(cell(s).await).await;
    }
}

async fn sixth_order_refused(c: Cell) {
    let minute = 60_000;
    for i in 0..5 {
        let at = domain::UnixMs(NOON.0 + i * minute);
        c.orders
            .place(request(&format!("o{i}"), 1), at)
            .await
            .unwrap();
    }
    // A retry of the fifth is a replay, not a sixth order.
    let at = domain::UnixMs(NOON.0 + 10 * minute);
    assert!(!c.orders.place(request("o4", 1), at).await.unwrap().created);
    match c.orders.place(request("o5", 1), at).await {
        Err(PlaceError::Limited { limit, retry_after }) => {
            assert_eq!(limit, super::OrderLimit::default());
            // The first was placed at noon: it leaves the window at 13:00, 50 minutes on.
            assert_eq!(retry_after, std::time::Duration::from_secs(50 * 60));
        }
        other => panic!("expected Limited, got {other:?}"),
    }
    assert_eq!(
        c.payments.ledger().len(),
        5,
        "nothing authorized for the sixth"
    );
    // Another customer has their own allowance.
    let mut other = request("other", 1);
    other.customer = CustomerId(8);
    assert!(c.orders.place(other, at).await.is_ok());
    // Once the first left the window, the sixth goes through.
    let later = domain::UnixMs(NOON.0 + 60 * minute + 1);
    assert!(
        c.orders
            .place(request("o5", 1), later)
            .await
            .unwrap()
            .created
    );
}

#[tokio::test]
async fn placement_stores_the_personal_fields_sealed_and_the_customer_s_key_opens_them() {
    for s in test_stores::both() {
        personal_fields_sealed(cell(s).await).await;
    }
}

async fn personal_fields_sealed(c: Cell) {
    let placed = c.orders.place(request("k1", 1), NOON).await.unwrap().order;
    let sealed = placed
        .delivery_address
        .sealed
        .clone()
        .expect("sealed fields");
    assert!(placed.delivery_address.formatted.is_empty());
    assert!(sealed.formatted.is_some() && sealed.phone.is_some() && sealed.notes.is_some());
    // Every key and value in the store (record, indexes, events, idempotency and outcome
    // records): none holds a personal field in plaintext.
    let all = store::read(&*c.store.kv, |txn| {
        Box::pin(async move {
            txn.get_range(store::RangeRequest {
                begin: vec![],
                end: vec![0xff; 8],
                limit: 0,
                reverse: false,
            })
            .await
            .map_err(store::TxnError::<()>::Store)
        })
    })
    .await
    .unwrap();
    assert!(!all.is_empty());
    for kv in &all {
        let (k, v) = (&kv.key, &kv.value);
        for canary in ["2 Main St", "+4930123456", "back door"] {
            let hit = |b: &[u8]| b.windows(canary.len()).any(|w| w == canary.as_bytes());
            assert!(!hit(k) && !hit(v), "{canary} in plaintext under {k:?}");
        }
    }
    let back = c
        .orders
        .vault()
        .open(
            placed.customer_id,
            placed.id,
            &placed.delivery_address,
            NOON,
        )
        .unwrap();
    assert_eq!(back.formatted, "2 Main St");
    assert_eq!(back.phone.as_deref(), Some("+4930123456"));
    assert_eq!(back.notes.as_deref(), Some("back door"));
}
