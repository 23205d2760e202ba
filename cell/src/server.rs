//! Startup and shutdown of a cell: open the store, take the cell's lease (standing by while
//! another instance holds it, `server/standby.rs`), load (or seed) the catalog, build the
//! payment gateway and the order flows (`orders::Orders`), serve HTTP until `shutdown`
//! resolves or the lease is lost.

use crate::app::{App, Clock};
use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::lease::{CellLease, LeaseLost};
use crate::orders::{Orders, Pricing};
use crate::ownership::Ownership;
use crate::tracking::Tracker;
use catalog::Catalog;
use domain::EventKind;
use domain::{CellId, SnowflakeGen};
use geostore::GeoStore;
use std::future::Future;
use std::sync::Arc;
use store::keys::Subspace;
use store::{Kv, LogId, SubspaceKv};
use tokio::net::TcpListener;
use tokio::sync::watch;

mod standby;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("store: {0}")]
    Store(#[from] store::StoreError),
    #[error("catalog: {0}")]
    Catalog(#[from] catalog::CatalogError),
    #[error("demo data: {0}")]
    Demo(#[from] catalog::ValidationError),
    #[error("payments: {0}")]
    Payments(#[from] payments::PaymentError),
    #[error("recovering orders: {0}")]
    Recover(#[from] crate::orders::repo::RepoError),
    #[error("notifications: {0}")]
    Notify(#[from] crate::notify::NotifyError),
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Gateway(#[from] crate::gateway::GatewayError),
    #[error(transparent)]
    Keys(#[from] auth::config::KeyError),
    #[error(transparent)]
    LeaseLost(#[from] crate::lease::LeaseLost),
    #[error("encryption keys (history, personal data): {0}")]
    HistoryKeys(#[from] crate::envelope::KeyError),
}

/// The cell's event log id: one log per cell.
pub fn log_id(config: &Config) -> LogId {
    LogId(config.cell.id as u16)
}

/// The key space of this cell's data: every key the cell reads or writes is under it, so
/// cells sharing one cluster never see each other's orders, cursors or catalog.
pub fn subspace(config: &Config) -> Subspace {
    Subspace::cell(config.cell.id as u16)
}

/// Opens the configured store backend: the whole store (a cluster may hold many cells);
/// [`run`] scopes it to this cell's [`subspace`].
pub fn open_store(config: &Config) -> Result<Arc<dyn Kv>, StartError> {
    let s = &config.store;
    let redb = store::RedbOptions {
        cache_size: usize::try_from(s.cache_bytes).unwrap_or(usize::MAX),
        ..store::RedbOptions::default()
    };
    Ok(store::open_with(
        s.backend,
        &s.data_dir,
        &s.fdb_cluster_file,
        redb,
    )?)
}

/// The niceness of the thread that runs work nobody waits on (payment effects,
/// reconciliation): requests get the cores first.
const BACKGROUND_NICE: i32 = 10;

/// Restaurants the demo seeder generates and imports at a time: a big city never sits in
/// memory whole (50,000 restaurants with their menus would be gigabytes).
const SEED_SLICE: usize = 2_000;

async fn seed_demo(config: &Config, catalog: &Catalog) -> Result<usize, StartError> {
    if !config.demo.enabled || !catalog.is_empty() {
        return Ok(0);
    }
    let spec = config.demo.spec();
    let mut seeded = 0;
    for start in (0..spec.restaurants).step_by(SEED_SLICE) {
        let slice = catalog::demo::generate_range(&spec, start..start + SEED_SLICE)?;
        seeded += catalog.import(slice).await?;
    }
    Ok(seeded)
}

/// Builds the application from config on the store behind `lease` (which this process holds):
/// catalog, payments, order flows, dispatch. Every write goes through the lease's fenced
/// store handle.
pub async fn build(
    config: Config,
    lease: CellLease,
    clock: Arc<dyn Clock>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
) -> Result<App, StartError> {
    config.validate()?;
    let kv = lease.kv();
    let catalog = Arc::new(
        Catalog::load_with(
            kv.clone(),
            store::PageLimits::DEFAULT,
            config.catalog.menu_cache(),
        )
        .await?,
    );
    let seeded = seed_demo(&config, &catalog).await?;
    if seeded > 0 {
        tracing::info!(restaurants = seeded, city = %config.demo.city_name, "seeded demo catalog");
    }
    // A sandbox provider keeps its state in the cell's store, so a restart loses nothing. (A
    // store of its own was tried: its fsyncs then queue with the order store's on the same
    // disk, and accept p99 at 1,000 orders/s rose by about half.)
    let opened = payments::open_gateway(&config.payments, kv.clone()).await?;
    let sandbox = opened.sandbox;
    let gateway = Arc::new(opened.gateway);
    let cell = CellId::new(config.cell.id).expect("cell.id is checked by validate above");
    let ownership = Arc::new(Ownership::new(config.cell.id));
    // One key ring for the cell: history day keys and customer data keys, one KEK and one key
    // store (`[history] kek_file`, `key_store_file`), whether history is on or not.
    let keys = crate::history::History::open_keys(
        &config.history,
        &config.privacy,
        config.cell.id as u16,
        &config.store.data_dir,
        config.demo.enabled,
    )?;
    let vault = Arc::new(crate::personal::Vault::new(keys.clone()));
    let orders = Arc::new(
        Orders::new(
            kv.clone(),
            log_id(&config),
            SnowflakeGen::new(cell),
            gateway,
            config.cell.currency.clone(),
            Pricing {
                catalog: catalog.clone(),
                config: config.pricing.clone(),
            },
            ownership.clone(),
            vault,
        )
        .with_order_limit(config.limits.order_limit())
        .with_placement_wait(config.payment_queue.placement_wait()),
    );
    orders.resume_ids(clock.now()).await?;
    let tracker = Arc::new(Tracker::new(
        config.tracking.clone(),
        config.pricing.avg_speed_kmh,
        config.pricing.road_factor,
    ));
    let geo = Arc::new(GeoStore::new(geostore::Config::default()));
    let dispatch = Arc::new(Dispatch::new(
        config.dispatch.clone(),
        geo,
        orders.clone(),
        tracker.clone(),
    ));
    dispatch.set_privacy(config.privacy.clone());
    dispatch.recover(clock.now()).await?;
    let history = if config.history.enabled {
        Some(Arc::new(crate::history::History::new(
            config.history.clone(),
            config.cell.id as u16,
            kv.clone(),
            keys,
        )))
    } else {
        None
    };
    let a = &config.auth;
    let verifier = auth::Verifier::from_config(a.jwt_secret.as_bytes(), &a.hs256, a.oidc.as_ref())?;
    // With an OIDC issuer configured, its keys are fetched before the cell reports ready.
    verifier.start().await;
    let app = App::new(
        config, kv, lease, catalog, orders, dispatch, tracker, ownership, clock, metrics, verifier,
    );
    if let Some(sandbox) = sandbox {
        app.set_sandbox(sandbox);
    }
    if let Some(h) = history {
        app.set_history(h);
    }
    Ok(app)
}

/// How often old transaction ids are purged (`orders::once`).
const TXN_ID_PURGE_EVERY_MS: i64 = 5 * 60 * 1000;

/// Starts the cell's background work: the matching loop, the payment authorization queue
/// and the event-log consumers (matching and notifications: durable cursors; tracking
/// fan-out: live from the head).
pub fn spawn_background(app: &App, shutdown: watch::Receiver<bool>) -> Result<(), StartError> {
    let log = log_id(app.config());
    // Notifications are shed first under overload and catch up afterwards (seed §12).
    let overload = Arc::new(crate::notify::Overload::new());
    crate::notify::spawn(
        app.kv().clone(),
        log,
        &app.config().notify,
        overload.clone(),
        shutdown.clone(),
    )?;
    let scorer = crate::fraud::Scorer::new(
        app.kv().clone(),
        app.orders().payments().clone(),
        app.catalog_handle().clone(),
        app.config().fraud.clone(),
    );
    // Work nobody waits on runs on a niced thread of its own (see `crate::background`).
    let background = crate::background::Background::start(BACKGROUND_NICE, shutdown.clone())?;
    if app.config().reconcile.enabled {
        let a = app.clone();
        background.spawn(crate::reconcile::run(
            app.kv().clone(),
            app.orders().payments().clone(),
            app.config().reconcile.clone(),
            move || a.now(),
            shutdown.clone(),
        ));
    }
    if let Some(sink) = crate::fraud::spawn(
        app.kv().clone(),
        log,
        scorer,
        &app.config().fraud,
        shutdown.clone(),
    ) {
        app.dispatch().set_fraud_signals(sink);
    }
    let (a, mut stop) = (app.clone(), shutdown.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => overload.set(a.dispatch().is_overloaded()),
                _ = stop.changed() => return,
            }
        }
    });
    tokio::spawn(app.dispatch().clone().run(app.clock(), shutdown.clone()));
    if let Some(h) = app.history() {
        tokio::spawn(store::priority::background(crate::history::run(
            h.clone(),
            app.clock(),
            shutdown.clone(),
        )));
    }
    // Key rotation: a quick no-op once every key is on the current version.
    tokio::spawn(crate::envelope::run_rewrap(
        app.orders().vault().keys().clone(),
        app.config().history.rewrap_batch_keys,
        shutdown.clone(),
    ));
    crate::drain::spawn(app, shutdown.clone());
    crate::earnings::spawn(
        app.kv().clone(),
        log,
        app.config().dispatch.clone(),
        shutdown.clone(),
    );
    tokio::spawn(crate::orders::queue::run(
        app.orders().clone(),
        app.config().payment_queue.clone(),
        app.clock(),
        shutdown.clone(),
    ));
    // Payment effects (capture, void, refund) committed as pending by order transitions.
    let worker = Arc::new(crate::saga::PaymentWorker::new(
        app.kv().clone(),
        log,
        app.orders().payments().clone(),
        app.config().payment_worker.clone(),
        app.clock(),
    ));
    background.spawn(worker.run(shutdown.clone()));
    let (a, mut stop) = (app.clone(), shutdown.clone());
    tokio::spawn(async move {
        let me = domain::CellId::new(a.config().cell.id).expect("validated at load");
        let mut seen = crate::dispatch::handover::HandoverState::default();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                    a.dispatch().handover_pass(&a.cell_map(), me, &mut seen, a.now());
                }
                _ = stop.changed() => return,
            }
        }
    });
    // Keeps the id lease ahead of the clock even when no order is placed, so delivery ids
    // (issued synchronously) always have room. Every few minutes it also drops transaction ids
    // past their retry horizon, so the id family stays small.
    let (a, mut stop) = (app.clone(), shutdown.clone());
    tokio::spawn(async move {
        let mut last_purge = i64::MIN;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
                    let now = a.now();
                    if let Err(e) = a.orders().renew_ids(now).await {
                        tracing::debug!(error = %e, "could not renew the id lease");
                    }
                    if now.0.saturating_sub(last_purge) >= TXN_ID_PURGE_EVERY_MS {
                        last_purge = now.0;
                        if let Err(e) = crate::orders::once::purge_txn_ids(&**a.kv(), now).await {
                            tracing::debug!(error = %e, "could not purge old transaction ids");
                        }
                    }
                }
                _ = stop.changed() => return,
            }
        }
    });
    let a = app.clone();
    tokio::spawn(crate::events::consume(
        app.kv().clone(),
        log,
        crate::events::Start::Durable("matching"),
        move |_pos, ev| {
            let a = a.clone();
            async move {
                let order = match ev.kind {
                    EventKind::OrderConfirmed
                    | EventKind::OrderCancelled
                    | EventKind::OrderRejected => crate::orders::repo::get(&**a.kv(), ev.order_id)
                        .await
                        .map_err(|e| e.to_string())?,
                    _ => None,
                };
                a.dispatch().on_event(&ev, order, a.now());
                Ok(())
            }
        },
        shutdown.clone(),
    ));
    let a = app.clone();
    tokio::spawn(crate::events::consume(
        app.kv().clone(),
        log,
        crate::events::Start::Head,
        move |_pos, ev| {
            let a = a.clone();
            async move {
                a.tracker().event(&ev);
                // Keep the cached order of a driver on the way in sync (status for the ETA).
                if ev.driver_id.is_some()
                    && let Ok(Some(o)) = crate::orders::repo::get(&**a.kv(), ev.order_id).await
                {
                    a.dispatch().refresh_carried(&o);
                }
                Ok(())
            }
        },
        shutdown,
    ));
    Ok(())
}

/// What a cell serves on, bound before [`run`] (so a port taken fails before the store is
/// touched).
pub struct Listeners {
    pub http: TcpListener,
    /// HTTPS when given.
    pub tls: Option<service::http::TlsAcceptor>,
    /// The QUIC driver gateway, when given.
    pub gateway: Option<crate::gateway::Gateway>,
}

/// Runs a cell on `kv` (the whole store, as [`open_store`] opens it: the cell scopes it to its
/// own [`subspace`] here, so several cells can share one store) from start to stop. Takes the cell's lease, waiting as a standby while
/// another instance holds it (serving only `/live` and a `/ready` that says `standby`), then
/// builds the app, calls `on_serving` and serves until `shutdown` resolves (the lease is then
/// released, so a standby takes over at once) or the lease is lost (then it stops and returns
/// [`StartError::LeaseLost`], so the process exits non-zero and never serves on a lease it
/// lost).
pub async fn run(
    config: Config,
    kv: Arc<dyn Kv>,
    clock: Arc<dyn Clock>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    listeners: Listeners,
    on_serving: impl FnOnce(&App),
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StartError> {
    config.validate()?;
    let kv = SubspaceKv::scoped(kv, subspace(&config));
    let lease = CellLease::new(kv, &config);
    tokio::pin!(shutdown);
    if !standby::until_held(&lease, &config, &*clock, &listeners, shutdown.as_mut()).await? {
        tracing::info!("stopped while standing by");
        return Ok(());
    }
    // Renewing starts now: loading a big city can take longer than the lease.
    let keep = lease.keep(&*clock);
    tokio::pin!(keep);
    let app = tokio::select! {
        app = build(config, lease.clone(), clock.clone(), metrics) => app?,
        lost = keep.as_mut() => return Err(lost_lease(lost)),
    };
    on_serving(&app);
    serve(app, listeners, shutdown, keep).await
}

/// How long a stopping cell answers new requests "not taken" before its listener closes:
/// long enough for a router's pooled connections to each carry one more request (and be
/// closed by the answer), short enough not to hold up a restart.
const STOP_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// Closes every tracking socket with 1012 (service restart) and waits, briefly, for the
/// close frames to go out: upgraded connections outlive the HTTP server's graceful stop, so
/// without this they would end with a reset and clients could not tell a restart from a
/// failure.
async fn close_trackers(app: &App) {
    const FLUSH: std::time::Duration = std::time::Duration::from_secs(1);
    let hub = &app.tracker().hub;
    hub.close_all();
    let open = hub.subscriber_count();
    let flushed = tokio::time::timeout(FLUSH, async {
        while hub.subscriber_count() > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    tracing::info!(
        open,
        all_closed = flushed.is_ok(),
        "tracking sockets told to reconnect (1012)"
    );
}

fn lost_lease(lost: LeaseLost) -> StartError {
    tracing::error!(error = %lost, "lost the cell's lease: stopping");
    StartError::LeaseLost(lost)
}

/// Serves the cell's HTTP API (and the QUIC driver gateway, when given) until `shutdown`
/// resolves or `lost` does (the lease is gone), then drains.
async fn serve(
    app: App,
    listeners: Listeners,
    shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    lost: std::pin::Pin<&mut impl Future<Output = LeaseLost>>,
) -> Result<(), StartError> {
    let Listeners {
        http: listener,
        tls,
        gateway,
    } = listeners;
    let (stop_tx, stop_rx) = watch::channel(false);
    spawn_background(&app, stop_rx.clone())?;
    let quic = match gateway {
        Some(gw) => {
            let port: Arc<dyn crate::gateway::DriverPort> =
                Arc::new(crate::dispatch::port::DispatchPort(app.clone()));
            let mut rx = stop_rx.clone();
            Some(
                crate::gateway::spawn(gw, port, async move {
                    let _ = rx.wait_for(|stop| *stop).await;
                })
                .await?,
            )
        }
        None => None,
    };
    let limits = app.config().http.edge.limits();
    let lease = app.lease().clone();
    let trackers = app.clone();
    let router = crate::http::router(app);
    let mut rx = stop_rx;
    let stop = async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    // Not spawned: the renewal lives exactly as long as this future (a cell that is dropped
    // or killed stops renewing, and a standby takes over).
    let serving = service::http::serve(listener, router, tls, limits, stop);
    tokio::pin!(serving);
    let lost = tokio::select! {
        r = serving.as_mut() => {
            // The listener ended without being asked to: stop everything else too.
            let _ = stop_tx.send(true);
            r?;
            return Ok(());
        }
        () = shutdown => None,
        lost = lost => Some(lost),
    };
    if lost.is_none() {
        // A requested stop: for a moment, answer new requests "not taken" (the router resends
        // them) and close the connections they came on, so none is cut mid-request.
        trackers.set_stopping();
        close_trackers(&trackers).await;
        tokio::time::sleep(STOP_GRACE).await;
    } else {
        close_trackers(&trackers).await;
    }
    let _ = stop_tx.send(true);
    serving.await?;
    if let Some(q) = quic {
        q.await;
    }
    match lost {
        None => {
            lease.release().await;
            Ok(())
        }
        Some(lost) => Err(lost_lease(lost)),
    }
}

#[cfg(test)]
mod tests;
