//! [`App`]: everything a request handler (and, next, the driver gateway and event consumers)
//! needs, built once at startup and shared by reference count.

use crate::auth::JwtKeys;
use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::orders::service::OrderService;
use crate::tracking::Tracker;
use catalog::Catalog;
use domain::UnixMs;
use std::sync::Arc;
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

#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    config: Config,
    kv: Arc<dyn Kv>,
    catalog: Catalog,
    orders: Arc<OrderService>,
    dispatch: Arc<Dispatch>,
    tracker: Arc<Tracker>,
    jwt: JwtKeys,
    clock: Arc<dyn Clock>,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: Config,
        kv: Arc<dyn Kv>,
        catalog: Catalog,
        orders: Arc<OrderService>,
        dispatch: Arc<Dispatch>,
        tracker: Arc<Tracker>,
        clock: Arc<dyn Clock>,
        metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    ) -> App {
        let jwt = JwtKeys::from_secret(config.auth.jwt_secret.as_bytes());
        App(Arc::new(Inner {
            config,
            kv,
            catalog,
            orders,
            dispatch,
            tracker,
            jwt,
            clock,
            metrics,
        }))
    }

    pub fn config(&self) -> &Config {
        &self.0.config
    }
    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.0.kv
    }
    pub fn catalog(&self) -> &Catalog {
        &self.0.catalog
    }
    pub fn orders(&self) -> &Arc<OrderService> {
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
    pub fn jwt(&self) -> &JwtKeys {
        &self.0.jwt
    }
    pub fn now(&self) -> UnixMs {
        self.0.clock.now()
    }
    pub fn metrics(&self) -> Option<&metrics_exporter_prometheus::PrometheusHandle> {
        self.0.metrics.as_ref()
    }
}
