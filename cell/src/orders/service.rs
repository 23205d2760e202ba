//! The order service: Flow 1 of the seed around the repository. Placement reserves the
//! order id for the client's idempotency key, authorizes the payment with a key derived
//! from that id, then writes the order. A transition that needs a payment effect (capture
//! on accept, void on reject, refund after capture) calls the gateway first, with a key
//! derived from the order id, then writes the transition guarded by the status it was
//! decided on. Retries at any point repeat nothing the provider or the store would see twice.

use super::repo::{self, Created, RepoError};
use domain::machine::decide;
use domain::order::{Address, OrderItem};
use domain::{
    Actor, Cents, Command, CustomerId, KitchenStage, Order, OrderId, OrderStatus, PaymentAction,
    PaymentState, RestaurantId, SnowflakeGen, Transition, UnixMs,
};
use payments::{AuthorizeRequest, Op, PaymentError, PaymentGateway, idempotency_key};
use std::sync::{Arc, Mutex};
use store::{Kv, LogId};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// A priced, validated order ready to be placed (prices come from the menu, never the
/// client).
#[derive(Debug, Clone)]
pub struct Draft {
    pub customer: CustomerId,
    pub restaurant_id: RestaurantId,
    pub restaurant_name: String,
    pub restaurant_lat: f64,
    pub restaurant_lng: f64,
    pub items: Vec<OrderItem>,
    pub address: Address,
    pub subtotal: Cents,
    pub delivery_fee: Cents,
    pub tax: Cents,
    pub total: Cents,
    pub eta_min_minutes: u32,
    pub eta_max_minutes: u32,
    pub payment_method_id: String,
}

/// A stable fingerprint of a request's bytes (FNV-1a), so a reused idempotency key with a
/// different request is refused.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub struct OrderService {
    kv: Arc<dyn Kv>,
    log: LogId,
    ids: Mutex<SnowflakeGen>,
    payments: Arc<dyn PaymentGateway>,
    currency: String,
}

/// How many times a transition is re-decided when the order moved under it.
const TRANSITION_ATTEMPTS: usize = 3;

impl OrderService {
    pub fn new(
        kv: Arc<dyn Kv>,
        log: LogId,
        ids: SnowflakeGen,
        payments: Arc<dyn PaymentGateway>,
        currency: String,
    ) -> Self {
        Self {
            kv,
            log,
            ids: Mutex::new(ids),
            payments,
            currency,
        }
    }

    /// A fresh delivery id (a Snowflake of this cell).
    pub fn next_delivery_id(&self, now: UnixMs) -> domain::DeliveryId {
        self.ids
            .lock()
            .expect("id generator lock")
            .next_delivery(now.0)
    }

    pub fn kv(&self) -> &Arc<dyn Kv> {
        &self.kv
    }

    pub fn log(&self) -> LogId {
        self.log
    }

    /// Places an order (Flow 1, steps 5–8). Returns the order and whether it was created
    /// now (`false`: an idempotent replay of an earlier request).
    pub async fn place(
        &self,
        draft: Draft,
        idem: String,
        fingerprint: u64,
        now: UnixMs,
    ) -> Result<(Order, bool), OrderError> {
        let fresh = self
            .ids
            .lock()
            .expect("id generator lock")
            .next_order(now.0);
        let reservation =
            repo::reserve(&*self.kv, draft.customer, idem, fresh, fingerprint).await?;
        if let Some(existing) = reservation.existing {
            return Ok((existing, false));
        }
        let id = reservation.order_id;
        let auth = self
            .payments
            .authorize(&AuthorizeRequest {
                amount: draft.total,
                currency: self.currency.clone(),
                payment_method_id: draft.payment_method_id.clone(),
                customer_ref: draft.customer.to_string(),
                idempotency_key: idempotency_key(id, Op::Authorize),
            })
            .await?;
        // A replay reuses the id reserved first, so its creation time is that of the id.
        let created_at = UnixMs(id.created_ms().min(now.0));
        let order = Order {
            id,
            customer_id: draft.customer,
            restaurant_id: draft.restaurant_id,
            restaurant_name: draft.restaurant_name,
            restaurant_lat: draft.restaurant_lat,
            restaurant_lng: draft.restaurant_lng,
            status: OrderStatus::Pending,
            kitchen: KitchenStage::Received,
            driver_id: None,
            delivery_id: None,
            items: draft.items,
            delivery_address: draft.address,
            subtotal: draft.subtotal,
            delivery_fee: draft.delivery_fee,
            tax: draft.tax,
            total: draft.total,
            payment_state: PaymentState::Authorized,
            payment_ref: auth.id,
            estimated_delivery_min: now.plus(minutes(draft.eta_min_minutes)),
            estimated_delivery_max: now.plus(minutes(draft.eta_max_minutes)),
            delayed: false,
            cancel_reason: None,
            created_at,
            updated_at: now,
        };
        match repo::create(&*self.kv, self.log, order).await? {
            Created::New(o) => {
                metrics::counter!("cell_orders_created_total").increment(1);
                Ok((o, true))
            }
            Created::Existing(o) => Ok((o, false)),
        }
    }

    /// The order an earlier request with this key already placed, if any: answered before
    /// the cart is re-validated, so a retry returns the order even if the menu changed since.
    pub async fn replay(
        &self,
        customer: CustomerId,
        idem: String,
        fingerprint: u64,
    ) -> Result<Option<Order>, OrderError> {
        Ok(repo::find_placed(&*self.kv, customer, idem, fingerprint).await?)
    }

    /// Applies `cmd` for `actor`, running the transition's payment effect first.
    pub async fn transition(
        &self,
        id: OrderId,
        cmd: Command,
        actor: Actor,
        now: UnixMs,
    ) -> Result<(Order, Transition), OrderError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let order = repo::get(&*self.kv, id)
                .await?
                .ok_or(RepoError::NotFound(id))?;
            let decision = decide(&order, &cmd, &actor).map_err(RepoError::from)?;
            if let Some(action) = decision.payment {
                self.pay(&order, action).await?;
            }
            match repo::transition(
                &*self.kv,
                self.log,
                id,
                cmd.clone(),
                actor,
                Some(order.status),
                now,
            )
            .await
            {
                Err(RepoError::Changed { .. }) if attempt < TRANSITION_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
                Ok((o, t)) => {
                    metrics::counter!("cell_order_transitions_total", "to" => o.status.as_str(), "event" => t.event.as_str()).increment(1);
                    return Ok((o, t));
                }
            }
        }
    }

    async fn pay(&self, order: &Order, action: PaymentAction) -> Result<(), PaymentError> {
        let op = Op::from(action);
        let key = idempotency_key(order.id, op);
        let r = match action {
            PaymentAction::Capture => {
                self.payments
                    .capture(&order.payment_ref, order.total, &key)
                    .await
            }
            PaymentAction::Void => self.payments.void(&order.payment_ref, &key).await,
            PaymentAction::Refund => {
                self.payments
                    .refund(&order.payment_ref, order.total, &key)
                    .await
            }
        };
        r.map(|_| ())
    }
}

fn minutes(m: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(m) * 60)
}
