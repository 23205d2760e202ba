//! Placing an order (Flow 1 of the seed) as one call, [`Orders::place`], in this order:
//!
//! 1. Replay: a request whose idempotency key already placed an order gets that order back,
//!    before the cart is validated again (the menu or the opening hours may have changed
//!    since, but the order exists and its funds are held).
//! 2. Price: the cart is validated and priced from the menu ([`Orders::quote`], which the
//!    quote endpoint calls too); prices never come from the client.
//! 3. Ownership: a restaurant whose region moved to another cell is refused, so every order
//!    of the region is created on its new owner.
//! 4. Limit: a customer places at most [`OrderLimit::max`] orders per window, counted from
//!    the stored orders (`limit.rs`); a replay is answered before, so a retry never hits it.
//! 5. Reserve the order id for the idempotency key, authorize the payment with a key derived
//!    from that id, then create the order. A retry at any point finds the reserved id, so the
//!    provider holds the funds once and the store writes the order once. When the provider
//!    cannot be reached (timeout, outage, open circuit, an answer we cannot read), the order
//!    is written as `payment_pending` with its authorization request queued in the same
//!    transaction (`queue.rs`): placement never fails because the provider is down.
//!
//! Transports only turn their request into a [`PlaceOrder`] and the [`PlaceError`] into
//! their own answer.

use super::Orders;
use super::limit::OrderLimit;
use super::once::WriteOp;
use super::repo::{self, Created, RepoError};
use catalog::{CartError, CartRequest, Catalog, PricedCart, PricingConfig};
use cellmap::CellInfo;
use domain::order::{Address, OrderItem};
use domain::{
    Cents, CustomerId, KitchenStage, Order, OrderStatus, PaymentState, RestaurantId, UnixMs,
};
use payments::{AuthorizeRequest, Op, PaymentError, idempotency_key};
use std::sync::Arc;

/// What placement prices carts with: the menus and the cell's pricing settings.
pub struct Pricing {
    pub catalog: Arc<Catalog>,
    pub config: PricingConfig,
}

/// A customer's order as they asked for it, every field typed (parsing is the transport's).
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub customer: CustomerId,
    /// The client's key for this attempt: a retry with it returns the same order.
    pub idempotency_key: String,
    /// [`fingerprint`] of the request as the client sent it, so a key reused for a different
    /// request is refused.
    pub fingerprint: u64,
    pub restaurant_id: RestaurantId,
    /// Items (menu item ids, quantities, customizations) and the delivery address.
    pub cart: CartRequest,
    pub payment_method_id: String,
    /// The delivery address's personal fields in plaintext: sealed under the customer's
    /// key before anything is written (the cart's `address.formatted` stays empty).
    pub contact: crate::personal::Contact,
}

/// A placed order.
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: Order,
    /// `false`: an idempotent replay of an earlier request returned the order it placed.
    pub created: bool,
}

/// Why an order was not placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The cart is invalid, or the restaurant cannot take it now (closed, out of range).
    #[error(transparent)]
    Cart(#[from] CartError),
    /// The restaurant's region is served by another cell now.
    #[error("restaurant {restaurant} is now served by cell {} ({})", owner.id, owner.name)]
    RegionMoved {
        restaurant: RestaurantId,
        owner: CellInfo,
    },
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// The customer placed their limit of orders in the window; one more is possible after
    /// `retry_after`.
    #[error("at most {} orders per {} s; the next one is possible in {} s", limit.max, limit.window.as_secs(), retry_after.as_secs())]
    Limited {
        limit: OrderLimit,
        retry_after: std::time::Duration,
    },
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The personal fields could not be sealed (the customer was erased, or the key store is
    /// unavailable).
    #[error(transparent)]
    Personal(#[from] crate::personal::PersonalError),
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

/// A priced, validated order ready to be written.
struct Draft {
    customer: CustomerId,
    restaurant_id: RestaurantId,
    restaurant_name: String,
    restaurant_lat: f64,
    restaurant_lng: f64,
    items: Vec<OrderItem>,
    address: Address,
    subtotal: Cents,
    delivery_fee: Cents,
    tax: Cents,
    total: Cents,
    eta_min_minutes: u32,
    eta_max_minutes: u32,
    payment_method_id: String,
    contact: crate::personal::Contact,
}

impl Orders {
    /// Validates and prices a cart for `restaurant` from its menu: totals and the delivery
    /// estimate. Placement prices with this too, so a quote and an order agree.
    pub async fn quote(
        &self,
        restaurant: RestaurantId,
        cart: &CartRequest,
        now: UnixMs,
    ) -> Result<PricedCart, CartError> {
        self.pricing
            .catalog
            .price_cart(restaurant, cart, now, &self.pricing.config)
            .await
    }

    /// Places an order (Flow 1, steps 5–8; the steps are in the module doc).
    pub async fn place(&self, req: PlaceOrder, now: UnixMs) -> Result<Placed, PlaceError> {
        if let Some(order) = repo::find_placed(
            &*self.kv,
            req.customer,
            req.idempotency_key.clone(),
            req.fingerprint,
        )
        .await?
        {
            return Ok(Placed {
                order,
                created: false,
            });
        }
        self.check_order_limit(req.customer, now).await?;
        let rid = req.restaurant_id;
        let priced = self.quote(rid, &req.cart, now).await?;
        // After a region moved, a router on an older map may still send its new orders here.
        if let Some(owner) = rid
            .region()
            .ok()
            .and_then(|r| self.ownership.owned_elsewhere(r))
        {
            return Err(PlaceError::RegionMoved {
                restaurant: rid,
                owner,
            });
        }
        // Priced a moment ago; gone only if the catalog was replaced in between.
        let listing = self
            .pricing
            .catalog
            .restaurant(rid)
            .ok_or(CartError::UnknownRestaurant(rid))?;
        let draft = Draft {
            customer: req.customer,
            restaurant_id: rid,
            restaurant_name: listing.restaurant.name.clone(),
            restaurant_lat: listing.restaurant.lat,
            restaurant_lng: listing.restaurant.lng,
            address: req.cart.address,
            items: priced.items,
            subtotal: priced.subtotal,
            delivery_fee: priced.delivery_fee,
            tax: priced.tax,
            total: priced.total,
            eta_min_minutes: priced.eta_min_minutes,
            eta_max_minutes: priced.eta_max_minutes,
            payment_method_id: req.payment_method_id,
            contact: req.contact,
        };
        self.create(draft, req.idempotency_key, req.fingerprint, now)
            .await
    }

    /// Reserves the order id for the key, authorizes the payment, writes the order.
    async fn create(
        &self,
        draft: Draft,
        idem: String,
        fingerprint: u64,
        now: UnixMs,
    ) -> Result<Placed, PlaceError> {
        let fresh = self.next_order_id(now).await.map_err(RepoError::Store)?;
        let reservation =
            repo::reserve(&*self.kv, draft.customer, idem, fresh, fingerprint).await?;
        if let Some(order) = reservation.existing {
            return Ok(Placed {
                order,
                created: false,
            });
        }
        let id = reservation.order_id;
        let mut address = draft.address;
        if !draft.contact.is_empty() {
            self.vault.warm(draft.customer, now).await?;
            address.sealed = Some(self.vault.seal(draft.customer, id, &draft.contact, now)?);
        }
        let request = AuthorizeRequest {
            amount: draft.total,
            currency: self.currency.clone(),
            payment_method_id: draft.payment_method_id.clone(),
            customer_ref: draft.customer.to_string(),
            idempotency_key: idempotency_key(id, Op::Authorize),
        };
        // A provider that hangs is treated as one that timed out: the order is queued and the
        // queue's resend (same key) finds a hold the abandoned call may still make.
        let answer = tokio::time::timeout(self.placement_wait, self.payments.authorize(&request))
            .await
            .unwrap_or(Err(PaymentError::Timeout));
        let (status, payment_state, payment_ref, queued) = match answer {
            Ok(auth) => (
                OrderStatus::Pending,
                PaymentState::Authorized,
                auth.id,
                None,
            ),
            Err(e) if super::queue::queues(&e) => {
                tracing::info!(order_id = %id, error = %e, "provider unreachable; order queued for authorization");
                let queued = Some(request);
                let pending = PaymentState::AuthorizationPending;
                (OrderStatus::PaymentPending, pending, String::new(), queued)
            }
            Err(e) => return Err(e.into()),
        };
        // A replay reuses the id reserved first, so its creation time is that of the id.
        let created_at = UnixMs(id.created_ms().min(now.0));
        let order = Order {
            id,
            customer_id: draft.customer,
            restaurant_id: draft.restaurant_id,
            restaurant_name: draft.restaurant_name,
            restaurant_lat: draft.restaurant_lat,
            restaurant_lng: draft.restaurant_lng,
            status,
            kitchen: KitchenStage::Received,
            driver_id: None,
            delivery_id: None,
            items: draft.items,
            delivery_address: address,
            subtotal: draft.subtotal,
            delivery_fee: draft.delivery_fee,
            tax: draft.tax,
            total: draft.total,
            payment_state,
            payment_ref,
            estimated_delivery_min: now.plus(minutes(draft.eta_min_minutes)),
            estimated_delivery_max: now.plus(minutes(draft.eta_max_minutes)),
            delayed: false,
            cancel_reason: None,
            created_at,
            updated_at: now,
        };
        let op = WriteOp::new(now);
        match repo::create_with(&*self.kv, self.log, order, queued, &op).await? {
            Created::New(order) => {
                metrics::counter!("cell_orders_created_total").increment(1);
                if order.status == OrderStatus::PaymentPending {
                    metrics::counter!("cell_payment_queue_enqueued_total").increment(1);
                }
                Ok(Placed {
                    order,
                    created: true,
                })
            }
            Created::Existing(order) => Ok(Placed {
                order,
                created: false,
            }),
        }
    }
}

fn minutes(m: u32) -> std::time::Duration {
    std::time::Duration::from_secs(u64::from(m) * 60)
}
