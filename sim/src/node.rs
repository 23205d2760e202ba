//! The cell's components wired as `cell::server` wires them, minus sockets and run loops:
//! the order flows, dispatch and matching, tracking, the payment worker and the
//! notification consumer, on one store. The world calls their single passes on its own
//! schedule. A crash drops a [`Node`]; [`Node::build`] on the same store is the restart
//! (ids resumed, matching and "who carries what" recovered, consumers from their cursors).

use crate::clock::VirtualClock;
use catalog::Catalog;
use cell::dispatch::Dispatch;
use cell::dispatch::matching::machine::MatchConfig;
use cell::events::{self, Start};
use cell::notify::PushProvider;
use cell::orders::{Orders, Pricing, QueueConfig};
use cell::ownership::Ownership;
use cell::saga::{PaymentWorker, PaymentWorkerConfig};
use cell::tracking::{Tracker, TrackingConfig};
use domain::{CellId, EventKind, SnowflakeGen, UnixMs};
use payments::PaymentGateway;
use std::sync::Arc;
use store::{Kv, LogId, LogPos};

/// The cell id every simulated cell runs as.
pub const CELL: u16 = 1;

/// One live instance of the cell.
pub struct Node {
    pub kv: Arc<dyn Kv>,
    pub log: LogId,
    pub orders: Arc<Orders>,
    pub dispatch: Arc<Dispatch>,
    pub tracker: Arc<Tracker>,
    worker: PaymentWorker,
    push: Arc<dyn PushProvider>,
    queue: QueueConfig,
    matching_cursor: LogPos,
    notify_cursor: LogPos,
    pay_cursor: LogPos,
    live_cursor: LogPos,
}

/// What a consumer pass did, for the trace.
#[derive(Debug, Default, Clone, Copy)]
pub struct Passes {
    pub events: usize,
    pub failed: bool,
}

impl Node {
    /// Builds the cell on `kv` (already scoped to the cell) as a (re)start does.
    pub async fn build(
        kv: Arc<dyn Kv>,
        payments: Arc<dyn PaymentGateway>,
        push: Arc<dyn PushProvider>,
        clock: Arc<VirtualClock>,
        matching: MatchConfig,
        vault: Arc<cell::personal::Vault>,
    ) -> Result<Node, String> {
        let now = clock.get();
        let log = LogId(CELL);
        let catalog = Arc::new(
            Catalog::load(kv.clone())
                .await
                .map_err(|e| format!("catalog: {e}"))?,
        );
        let pricing = catalog::PricingConfig::default();
        let (speed, road) = (pricing.avg_speed_kmh, pricing.road_factor);
        let cell = CellId::new(u32::from(CELL)).map_err(|e| e.to_string())?;
        let orders = Arc::new(Orders::new(
            kv.clone(),
            log,
            SnowflakeGen::new(cell),
            payments.clone(),
            "eur".into(),
            Pricing {
                catalog,
                config: pricing,
            },
            Arc::new(Ownership::new(u32::from(CELL))),
            vault,
        ));
        orders
            .resume_ids(now)
            .await
            .map_err(|e| format!("ids: {e}"))?;
        let tracker = Arc::new(Tracker::new(TrackingConfig::default(), speed, road));
        let geo = Arc::new(geostore::GeoStore::new(geostore::Config::default()));
        let cfg = cell::dispatch::DispatchConfig {
            matching,
            ..Default::default()
        };
        let dispatch = Arc::new(Dispatch::new(cfg, geo, orders.clone(), tracker.clone()));
        dispatch
            .recover(now)
            .await
            .map_err(|e| format!("recover: {e}"))?;
        let worker = PaymentWorker::new(
            kv.clone(),
            log,
            payments,
            PaymentWorkerConfig::default(),
            clock,
        );
        let load = |name| {
            let kv = kv.clone();
            async move {
                events::load_cursor(&*kv, name)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        Ok(Node {
            matching_cursor: load("matching").await?,
            notify_cursor: load(cell::notify::CONSUMER).await?,
            pay_cursor: load(cell::saga::CURSOR).await?,
            live_cursor: kv.log_head(log).await.map_err(|e| e.to_string())?,
            kv,
            log,
            orders,
            dispatch,
            tracker,
            worker,
            push,
            queue: QueueConfig::default(),
        })
    }

    /// The durable "matching" consumer: starts and stops matching on order events.
    pub async fn matching_pass(&mut self, now: UnixMs) -> Result<Passes, String> {
        let kv = self.kv.clone();
        let dispatch = self.dispatch.clone();
        let mut handle = |_pos, ev: domain::OrderEvent| {
            let (kv, dispatch) = (kv.clone(), dispatch.clone());
            async move {
                let order = match ev.kind {
                    EventKind::OrderConfirmed
                    | EventKind::OrderCancelled
                    | EventKind::OrderRejected => cell::orders::repo::get(&*kv, ev.order_id)
                        .await
                        .map_err(|e| e.to_string())?,
                    _ => None,
                };
                dispatch.on_event(&ev, order, now);
                Ok(())
            }
        };
        let b = events::consume_batch(
            &*self.kv,
            self.log,
            Start::Durable("matching"),
            self.matching_cursor,
            &mut handle,
        )
        .await
        .map_err(|e| e.to_string())?;
        self.matching_cursor = b.cursor;
        Ok(Passes {
            events: b.read,
            failed: b.failed,
        })
    }

    /// The live tracking fan-out (from the head at start, nothing saved).
    pub async fn tracking_pass(&mut self) -> Result<Passes, String> {
        let kv = self.kv.clone();
        let (tracker, dispatch) = (self.tracker.clone(), self.dispatch.clone());
        let mut handle = |_pos, ev: domain::OrderEvent| {
            let (kv, tracker, dispatch) = (kv.clone(), tracker.clone(), dispatch.clone());
            async move {
                tracker.event(&ev);
                if ev.driver_id.is_some()
                    && let Ok(Some(o)) = cell::orders::repo::get(&*kv, ev.order_id).await
                {
                    dispatch.refresh_carried(&o);
                }
                Ok(())
            }
        };
        let b = events::consume_batch(
            &*self.kv,
            self.log,
            Start::Head,
            self.live_cursor,
            &mut handle,
        )
        .await
        .map_err(|e| e.to_string())?;
        self.live_cursor = b.cursor;
        Ok(Passes {
            events: b.read,
            failed: b.failed,
        })
    }

    /// The durable notification consumer, one batch.
    pub async fn notify_pass(&mut self) -> Result<Passes, String> {
        let (kv, push, log) = (self.kv.clone(), self.push.clone(), self.log);
        let mut handle = |pos, ev: domain::OrderEvent| {
            let (kv, push) = (kv.clone(), push.clone());
            async move { cell::notify::handle(&*kv, log, &*push, pos, &ev).await }
        };
        let b = events::consume_batch(
            &*self.kv,
            self.log,
            Start::Durable(cell::notify::CONSUMER),
            self.notify_cursor,
            &mut handle,
        )
        .await
        .map_err(|e| e.to_string())?;
        self.notify_cursor = b.cursor;
        Ok(Passes {
            events: b.read,
            failed: b.failed,
        })
    }

    /// The payment worker's consumer, one batch.
    pub async fn worker_consume(&mut self) -> Result<(), String> {
        self.pay_cursor = self.worker.consume_batch(self.pay_cursor).await?;
        Ok(())
    }

    /// The payment worker's retry scan, once.
    pub async fn worker_scan(&self) -> Result<usize, String> {
        self.worker.scan_once().await
    }

    /// One pass over the authorization queue.
    /// One pass over the authorization queue: (orders it settled, orders still waiting).
    pub async fn queue_pass(&self, now: UnixMs) -> Result<(u64, u64), String> {
        let p = self
            .orders
            .drain_payment_queue(&self.queue, now)
            .await
            .map_err(|e| e.to_string())?;
        Ok((p.authorized + p.declined + p.expired + p.raced, p.waiting))
    }

    /// Matching's tick and the geostore's sweep, as the matching loop does them.
    pub async fn tick(&self, now: UnixMs) {
        self.dispatch.tick(now).await;
        self.dispatch.geo().sweep(now.0.max(0) as u64);
    }
}
