//! [`Listing`]: one restaurant as served from memory, and the menu response body
//! ([`MenuBody`]), assembled from the stored menu without parsing it ([`menu_body`]).

use crate::hours::WeeklyHours;
use crate::model::{CustomizationGroup, Menu, Restaurant};
use bytes::Bytes;
use domain::{Cents, MenuItemId, RestaurantId};
use serde::Serialize;
use serde_json::value::RawValue;

/// An immutable snapshot of one restaurant's record, as search, pricing and ordering read it.
/// A write builds a new one and swaps it in, so readers holding an `Arc<Listing>` never see a
/// half-applied change. Menus are not here: they live in the store and, when recently read,
/// in the menu cache (see `menu_cache.rs`).
#[derive(Debug)]
pub struct Listing {
    pub restaurant: Restaurant,
    /// Parsed `restaurant.timezone`, so the hot path never parses it.
    pub tz: chrono_tz::Tz,
    /// The strings a search hit shows, as JSON string literals escaped once here: escaping
    /// them on every hit of every search was a tenth of a search's CPU.
    pub(crate) json: HitStrings,
}

/// See [`Listing::json`].
#[derive(Debug, Clone)]
pub(crate) struct HitStrings {
    pub name: Box<RawValue>,
    pub cuisine: Box<RawValue>,
    pub thumbnail_url: Box<RawValue>,
}

impl HitStrings {
    fn of(r: &Restaurant) -> HitStrings {
        let raw = |s: &str| {
            RawValue::from_string(serde_json::to_string(s).expect("a string serializes"))
                .expect("a serialized string is a JSON value")
        };
        HitStrings {
            name: raw(&r.name),
            cuisine: raw(&r.cuisine),
            thumbnail_url: raw(&r.thumbnail_url),
        }
    }
}

impl Listing {
    /// Builds the snapshot. The record must have passed [`crate::model::validate`].
    pub(crate) fn build(restaurant: Restaurant) -> Listing {
        let tz = restaurant.tz().expect("validated time zone");
        let json = HitStrings::of(&restaurant);
        Listing {
            restaurant,
            tz,
            json,
        }
    }

    /// Open at `now`: not manually closed and inside its hours in its own time zone.
    pub fn is_open(&self, now: domain::UnixMs) -> bool {
        !self.restaurant.manually_closed && self.restaurant.hours.is_open_at(self.tz, now)
    }
}

/// The start of every stored menu's JSON (a [`Menu`] serializes its one field first).
const STORED_MENU_HEAD: &[u8] = b"{\"categories\":";

/// The menu response body ([`MenuBody`]) from the restaurant and its menu *as stored*,
/// without parsing the menu: the stored JSON is `{"categories":[…]}` and the body's categories
/// serialize the same way, so the body is the header spliced in front. `None` if the stored
/// bytes do not look like a menu. (A unit test checks this equals serializing [`MenuBody`].)
pub(crate) fn menu_body(r: &Restaurant, stored_menu: &[u8]) -> Option<Bytes> {
    if !stored_menu.starts_with(STORED_MENU_HEAD) {
        return None;
    }
    let header = serde_json::to_vec(&MenuBody::header(r)).expect("headers always serialize");
    // Sized exactly: the body is cached, and a `Vec` that had to grow would hold up to twice
    // its length for as long as it is.
    const OPEN: &[u8] = b"{\"restaurant\":";
    let mut body = Vec::with_capacity(OPEN.len() + header.len() + stored_menu.len());
    body.extend_from_slice(OPEN);
    body.extend_from_slice(&header);
    body.push(b',');
    body.extend_from_slice(&stored_menu[1..]);
    debug_assert_eq!(body.len(), body.capacity());
    Some(Bytes::from(body))
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
    fn header(r: &'a Restaurant) -> RestaurantHeader<'a> {
        RestaurantHeader {
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
        }
    }

    pub fn new(r: &'a Restaurant, menu: &'a Menu) -> MenuBody<'a> {
        MenuBody {
            restaurant: Self::header(r),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::{self, DemoSpec};

    /// The spliced body is byte for byte what serializing [`MenuBody`] gives, for menus of
    /// every shape the generator makes (customizations, unavailable items, long menus).
    #[test]
    fn the_spliced_body_equals_the_serialized_body() {
        let city = demo::generate(&DemoSpec {
            restaurants: 200,
            ..DemoSpec::berlin(11)
        })
        .unwrap();
        for (r, m) in &city {
            let stored: Vec<u8> = crate::stored::encode_menu(r.id, m).unwrap().concat();
            let spliced = menu_body(r, &stored).unwrap();
            let serialized = serde_json::to_vec(&MenuBody::new(r, m)).unwrap();
            assert_eq!(
                spliced.as_ref(),
                serialized.as_slice(),
                "restaurant {}",
                r.id
            );
        }
        assert!(menu_body(&city[0].0, b"[1,2]").is_none());
    }

    /// The strings escaped once at build are the JSON strings of the record's strings, for
    /// names that need escaping too.
    #[test]
    fn hit_strings_are_the_record_strings_as_json() {
        let mut r = crate::testing::restaurant(1);
        r.name = "Chez \"Mo\" \\ Döner\n\u{1F354}".into();
        r.cuisine = "tab\there".into();
        let l = Listing::build(r.clone());
        let back = |raw: &RawValue| serde_json::from_str::<String>(raw.get()).unwrap();
        assert_eq!(back(&l.json.name), r.name);
        assert_eq!(back(&l.json.cuisine), r.cuisine);
        assert_eq!(back(&l.json.thumbnail_url), r.thumbnail_url);
    }
}
