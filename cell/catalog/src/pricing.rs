//! Cart validation, totals and ETA: pure functions of the menu, the cart, `now` and the
//! cell's [`PricingConfig`]. Prices always come from the menu; the client sends only ids,
//! quantities and option names.
//!
//! # Totals (integer cents)
//! - line total = quantity × (item price + Σ chosen option deltas);
//! - subtotal = Σ line totals;
//! - delivery fee = the distance tariff ([`delivery_fee`]);
//! - tax = subtotal × `tax_basis_points` / 10 000, rounded half up. Tax is on the items only:
//!   the delivery fee is a service charge and untaxed in this model;
//! - total = subtotal + delivery fee + tax.
//!
//! # Order of checks
//! Cart shape (empty, too many lines), then every line in order (unknown item, unavailable,
//! quantity, customizations), then the address, the restaurant's hours, the delivery radius.
//! A malformed cart is a client error (400) even when the restaurant is also closed (422).

use crate::geo::haversine_m;
use crate::model::{Menu, Restaurant};
use domain::order::ChosenOption;
use domain::{Address, Cents, MenuItemId, OrderItem, RestaurantId, UnixMs};
use serde::{Deserialize, Serialize};

/// Quantity per line: 1..=50.
pub const MAX_QUANTITY: u32 = 50;
/// Lines per cart.
pub const MAX_LINES: usize = 100;

/// Per-cell pricing: tax rate, delivery tariff and ETA model. Every field has a default, so a
/// config file names only what it changes; unknown keys are an error (typos must not silently
/// fall back to a default price).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PricingConfig {
    /// Tax on the subtotal, in basis points (875 = 8.75%).
    pub tax_basis_points: u32,
    /// Flat fee up to `delivery_base_distance_m`.
    pub delivery_base_fee_cents: Cents,
    pub delivery_base_distance_m: u32,
    /// Added per started kilometre beyond the base distance.
    pub delivery_per_km_cents: Cents,
    /// The fee never exceeds this.
    pub delivery_max_fee_cents: Cents,
    /// Average courier speed for the drive-time estimate.
    pub avg_speed_kmh: f64,
    /// Road distance ÷ straight-line distance: streets are not straight.
    pub road_factor: f64,
    /// Pickup and drop-off overhead added to every ETA.
    pub handoff_min: u32,
    /// Half-width of the shown ETA range ("25-35 min" has a band of 5).
    pub eta_band_min: u32,
}

impl Default for PricingConfig {
    fn default() -> Self {
        Self {
            tax_basis_points: 875,
            delivery_base_fee_cents: Cents(199),
            delivery_base_distance_m: 2_000,
            delivery_per_km_cents: Cents(50),
            delivery_max_fee_cents: Cents(799),
            avg_speed_kmh: 25.0,
            road_factor: 1.3,
            handoff_min: 5,
            eta_band_min: 5,
        }
    }
}

/// Pushes every unusable value, for the cell's one validation pass at startup.
impl service::config::Validate for PricingConfig {
    fn validate(&self, s: &mut service::config::Section<'_>) {
        s.ensure(self.tax_basis_points <= 10_000, "tax_basis_points", || {
            format!(
                "must be at most 10000, i.e. 100% (got {})",
                self.tax_basis_points
            )
        });
        for (key, v) in [
            ("delivery_base_fee_cents", self.delivery_base_fee_cents),
            ("delivery_per_km_cents", self.delivery_per_km_cents),
            ("delivery_max_fee_cents", self.delivery_max_fee_cents),
        ] {
            s.ensure((0..=100_000).contains(&v.0), key, || {
                format!("must be in 0..=100000 (got {})", v.0)
            });
        }
        s.ensure(
            self.avg_speed_kmh.is_finite() && (1.0..=200.0).contains(&self.avg_speed_kmh),
            "avg_speed_kmh",
            || format!("must be in 1..=200 (got {})", self.avg_speed_kmh),
        );
        s.ensure(
            self.road_factor.is_finite() && (1.0..=5.0).contains(&self.road_factor),
            "road_factor",
            || format!("must be in 1..=5 (got {})", self.road_factor),
        );
        s.ensure(self.handoff_min <= 120, "handoff_min", || {
            format!("must be at most 120 (got {})", self.handoff_min)
        });
        s.ensure(self.eta_band_min <= 60, "eta_band_min", || {
            format!("must be at most 60 (got {})", self.eta_band_min)
        });
    }
}

/// The delivery tariff: `base` up to the base distance, then `+per_km` for every started
/// kilometre beyond it, capped at `max`. Defaults: 1.99 up to 2 km, +0.50/km, at most 7.99
/// (2.5 km → 2.49; 3.0 km → 2.49; 3.01 km → 2.99).
pub fn delivery_fee(distance_m: u32, cfg: &PricingConfig) -> Cents {
    let Some(beyond) = distance_m.checked_sub(cfg.delivery_base_distance_m) else {
        return cfg.delivery_base_fee_cents.min(cfg.delivery_max_fee_cents);
    };
    let started_km = i64::from(beyond.div_ceil(1_000));
    let fee = cfg.delivery_base_fee_cents.0 + cfg.delivery_per_km_cents.0 * started_km;
    Cents(fee.min(cfg.delivery_max_fee_cents.0))
}

/// ETA range in minutes: `mid = prep + drive + handoff`, where drive = distance × road
/// factor ÷ average speed, rounded up; the range is `mid ± band`, with the lower end rounded
/// to the nearest 5 minutes (and at least 5) so it reads like "25-35 min".
pub fn eta_range_min(prep_min: u32, distance_m: u32, cfg: &PricingConfig) -> (u32, u32) {
    let metres_per_min = cfg.avg_speed_kmh * 1000.0 / 60.0;
    let drive = (f64::from(distance_m) * cfg.road_factor / metres_per_min).ceil();
    let drive = if drive.is_finite() { drive as u32 } else { 0 };
    let mid = prep_min + drive + cfg.handoff_min;
    let lo = mid.saturating_sub(cfg.eta_band_min);
    let lo = ((lo + 2) / 5 * 5).max(5);
    (lo, lo + 2 * cfg.eta_band_min)
}

/// "25-35 min".
pub fn eta_label(min: u32, max: u32) -> String {
    format!("{min}-{max} min")
}

/// One requested line: an item, a quantity and option names ("Large", "No onions").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    pub item_id: MenuItemId,
    pub quantity: u32,
    #[serde(default)]
    pub customizations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartRequest {
    pub items: Vec<CartLine>,
    pub address: Address,
}

/// A validated, priced cart; every amount in integer cents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricedCart {
    /// The order's items snapshot: names and prices copied from the menu now.
    pub items: Vec<OrderItem>,
    pub subtotal: Cents,
    pub delivery_fee: Cents,
    pub tax: Cents,
    pub total: Cents,
    pub eta_min_minutes: u32,
    pub eta_max_minutes: u32,
    /// Straight-line restaurant → address distance.
    pub distance_m: u32,
}

impl PricedCart {
    /// "35-45 min", the seed's `estimated_delivery`.
    pub fn estimated_time(&self) -> String {
        eta_label(self.eta_min_minutes, self.eta_max_minutes)
    }
}

/// Why a customization was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CustomizationProblem {
    /// No option of the item has this name.
    UnknownOption,
    /// The same option was named twice.
    Duplicate,
    /// A required group has fewer choices than its minimum (`option` names the group).
    RequiredGroupMissing,
    /// More choices in one group than its maximum (`option` names the group).
    TooManyInGroup,
}

/// Why a cart was rejected. Each variant names the offending item where there is one, so the
/// customer can fix exactly that line. `RestaurantClosed` and `OutsideDeliveryRadius` are
/// about the order rather than its contents (422); `UnknownRestaurant` is a 404; the rest are
/// 400s.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CartError {
    #[error("the cart is empty")]
    EmptyCart,
    #[error("the cart has {lines} lines; at most {MAX_LINES} are allowed")]
    TooManyLines { lines: usize },
    #[error("item {0} is not on the menu")]
    UnknownItem(MenuItemId),
    #[error("item {0} ({1}) is currently unavailable")]
    ItemUnavailable(MenuItemId, String),
    #[error("item {item}: customization {option:?} is invalid ({reason:?})")]
    InvalidCustomization {
        item: MenuItemId,
        option: String,
        reason: CustomizationProblem,
    },
    #[error("item {item}: quantity {quantity} is outside 1..={MAX_QUANTITY}")]
    QuantityOutOfRange { item: MenuItemId, quantity: u32 },
    #[error("the delivery address has invalid coordinates")]
    InvalidAddress,
    #[error("the restaurant is closed")]
    RestaurantClosed,
    #[error("the address is {distance_m} m away; the restaurant delivers up to {radius_m} m")]
    OutsideDeliveryRadius { distance_m: u32, radius_m: u32 },
    #[error("restaurant {0} not found")]
    UnknownRestaurant(RestaurantId),
    /// The menu could not be read from the store (it is not always in memory).
    #[error("the menu could not be read: {0}")]
    Unavailable(String),
}

impl CartError {
    /// A stable machine-readable code for the API's error body.
    pub fn code(&self) -> &'static str {
        match self {
            CartError::EmptyCart => "cart.empty",
            CartError::TooManyLines { .. } => "cart.too_many_lines",
            CartError::UnknownItem(_) => "cart.unknown_item",
            CartError::ItemUnavailable(..) => "cart.item_unavailable",
            CartError::InvalidCustomization { .. } => "cart.invalid_customization",
            CartError::QuantityOutOfRange { .. } => "cart.quantity_out_of_range",
            CartError::InvalidAddress => "cart.invalid_address",
            CartError::RestaurantClosed => "restaurant.closed",
            CartError::OutsideDeliveryRadius { .. } => "restaurant.outside_delivery_radius",
            CartError::UnknownRestaurant(_) => "restaurant.not_found",
            CartError::Unavailable(_) => "catalog.unavailable",
        }
    }
}

/// Validates and prices a cart against `menu` at `now`. See the module doc for the totals
/// and the order of checks.
pub fn price_cart(
    restaurant: &Restaurant,
    menu: &Menu,
    cart: &CartRequest,
    now: UnixMs,
    cfg: &PricingConfig,
) -> Result<PricedCart, CartError> {
    let tz = restaurant.tz().ok_or(CartError::RestaurantClosed)?;
    price_cart_tz(restaurant, tz, menu, cart, now, cfg)
}

pub(crate) fn price_cart_tz(
    restaurant: &Restaurant,
    tz: chrono_tz::Tz,
    menu: &Menu,
    cart: &CartRequest,
    now: UnixMs,
    cfg: &PricingConfig,
) -> Result<PricedCart, CartError> {
    if cart.items.is_empty() {
        return Err(CartError::EmptyCart);
    }
    if cart.items.len() > MAX_LINES {
        return Err(CartError::TooManyLines {
            lines: cart.items.len(),
        });
    }
    let items = cart
        .items
        .iter()
        .map(|line| price_line(menu, line))
        .collect::<Result<Vec<_>, _>>()?;

    let addr = &cart.address;
    if !crate::geo::valid_coordinates(addr.lat, addr.lng) {
        return Err(CartError::InvalidAddress);
    }
    if restaurant.manually_closed || !restaurant.hours.is_open_at(tz, now) {
        return Err(CartError::RestaurantClosed);
    }
    let distance = haversine_m(restaurant.lat, restaurant.lng, addr.lat, addr.lng);
    let distance_m = distance.round() as u32;
    if distance > f64::from(restaurant.delivery_radius_m) {
        return Err(CartError::OutsideDeliveryRadius {
            distance_m,
            radius_m: restaurant.delivery_radius_m,
        });
    }

    // Bounded by validation: ≤ 100 lines × 50 units × (≤ 1000 options × $10k) stays far below
    // i64::MAX, so plain addition cannot overflow.
    let subtotal = items.iter().fold(Cents::ZERO, |acc, i| acc + i.line_total);
    let delivery_fee = delivery_fee(distance_m, cfg);
    let tax = subtotal.apply_basis_points(cfg.tax_basis_points);
    let (eta_min_minutes, eta_max_minutes) =
        eta_range_min(restaurant.prep_time_min, distance_m, cfg);
    Ok(PricedCart {
        items,
        subtotal,
        delivery_fee,
        tax,
        total: subtotal + delivery_fee + tax,
        eta_min_minutes,
        eta_max_minutes,
        distance_m,
    })
}

fn price_line(menu: &Menu, line: &CartLine) -> Result<OrderItem, CartError> {
    let item = menu
        .item(line.item_id)
        .ok_or(CartError::UnknownItem(line.item_id))?;
    if !item.available {
        return Err(CartError::ItemUnavailable(item.id, item.name.clone()));
    }
    if line.quantity == 0 || line.quantity > MAX_QUANTITY {
        return Err(CartError::QuantityOutOfRange {
            item: item.id,
            quantity: line.quantity,
        });
    }
    let invalid = |option: &str, reason| CartError::InvalidCustomization {
        item: item.id,
        option: option.chars().take(100).collect(),
        reason,
    };
    // Group bounds need per-group counts; items have at most MAX_GROUPS_PER_ITEM groups.
    let mut per_group = vec![0usize; item.customizations.len()];
    let mut chosen: Vec<ChosenOption> = Vec::with_capacity(line.customizations.len());
    for name in &line.customizations {
        let (g, opt) = item
            .find_option(name)
            .ok_or_else(|| invalid(name, CustomizationProblem::UnknownOption))?;
        let group = &item.customizations[g];
        if chosen
            .iter()
            .any(|c| c.group == group.name && c.option == opt.name)
        {
            return Err(invalid(name, CustomizationProblem::Duplicate));
        }
        per_group[g] += 1;
        if per_group[g] > usize::from(group.max) {
            return Err(invalid(&group.name, CustomizationProblem::TooManyInGroup));
        }
        chosen.push(ChosenOption {
            group: group.name.clone(),
            option: opt.name.clone(),
            price_delta: opt.price_delta,
        });
    }
    for (g, group) in item.customizations.iter().enumerate() {
        if per_group[g] < usize::from(group.min) {
            return Err(invalid(
                &group.name,
                CustomizationProblem::RequiredGroupMissing,
            ));
        }
    }
    let unit = chosen.iter().fold(item.price, |acc, c| acc + c.price_delta);
    Ok(OrderItem {
        item_id: item.id,
        name: item.name.clone(),
        quantity: line.quantity,
        unit_price: item.price,
        customizations: chosen,
        line_total: unit * i64::from(line.quantity),
    })
}
