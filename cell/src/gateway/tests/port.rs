//! A small, real [`DriverPort`] standing in for the cell's dispatch: tokens `driver-<id>`,
//! pings checked and written into a [`GeoStore`], an `Offer` pushed when a driver goes online,
//! an `Assignment` when it is accepted. Enough behaviour to exercise every gateway path.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use domain::DriverId;
use futures::future::BoxFuture;
use geostore::GeoStore;
use schemas::{
    Assignment, CellBody, CloseReason, DriverStatus, LocationPing, Offer, OfferDecision,
    OfferResponse, Place, StatusChange,
};
use tokio::sync::mpsc;

use crate::gateway::{Authenticated, DriverPort, PingRejected, PingSink, Session};

/// Faster than any car in a city: consecutive pings implying more are flagged as spoofed.
const MAX_PLAUSIBLE_MPS: f64 = 70.0;
/// Client clocks may run this far ahead of ours.
const MAX_SKEW_MS: u64 = 5_000;
pub const UNKNOWN_DELIVERY: u64 = 999;

/// The ping side, shared by every session's sink.
#[derive(Default)]
pub struct TestPings {
    pub geo: GeoStore,
    pub ok: AtomicU64,
    pub rejected: AtomicU64,
}

struct Sink {
    driver: DriverId,
    pings: Arc<TestPings>,
}

#[derive(Default)]
pub struct TestPort {
    pub pings: Arc<TestPings>,
    next_session: AtomicU64,
    next_offer: AtomicU64,
    /// Live sessions: driver -> (session id, outbox sender). Replacing one drops the old
    /// sender, which the gateway turns into `superseded`.
    sessions: Mutex<HashMap<u64, (u64, mpsc::Sender<CellBody>)>>,
    /// Open offers: offer id -> (driver, delivery).
    offers: Mutex<HashMap<u64, (u64, u64)>>,
    pub disconnects: Mutex<Vec<(u64, u64)>>,
    /// Each `connected` call: the driver and the name of the thread it ran on (a gateway
    /// thread's, when the gateway was started with `spawn`).
    pub connected_on: Mutex<Vec<(u64, Option<String>)>>,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl TestPort {
    /// Pushes a message to a connected driver, as the dispatch would.
    pub async fn push(&self, driver: u64, body: CellBody) -> bool {
        let tx = self
            .sessions
            .lock()
            .unwrap()
            .get(&driver)
            .map(|s| s.1.clone());
        match tx {
            Some(tx) => tx.send(body).await.is_ok(),
            None => false,
        }
    }

    pub fn connected_drivers(&self) -> usize {
        self.sessions.lock().unwrap().len()
    }

    fn offer(&self, driver: u64) -> Offer {
        let offer_id = self.next_offer.fetch_add(1, Ordering::SeqCst) + 1;
        let delivery_id = 5_000 + offer_id;
        self.offers
            .lock()
            .unwrap()
            .insert(offer_id, (driver, delivery_id));
        let place = |name: &str, lat, lng| Place {
            lat,
            lng,
            name: name.into(),
            address: format!("{name} street 1"),
        };
        Offer {
            offer_id,
            delivery_id,
            order_id: 7_000 + offer_id,
            pickup: place("Pizzeria", 52.52, 13.40),
            dropoff: place("Customer", 52.53, 13.41),
            payout_cents: 650,
            expires_at_ms: now_ms() + 30_000,
        }
    }
}

impl DriverPort for TestPort {
    /// `driver-<id>` is valid for an hour, `driver-<id>@<ms>` for that many milliseconds.
    fn authenticate(&self, token: &str) -> Result<Authenticated, CloseReason> {
        let rest = token.strip_prefix("driver-").ok_or(CloseReason::BadToken)?;
        let (id, ms) = rest.split_once('@').unwrap_or((rest, "3600000"));
        let id: u64 = id.parse().map_err(|_| CloseReason::BadToken)?;
        let ms: u64 = ms.parse().map_err(|_| CloseReason::BadToken)?;
        if id == 0 {
            return Err(CloseReason::BadToken);
        }
        Ok(Authenticated {
            driver: DriverId(id),
            valid_for: Duration::from_millis(ms),
        })
    }

    fn connected(&self, driver: DriverId, resume: Option<u64>) -> Session {
        let thread = std::thread::current().name().map(str::to_owned);
        self.connected_on.lock().unwrap().push((driver.0, thread));
        let (tx, outbox) = mpsc::channel(64);
        let mut sessions = self.sessions.lock().unwrap();
        let resumed = resume.is_some_and(|r| sessions.get(&driver.0).is_some_and(|s| s.0 == r));
        let id = if resumed {
            resume.unwrap_or_default()
        } else {
            self.next_session.fetch_add(1, Ordering::SeqCst) + 1
        };
        sessions.insert(driver.0, (id, tx));
        Session {
            id,
            outbox,
            resumed,
            pings: Box::new(Sink {
                driver,
                pings: Arc::clone(&self.pings),
            }),
        }
    }

    fn disconnected(&self, driver: DriverId, session: u64) {
        let mut sessions = self.sessions.lock().unwrap();
        if sessions.get(&driver.0).is_some_and(|s| s.0 == session) {
            sessions.remove(&driver.0);
        }
        self.disconnects.lock().unwrap().push((driver.0, session));
    }

    fn status(
        &self,
        driver: DriverId,
        change: StatusChange,
    ) -> BoxFuture<'_, Result<(), CloseReason>> {
        Box::pin(async move {
            match change.status {
                // Going online earns an offer, through the outbox like the dispatch's.
                DriverStatus::Online => {
                    let offer = self.offer(driver.0);
                    self.push(driver.0, CellBody::Offer(offer)).await;
                    Ok(())
                }
                DriverStatus::Offline => Ok(()),
                s if s.delivery_id() == Some(UNKNOWN_DELIVERY) => Err(CloseReason::UnknownDelivery),
                _ => Ok(()),
            }
        })
    }

    fn respond(
        &self,
        driver: DriverId,
        resp: OfferResponse,
    ) -> BoxFuture<'_, Result<(), CloseReason>> {
        Box::pin(async move {
            let open = self.offers.lock().unwrap().remove(&resp.offer_id);
            match open {
                Some((d, delivery)) if d == driver.0 && delivery == resp.delivery_id => {
                    if resp.decision == OfferDecision::Accept {
                        let a = Assignment {
                            offer_id: resp.offer_id,
                            delivery_id: delivery,
                            order_id: 7_000 + resp.offer_id,
                        };
                        self.push(driver.0, CellBody::Assignment(a)).await;
                    }
                    Ok(())
                }
                _ => Err(CloseReason::OfferExpired),
            }
        })
    }
}

impl PingSink for Sink {
    fn ping(&self, ping: &LocationPing) -> Result<(), PingRejected> {
        let (driver, this) = (self.driver, &*self.pings);
        let reject = |r| {
            this.rejected.fetch_add(1, Ordering::Relaxed);
            Err(r)
        };
        if ping.driver_id != driver.0 {
            return reject(PingRejected::WrongDriver);
        }
        if ping.client_ts_ms > now_ms() + MAX_SKEW_MS {
            return reject(PingRejected::FromFuture);
        }
        let id = geostore::DriverId(driver.0);
        if let Some(prev) = this.geo.get(id)
            && ping.client_ts_ms > prev.ts_ms
        {
            let d = geostore::haversine_m(prev.lat, prev.lng, ping.lat, ping.lng);
            let dt_s = (ping.client_ts_ms - prev.ts_ms) as f64 / 1000.0;
            if d / dt_s > MAX_PLAUSIBLE_MPS {
                return reject(PingRejected::Spoofed);
            }
        }
        match this.geo.upsert(
            id,
            ping.lat,
            ping.lng,
            ping.heading_deg,
            ping.speed_mps,
            ping.client_ts_ms,
        ) {
            Ok(_) => {
                this.ok.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => reject(PingRejected::Invalid),
        }
    }
}
