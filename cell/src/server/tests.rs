//! Two instances of one cell on one store, in one process: the second stands by (not ready)
//! while the first serves, takes over once the first is gone without releasing, and the
//! first's writes are fenced from then on; every order the first acknowledged is there for
//! the second, and an order's driver is assigned once. The real startup path, on the real
//! store (redb) and on the FoundationDB-semantics model (two processes of one cell as two
//! clients of one cluster, where the takeover cannot shortcut the expiry).

use super::{Listeners, run};
use crate::app::{App, SystemClock};
use crate::config::Config;
use crate::orders::WriteOp;
use crate::orders::repo::{self, Created, RepoError};
use domain::{Actor, Command, CustomerId, DeliveryId, DriverId, EventKind, OrderId, OrderStatus};
use domain::{Order, UnixMs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::lease::{Incarnation, Lease};
use store::{Kv, StoreError, TxnError};
use tokio::sync::oneshot;

const LEASE_MS: u64 = 1_000;
/// Bounds for things that take as long as the machine is slow (building an app in a debug
/// build), so they are not a timing assertion.
const PATIENCE: Duration = Duration::from_secs(120);

static KEYS_DIR: std::sync::LazyLock<std::path::PathBuf> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("a temp dir").keep());

fn config() -> Config {
    let mut c = Config::load(None).unwrap();
    c.demo.enabled = true;
    c.demo.restaurants = 3;
    c.store.lease_ms = LEASE_MS;
    // These tests share one store between instances and give no data directory of their own;
    // location history (its key store is a file in the data directory) is not what they test.
    c.history.enabled = false;
    // The cell's key store (customer data keys) and demo KEK: in a directory of this run, so
    // instances of one test share them as instances of one cell do.
    c.store.data_dir = KEYS_DIR.clone();
    c
}

/// A started instance: its task, its HTTP address, its app once it serves, and the sender
/// that shuts it down cleanly.
type Instance = (
    tokio::task::JoinHandle<Result<(), super::StartError>>,
    std::net::SocketAddr,
    oneshot::Receiver<App>,
    oneshot::Sender<()>,
);

/// Starts an instance of the cell on `kv`.
fn start(kv: &Arc<dyn Kv>) -> Instance {
    let http = service::http::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = http.local_addr().unwrap();
    let (app_tx, app_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(
        config(),
        kv.clone(),
        Arc::new(SystemClock),
        None,
        Listeners {
            http,
            tls: None,
            gateway: None,
        },
        move |app: &App| {
            let _ = app_tx.send(app.clone());
        },
        async move {
            let _ = stop_rx.await;
        },
    ));
    (task, addr, app_rx, stop_tx)
}

async fn ready(addr: std::net::SocketAddr) -> Option<(u16, serde_json::Value)> {
    let r = reqwest::get(format!("http://{addr}/ready")).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.json().await.ok()?))
}

async fn write(kv: &dyn Kv, key: &'static [u8]) -> Result<(), TxnError<()>> {
    store::transact(kv, move |txn| {
        Box::pin(async move {
            txn.set(key, b"v");
            Ok(())
        })
    })
    .await
}

async fn stored(kv: &dyn Kv, key: &'static [u8]) -> bool {
    store::read(kv, move |txn| {
        Box::pin(async move { Ok::<_, TxnError<()>>(txn.get(key).await?.is_some()) })
    })
    .await
    .unwrap()
}

/// The store as the cell sees it: scoped to its subspace.
fn scoped(kv: &Arc<dyn Kv>) -> Arc<dyn Kv> {
    store::SubspaceKv::scoped(kv.clone(), crate::server::subspace(&config()))
}

/// The lease record as stored (read with an incarnation that never holds it).
async fn record(kv: &Arc<dyn Kv>) -> store::lease::LeaseRecord {
    let key = crate::lease::key();
    Lease::new(scoped(kv), key, Incarnation(0))
        .current()
        .await
        .unwrap()
        .expect("a lease record")
}

/// How many orders the first instance acknowledges before it is killed.
const ORDERS: u64 = 40;

/// Order `i` of the takeover case; every fourth one confirmed (waiting for a driver).
fn order(i: u64) -> Order {
    let mut o = domain::testing::order(
        OrderId(1_000 + i),
        CustomerId(i),
        catalog::testing::rid(1),
        UnixMs(1_000),
    );
    if i.is_multiple_of(4) {
        o.status = OrderStatus::Confirmed;
    }
    o
}

fn assign(driver: u64) -> Command {
    Command::AssignDriver {
        driver: DriverId(driver),
        delivery: DeliveryId(driver),
    }
}

/// Assigns `driver` to the confirmed order `id` through `app`'s store.
async fn assign_through(app: &App, id: OrderId, driver: u64) -> Result<Order, RepoError> {
    let log = app.orders().log();
    repo::transition(
        &**app.kv(),
        log,
        id,
        assign(driver),
        Actor::System,
        Some(OrderStatus::Confirmed),
        &WriteOp::new(UnixMs(5_000)),
    )
    .await
    .map(|(o, _)| o)
}

fn is_fenced(r: &Result<impl std::fmt::Debug, RepoError>) -> bool {
    matches!(r, Err(RepoError::Store(StoreError::Fenced { .. })))
}

/// The takeover case on the store `kv` (the unscoped store both instances open).
async fn a_standby_takes_over_from_a_killed_instance(kv: Arc<dyn Kv>) {
    let (a, a_addr, a_app, _a_stop) = start(&kv);
    let a_app = tokio::time::timeout(PATIENCE, a_app)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a_app.lease().fence(), Some(1));

    let (b, b_addr, mut b_app, b_stop) = start(&kv);
    let deadline = Instant::now() + PATIENCE;
    let standby = loop {
        if let Some((503, body)) = ready(b_addr).await
            && body["state"] == "standby"
        {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "the second instance never stood by"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        standby["holder"],
        a_app.lease().incarnation().to_string(),
        "the standby names the holder"
    );
    let (status, body) = ready(a_addr).await.expect("the first answers");
    assert_eq!((status, &body["state"]), (200, &"serving".into()));
    assert!(b_app.try_recv().is_err(), "the standby built no app");
    // Anything else the standby refuses, marked so the router may send it elsewhere.
    let refused = reqwest::get(format!("http://{b_addr}/api/v1/restaurants"))
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused
            .headers()
            .get(crate::http::standby::STANDBY_HEADER)
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    write(&**a_app.kv(), b"before").await.unwrap();
    // Orders placed concurrently and acknowledged by the first instance.
    let log = a_app.orders().log();
    let placing = (1..=ORDERS).map(|i| {
        let kv = a_app.kv().clone();
        async move { repo::create(&*kv, log, order(i), &WriteOp::new(UnixMs(1_000))).await }
    });
    let mut acknowledged = Vec::new();
    for r in futures::future::join_all(placing).await {
        match r.unwrap() {
            Created::New(o) => acknowledged.push(o),
            Created::Existing(o) => panic!("order {} existed", o.id),
        }
    }

    // A kill: the first stops renewing without releasing (its background tasks live on as
    // a zombie that does not know it lost the lease).
    a.abort();
    let killed = Instant::now();
    let a_expiry = record(&kv).await.expires_ms;
    let takeover = loop {
        let r = record(&kv).await;
        if r.fence == 2 {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < Duration::from_millis(LEASE_MS + 1_000),
            "no takeover within the lease + 1 s (the lease ran to {a_expiry})"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let b_app = tokio::time::timeout(PATIENCE, b_app)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b_app.lease().fence(), Some(2), "took over in {takeover:?}");
    let (status, _) = ready(b_addr).await.expect("the second answers");
    assert_eq!(status, 200);

    // The old holder still believes it holds fence 1, yet nothing it writes commits.
    assert_eq!(a_app.lease().fence(), Some(1));
    let late = write(&**a_app.kv(), b"late").await;
    assert!(
        matches!(late, Err(TxnError::Store(StoreError::Fenced { .. }))),
        "{late:?}"
    );
    assert!(!stored(&**b_app.kv(), b"late").await);
    assert!(stored(&**b_app.kv(), b"before").await);
    write(&**b_app.kv(), b"after").await.unwrap();
    let late = repo::create(
        &**a_app.kv(),
        log,
        order(ORDERS + 1),
        &WriteOp::new(UnixMs(1_000)),
    )
    .await;
    assert!(is_fenced(&late), "{late:?}");

    // No order lost: every order the first acknowledged reads back whole through the second.
    for o in &acknowledged {
        let got = repo::get(&**b_app.kv(), o.id).await.unwrap();
        assert_eq!(got.as_ref(), Some(o), "order {} after the takeover", o.id);
    }
    assert!(
        repo::get(&**b_app.kv(), OrderId(1_000 + ORDERS + 1))
            .await
            .unwrap()
            .is_none()
    );

    // None assigned twice: the old instance's assignment is fenced, the new one's commits,
    // and a second assignment finds the order taken.
    for o in acknowledged
        .iter()
        .filter(|o| o.status == OrderStatus::Confirmed)
    {
        let old = assign_through(&a_app, o.id, 1).await;
        assert!(is_fenced(&old), "{old:?}");
        let new = assign_through(&b_app, o.id, 2).await.unwrap();
        assert_eq!(
            (new.status, new.driver_id),
            (OrderStatus::DriverAssigned, Some(DriverId(2)))
        );
        let again = assign_through(&b_app, o.id, 3).await;
        assert!(
            matches!(
                again,
                Err(RepoError::Transition(_) | RepoError::Changed { .. })
            ),
            "{again:?}"
        );
        let (o, history) = repo::get_with_history(&**b_app.kv(), o.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(o.driver_id, Some(DriverId(2)));
        let assigned: Vec<_> = history
            .iter()
            .filter(|h| h.event == EventKind::DriverAssigned)
            .map(|h| h.driver_id)
            .collect();
        assert_eq!(assigned, vec![Some(DriverId(2))], "assigned once");
    }

    // A clean shutdown releases the lease: no standby would wait for it to expire.
    b_stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, b)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let r = record(&kv).await;
    assert_eq!((r.fence, r.expires_ms), (2, 0));
    assert_eq!(b_app.lease().fence(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_instance_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    a_standby_takes_over_from_a_killed_instance(kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_instance_on_a_model_store() {
    let db = store::model::ModelDb::new(store::model::ModelFaults::none());
    assert!(
        !db.kv().exclusive_to_this_process(),
        "shared like a cluster"
    );
    a_standby_takes_over_from_a_killed_instance(db.kv()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_finds_its_lease_taken_stops_serving_with_an_error_on_redb() {
    let dir = tempfile::tempdir().unwrap();
    let kv: Arc<dyn Kv> =
        Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
    an_instance_that_finds_its_lease_taken_stops_serving_with_an_error(kv).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_finds_its_lease_taken_stops_serving_with_an_error_on_a_model_store() {
    let db = store::model::ModelDb::new(store::model::ModelFaults::none());
    an_instance_that_finds_its_lease_taken_stops_serving_with_an_error(db.kv()).await;
}

async fn an_instance_that_finds_its_lease_taken_stops_serving_with_an_error(kv: Arc<dyn Kv>) {
    let (a, a_addr, a_app, _a_stop) = start(&kv);
    let a_app = tokio::time::timeout(PATIENCE, a_app)
        .await
        .unwrap()
        .unwrap();
    // Another instance takes the lease over while this one still renews, as one whose clock
    // runs far ahead would: the next renewal finds the tenure gone.
    let key = crate::lease::key();
    let ahead = u64::try_from(domain::UnixMs::now().0).unwrap() + 100 * LEASE_MS;
    let other = Lease::new(scoped(&kv), key, Incarnation(7));
    assert!(matches!(
        other.try_acquire(ahead, LEASE_MS).await.unwrap(),
        store::lease::Acquire::Acquired { fence: 2, .. }
    ));
    let stopped = tokio::time::timeout(PATIENCE, a).await.unwrap().unwrap();
    assert!(
        matches!(stopped, Err(super::StartError::LeaseLost(_))),
        "{stopped:?}"
    );
    assert!(ready(a_addr).await.is_none(), "it no longer serves");
    assert_eq!(a_app.lease().fence(), None);
    assert!(matches!(
        write(&**a_app.kv(), b"late").await,
        Err(TxnError::Store(StoreError::Fenced { .. }))
    ));
}
