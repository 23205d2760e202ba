//! The HTTP half of `city`: browsing and ordering mixed at a read:write ratio (the seed's
//! 10:1). Each scheduled unit is either a browse request (a search or a menu read, half
//! each) or, with probability 1/(1 + ratio), a whole order flow; both record into the
//! orders' op list (`search` and `menu` are ops 0 and 1 of both).

use super::browse::Browse;
use super::orders::{self, Orders};
use super::{Ctx, Scenario};
use crate::report::stats::OpId;
use rand::Rng;
use std::sync::Arc;
use std::time::Instant;

pub struct CityMix {
    browse: Arc<Browse>,
    orders: Arc<Orders>,
    /// Share of units that are order flows.
    order_share: f64,
}

impl CityMix {
    /// `read_ratio` browse requests per order flow.
    pub fn new(ctx: Arc<Ctx>, read_ratio: f64) -> Self {
        Self {
            browse: Arc::new(Browse {
                ctx: ctx.clone(),
                search_share: 0.5,
            }),
            orders: Arc::new(Orders {
                ctx,
                checkout_only: false,
                reject_share: 0.0,
                cancel_share: 0.0,
            }),
            order_share: 1.0 / (1.0 + read_ratio.max(0.0)),
        }
    }
}

impl Scenario for CityMix {
    fn ops(&self) -> &'static [&'static str] {
        orders::OPS
    }

    fn headline_op(&self) -> OpId {
        self.orders.headline_op()
    }

    async fn run_one(self: Arc<Self>, intended: Instant, seq: u64) {
        if rand::rng().random::<f64>() < self.order_share {
            self.orders.clone().run_one(intended, seq).await;
        } else {
            self.browse.clone().run_one(intended, seq).await;
        }
    }
}
