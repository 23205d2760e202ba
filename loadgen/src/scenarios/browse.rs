//! `browse`: a mix of searches and menu reads, like customers looking around.

use super::{Ctx, Scenario};
use rand::Rng;
use std::sync::Arc;
use std::time::Instant;

pub struct Browse {
    pub ctx: Arc<Ctx>,
    /// Share of requests that are searches (0..=1); the rest read menus.
    pub search_share: f64,
}

impl Scenario for Browse {
    fn ops(&self) -> &'static [&'static str] {
        &["search", "menu"]
    }

    async fn run_one(self: Arc<Self>, intended: Instant, seq: u64) {
        let ctx = &self.ctx;
        let (op, path) = {
            let mut rng = rand::rng();
            if rng.random::<f64>() < self.search_share {
                (0, ctx.area.search_path(ctx.area.random_point(&mut rng)))
            } else {
                let r = &ctx.pool[rng.random_range(0..ctx.pool.len())];
                (1, format!("/api/v1/restaurants/{}/menu", r.id))
            }
        };
        let req = ctx
            .http
            .client()
            .get(ctx.http.url(&path))
            .bearer_auth(ctx.customer(seq));
        let _ = ctx.http.call(op, intended, req).await;
    }
}
