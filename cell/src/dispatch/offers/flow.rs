//! The offer leases as [`Dispatch`] runs them: creating the lease of an offer the matcher
//! chose, a driver's answer (accept or decline), expiring and withdrawing leases on the
//! tick, and reading open leases back after a restart. The store transaction decides first
//! (`store.rs`); the in-memory matcher follows what committed.

use super::lease::{Close, LeaseState, OfferId, Refusal};
use super::store::{self, Accepted, Closed, OfferError};
use crate::dispatch::matching::machine::{OpenOffer, Step};
use crate::dispatch::{Dispatch, DispatchError, State, to_geo};
use crate::orders::{OrderError, WriteOp};
use domain::{DeliveryId, DriverId, Order, OrderId, UnixMs};
use geostore::DriverState;
use schemas::{Assignment, CancelReason, CancelTarget, Cancellation, CellBody};

pub(crate) fn offer_error(e: OfferError) -> DispatchError {
    match e {
        OfferError::UnknownDelivery(d) => DispatchError::UnknownDelivery(d),
        OfferError::Refused(r) => DispatchError::Refused(r),
        OfferError::Repo(r) => DispatchError::Order(OrderError::Repo(r)),
        OfferError::Store(s) => DispatchError::Store(s),
    }
}

impl Dispatch {
    /// A driver's answer to an offer, naming the delivery (REST path, QUIC message).
    pub async fn respond(
        &self,
        driver: DriverId,
        delivery: DeliveryId,
        accept: bool,
        now: UnixMs,
    ) -> Result<Option<Order>, DispatchError> {
        self.answer(driver, delivery, None, None, accept, now)
            .await
            .map(|a| a.map(|a| a.order))
    }

    /// A driver's answer naming the offer and the fencing number it carried, when the client
    /// sends them (else the order's latest offer, checked with its own number). An accept
    /// returns what the lease stored: a repeat returns the first accept's reply.
    pub async fn answer(
        &self,
        driver: DriverId,
        delivery: DeliveryId,
        offer: Option<OfferId>,
        fence: Option<u64>,
        accept: bool,
        now: UnixMs,
    ) -> Result<Option<Accepted>, DispatchError> {
        let cfg = &self.cfg.matching;
        let kv = self.orders.kv().clone();
        let refused = |e: OfferError| match e {
            OfferError::Refused(Refusal::NotYours) => DispatchError::UnknownDelivery(delivery),
            e => offer_error(e),
        };
        if !accept {
            let op = WriteOp::new(now);
            let closed = store::decline(&*kv, driver, delivery, offer, &op, cfg.lease())
                .await
                .map_err(refused)?;
            self.lease_closed(&closed, now).await;
            self.wake.notify_one();
            return Ok(None);
        }
        let op = WriteOp::new(now);
        let r = store::accept(
            &*kv,
            self.orders.log(),
            driver,
            delivery,
            offer,
            fence,
            &op,
            cfg.lease(),
        )
        .await;
        let a = match r {
            Ok(a) => a,
            Err(OfferError::Repo(e)) => {
                // The assignment was refused (the driver carries another order, the order
                // moved on): the cell takes the offer back, as nobody's fault.
                let open = self.state.lock().matcher.open_offer_of(driver);
                if let Some((_, open)) = open.filter(|(s, _)| s.delivery == delivery) {
                    let id = OfferId(open.offer_id);
                    if let Ok(Some(c)) =
                        store::close(&*kv, id, Close::Withdrawn, &WriteOp::new(now), cfg.lease())
                            .await
                    {
                        self.lease_closed(&c, now).await;
                    }
                }
                metrics::counter!("cell_offers_total", "outcome" => "assign_failed").increment(1);
                return Err(DispatchError::Order(OrderError::Repo(e)));
            }
            Err(e) => {
                if let OfferError::Refused(r) = &e {
                    metrics::counter!("cell_offer_refusals_total", "reason" => r.code())
                        .increment(1);
                }
                return Err(refused(e));
            }
        };
        if a.replay {
            metrics::counter!("cell_offers_total", "outcome" => "replayed").increment(1);
            // The first accept's reply may have been lost before the dispatch heard of it
            // (a commit with an unknown result): catch up once.
            let known = self
                .carrying
                .read()
                .get(&driver)
                .is_some_and(|o| o.id == a.order.id);
            if !known && a.order.driver_id == Some(driver) && !a.order.status.is_terminal() {
                self.took(driver, delivery, &a);
            }
            return Ok(Some(a));
        }
        self.took(driver, delivery, &a);
        metrics::counter!("cell_offers_total", "outcome" => "accepted").increment(1);
        Ok(Some(a))
    }

    /// The in-memory side of an acceptance that committed: the order leaves matching, the
    /// driver carries it and hears of the assignment.
    fn took(&self, driver: DriverId, delivery: DeliveryId, a: &Accepted) {
        let order = a.order.id;
        {
            // Once per acceptance: a racing repeat that catches up finds it taken here.
            let mut carrying = self.carrying.write();
            if carrying.get(&driver).is_some_and(|o| o.id == order) {
                return;
            }
            carrying.insert(driver, a.order.clone());
        }
        let mut st = self.state.lock();
        st.matcher.remove(order);
        st.jobs.remove(&order);
        st.undelivered.remove(&a.reply.offer.0);
        let stats = st.stats.entry(driver).or_default();
        stats.accepts += 1;
        stats.offers += 1;
        self.send(
            &st,
            driver,
            CellBody::Assignment(Assignment {
                offer_id: a.reply.offer.0,
                delivery_id: delivery.0,
                order_id: order.0,
            }),
        );
        metrics::gauge!("cell_matching_waiting").set(st.matcher.waiting() as f64);
        drop(st);
        let _ = self.geo.set_state(to_geo(driver), DriverState::OnDelivery);
    }

    /// Keeps `body` as the transport's reply to the accept of `offer` unless an earlier
    /// request kept one; returns the kept one.
    pub async fn keep_reply(&self, offer: OfferId, body: String) -> Result<String, DispatchError> {
        store::keep_body(&**self.orders.kv(), offer, body)
            .await
            .map_err(offer_error)
    }

    /// The in-memory side of a lease that closed without an acceptance: the order moves
    /// on, the driver is free again (or offline after too many missed offers).
    pub(in crate::dispatch) async fn lease_closed(&self, c: &Closed, now: UnixMs) {
        let l = &c.lease;
        let order = l.orders[0];
        let locked = matches!(l.state, LeaseState::Declined)
            || (l.state == LeaseState::Expired && !l.undeliverable);
        let outcome = match l.state {
            LeaseState::Declined => "declined",
            LeaseState::Expired if l.undeliverable => "undeliverable",
            LeaseState::Expired => "expired",
            LeaseState::Withdrawn => "withdrawn",
            LeaseState::Open | LeaseState::Accepted => "other",
        };
        metrics::counter!("cell_offers_total", "outcome" => outcome).increment(1);
        let step = {
            let mut st = self.state.lock();
            st.undelivered.remove(&l.offer.0);
            if locked {
                // Received and answered or let lapse: in the acceptance rate.
                st.stats.entry(l.driver).or_default().offers += 1;
            }
            if l.state == LeaseState::Expired {
                self.send(
                    &st,
                    l.driver,
                    CellBody::Cancellation(Cancellation {
                        target: CancelTarget::Offer {
                            offer_id: l.offer.0,
                            delivery_id: l.delivery.0,
                        },
                        reason: CancelReason::OfferExpired,
                    }),
                );
            }
            st.matcher
                .lapsed(order, l.offer.0, locked, now, &self.cfg.matching)
        };
        let state = if c.offline {
            metrics::counter!("cell_drivers_auto_offline_total", "reason" => "missed_offers")
                .increment(1);
            tracing::info!(driver = %l.driver, reason = "missed_offers", "driver set offline");
            DriverState::Offline
        } else {
            DriverState::Available
        };
        let _ = self
            .geo
            .compare_and_set_state(to_geo(l.driver), DriverState::Offered, state);
        self.after_step(order, step, now).await;
    }

    /// The tick's lease work: withdraw the offers of cancelled orders, expire lapsed ones
    /// (undeliverable if the driver's connection is in its grace period or the offer never
    /// reached them), and end the offers of drivers gone past their grace.
    pub(in crate::dispatch) async fn expire_offers(&self, now: UnixMs, gone: Vec<DriverId>) {
        let cfg = self.cfg.matching.lease();
        let kv = self.orders.kv().clone();
        let (withdrawn, expired) = {
            let mut st = self.state.lock();
            let withdrawn = std::mem::take(&mut st.withdrawn);
            let expired: Vec<(OfferId, bool)> = st
                .matcher
                .expired(now)
                .into_iter()
                .map(|(_, o)| (OfferId(o.offer_id), undeliverable(&st, &o)))
                .collect();
            (withdrawn, expired)
        };
        for id in withdrawn {
            if let Err(e) = store::close(&*kv, id, Close::Withdrawn, &WriteOp::new(now), cfg).await
            {
                tracing::warn!(offer = %id, error = %e, "could not withdraw offer; retried");
                self.state.lock().withdrawn.push(id);
            }
        }
        let gone_offers: Vec<OfferId> = {
            let st = self.state.lock();
            gone.iter()
                .filter_map(|d| st.matcher.open_offer_of(*d))
                .map(|(_, o)| OfferId(o.offer_id))
                .collect()
        };
        let all = expired
            .into_iter()
            .chain(gone_offers.into_iter().map(|id| (id, true)));
        for (id, undeliverable) in all {
            match store::close(
                &*kv,
                id,
                Close::Expired { undeliverable },
                &WriteOp::new(now),
                cfg,
            )
            .await
            {
                Ok(Some(c)) => self.lease_closed(&c, now).await,
                // Closed meanwhile. Accepted: the accept's own path updates the matcher, unless
                // its reply was lost before it could (then this catches up).
                Ok(None) => self.adopt_if_accepted(id).await,
                Err(e) => tracing::warn!(offer = %id, error = %e, "could not expire offer"),
            }
        }
    }

    /// A lease the matcher still holds open was accepted in the store: take the acceptance.
    async fn adopt_if_accepted(&self, id: OfferId) {
        let kv = self.orders.kv().clone();
        let Ok(Some(l)) = store::get_lease(&*kv, id).await else {
            return;
        };
        let Some(reply) = l.reply.filter(|_| l.state == LeaseState::Accepted) else {
            return;
        };
        let Ok(Some(order)) = crate::orders::repo::get(&*kv, l.orders[0]).await else {
            return;
        };
        let still_open = self
            .state
            .lock()
            .matcher
            .open_offer_of(l.driver)
            .is_some_and(|(_, o)| o.offer_id == id.0);
        if still_open && order.driver_id == Some(l.driver) && !order.status.is_terminal() {
            let a = Accepted {
                reply,
                order,
                replay: true,
                body: l.body,
            };
            self.took(l.driver, l.delivery, &a);
        }
    }

    /// Creates the lease of the offer the matcher just recorded; on refusal the matcher
    /// takes the offer back and the driver is free again.
    pub(in crate::dispatch) async fn lease_offer(
        &self,
        order: OrderId,
        open: &OpenOffer,
        now: UnixMs,
    ) -> Result<(), Step> {
        let cfg = &self.cfg.matching;
        let r = store::create(
            &**self.orders.kv(),
            OfferId(open.offer_id),
            order,
            open.delivery,
            open.driver,
            &WriteOp::new(now),
            cfg.lease(),
            cfg.reoffer_when_exhausted,
        )
        .await;
        match r {
            Ok(l) => {
                debug_assert_eq!(l.expires_at, open.expires_at);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(%order, driver = %open.driver, error = %e, "offer not created");
                let _ = self.geo.compare_and_set_state(
                    to_geo(open.driver),
                    DriverState::Offered,
                    DriverState::Available,
                );
                let locked = matches!(e, OfferError::Refused(Refusal::LockedOut));
                let step = self
                    .state
                    .lock()
                    .matcher
                    .lapsed(order, open.offer_id, locked, now, cfg);
                Err(step)
            }
        }
    }

    /// After a restart: offer ids resume above the highest stored, lockouts of waiting
    /// orders are restored, open leases past expiry are expired (undeliverable: the cell
    /// was down), the others are held by the matcher again.
    pub(in crate::dispatch) async fn recover_offers(
        &self,
        waiting: Vec<OrderId>,
        now: UnixMs,
    ) -> Result<(), OfferError> {
        let kv = self.orders.kv().clone();
        let cfg = self.cfg.matching.lease();
        for order in waiting {
            let fence = store::fence(&*kv, order).await?;
            self.state.lock().matcher.lock_out(order, fence.locked_out);
        }
        let (open, max) = store::recovery_view(&*kv).await?;
        if let Some(max) = max {
            self.state.lock().matcher.resume_offer_ids(max.0);
        }
        for l in open {
            if l.expires_at <= now {
                let how = Close::Expired {
                    undeliverable: true,
                };
                if let Some(c) = store::close(&*kv, l.offer, how, &WriteOp::new(now), cfg).await? {
                    self.lease_closed(&c, now).await;
                }
                continue;
            }
            let open = OpenOffer {
                driver: l.driver,
                delivery: l.delivery,
                offer_id: l.offer.0,
                expires_at: l.expires_at,
            };
            if !self.state.lock().matcher.restore(l.orders[0], open) {
                // Its order is not waiting any more (cancelled while the cell was down).
                if let Some(c) =
                    store::close(&*kv, l.offer, Close::Withdrawn, &WriteOp::new(now), cfg).await?
                {
                    self.lease_closed(&c, now).await;
                }
            }
        }
        Ok(())
    }

    /// The lease of the driver's open offer (its id and fencing number, for an accept that
    /// names them).
    pub async fn open_lease(&self, driver: DriverId) -> Option<super::lease::Lease> {
        let open = self.state.lock().matcher.open_offer_of(driver)?.1;
        store::get_lease(&**self.orders.kv(), OfferId(open.offer_id))
            .await
            .ok()
            .flatten()
    }

    /// A driver's offer record (acceptance counts, timeout streak, offline reason).
    pub async fn offer_record(
        &self,
        driver: DriverId,
    ) -> Result<super::lease::DriverRecord, DispatchError> {
        store::driver_record(&**self.orders.kv(), driver)
            .await
            .map_err(offer_error)
    }
}

/// The driver could not have received `o`: their connection is in its grace period, or
/// its message never reached their session.
fn undeliverable(st: &State, o: &OpenOffer) -> bool {
    let lost = st.sessions.get(&o.driver).is_some_and(|s| s.tx.is_none());
    lost || st.undelivered.contains(&o.offer_id)
}
