//! The async side of matching, as [`Dispatch`] runs it: starting jobs from order events, the
//! tick that expires offers and lost sessions, offering waiting orders to ranked candidates
//! from the geostore, and the loop that drives it all. Every decision is the sans-IO
//! [`Matcher`](super::machine::Matcher)'s; this file feeds it candidates and time and carries
//! out its answers (messages, geostore states, store transitions).

use super::machine::{Candidate, JobSpec, Step};
use crate::dispatch::{Dispatch, to_geo};
use crate::orders::repo::{self, RepoError};
use domain::{
    Actor, Command, DeliveryId, DriverId, EventKind, Order, OrderEvent, OrderId, OrderStatus,
    UnixMs,
};
use geostore::{DriverState, Filter};
use schemas::{CancelReason, CancelTarget, Cancellation, CellBody, Offer, Place};
use std::sync::Arc;
use std::time::Duration;

impl Dispatch {
    pub(in crate::dispatch) async fn after_step(&self, order: OrderId, step: Step, now: UnixMs) {
        match step {
            Step::Idle => {}
            Step::Widened => {
                metrics::counter!("cell_matching_widened_total").increment(1);
            }
            Step::FlagDelayed => {
                metrics::counter!("cell_matching_delayed_total").increment(1);
                if let Err(e) = self
                    .orders
                    .transition(order, Command::FlagDelayed, Actor::System, now)
                    .await
                {
                    tracing::debug!(%order, error = %e, "could not flag order delayed");
                }
            }
        }
    }

    /// Starts matching an order (idempotent).
    pub fn start_matching(&self, order: Order, now: UnixMs) {
        if order.driver_id.is_some() || order.status.is_terminal() {
            return;
        }
        let Some(delivery) = order
            .delivery_id
            .or_else(|| self.orders.next_delivery_id(now))
        else {
            // The id lease ran out while the store refused writes: no id is risked twice; the
            // next tick tries again (`State::unstarted`).
            tracing::error!(order = %order.id, "no delivery id: the id lease is not renewed (store unavailable)");
            self.state.lock().unstarted.push(order);
            return;
        };
        let spec = JobSpec {
            order: order.id,
            delivery,
            pickup: (order.restaurant_lat, order.restaurant_lng),
            dropoff: (order.delivery_address.lat, order.delivery_address.lng),
            arrived: order.created_at,
            value: order.total,
        };
        let mut st = self.state.lock();
        if st.matcher.add(spec, now, &self.cfg.matching) {
            st.jobs.insert(order.id, order);
            metrics::gauge!("cell_matching_waiting").set(st.matcher.waiting() as f64);
        }
        drop(st);
        self.wake.notify_one();
    }

    /// Stops matching a cancelled order; tells a driver who had it.
    pub fn order_cancelled(
        &self,
        order: OrderId,
        driver: Option<DriverId>,
        delivery: Option<DeliveryId>,
        at: UnixMs,
    ) {
        let mut st = self.state.lock();
        st.unstarted.retain(|o| o.id != order);
        if let Some(open) = st.matcher.remove(order) {
            st.withdrawn
                .push(crate::dispatch::offers::OfferId(open.offer_id));
            let _ = self.geo.compare_and_set_state(
                to_geo(open.driver),
                DriverState::Offered,
                DriverState::Available,
            );
            let target = CancelTarget::Offer {
                offer_id: open.offer_id,
                delivery_id: open.delivery.0,
            };
            self.send(
                &st,
                open.driver,
                CellBody::Cancellation(Cancellation {
                    target,
                    reason: CancelReason::OrderCancelled,
                }),
            );
        }
        st.jobs.remove(&order);
        if let (Some(d), Some(del)) = (driver, delivery) {
            let target = CancelTarget::Delivery { delivery_id: del.0 };
            self.send(
                &st,
                d,
                CellBody::Cancellation(Cancellation {
                    target,
                    reason: CancelReason::OrderCancelled,
                }),
            );
            drop(st);
            let carried = self.carrying.write().remove(&d);
            if let Some(carried) = carried {
                self.schedule_revoke(d, &carried, at);
            }
            if let Some(h) = self.history.get() {
                h.finish(del);
            }
            let _ = self.geo.set_state(to_geo(d), DriverState::Available);
        }
    }

    pub(in crate::dispatch) fn offer_msg(
        &self,
        order: &Order,
        spec: &JobSpec,
        offer_id: u64,
        expires_at: UnixMs,
    ) -> Offer {
        Offer {
            offer_id,
            delivery_id: spec.delivery.0,
            order_id: order.id.0,
            // The order keeps no restaurant address; the driver navigates by coordinates.
            pickup: place(spec.pickup, &order.restaurant_name, ""),
            // An offer is not the delivery: the centre of the dropoff's H3 resolution-8 cell,
            // never the address (`personal::window`).
            dropoff: place(
                crate::personal::window::approximate(spec.dropoff.0, spec.dropoff.1),
                "",
                "",
            ),
            payout_cents: crate::earnings::payout(&self.cfg, order).0,
            // The display deadline: the lease runs `offer_display_margin_ms` longer, so a
            // tap at the shown deadline still lands in time.
            expires_at_ms: expires_at
                .0
                .saturating_sub(self.cfg.matching.offer_display_margin_ms as i64)
                .max(0) as u64,
        }
    }

    /// One pass: expire offers and lost sessions, then offer waiting orders to drivers.
    pub async fn tick(&self, now: UnixMs) {
        self.send_due_revocations(now);
        let unstarted = std::mem::take(&mut self.state.lock().unstarted);
        for order in unstarted {
            self.start_matching(order, now);
        }
        let gone = {
            let mut st = self.state.lock();
            // Drivers whose connection stayed lost past the grace period go offline.
            let grace = Duration::from_millis(self.cfg.reconnect_grace_ms);
            let mut gone: Vec<DriverId> = st
                .sessions
                .iter()
                .filter(|(_, s)| s.lost_at.is_some_and(|t| now.since(t) >= grace))
                .map(|(d, _)| *d)
                .collect();
            // By id, not the map's order: the offers they held move on in a fixed order.
            gone.sort_unstable();
            for d in &gone {
                st.sessions.remove(d);
                if !self.carrying.read().contains_key(d) {
                    let _ = self.geo.set_state(to_geo(*d), DriverState::Offline);
                }
            }
            gone
        };
        // Leases first (each its own transaction), then the matcher follows what committed;
        // an offer they held moves on at once, as undeliverable.
        self.expire_offers(now, gone).await;
        // An order whose search came up empty for the last time at 5 km is due again at once
        // at 10 km: offered in this same tick, so when the wide offer goes out depends on
        // `now` alone, not on how soon a wake-up runs the next tick. Only widened orders are
        // due in the second pass, and an order widens once.
        if self.offer_waiting(now).await {
            self.offer_waiting(now).await;
        }
    }

    /// Offers every due order to its best reachable candidate. Returns whether an order
    /// widened its radius (and is due again now).
    async fn offer_waiting(&self, now: UnixMs) -> bool {
        let mut widened = false;
        let cfg = &self.cfg.matching;
        let due = self.state.lock().matcher.due(now, cfg);
        let degraded = due.len() > cfg.degrade_above_waiting;
        if degraded {
            metrics::counter!("cell_matching_degraded_total").increment(1);
        }
        for (spec, radius) in due {
            let start = std::time::Instant::now();
            let hits = self
                .geo
                .nearest(
                    spec.pickup.0,
                    spec.pickup.1,
                    radius,
                    cfg.candidates,
                    Filter::available(now.0.max(0) as u64),
                )
                .unwrap_or_default();
            let step = {
                let mut st = self.state.lock();
                let candidates: Vec<Candidate> = hits
                    .iter()
                    .map(|h| {
                        let s = st.stats.get(&DriverId(h.driver.id.0));
                        let rate = s
                            .filter(|s| s.offers >= 3)
                            .map_or(1.0, |s| s.accepts as f64 / s.offers as f64);
                        Candidate {
                            driver: DriverId(h.driver.id.0),
                            distance_m: h.distance_m,
                            lat: h.driver.lat,
                            lng: h.driver.lng,
                            heading_deg: h.driver.heading_deg,
                            speed_mps: h.driver.speed_mps,
                            acceptance_rate: rate,
                        }
                    })
                    .collect();
                let ranked = st.matcher.rank(spec.order, candidates, cfg, degraded);
                let mut chosen = None;
                for c in ranked {
                    // QUIC drivers must be connected; REST-only drivers (no session) poll for offers.
                    let reachable = st.sessions.get(&c.driver).is_none_or(|s| s.tx.is_some());
                    if !reachable {
                        continue;
                    }
                    // Atomically claim the driver: a concurrent offer elsewhere loses this race.
                    if self.geo.compare_and_set_state(
                        to_geo(c.driver),
                        DriverState::Available,
                        DriverState::Offered,
                    ) != Ok(true)
                    {
                        continue;
                    }
                    chosen = st.matcher.offered(spec.order, c.driver, now, cfg);
                    break;
                }
                if chosen.is_none() {
                    metrics::gauge!("cell_matching_waiting").set(st.matcher.waiting() as f64);
                    Err(st.matcher.no_candidate(spec.order, now, cfg))
                } else {
                    Ok(chosen)
                }
            };
            // The lease commits before the driver hears of the offer.
            let step = match step {
                Err(step) => step,
                Ok(None) => Step::Idle,
                Ok(Some(open)) => match self.lease_offer(spec.order, &open, now).await {
                    Err(step) => step,
                    Ok(()) => {
                        let mut st = self.state.lock();
                        let msg = st.jobs.get(&spec.order).map(|order| {
                            CellBody::Offer(self.offer_msg(
                                order,
                                &spec,
                                open.offer_id,
                                open.expires_at,
                            ))
                        });
                        // A full outbox keeps the offer open: it is sent again on reconnect,
                        // or expires as undeliverable.
                        if !msg.is_some_and(|m| self.send(&st, open.driver, m)) {
                            st.undelivered.insert(open.offer_id);
                        }
                        metrics::counter!("cell_offers_total", "outcome" => "sent").increment(1);
                        metrics::gauge!("cell_matching_waiting").set(st.matcher.waiting() as f64);
                        Step::Idle
                    }
                },
            };
            metrics::histogram!("cell_match_attempt_seconds").record(start.elapsed().as_secs_f64());
            if step == Step::Widened {
                metrics::counter!("cell_matching_widened_total").increment(1);
                widened = true;
            } else {
                self.after_step(spec.order, step, now).await;
            }
        }
        widened
    }

    /// Reacts to an order event from the log (the durable "matching" consumer).
    pub fn on_event(&self, ev: &OrderEvent, order: Option<Order>, now: UnixMs) {
        match ev.kind {
            EventKind::OrderConfirmed => {
                if let Some(o) = order {
                    self.start_matching(o, now);
                }
            }
            EventKind::OrderCancelled | EventKind::OrderRejected => {
                let (driver, delivery) =
                    order.map_or((None, None), |o| (o.driver_id, o.delivery_id));
                self.order_cancelled(ev.order_id, driver, delivery, ev.at);
            }
            EventKind::OrderCreated
            | EventKind::OrderPreparing
            | EventKind::OrderReady
            | EventKind::DriverAssigned
            | EventKind::DriverUnassigned
            | EventKind::DriverAtRestaurant
            | EventKind::OrderPickedUp
            | EventKind::OrderDelivering
            | EventKind::OrderDelivered
            | EventKind::OrderDelayed
            | EventKind::OrderPaymentPending
            | EventKind::PaymentFailed => {}
        }
    }

    /// Rebuilds matching and "who carries what" from the store after a restart.
    pub async fn recover(&self, now: UnixMs) -> Result<(), RepoError> {
        let kv = self.orders.kv().clone();
        let mut waiting = Vec::new();
        for s in [
            OrderStatus::Confirmed,
            OrderStatus::Preparing,
            OrderStatus::ReadyForPickup,
        ] {
            repo::for_each_in_status(&*kv, s, repo::RECOVERY_PAGE, |o| {
                waiting.push(o.id);
                self.start_matching(o, now)
            })
            .await?;
        }
        self.recover_offers(waiting, now)
            .await
            .map_err(|e| match e {
                crate::dispatch::offers::OfferError::Repo(r) => r,
                e => RepoError::Store(store::StoreError::Backend(e.to_string())),
            })?;
        for s in [
            OrderStatus::DriverAssigned,
            OrderStatus::DriverAtRestaurant,
            OrderStatus::PickedUp,
            OrderStatus::Delivering,
        ] {
            repo::for_each_in_status(&*kv, s, repo::RECOVERY_PAGE, |o| {
                if let Some(d) = o.driver_id {
                    self.carrying.write().insert(d, o);
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Runs the matching loop until `shutdown` flips: ticks on a timer and when woken.
    pub async fn run(
        self: Arc<Self>,
        clock: Arc<dyn crate::app::Clock>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        let every = Duration::from_millis(self.cfg.tick_ms.max(10));
        // The sweep scans every slot: once a second is plenty against a 30 s staleness, and
        // keeps a full scan off every matching tick (ticks also run on each wake-up).
        let mut last_sweep: Option<UnixMs> = None;
        let mut last_records: Option<UnixMs> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.wake.notified() => {}
                _ = shutdown.changed() => return,
            }
            let now = clock.now();
            self.tick(now).await;
            if last_sweep.is_none_or(|t| now.since(t) >= Duration::from_secs(1)) {
                last_sweep = Some(now);
                let swept = self.geo.sweep(now.0.max(0) as u64);
                metrics::counter!("cell_geostore_swept_total").increment(swept.scanned);
                metrics::counter!("cell_geostore_expired_total").increment(swept.expired);
                metrics::gauge!("cell_geostore_drivers").set(self.geo.len() as f64);
            }
            // A driver's ping record (admin counters, rate limit) goes once no session holds it
            // and the geostore has expired the driver (gone longer than its staleness). Every
            // 30 s: it visits every record.
            if last_records.is_none_or(|t| now.since(t) >= Duration::from_secs(30)) {
                last_records = Some(now);
                let dropped = self.links.retain(|d| self.geo.get(to_geo(d)).is_some());
                metrics::counter!("cell_ping_records_dropped_total").increment(dropped as u64);
            }
        }
    }
}

/// A `Place` the wire accepts: `address` must be 1..=512 bytes (the coordinates when there
/// is no address), `name` at most 256. An offer failing these checks is dropped by the
/// gateway, so the driver would never see it.
fn place(at: (f64, f64), name: &str, address: &str) -> Place {
    fn clip(s: &str, max: usize) -> String {
        let mut end = s.len().min(max);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s[..end].to_owned()
    }
    let address = if address.trim().is_empty() {
        format!("{:.6}, {:.6}", at.0, at.1)
    } else {
        clip(address, 512)
    };
    Place {
        lat: at.0,
        lng: at.1,
        name: clip(name, 256),
        address,
    }
}
