//! Scenarios: what one scheduled request (or one order flow) does. The driver calls
//! [`Scenario::run_one`] at each intended send time; the scenario records its own
//! operations into the recorder it was built with.
//!
//! HTTP scenarios share a [`Ctx`]: the client, tokens, the area requests are spread
//! over, and the restaurant pool collected during warm-up. Scenarios over other
//! protocols (QUIC pings, WebSocket trackers) implement the same trait with their own
//! context.

pub mod browse;
pub mod cart;
pub mod city;
pub mod orders;
pub mod pool;

use crate::auth::Tokens;
use crate::http::Http;
use crate::report::stats::OpId;
use pool::Restaurant;
use rand::Rng;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

/// One kind of load.
pub trait Scenario: Send + Sync + 'static {
    /// The operations this scenario records, in report order.
    fn ops(&self) -> &'static [&'static str];
    /// The op shown on the progress line.
    fn headline_op(&self) -> OpId {
        0
    }
    /// Does the work scheduled for `intended` (the `seq`-th request of the run).
    fn run_one(self: Arc<Self>, intended: Instant, seq: u64) -> impl Future<Output = ()> + Send;
}

/// Where simulated customers are: uniformly spread over a disc around a centre.
#[derive(Debug, Clone)]
pub struct Area {
    pub lat: f64,
    pub lng: f64,
    pub spread_km: f64,
    /// Search radius as the API takes it ("3km").
    pub radius: String,
}

impl Area {
    /// A uniformly random point within `spread_km` of the centre.
    pub fn random_point(&self, rng: &mut impl Rng) -> (f64, f64) {
        let r = self.spread_km * rng.random::<f64>().sqrt();
        let theta = rng.random::<f64>() * std::f64::consts::TAU;
        let dlat = r * theta.cos() / 111.32;
        let dlng = r * theta.sin() / (111.32 * self.lat.to_radians().cos());
        (self.lat + dlat, self.lng + dlng)
    }

    /// The search path for a point (first page).
    pub fn search_path(&self, (lat, lng): (f64, f64)) -> String {
        format!(
            "/api/v1/restaurants?lat={lat:.6}&lng={lng:.6}&radius={}&page=1",
            self.radius
        )
    }
}

/// Shared state of the HTTP scenarios.
pub struct Ctx {
    pub http: Http,
    pub tokens: Tokens,
    pub area: Area,
    /// Restaurants (with menus) found during warm-up.
    pub pool: Vec<Restaurant>,
    /// Customer tokens; requests pick one at random.
    pub customers: Vec<String>,
}

impl Ctx {
    pub fn customer(&self, seq: u64) -> &str {
        &self.customers[(seq as usize) % self.customers.len()]
    }
}

/// `search`: restaurant search at random points.
pub struct Search(pub Arc<Ctx>);

impl Scenario for Search {
    fn ops(&self) -> &'static [&'static str] {
        &["search"]
    }

    async fn run_one(self: Arc<Self>, intended: Instant, seq: u64) {
        let ctx = &self.0;
        let point = ctx.area.random_point(&mut rand::rng());
        let req = ctx
            .http
            .client()
            .get(ctx.http.url(&ctx.area.search_path(point)))
            .bearer_auth(ctx.customer(seq));
        let _ = ctx.http.call(0, intended, req).await;
    }
}

/// `menu`: menus of restaurants from the warm-up pool.
pub struct Menu(pub Arc<Ctx>);

impl Scenario for Menu {
    fn ops(&self) -> &'static [&'static str] {
        &["menu"]
    }

    async fn run_one(self: Arc<Self>, intended: Instant, seq: u64) {
        let ctx = &self.0;
        let i = rand::rng().random_range(0..ctx.pool.len());
        let path = format!("/api/v1/restaurants/{}/menu", ctx.pool[i].id);
        let req = ctx
            .http
            .client()
            .get(ctx.http.url(&path))
            .bearer_auth(ctx.customer(seq));
        let _ = ctx.http.call(0, intended, req).await;
    }
}
