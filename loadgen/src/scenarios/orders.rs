//! `orders`: customers placing orders through the real API, and their restaurants
//! working them. Per order, each a separately timed op:
//!
//! search → menu → quote → place (fresh `Idempotency-Key`) → accept → preparing → ready
//!
//! An order the cell queued because its payment provider was unreachable (202, status
//! `payment_pending`) is also counted as `place_queued` and ends there: its restaurant sees
//! it only once the cell authorized it (`loadgen/bench/payments-outage.sh` follows it up).
//!
//! Orders start on the open-loop schedule; the first step's latency counts from the
//! order's intended start, each later step's from the end of the step before it (when a
//! real client would send it). `order` is the whole flow, intended start to last step.
//! With `checkout_only` the search and menu steps are skipped: the restaurant, its menu
//! and an address it delivers to come from the warm-up pool. With `reject_share` that share
//! of orders is rejected by the restaurant instead of accepted (`reject`), and with
//! `cancel_share` that share is cancelled by the customer right after the accept (`cancel`):
//! every payment path of the saga (capture, void, refund) then runs under load.

use super::cart::{MenuDoc, SearchPage, build_cart};
use super::{Ctx, Scenario};
use crate::report::stats::{OpId, Outcome};
use rand::Rng;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

pub const OPS: &[&str] = &[
    "search",
    "menu",
    "quote",
    "place",
    "accept",
    "preparing",
    "ready",
    "order",
    "place_queued",
    "reject",
    "cancel",
];
const SEARCH: OpId = 0;
const MENU: OpId = 1;
const QUOTE: OpId = 2;
const PLACE: OpId = 3;
const RESTAURANT_STEPS: [(OpId, &str); 3] =
    [(4, "accepted"), (5, "preparing"), (6, "ready_for_pickup")];
const ORDER: OpId = 7;
/// The subset of `place` answered 202: queued for payment authorization.
const PLACE_QUEUED: OpId = 8;
const REJECT: OpId = 9;
const CANCEL: OpId = 10;

pub struct Orders {
    pub ctx: Arc<Ctx>,
    pub checkout_only: bool,
    /// Share of orders the restaurant rejects (0-1).
    pub reject_share: f64,
    /// Share of orders the customer cancels right after the accept (0-1).
    pub cancel_share: f64,
}

#[derive(Deserialize)]
struct Placed {
    order_id: String,
    #[serde(default)]
    status: String,
}

impl Scenario for Orders {
    fn ops(&self) -> &'static [&'static str] {
        OPS
    }

    fn headline_op(&self) -> OpId {
        PLACE
    }

    async fn run_one(self: Arc<Self>, intended: Instant, seq: u64) {
        let rec = &self.ctx.http.rec;
        rec.mark_sent(ORDER);
        let outcome = match self.flow(intended, seq).await {
            Ok(()) => Outcome::Ok,
            Err(o) => o,
        };
        rec.record(ORDER, intended, intended, Instant::now(), outcome);
    }
}

impl Orders {
    /// A failure that is not an HTTP status (unusable body, nothing open nearby).
    fn unusable(&self, op: OpId, msg: String) -> Outcome {
        self.ctx.http.rec.error_sample(op, msg);
        Outcome::Transport
    }

    async fn flow(&self, intended: Instant, seq: u64) -> Result<(), Outcome> {
        let ctx = &self.ctx;
        let http = &ctx.http;
        let customer = ctx.customer(seq);
        let mut t = intended;
        let fetched: MenuDoc;
        let (rid, point, menu): (String, (f64, f64), &MenuDoc) = if self.checkout_only {
            let with_menu: Vec<_> = ctx.pool.iter().filter(|r| r.menu.is_some()).collect();
            let r = with_menu[rand::rng().random_range(0..with_menu.len())];
            (r.id.clone(), r.point, r.menu.as_ref().expect("filtered"))
        } else {
            let point = ctx.area.random_point(&mut rand::rng());
            let req = http
                .client()
                .get(http.url(&ctx.area.search_path(point)))
                .bearer_auth(customer);
            let body = http.call(SEARCH, t, req).await?;
            t = Instant::now();
            let page: SearchPage = serde_json::from_slice(&body)
                .map_err(|e| self.unusable(SEARCH, format!("search body: {e}")))?;
            if page.restaurants.is_empty() {
                return Err(self.unusable(SEARCH, "no open restaurant delivers here".into()));
            }
            let rid = page.restaurants[rand::rng().random_range(0..page.restaurants.len())]
                .id
                .clone();
            let req = http
                .client()
                .get(http.url(&format!("/api/v1/restaurants/{rid}/menu")))
                .bearer_auth(customer);
            let body = http.call(MENU, t, req).await?;
            t = Instant::now();
            fetched = serde_json::from_slice(&body)
                .map_err(|e| self.unusable(MENU, format!("menu body: {e}")))?;
            (rid, point, &fetched)
        };
        let (cart, key) = {
            let mut rng = rand::rng();
            (
                build_cart(menu, &mut rng),
                format!("lg-{:032x}", rng.random::<u128>()),
            )
        };
        if cart.is_empty() {
            return Err(self.unusable(QUOTE, format!("restaurant {rid}: nothing available")));
        }
        let body = serde_json::json!({
            "restaurant_id": rid,
            "items": cart,
            "delivery_address": { "lat": point.0, "lng": point.1, "formatted": "loadgen" },
            "payment_method_id": "pm_card_visa",
        });
        let req = http
            .client()
            .post(http.url("/api/v1/orders/quote"))
            .bearer_auth(customer)
            .json(&body);
        http.call(QUOTE, t, req).await?;
        t = Instant::now();
        let req = http
            .client()
            .post(http.url("/api/v1/orders"))
            .bearer_auth(customer)
            .header("Idempotency-Key", key)
            .json(&body);
        let place_started = t;
        let placed = http.call(PLACE, t, req).await?;
        t = Instant::now();
        let placed: Placed = serde_json::from_slice(&placed)
            .map_err(|e| self.unusable(PLACE, format!("place body: {e}")))?;
        if placed.status == "payment_pending" {
            http.rec.mark_sent(PLACE_QUEUED);
            http.rec
                .record(PLACE_QUEUED, place_started, place_started, t, Outcome::Ok);
            return Ok(());
        }
        let token = ctx
            .tokens
            .get("restaurant", &rid)
            .await
            .map_err(|e| self.unusable(RESTAURANT_STEPS[0].0, format!("{e:#}")))?;
        let path = http.url(&format!("/api/v1/restaurants/orders/{}", placed.order_id));
        let roll: f64 = rand::rng().random();
        if roll < self.reject_share {
            let req = http
                .client()
                .patch(&path)
                .bearer_auth(&token)
                .json(&serde_json::json!({ "status": "rejected", "reason": "loadgen" }));
            http.call(REJECT, t, req).await?;
            return Ok(());
        }
        let cancel = roll < self.reject_share + self.cancel_share;
        for (op, status) in RESTAURANT_STEPS {
            if cancel && op != RESTAURANT_STEPS[0].0 {
                let req = http
                    .client()
                    .post(http.url(&format!("/api/v1/orders/{}/cancel", placed.order_id)))
                    .bearer_auth(customer)
                    .json(&serde_json::json!({ "reason": "loadgen" }));
                http.call(CANCEL, t, req).await?;
                return Ok(());
            }
            let req = http
                .client()
                .patch(&path)
                .bearer_auth(&token)
                .json(&serde_json::json!({ "status": status }));
            http.call(op, t, req).await?;
            t = Instant::now();
        }
        Ok(())
    }
}
