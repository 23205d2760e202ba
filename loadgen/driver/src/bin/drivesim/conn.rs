//! `drivesim`'s connections: a fresh token per connection (so a session closed with
//! `token_expired` resumes with a new one), and the router lookup after a handover.

use super::Ctx;
use anyhow::bail;
use driver_client::{ConnectOptions, DriverClient, Route, Trust};

/// Where a handed-over driver streams now, from the router's `GET /api/v1/drivers/cell`.
pub(super) struct CellTarget {
    addr: std::net::SocketAddr,
    server_name: String,
    trust: Trust,
}

/// The cell's `Handover`, carried out of `drive` as an error.
#[derive(Debug)]
pub(super) struct HandedOver;

impl std::fmt::Display for HandedOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("handed over to another cell")
    }
}

impl std::error::Error for HandedOver {}

pub(super) async fn lookup(
    ctx: &Ctx,
    router: &str,
    id: u64,
    route: &Route,
) -> anyhow::Result<CellTarget> {
    let (lat, lng) = route.position();
    let token = ctx.token("driver", id).await?;
    let url = format!(
        "{}/api/v1/drivers/cell?lat={lat}&lng={lng}",
        router.trim_end_matches('/')
    );
    let r = ctx.http.get(url).bearer_auth(token).send().await?;
    let status = r.status();
    let v: serde_json::Value = r.json().await?;
    if !status.is_success() {
        bail!("router answered {status}: {v}");
    }
    let trust = match (v["ca_pem"].as_str(), v["fingerprint"].as_str()) {
        (Some(pem), _) => Trust::CaPem(pem.as_bytes().to_vec()),
        (None, Some(fp)) => Trust::fingerprint(fp)?,
        (None, None) => bail!("router gave no CA or fingerprint: {v}"),
    };
    Ok(CellTarget {
        addr: v["quic_addr"].as_str().unwrap_or_default().parse()?,
        server_name: v["server_name"].as_str().unwrap_or("localhost").to_owned(),
        trust,
    })
}

/// A new connection with a fresh token, resuming `resume` if given.
pub(super) async fn connect(
    ctx: &Ctx,
    id: u64,
    cell: Option<&CellTarget>,
    resume: Option<u64>,
) -> anyhow::Result<DriverClient> {
    let token = ctx.token("driver", id).await?;
    match cell {
        None => {
            let mut opts = ConnectOptions::new(ctx.args.quic, &ctx.args.server_name, &token);
            opts.resume = resume;
            Ok(DriverClient::connect_on(&ctx.endpoint, &opts).await?)
        }
        Some(t) => {
            Ok(
                DriverClient::connect(t.addr, &t.server_name, t.trust.clone(), &token, resume)
                    .await?,
            )
        }
    }
}

/// The delivery the cell has this driver carrying, from the router's
/// `GET /api/v1/drivers/me/delivery` (routed by position to the cell serving it): after a
/// reconnect, whether an offer accepted just before the connection ended was assigned.
/// `Some(delivery_id)` only when the order has a driver (this one).
pub(super) async fn assigned_delivery(
    ctx: &Ctx,
    router: &str,
    id: u64,
    route: &Route,
) -> anyhow::Result<Option<u64>> {
    let (lat, lng) = route.position();
    let token = ctx.token("driver", id).await?;
    let url = format!(
        "{}/api/v1/drivers/me/delivery?lat={lat}&lng={lng}",
        router.trim_end_matches('/')
    );
    let r = ctx.http.get(url).bearer_auth(token).send().await?;
    if r.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let status = r.status();
    let v: serde_json::Value = r.json().await?;
    if !status.is_success() {
        bail!("router answered {status}: {v}");
    }
    let carried = matches!(
        v["status"].as_str(),
        Some("driver_assigned" | "driver_at_restaurant" | "picked_up" | "delivering")
    );
    Ok(v["delivery_id"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .filter(|_| carried))
}

/// An offer accepted just before the connection ended: the assignment may have been sent
/// while we were away, and the cell does not send it again. Asks the router what the cell
/// has us carrying, as a driver app does on reconnecting; without an answer the offer is
/// given up (counted in `jobs_forgotten`; the order then waits with this driver).
pub(super) async fn after_accept_lost(
    ctx: &Ctx,
    id: u64,
    route: &mut Route,
    offer: schemas::Offer,
) -> super::Job {
    if let Some(router) = &ctx.args.router {
        match assigned_delivery(ctx, router, id, route).await {
            Ok(Some(d)) if d == offer.delivery_id => {
                ctx.stats
                    .assigned
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                ctx.stats
                    .jobs_resumed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                route.go_to(offer.pickup.lat, offer.pickup.lng);
                return super::Job::ToRestaurant(offer);
            }
            Ok(_) => return super::Job::Free,
            Err(e) => ctx
                .stats
                .error(format!("driver {id}: current delivery: {e:#}")),
        }
    }
    ctx.stats
        .jobs_forgotten
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    super::Job::Free
}
