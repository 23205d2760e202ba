//! Fixtures shared by the catalog's unit tests and, with the feature `testing`, by other
//! crates' tests: a Berlin restaurant open 11:00–22:00, a menu with customizations, and times.

use crate::hours::{Interval, WeeklyHours};
use crate::model::{Category, CustomOption, CustomizationGroup, Menu, MenuItem, Restaurant};
use domain::{Cents, MenuItemId, RegionId, RestaurantId, UnixMs};

pub const LAT: f64 = 52.52;
pub const LNG: f64 = 13.405;

/// Wednesday 2026-07-15 12:00 in Berlin (10:00 UTC): inside 11:00–22:00.
pub const NOON: UnixMs = UnixMs(1_784_109_600_000);
/// The same day at 08:00 Berlin: before opening.
pub const MORNING: UnixMs = UnixMs(1_784_095_200_000);

pub fn rid(local: u64) -> RestaurantId {
    RestaurantId::new(RegionId::from_latlng(LAT, LNG).unwrap(), local)
}

pub fn restaurant(local: u64) -> Restaurant {
    Restaurant {
        id: rid(local),
        name: format!("Test Kitchen {local}"),
        address: "1 Main St, Berlin".into(),
        lat: LAT,
        lng: LNG,
        cuisine: "pizza".into(),
        rating_tenths: 45,
        delivery_radius_m: 5_000,
        timezone: "Europe/Berlin".into(),
        hours: WeeklyHours::every_day(&[Interval::hm((11, 0), (22, 0))]),
        manually_closed: false,
        prep_time_min: 15,
        thumbnail_url: "https://img.example.com/t.jpg".into(),
    }
}

fn opt(name: &str, cents: i64) -> CustomOption {
    CustomOption {
        name: name.into(),
        price_delta: Cents(cents),
    }
}

/// Item 1: Margherita 10.00 with Size (required, 1 of Small −1.00 / Medium / Large +3.00),
/// Extras (up to 2 of Extra cheese +1.50, Olives +0.75, Basil 0), Remove (No onions);
/// item 2: Cola 2.50, no options; item 3: Tiramisu 6.00, unavailable.
pub fn menu() -> Menu {
    Menu {
        categories: vec![
            Category {
                name: "Pizzas".into(),
                items: vec![MenuItem {
                    id: MenuItemId(1),
                    name: "Margherita".into(),
                    description: "Tomato, mozzarella, basil.".into(),
                    price: Cents(1000),
                    available: true,
                    customizations: vec![
                        CustomizationGroup {
                            name: "Size".into(),
                            required: true,
                            min: 1,
                            max: 1,
                            options: vec![opt("Small", -100), opt("Medium", 0), opt("Large", 300)],
                        },
                        CustomizationGroup {
                            name: "Extras".into(),
                            required: false,
                            min: 0,
                            max: 2,
                            options: vec![
                                opt("Extra cheese", 150),
                                opt("Olives", 75),
                                opt("Basil", 0),
                            ],
                        },
                        CustomizationGroup {
                            name: "Remove".into(),
                            required: false,
                            min: 0,
                            max: 1,
                            options: vec![opt("No onions", 0)],
                        },
                    ],
                }],
            },
            Category {
                name: "Drinks".into(),
                items: vec![
                    MenuItem {
                        id: MenuItemId(2),
                        name: "Cola".into(),
                        description: String::new(),
                        price: Cents(250),
                        available: true,
                        customizations: vec![],
                    },
                    MenuItem {
                        id: MenuItemId(3),
                        name: "Tiramisu".into(),
                        description: String::new(),
                        price: Cents(600),
                        available: false,
                        customizations: vec![],
                    },
                ],
            },
        ],
    }
}
