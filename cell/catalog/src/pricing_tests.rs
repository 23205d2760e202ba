//! Cart validation and totals: every [`CartError`], the arithmetic, the tariff and the ETA.

use crate::pricing::*;
use crate::testing::{self, LAT, LNG, MORNING, NOON};
use domain::{Address, Cents, MenuItemId};

fn line(item: u64, quantity: u32, opts: &[&str]) -> CartLine {
    CartLine {
        item_id: MenuItemId(item),
        quantity,
        customizations: opts.iter().map(|s| s.to_string()).collect(),
    }
}

/// An address `north_m` metres north of the restaurant.
fn addr(north_m: f64) -> Address {
    Address {
        lat: LAT + (north_m / crate::geo::EARTH_RADIUS_M).to_degrees(),
        lng: LNG,
        formatted: "Somewhere 1".into(),
        sealed: None,
    }
}

fn cart(items: Vec<CartLine>) -> CartRequest {
    CartRequest {
        items,
        address: addr(1_000.0),
    }
}

fn price(c: &CartRequest) -> Result<PricedCart, CartError> {
    price_cart(
        &testing::restaurant(1),
        &testing::menu(),
        c,
        NOON,
        &PricingConfig::default(),
    )
}

#[test]
fn totals_come_from_the_menu() {
    let c = cart(vec![
        line(1, 2, &["large", "Extra cheese", " no onions "]),
        line(2, 3, &[]),
    ]);
    let p = price(&c).unwrap();
    // Margherita: (10.00 + 3.00 + 1.50 + 0) × 2 = 29.00; Cola 2.50 × 3 = 7.50.
    assert_eq!(p.items[0].line_total, Cents(2900));
    assert_eq!(p.items[0].unit_price, Cents(1000));
    assert_eq!(p.items[0].customizations.len(), 3);
    assert_eq!(p.items[0].customizations[0].option, "Large"); // the menu's spelling
    assert_eq!(p.items[1].line_total, Cents(750));
    assert_eq!(p.subtotal, Cents(3650));
    // 1 km: base fee; 8.75% of 36.50 = 3.19375 → 3.19.
    assert_eq!(p.delivery_fee, Cents(199));
    assert_eq!(p.tax, Cents(319));
    assert_eq!(p.total, Cents(3650 + 199 + 319));
    assert_eq!(p.distance_m, 1_000);
    // prep 15 + drive ceil(1.3 km / 25 km/h = 3.12 min) = 4 + handoff 5 = 24 → 20-30 min.
    assert_eq!((p.eta_min_minutes, p.eta_max_minutes), (20, 30));
    assert_eq!(p.estimated_time(), "20-30 min");
}

#[test]
fn negative_deltas_and_zero_tax() {
    let cfg = PricingConfig {
        tax_basis_points: 0,
        ..Default::default()
    };
    let c = cart(vec![line(1, 1, &["Small"])]);
    let p = price_cart(&testing::restaurant(1), &testing::menu(), &c, NOON, &cfg).unwrap();
    assert_eq!(p.subtotal, Cents(900));
    assert_eq!(p.tax, Cents::ZERO);
    assert_eq!(p.total, Cents(900 + 199));
}

#[test]
fn delivery_tariff() {
    let cfg = PricingConfig::default();
    assert_eq!(delivery_fee(0, &cfg), Cents(199));
    assert_eq!(delivery_fee(2_000, &cfg), Cents(199));
    assert_eq!(delivery_fee(2_001, &cfg), Cents(249));
    assert_eq!(delivery_fee(3_000, &cfg), Cents(249));
    assert_eq!(delivery_fee(3_001, &cfg), Cents(299));
    assert_eq!(delivery_fee(10_000, &cfg), Cents(599));
    assert_eq!(delivery_fee(30_000, &cfg), Cents(799)); // capped
    assert_eq!(delivery_fee(u32::MAX, &cfg), Cents(799));
}

#[test]
fn eta_ranges() {
    let cfg = PricingConfig::default();
    // 3 km: drive ceil(3.9 km at 25 km/h) = 10; 15 + 10 + 5 = 30 → 25-35.
    assert_eq!(eta_range_min(15, 3_000, &cfg), (25, 35));
    assert_eq!(eta_range_min(0, 0, &cfg), (5, 15)); // never below 5
    let (lo, hi) = eta_range_min(30, 8_000, &cfg);
    assert!(lo % 5 == 0 && hi == lo + 10 && lo >= 30, "{lo}-{hi}");
}

#[test]
fn config_defaults_and_unknown_keys() {
    let cfg: PricingConfig = serde_json::from_str(r#"{"tax_basis_points": 825}"#).unwrap();
    assert_eq!(cfg.tax_basis_points, 825);
    assert_eq!(cfg.delivery_base_fee_cents, Cents(199));
    assert!(serde_json::from_str::<PricingConfig>(r#"{"tax_rate": 8}"#).is_err());
    assert!(service::config::check("pricing", &PricingConfig::default()).is_ok());
    let bad = PricingConfig {
        avg_speed_kmh: f64::NAN,
        tax_basis_points: 20_000,
        ..Default::default()
    };
    let Err(service::config::ConfigError::Invalid(problems)) =
        service::config::check("pricing", &bad)
    else {
        panic!("accepted {bad:?}");
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["pricing.tax_basis_points", "pricing.avg_speed_kmh"]);
}

#[test]
fn empty_and_too_many_lines() {
    assert_eq!(price(&cart(vec![])), Err(CartError::EmptyCart));
    let many = (0..=MAX_LINES).map(|_| line(2, 1, &[])).collect();
    assert_eq!(
        price(&cart(many)),
        Err(CartError::TooManyLines { lines: 101 })
    );
    let ok = (0..MAX_LINES).map(|_| line(2, 1, &[])).collect();
    assert!(price(&cart(ok)).is_ok());
}

#[test]
fn unknown_and_unavailable_items() {
    let c = cart(vec![line(2, 1, &[]), line(99, 1, &[])]);
    assert_eq!(price(&c), Err(CartError::UnknownItem(MenuItemId(99))));
    let c = cart(vec![line(3, 1, &[])]);
    assert_eq!(
        price(&c),
        Err(CartError::ItemUnavailable(MenuItemId(3), "Tiramisu".into()))
    );
}

#[test]
fn quantity_bounds() {
    for q in [0, MAX_QUANTITY + 1, u32::MAX] {
        assert_eq!(
            price(&cart(vec![line(2, q, &[])])),
            Err(CartError::QuantityOutOfRange {
                item: MenuItemId(2),
                quantity: q
            })
        );
    }
    let p = price(&cart(vec![line(2, MAX_QUANTITY, &[])])).unwrap();
    assert_eq!(p.subtotal, Cents(250 * 50));
}

#[test]
fn customization_errors_name_item_and_option() {
    let err = |opts: &[&str]| price(&cart(vec![line(1, 1, opts)])).unwrap_err();
    let invalid = |option: &str, reason| CartError::InvalidCustomization {
        item: MenuItemId(1),
        option: option.into(),
        reason,
    };
    assert_eq!(
        err(&["Medium", "Pineapple"]),
        invalid("Pineapple", CustomizationProblem::UnknownOption)
    );
    assert_eq!(
        err(&["Medium", "Olives", "olives"]),
        invalid("olives", CustomizationProblem::Duplicate)
    );
    assert_eq!(
        err(&["Extra cheese"]),
        invalid("Size", CustomizationProblem::RequiredGroupMissing)
    );
    assert_eq!(
        err(&["Small", "Large"]),
        invalid("Size", CustomizationProblem::TooManyInGroup)
    );
    assert_eq!(
        err(&["Medium", "Olives", "Basil", "Extra cheese"]),
        invalid("Extras", CustomizationProblem::TooManyInGroup)
    );
    // Options on an item without customizations are unknown.
    assert_eq!(
        price(&cart(vec![line(2, 1, &["Ice"])])).unwrap_err(),
        CartError::InvalidCustomization {
            item: MenuItemId(2),
            option: "Ice".into(),
            reason: CustomizationProblem::UnknownOption
        }
    );
}

#[test]
fn closed_restaurants() {
    let c = cart(vec![line(2, 1, &[])]);
    let menu = testing::menu();
    let cfg = PricingConfig::default();
    let r = testing::restaurant(1);
    assert_eq!(
        price_cart(&r, &menu, &c, MORNING, &cfg),
        Err(CartError::RestaurantClosed)
    );
    let mut closed = r.clone();
    closed.manually_closed = true;
    assert_eq!(
        price_cart(&closed, &menu, &c, NOON, &cfg),
        Err(CartError::RestaurantClosed)
    );
    // Item errors win over a closed restaurant: the cart itself is wrong (400, not 422).
    let bad = cart(vec![line(99, 1, &[])]);
    assert_eq!(
        price_cart(&r, &menu, &bad, MORNING, &cfg),
        Err(CartError::UnknownItem(MenuItemId(99)))
    );
}

#[test]
fn delivery_radius_and_address() {
    let mut c = cart(vec![line(2, 1, &[])]);
    c.address = addr(5_600.0);
    assert_eq!(
        price(&c),
        Err(CartError::OutsideDeliveryRadius {
            distance_m: 5_600,
            radius_m: 5_000
        })
    );
    c.address = addr(4_990.0);
    let p = price(&c).unwrap();
    // 4.99 km: 3 started km beyond 2 km → 1.99 + 1.50.
    assert_eq!(p.delivery_fee, Cents(349));
    c.address.lat = f64::NAN;
    assert_eq!(price(&c), Err(CartError::InvalidAddress));
    c.address.lat = 91.0;
    assert_eq!(price(&c), Err(CartError::InvalidAddress));
}

#[test]
fn error_codes_are_stable() {
    assert_eq!(CartError::EmptyCart.code(), "cart.empty");
    assert_eq!(CartError::RestaurantClosed.code(), "restaurant.closed");
    let msg = CartError::ItemUnavailable(MenuItemId(3), "Tiramisu".into()).to_string();
    assert!(msg.contains("Tiramisu") && msg.contains('3'), "{msg}");
}
