//! The QUIC gateway's [`DriverPort`], implemented on the dispatch: the same calls the REST
//! driver endpoints make.

use super::pings::{PingRejection, SessionSeq};
use super::{DispatchError, DriverLink, DriverUpdate};
use crate::app::App;
use crate::auth::Principal;
use crate::gateway::{Authenticated, DriverPort, PingRejected, PingSink, Session};
use crate::orders::OrderError;
use domain::{DeliveryId, DriverId};
use futures::future::BoxFuture;
use schemas::{
    CloseReason, DriverStatus, LocationPing, OfferDecision, OfferResponse, StatusChange,
};
use std::sync::Arc;

pub struct DispatchPort(pub App);

fn close_reason(e: &DispatchError) -> CloseReason {
    match e {
        DispatchError::UnknownDelivery(_) => CloseReason::UnknownDelivery,
        // The wire has one code for an answer that came too late (`OfferExpired`: "expired or
        // withdrawn"); a superseded offer or a taken order are that to the driver's app.
        DispatchError::Refused(_) => CloseReason::OfferExpired,
        DispatchError::Store(_) => CloseReason::Internal,
        DispatchError::Order(OrderError::Repo(_)) => CloseReason::InvalidTransition,
        DispatchError::Order(OrderError::Payment(_)) => CloseReason::InvalidTransition,
    }
}

impl DriverPort for DispatchPort {
    fn authenticate(&self, token: &str) -> Result<Authenticated, CloseReason> {
        let now = self.0.now();
        match self.0.verifier().verify(token, now) {
            Ok(v) => match v.principal {
                Principal::Driver(d) => Ok(Authenticated {
                    driver: d,
                    valid_for: v.remaining(now),
                }),
                _ => Err(CloseReason::BadToken),
            },
            Err(_) => Err(CloseReason::BadToken),
        }
    }

    fn connected(&self, driver: DriverId, _resume: Option<u64>) -> Session {
        let (id, outbox, resumed) = self.0.dispatch().connect(driver, self.0.now());
        Session {
            id,
            outbox,
            resumed,
            pings: Box::new(SessionPings {
                app: self.0.clone(),
                driver,
                link: self.0.dispatch().link(driver),
                seq: SessionSeq::default(),
            }),
        }
    }

    fn disconnected(&self, driver: DriverId, session: u64) {
        self.0.dispatch().disconnect(driver, session, self.0.now());
    }

    fn status(
        &self,
        driver: DriverId,
        change: StatusChange,
    ) -> BoxFuture<'_, Result<(), CloseReason>> {
        Box::pin(async move {
            let update = match change.status {
                DriverStatus::Online => DriverUpdate::Online,
                DriverStatus::Offline => DriverUpdate::Offline,
                DriverStatus::ArrivedAtRestaurant { delivery_id } => {
                    DriverUpdate::ArrivedAtRestaurant(DeliveryId(delivery_id))
                }
                DriverStatus::PickedUp { delivery_id } => {
                    DriverUpdate::PickedUp(DeliveryId(delivery_id))
                }
                DriverStatus::Delivered { delivery_id } => {
                    DriverUpdate::Delivered(DeliveryId(delivery_id))
                }
            };
            self.0
                .dispatch()
                .update(driver, update, self.0.now())
                .await
                .map(|_| ())
                .map_err(|e| close_reason(&e))
        })
    }

    fn respond(
        &self,
        driver: DriverId,
        resp: OfferResponse,
    ) -> BoxFuture<'_, Result<(), CloseReason>> {
        Box::pin(async move {
            let accept = resp.decision == OfferDecision::Accept;
            // The offer id names the lease; its own fencing number is checked against the
            // order's latest (the QUIC message carries no separate one).
            let offer = Some(crate::dispatch::offers::OfferId(resp.offer_id));
            self.0
                .dispatch()
                .answer(
                    driver,
                    DeliveryId(resp.delivery_id),
                    offer,
                    None,
                    accept,
                    self.0.now(),
                )
                .await
                .map(|_| ())
                .map_err(|e| close_reason(&e))
        })
    }
}

/// One QUIC session's pings: the driver's link (counters) and the session's sequence state,
/// held for the session's life so a datagram needs no lookup.
struct SessionPings {
    app: App,
    driver: DriverId,
    link: Arc<DriverLink>,
    seq: SessionSeq,
}

impl PingSink for SessionPings {
    fn ping(&self, p: &LocationPing) -> Result<(), PingRejected> {
        if p.driver_id != self.driver.0 {
            return Err(PingRejected::WrongDriver);
        }
        let fix = super::GpsFix {
            lat: p.lat,
            lng: p.lng,
            heading: p.heading_deg,
            speed: p.speed_mps,
            ts_ms: p.client_ts_ms,
        };
        self.app
            .dispatch()
            .session_ping(
                self.driver,
                &self.link,
                Some((p.seq, &self.seq)),
                fix,
                self.app.now(),
            )
            .map_err(|e| match e {
                PingRejection::FromFuture { .. } => PingRejected::FromFuture,
                PingRejection::Spoofed { .. } => PingRejected::Spoofed,
                PingRejection::Stale { .. } => PingRejected::Stale,
                PingRejection::RateLimited => PingRejected::RateLimited,
                PingRejection::InvalidCoordinates | PingRejection::TooOld => PingRejected::Invalid,
            })
    }
}
