//! `drivesim`'s customers and restaurants (`--orders-per-min`): a customer at a random
//! address searches, reads a menu and orders (idempotency key, `pm_card_visa`); its
//! restaurant accepts, prepares and marks the order ready.

use super::{Ctx, until_stopped};
use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Simulated seconds a kitchen prepares an order.
const PREP_S: f64 = 240.0;

/// Places `per_min` orders a minute until stopped, each in its own task.
pub(crate) async fn customers(ctx: Arc<Ctx>, per_min: f64) {
    let every = Duration::from_secs_f64(60.0 / per_min);
    let mut n = 0u64;
    let mut next = tokio::time::interval(every);
    let mut stop = ctx.stop.clone();
    loop {
        tokio::select! {
            _ = next.tick() => {}
            _ = until_stopped(&mut stop) => return,
        }
        n += 1;
        let ctx = ctx.clone();
        tokio::spawn(async move {
            match one_order(&ctx, n).await {
                Ok(()) => {}
                Err(e) => {
                    ctx.stats.orders_failed.fetch_add(1, Relaxed);
                    ctx.stats.error(format!("order {n}: {e:#}"));
                }
            }
        });
    }
}

/// A customer at a random address orders from a nearby open restaurant; the restaurant
/// accepts, prepares and marks it ready.
async fn one_order(ctx: &Ctx, n: u64) -> anyhow::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.args.seed ^ n.wrapping_mul(0x9E37_79B9));
    let customer = 800_000 + n % 1_000;
    let token = ctx.token("customer", customer).await?;
    let at = random_point(ctx, &mut rng, 0.7);
    // Through the router when there is one: a restaurant whose region moved is served there.
    let base = ctx.args.router.as_ref().unwrap_or(&ctx.args.http);
    let get = |path: String| {
        let token = token.clone();
        async move {
            let r = ctx
                .http
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await?;
            let status = r.status();
            let v: Value = r.json().await?;
            if !status.is_success() {
                bail!("GET {path}: {status} {v}");
            }
            anyhow::Ok(v)
        }
    };
    let found = get(format!(
        "/api/v1/restaurants?lat={}&lng={}&radius=3km&page_size=20",
        at.0, at.1
    ))
    .await?;
    let list = found["restaurants"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        bail!("no open restaurant near {at:?}");
    }
    let rid = list[rng.random_range(0..list.len())]["id"]
        .as_str()
        .context("restaurant id")?
        .to_owned();
    let menu = get(format!("/api/v1/restaurants/{rid}/menu")).await?;
    let items: Vec<&Value> = menu["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["items"].as_array().into_iter().flatten())
        .filter(|i| i["available"] == true)
        .collect();
    if items.is_empty() {
        bail!("nothing available at {rid}");
    }
    let lines: Vec<Value> = (0..rng.random_range(1..=2))
        .map(|_| cart_line(items[rng.random_range(0..items.len())]))
        .collect();
    let body = json!({
        "restaurant_id": rid,
        "items": lines,
        "delivery_address": {"lat": at.0, "lng": at.1, "formatted": format!("drivesim customer {customer}")},
        "payment_method_id": "pm_card_visa",
    });
    let r = ctx
        .http
        .post(format!("{base}/api/v1/orders"))
        .bearer_auth(&token)
        .header(
            "Idempotency-Key",
            format!("drivesim-{}-{n}", std::process::id()),
        )
        .json(&body)
        .send()
        .await?;
    let status = r.status();
    let placed: Value = r.json().await?;
    if !status.is_success() {
        bail!("placing: {status} {placed}");
    }
    let order = placed["order_id"].as_str().context("order_id")?.to_owned();
    ctx.stats.orders_placed.fetch_add(1, Relaxed);

    // The restaurant's tablet.
    let rest = ctx.token("restaurant", rid.parse()?).await?;
    let set = |s: &'static str| {
        let rest = rest.clone();
        let url = format!("{base}/api/v1/restaurants/orders/{order}");
        async move {
            let r = ctx
                .http
                .patch(url)
                .bearer_auth(rest)
                .json(&json!({"status": s}))
                .send()
                .await?;
            anyhow::Ok(r.status())
        }
    };
    if !ctx.sim_sleep(30.0).await {
        return Ok(());
    }
    let st = set("accepted").await?;
    if !st.is_success() {
        bail!("accepting {order}: {st}");
    }
    if !ctx.sim_sleep(30.0).await {
        return Ok(());
    }
    set("preparing").await?;
    if !ctx.sim_sleep(PREP_S).await {
        return Ok(());
    }
    // 409 when the driver already left with the food: the kitchen was done anyway.
    set("ready_for_pickup").await?;
    Ok(())
}

/// A valid cart line for a menu item: the minimum options of each group.
fn cart_line(item: &Value) -> Value {
    let mut chosen = Vec::new();
    for g in item["customizations"].as_array().into_iter().flatten() {
        let opts = g["options"].as_array().cloned().unwrap_or_default();
        let min = g["min"].as_u64().unwrap_or(0) as usize;
        let required = g["required"].as_bool().unwrap_or(false);
        let take = min.max(usize::from(required)).min(opts.len());
        chosen.extend(
            opts[..take]
                .iter()
                .filter_map(|o| o["name"].as_str().map(str::to_owned)),
        );
    }
    json!({"item_id": item["id"], "quantity": 1, "customizations": chosen})
}

/// Uniform over the disc of `share` × the city's radius.
fn random_point(ctx: &Ctx, rng: &mut ChaCha8Rng, share: f64) -> (f64, f64) {
    let r = ctx.city.radius_m * share * rng.random_range(0.0f64..1.0).sqrt();
    let theta = rng.random_range(0.0..std::f64::consts::TAU);
    let lat = ctx.city.center_lat + r * theta.cos() / 111_195.0;
    let lng = ctx.city.center_lng
        + r * theta.sin() / (111_195.0 * ctx.city.center_lat.to_radians().cos());
    (lat, lng)
}
