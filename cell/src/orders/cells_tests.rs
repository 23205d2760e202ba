//! Two cells on one store: each opens it scoped to its own subspace, as `server::open_store`
//! does, and sees none of the other's orders, indexes, idempotency records, consumer cursors
//! or catalog, and one of them drains (its region moves to the other, its orders finish) to
//! nothing active while the other keeps its orders. Written against `Arc<dyn Kv>`, and run on
//! redb and on the FoundationDB-semantics model (where the two cells are two clients of one
//! cluster, as `infra/k8s` deploys them).

use super::WriteOp;
use super::repo;
use catalog::Catalog;
use domain::{Actor, Command, CustomerId, OrderId, OrderStatus, RestaurantId, UnixMs};
use std::sync::Arc;
use std::time::Duration;
use store::keys::Subspace;
use store::model::{ModelDb, ModelFaults};
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

/// The scenario, on whatever store the two handles open: cell 1 goes through `raw.0`, cell 2
/// through `raw.1` (the same handle on redb, two clients of one cluster on the model).
pub(crate) async fn two_cells_on_one_store_see_nothing_of_each_other(
    raw: (Arc<dyn Kv>, Arc<dyn Kv>),
) {
    let (one, two) = (cell(&raw.0, 1), cell(&raw.1, 2));
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
    two_cells_on_one_store_see_nothing_of_each_other((raw.clone(), raw)).await;
}

/// What a drain of cell 1 leaves while cell 2 shares its store: its region moved to cell 2
/// (catalog copied page by page, then removed from cell 1), its last orders finished, so what
/// `/status` reports as `active_orders` (`repo::count_active`, on which the router's drain
/// waits) is 0 and its catalog is empty; cell 2 has its own active orders and more arriving
/// throughout, and still sees every one of them.
pub(crate) async fn a_drain_of_one_cell_completes_while_the_other_has_active_orders(
    raw: (Arc<dyn Kv>, Arc<dyn Kv>),
) {
    let (one, two) = (cell(&raw.0, 1), cell(&raw.1, 2));
    let (r1, r2) = (catalog::testing::rid(1), catalog::testing::rid(2));
    let region = r1.region().unwrap();
    assert_eq!(
        r2.region().unwrap(),
        region,
        "both restaurants in one region"
    );
    let c1 = Catalog::load(one.clone()).await.unwrap();
    c1.upsert(catalog::testing::restaurant(1), catalog::testing::menu())
        .await
        .unwrap();
    let c2 = Catalog::load(two.clone()).await.unwrap();
    c2.upsert(catalog::testing::restaurant(2), catalog::testing::menu())
        .await
        .unwrap();
    // The same order ids on both cells: a cancel on one must not touch the other's.
    for i in 1..=3 {
        repo::create(&*one, LogId(1), order(i, i, r1), &op())
            .await
            .unwrap();
        repo::create(&*two, LogId(2), order(i, i, r2), &op())
            .await
            .unwrap();
    }
    assert_eq!(repo::count_active(&*one).await.unwrap(), 3);

    // The region moves to cell 2, as the router's move does it.
    let mut after = None;
    loop {
        let (page, more) = c1.export_region_page(region, after, 1).await.unwrap();
        after = page.last().map(|(r, _)| r.id);
        c2.import(page).await.unwrap();
        if !more {
            break;
        }
    }
    assert_eq!(c1.remove_region(region).await.unwrap(), 1);
    repo::create(&*two, LogId(2), order(4, 4, r1), &op())
        .await
        .unwrap();

    // Cell 1's last orders finish (cancelled here; any terminal state counts the same).
    for i in 1..=3 {
        let cancel = Command::Cancel {
            reason: "drain".into(),
        };
        let (o, _) = repo::transition(
            &*one,
            LogId(1),
            OrderId(i),
            cancel,
            Actor::Admin,
            Some(OrderStatus::Pending),
            &WriteOp::new(UnixMs(2_000)),
        )
        .await
        .unwrap();
        assert_eq!(o.status, OrderStatus::Cancelled);
    }
    repo::create(&*two, LogId(2), order(5, 5, r2), &op())
        .await
        .unwrap();

    // Drained: nothing active, no catalog, no region.
    assert_eq!(repo::count_active(&*one).await.unwrap(), 0);
    assert!(orders_in(&*one, OrderStatus::Pending).await.is_empty());
    let c1 = Catalog::load(one.clone()).await.unwrap();
    assert!(c1.is_empty());
    assert!(c1.region_ids(region).is_empty());
    // The other cell: every order active and its own, and the moved restaurant served.
    assert_eq!(repo::count_active(&*two).await.unwrap(), 5);
    assert_eq!(
        orders_in(&*two, OrderStatus::Pending).await,
        (1..=5).map(OrderId).collect::<Vec<_>>()
    );
    assert_eq!(
        repo::get(&*two, OrderId(1)).await.unwrap().unwrap().status,
        OrderStatus::Pending
    );
    let mut ids = Catalog::load(two.clone()).await.unwrap().region_ids(region);
    ids.sort();
    let mut want = vec![r1, r2];
    want.sort();
    assert_eq!(ids, want);
}

#[tokio::test]
async fn a_drain_of_one_cell_on_redb_completes_while_the_other_has_active_orders() {
    let dir = tempfile::tempdir().unwrap();
    let raw: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    a_drain_of_one_cell_completes_while_the_other_has_active_orders((raw.clone(), raw)).await;
}

/// Two cells on one cluster: two clients of one model database.
fn one_model(db: &ModelDb) -> (Arc<dyn Kv>, Arc<dyn Kv>) {
    (db.clone().kv(), db.kv())
}

/// Some fault of `faults` fired, if it has any (which one depends on the seed and on how many
/// transactions the scenario runs).
fn assert_injected(db: &ModelDb, faults: ModelFaults) {
    if faults.conflict > 0.0 || faults.too_old > 0.0 {
        let s = db.stats();
        assert!(s.injected_conflicts + s.injected_too_old > 0, "{s:?}");
    }
}

/// Conflicts and too-old reads injected, retried by the store: a failed commit applies
/// nothing, so the outcome must be the same as without them.
fn retryable_faults(seed: u64) -> ModelFaults {
    ModelFaults {
        seed,
        conflict: 0.1,
        unknown_result: 0.0,
        too_old: 0.02,
        latency: Duration::from_micros(100),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cells_on_one_model_store_see_nothing_of_each_other() {
    for faults in [ModelFaults::none(), retryable_faults(16)] {
        let db = ModelDb::new(faults);
        two_cells_on_one_store_see_nothing_of_each_other(one_model(&db)).await;
        assert_injected(&db, faults);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_of_one_cell_on_a_model_store_completes_while_the_other_has_active_orders() {
    for faults in [ModelFaults::none(), retryable_faults(17)] {
        let db = ModelDb::new(faults);
        a_drain_of_one_cell_completes_while_the_other_has_active_orders(one_model(&db)).await;
        assert_injected(&db, faults);
    }
}
