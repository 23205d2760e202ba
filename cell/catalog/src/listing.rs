//! [`Listing`]: one restaurant as served from memory, with its menu response body
//! pre-serialized so the HTTP handler writes bytes instead of walking the menu per request.

use crate::hours::WeeklyHours;
use crate::model::{CustomizationGroup, Menu, Restaurant};
use bytes::Bytes;
use domain::{Cents, MenuItemId, RestaurantId};
use serde::Serialize;

/// An immutable snapshot of one restaurant and its menu. A write builds a new one and swaps
/// it in, so readers holding an `Arc<Listing>` never see a half-applied change.
#[derive(Debug)]
pub struct Listing {
    pub restaurant: Restaurant,
    pub menu: Menu,
    /// The `GET /api/v1/restaurants/{id}/menu` body (see [`MenuBody`]), rebuilt on every write.
    pub menu_json: Bytes,
    /// Parsed `restaurant.timezone`, so the hot path never parses it.
    pub tz: chrono_tz::Tz,
}

impl Listing {
    /// Builds the snapshot. The records must have passed [`crate::model::validate`].
    pub(crate) fn build(restaurant: Restaurant, menu: Menu) -> Listing {
        let tz = restaurant.tz().expect("validated time zone");
        let body = serde_json::to_vec(&MenuBody::new(&restaurant, &menu))
            .expect("menu bodies always serialize");
        Listing {
            restaurant,
            menu,
            menu_json: Bytes::from(body),
            tz,
        }
    }

    /// Open at `now`: not manually closed and inside its hours in its own time zone.
    pub fn is_open(&self, now: domain::UnixMs) -> bool {
        !self.restaurant.manually_closed && self.restaurant.hours.is_open_at(self.tz, now)
    }
}

/// The menu response body (seed 5.2) with the restaurant header. Prices are integer cents
/// (`"price": 1299` is 12.99), like every amount the platform computes.
///
/// ```json
/// { "restaurant": { "id", "name", "address", "cuisine_type", "rating", "lat", "lng",
///                   "timezone", "hours": { "mon": [{ "open": "11:00", "close": "22:00" }] },
///                   "manually_closed", "prep_time_min", "thumbnail_url" },
///   "categories": [ { "name", "items": [ { "id", "name", "description", "price",
///                     "available", "customizations": [ { "name", "required", "min", "max",
///                     "options": [ { "name", "price_delta" } ] } ] } ] } ] }
/// ```
/// Whether it is open *now* depends on the clock, so it is not in the cached body.
#[derive(Debug, Serialize)]
pub struct MenuBody<'a> {
    pub restaurant: RestaurantHeader<'a>,
    pub categories: Vec<CategoryBody<'a>>,
}

#[derive(Debug, Serialize)]
pub struct RestaurantHeader<'a> {
    pub id: RestaurantId,
    pub name: &'a str,
    pub address: &'a str,
    pub cuisine_type: &'a str,
    pub rating: f32,
    pub lat: f64,
    pub lng: f64,
    pub timezone: &'a str,
    pub hours: &'a WeeklyHours,
    pub manually_closed: bool,
    pub prep_time_min: u32,
    pub thumbnail_url: &'a str,
}

#[derive(Debug, Serialize)]
pub struct CategoryBody<'a> {
    pub name: &'a str,
    pub items: Vec<ItemBody<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ItemBody<'a> {
    pub id: MenuItemId,
    pub name: &'a str,
    pub description: &'a str,
    pub price: Cents,
    pub available: bool,
    pub customizations: &'a [CustomizationGroup],
}

impl<'a> MenuBody<'a> {
    pub fn new(r: &'a Restaurant, menu: &'a Menu) -> MenuBody<'a> {
        MenuBody {
            restaurant: RestaurantHeader {
                id: r.id,
                name: &r.name,
                address: &r.address,
                cuisine_type: &r.cuisine,
                rating: r.rating(),
                lat: r.lat,
                lng: r.lng,
                timezone: &r.timezone,
                hours: &r.hours,
                manually_closed: r.manually_closed,
                prep_time_min: r.prep_time_min,
                thumbnail_url: &r.thumbnail_url,
            },
            categories: menu
                .categories
                .iter()
                .map(|c| CategoryBody {
                    name: &c.name,
                    items: c
                        .items
                        .iter()
                        .map(|i| ItemBody {
                            id: i.id,
                            name: &i.name,
                            description: &i.description,
                            price: i.price,
                            available: i.available,
                            customizations: &i.customizations,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
