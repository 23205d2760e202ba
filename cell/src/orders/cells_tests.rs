//! Two cells on one store: each opens it scoped to its own subspace, as `server::open_store`
//! does, and sees none of the other's orders, indexes, idempotency records, consumer cursors
//! or catalog. Written against `Arc<dyn Kv>`, so any backend can run it.

use super::repo;
use catalog::Catalog;
use domain::{CustomerId, OrderId, OrderStatus, RestaurantId, UnixMs};
use std::sync::Arc;
use store::keys::Subspace;
use store::{Kv, LogId, LogPos, SubspaceKv};

fn cell(raw: &Arc<dyn Kv>, id: u16) -> Arc<dyn Kv> {
    SubspaceKv::scoped(raw.clone(), Subspace::cell(id))
}

fn order(id: u64, customer: u64, restaurant: RestaurantId) -> domain::Order {
    domain::testing::order(OrderId(id), CustomerId(customer), restaurant, UnixMs(1_000))
}

fn op() -> super::WriteOp {
    super::WriteOp::new(UnixMs(1_000))
}

async fn orders_in(kv: &dyn Kv, status: OrderStatus) -> Vec<OrderId> {
    let mut ids = Vec::new();
    repo::for_each_in_status(kv, status, 1, |o| ids.push(o.id))
        .await
        .unwrap();
    ids
}

/// The scenario, on whatever store `raw` is.
pub(crate) async fn two_cells_on_one_store_see_nothing_of_each_other(raw: Arc<dyn Kv>) {
    let (one, two) = (cell(&raw, 1), cell(&raw, 2));
    let r = catalog::testing::rid(1);

    // Idempotency keys: the same customer and key on both cells bind separate orders.
    let a = repo::reserve(&*one, CustomerId(7), "k".into(), OrderId(10), 1)
        .await
        .unwrap();
    let b = repo::reserve(&*two, CustomerId(7), "k".into(), OrderId(20), 2)
        .await
        .unwrap();
    assert_eq!((a.order_id, b.order_id), (OrderId(10), OrderId(20)));
    assert!(b.existing.is_none());

    // Orders and their indexes: even the same order id is two different orders.
    repo::create(&*one, LogId(1), order(10, 7, r), &op())
        .await
        .unwrap();
    repo::create(&*two, LogId(2), order(20, 7, r), &op())
        .await
        .unwrap();
    let same_id = repo::create(&*two, LogId(2), order(10, 8, r), &op())
        .await
        .unwrap();
    assert!(matches!(same_id, repo::Created::New(_)), "{same_id:?}");
    assert_eq!(
        repo::get(&*one, OrderId(10))
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        CustomerId(7)
    );
    assert_eq!(
        repo::get(&*two, OrderId(10))
            .await
            .unwrap()
            .unwrap()
            .customer_id,
        CustomerId(8)
    );
    assert!(repo::get(&*one, OrderId(20)).await.unwrap().is_none());
    assert_eq!(
        orders_in(&*one, OrderStatus::Pending).await,
        vec![OrderId(10)]
    );
    assert_eq!(
        orders_in(&*two, OrderStatus::Pending).await,
        vec![OrderId(10), OrderId(20)]
    );
    assert_eq!(repo::count_active(&*one).await.unwrap(), 1);
    assert_eq!(repo::count_active(&*two).await.unwrap(), 2);
    let mine = repo::list_for_customer(&*one, CustomerId(7), None, 10)
        .await
        .unwrap();
    assert_eq!(
        mine.iter().map(|o| o.id).collect::<Vec<_>>(),
        vec![OrderId(10)]
    );

    // Consumer cursors: one name, two cursors.
    crate::events::save_cursor(&*one, "notify", LogPos(5))
        .await
        .unwrap();
    assert_eq!(
        crate::events::load_cursor(&*two, "notify").await.unwrap(),
        LogPos(0)
    );
    crate::events::save_cursor(&*two, "notify", LogPos(9))
        .await
        .unwrap();
    assert_eq!(
        crate::events::load_cursor(&*one, "notify").await.unwrap(),
        LogPos(5)
    );

    // Catalog: same region, separate catalogs; removing the region from one leaves the other.
    let c1 = Catalog::load(one.clone()).await.unwrap();
    c1.upsert(catalog::testing::restaurant(1), catalog::testing::menu())
        .await
        .unwrap();
    let c2 = Catalog::load(two.clone()).await.unwrap();
    assert!(c2.is_empty());
    c2.upsert(catalog::testing::restaurant(2), catalog::testing::menu())
        .await
        .unwrap();
    let region = r.region().unwrap();
    assert_eq!(c2.remove_region(region).await.unwrap(), 1);
    assert!(Catalog::load(two.clone()).await.unwrap().is_empty());
    let again = Catalog::load(one.clone()).await.unwrap();
    assert_eq!(again.region_ids(region), vec![r]);
}

#[tokio::test]
async fn recovery_scans_read_in_pages_and_miss_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    let metered = store::metered::MeteredKv::new(raw);
    let kv = cell(&(metered.clone() as Arc<dyn Kv>), 1);
    let r = catalog::testing::rid(1);
    let writes = (1..=40).map(|i| {
        let kv = kv.clone();
        async move {
            repo::create(&*kv, LogId(1), order(i, i, r), &op())
                .await
                .unwrap()
        }
    });
    futures::future::join_all(writes).await;
    let before = metered.stats();
    let mut seen = Vec::new();
    repo::for_each_in_status(&*kv, OrderStatus::Pending, 7, |o| seen.push(o.id))
        .await
        .unwrap();
    assert_eq!(seen, (1..=40).map(OrderId).collect::<Vec<_>>());
    let after = metered.stats();
    // Six pages of seven and one of five, each its own short read transaction.
    assert_eq!(after.reads - before.reads, 6);
    assert!(after.max_read_rows <= 7, "{after:?}");
    assert_eq!(repo::count_active(&*kv).await.unwrap(), 40);
}

#[tokio::test]
async fn two_cells_on_one_redb_store_see_nothing_of_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    two_cells_on_one_store_see_nothing_of_each_other(raw).await;
}
