//! [`App`]: everything a request handler (and, next, the driver gateway and event consumers)
//! needs, built once at startup and shared by reference count.

use crate::auth::{JwtKeys, Verifier};
use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::lease::CellLease;
use crate::orders::Orders;
use crate::ownership::Ownership;
use crate::tracking::Tracker;
use catalog::Catalog;
use cellapi::QuicInfo;
use cellmap::CellMap;
use domain::UnixMs;
use std::sync::{Arc, OnceLock};
use store::Kv;

/// Reads "now" for the outermost layer. Tests and simulations substitute a fixed clock.
pub trait Clock: Send + Sync {
    fn now(&self) -> UnixMs;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixMs {
        UnixMs::now()
    }
}

/// The system clock shifted by a fixed offset: demo mode's `clock_offset_ms`, which tests
/// use to restart a cell with its clock set back.
pub struct OffsetClock {
    pub offset_ms: i64,
}

impl Clock for OffsetClock {
    fn now(&self) -> UnixMs {
        UnixMs(UnixMs::now().0 + self.offset_ms)
    }
}

#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    config: Config,
    /// The store, through the lease's fence check.
    kv: Arc<dyn Kv>,
    /// This process's lease on the cell, renewed while serving.
    lease: CellLease,
    catalog: Arc<Catalog>,
    orders: Arc<Orders>,
    dispatch: Arc<Dispatch>,
    tracker: Arc<Tracker>,
    verifier: Verifier,
    clock: Arc<dyn Clock>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The router's latest cell map (version 0 until one is pushed), shared with the order
    /// flows, which refuse orders of regions that moved away.
    ownership: Arc<Ownership>,
    /// The QUIC gateway's address and identity, once it is bound.
    quic: OnceLock<QuicInfo>,
    /// A drain's start and progress, as this process sees them (`crate::drain`).
    drain: crate::drain::DrainState,
    /// Set once the process was asked to stop: new requests are refused as not taken.
    stopping: std::sync::atomic::AtomicBool,
    /// The per-user request rate (`[limits]`), checked by the bearer-token extractor.
    api_limiter: crate::limits::ApiLimiter,
    /// The payment sandbox, when it is the provider: its fault modes are set at runtime.
    sandbox: OnceLock<Arc<payments::SandboxGateway>>,
    /// Profiles from token claims, applied once per person and change.
    claim_sync: crate::people_claims::ClaimSync,
    /// Location history, when `[history]` is enabled.
    history: OnceLock<Arc<crate::history::History>>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        kv: Arc<dyn Kv>,
        lease: CellLease,
        catalog: Arc<Catalog>,
        orders: Arc<Orders>,
        dispatch: Arc<Dispatch>,
        tracker: Arc<Tracker>,
        ownership: Arc<Ownership>,
        clock: Arc<dyn Clock>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
        verifier: Verifier,
    ) -> App {
        let api_limiter = crate::limits::ApiLimiter::new(&config.limits);
        App(Arc::new(Inner {
            api_limiter,
            config,
            kv,
            lease,
            catalog,
            orders,
            dispatch,
            tracker,
            verifier,
            clock,
            metrics,
            ownership,
            quic: OnceLock::new(),
            drain: crate::drain::DrainState::default(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            sandbox: OnceLock::new(),
            claim_sync: Default::default(),
            history: OnceLock::new(),
        }))
    }

    /// Whether the process is stopping (see `http::refuse_while_stopping`).
    pub fn stopping(&self) -> bool {
        self.0.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// From now on, new requests are refused as not taken.
    pub fn set_stopping(&self) {
        self.0
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn claim_sync(&self) -> &crate::people_claims::ClaimSync {
        &self.0.claim_sync
    }

    pub fn drain(&self) -> &crate::drain::DrainState {
        &self.0.drain
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }
    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.0.kv
    }
    pub fn lease(&self) -> &CellLease {
        &self.0.lease
    }
    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }
    /// The catalog as a shared handle, for background tasks.
    pub fn catalog_handle(&self) -> &Arc<Catalog> {
        &self.0.catalog
    }
    pub fn orders(&self) -> &Arc<Orders> {
        &self.0.orders
    }
    pub fn dispatch(&self) -> &Arc<Dispatch> {
        &self.0.dispatch
    }
    pub fn tracker(&self) -> &Arc<Tracker> {
        &self.0.tracker
    }
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.0.clock.clone()
    }
    /// The HS256 keys tokens are minted with (demo tokens).
    pub fn jwt(&self) -> &JwtKeys {
        self.0.verifier.signer()
    }
    /// Verifies bearer tokens, whoever signed them.
    pub fn verifier(&self) -> &Verifier {
        &self.0.verifier
    }
    pub fn api_limiter(&self) -> &crate::limits::ApiLimiter {
        &self.0.api_limiter
    }
    pub fn now(&self) -> UnixMs {
        self.0.clock.now()
    }
    pub fn metrics(&self) -> Option<&metrics_exporter_prometheus::PrometheusHandle> {
        self.0.metrics.as_ref()
    }

    /// The cell map the router pushed last (empty, version 0, before the first push).
    pub fn cell_map(&self) -> Arc<CellMap> {
        self.0.ownership.map()
    }

    /// Keeps `map` unless a newer one is already held; returns the version now held.
    pub fn set_cell_map(&self, map: CellMap) -> u64 {
        self.0.ownership.set_map(map)
    }

    pub fn set_quic_info(&self, info: QuicInfo) {
        let _ = self.0.quic.set(info);
    }

    pub fn quic_info(&self) -> Option<&QuicInfo> {
        self.0.quic.get()
    }

    /// Sets the history service (once, at startup) and gives dispatch its recorder.
    pub fn set_history(&self, history: Arc<crate::history::History>) {
        self.0.dispatch.set_history(history.clone());
        let _ = self.0.history.set(history);
    }

    /// Location history, when enabled.
    pub fn history(&self) -> Option<&Arc<crate::history::History>> {
        self.0.history.get()
    }

    pub fn set_sandbox(&self, sandbox: Arc<payments::SandboxGateway>) {
        let _ = self.0.sandbox.set(sandbox);
    }

    /// The payment sandbox, when the provider is the sandbox.
    pub fn sandbox(&self) -> Option<&Arc<payments::SandboxGateway>> {
        self.0.sandbox.get()
    }
}
