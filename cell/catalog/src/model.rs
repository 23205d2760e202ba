//! The catalog's records: a [`Restaurant`] and its [`Menu`], exactly as stored (JSON) and
//! exported, plus the checks every write passes through ([`validate`]).

use crate::error::ValidationError;
use crate::hours::WeeklyHours;
use domain::{Cents, MenuItemId, RestaurantId};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Longest name, address or option text accepted, in bytes: bounds memory and response size.
pub const MAX_TEXT_LEN: usize = 300;
/// Longest description, in bytes.
pub const MAX_DESCRIPTION_LEN: usize = 2_000;
/// Most items on one menu: the seed's estimate is ~50; this leaves room without letting one
/// restaurant blow up the menu cache.
pub const MAX_ITEMS_PER_MENU: usize = 1_000;
/// Most customization groups per item and options per group.
pub const MAX_GROUPS_PER_ITEM: usize = 20;
pub const MAX_OPTIONS_PER_GROUP: usize = 50;
/// Highest item price or option delta (magnitude): $10,000. With [`crate::pricing::MAX_QUANTITY`]
/// and [`crate::pricing::MAX_LINES`] this keeps every cart total far below `i64::MAX`.
pub const MAX_PRICE: Cents = Cents(1_000_000);
/// Largest delivery radius a restaurant may declare. Discovery prunes the H3 disk to the
/// largest radius in the catalog, so this also bounds the cost of a search.
pub const MAX_DELIVERY_RADIUS_M: u32 = 30_000;

/// A restaurant as the catalog stores it (the seed's `restaurants` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Restaurant {
    /// Embeds the H3 region the restaurant was created in (the router's unit of ownership).
    pub id: RestaurantId,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    /// Free-form lowercase tag ("pizza", "sushi"); search filters on it case-insensitively.
    pub cuisine: String,
    /// Rating in tenths of a star (45 = 4.5): integers keep stored records exact.
    pub rating_tenths: u8,
    /// How far the restaurant delivers, measured as the crow flies (haversine).
    pub delivery_radius_m: u32,
    /// IANA time zone the operating hours are written in ("Europe/Berlin").
    pub timezone: String,
    pub hours: WeeklyHours,
    /// The owner's "closed now" toggle; wins over the operating hours.
    #[serde(default)]
    pub manually_closed: bool,
    /// Typical preparation time: the first part of every ETA.
    pub prep_time_min: u32,
    #[serde(default)]
    pub thumbnail_url: String,
}

impl Restaurant {
    /// Rating as shown to customers (4.5).
    pub fn rating(&self) -> f32 {
        f32::from(self.rating_tenths) / 10.0
    }

    /// The parsed time zone; `None` if the stored name is not an IANA zone (never true for a
    /// record that passed [`validate`]).
    pub fn tz(&self) -> Option<chrono_tz::Tz> {
        self.timezone.parse().ok()
    }

    /// Open at `now`: not manually closed and inside its operating hours in its time zone.
    pub fn is_open(&self, now: domain::UnixMs) -> bool {
        match self.tz() {
            Some(tz) => !self.manually_closed && self.hours.is_open_at(tz, now),
            None => false,
        }
    }
}

/// A restaurant's menu: categories in display order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Menu {
    pub categories: Vec<Category>,
}

impl Menu {
    /// Finds an item by id. Menus are small (tens of items), so a scan beats a map here.
    pub fn item(&self, id: MenuItemId) -> Option<&MenuItem> {
        self.items().find(|i| i.id == id)
    }

    pub fn item_mut(&mut self, id: MenuItemId) -> Option<&mut MenuItem> {
        self.categories
            .iter_mut()
            .flat_map(|c| c.items.iter_mut())
            .find(|i| i.id == id)
    }

    /// Every item, in display order.
    pub fn items(&self) -> impl Iterator<Item = &MenuItem> {
        self.categories.iter().flat_map(|c| c.items.iter())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub name: String,
    pub items: Vec<MenuItem>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MenuItem {
    pub id: MenuItemId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Base price of one unit, before customizations.
    pub price: Cents,
    /// The restaurant's "sold out" toggle.
    pub available: bool,
    #[serde(default)]
    pub customizations: Vec<CustomizationGroup>,
}

impl MenuItem {
    /// Finds an option by the name a customer sent: trimmed, ASCII case-insensitive (the seed's
    /// example sends "no onions" for "No onions"). Returns the group index and the option.
    pub fn find_option(&self, name: &str) -> Option<(usize, &CustomOption)> {
        let name = name.trim();
        self.customizations
            .iter()
            .enumerate()
            .find_map(|(g, group)| {
                group
                    .options
                    .iter()
                    .find(|o| o.name.eq_ignore_ascii_case(name))
                    .map(|o| (g, o))
            })
    }
}

/// A group of options ("Size", "Extras", "Remove"). `required` groups need at least `min`
/// (≥ 1) choices; every group allows at most `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomizationGroup {
    pub name: String,
    pub required: bool,
    pub min: u8,
    pub max: u8,
    pub options: Vec<CustomOption>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomOption {
    pub name: String,
    /// Added to the unit price when chosen; may be negative ("Small") or zero ("No onions").
    pub price_delta: Cents,
}

fn text(what: &str, s: &str, max: usize) -> Result<(), ValidationError> {
    if s.trim().is_empty() {
        return Err(ValidationError::new(format!("{what} is empty")));
    }
    if s.len() > max {
        return Err(ValidationError::new(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    Ok(())
}

/// Checks a restaurant and its menu before they are written. Everything the read path relies
/// on is established here, so search and pricing never meet a malformed record: valid
/// coordinates and time zone, sane hours, unique item ids, option names unique within an item
/// (case-insensitively, because order requests name options), consistent group bounds, and
/// prices small enough that cart arithmetic cannot overflow.
pub fn validate(r: &Restaurant, menu: &Menu) -> Result<(), ValidationError> {
    let ctx = |e: ValidationError| e.context(format!("restaurant {}", r.id));
    validate_restaurant(r).map_err(ctx)?;
    validate_menu(menu).map_err(ctx)
}

fn validate_restaurant(r: &Restaurant) -> Result<(), ValidationError> {
    r.id.region()
        .map_err(|_| ValidationError::new("id does not embed a valid H3 region"))?;
    if !crate::geo::valid_coordinates(r.lat, r.lng) {
        return Err(ValidationError::new("coordinates are out of range"));
    }
    text("name", &r.name, MAX_TEXT_LEN)?;
    text("address", &r.address, MAX_TEXT_LEN)?;
    text("cuisine", &r.cuisine, MAX_TEXT_LEN)?;
    if r.thumbnail_url.len() > MAX_DESCRIPTION_LEN {
        return Err(ValidationError::new("thumbnail_url is too long"));
    }
    if r.rating_tenths > 50 {
        return Err(ValidationError::new(
            "rating_tenths is above 50 (5.0 stars)",
        ));
    }
    if r.delivery_radius_m == 0 || r.delivery_radius_m > MAX_DELIVERY_RADIUS_M {
        return Err(ValidationError::new(format!(
            "delivery_radius_m must be 1..={MAX_DELIVERY_RADIUS_M}"
        )));
    }
    if r.prep_time_min > 24 * 60 {
        return Err(ValidationError::new("prep_time_min is above a day"));
    }
    if r.tz().is_none() {
        return Err(ValidationError::new(format!(
            "timezone {:?} is not an IANA time zone",
            r.timezone
        )));
    }
    r.hours.validate()
}

fn validate_menu(menu: &Menu) -> Result<(), ValidationError> {
    let mut ids = HashSet::new();
    let mut count = 0usize;
    for cat in &menu.categories {
        text("category name", &cat.name, MAX_TEXT_LEN)?;
        for item in &cat.items {
            count += 1;
            if count > MAX_ITEMS_PER_MENU {
                return Err(ValidationError::new(format!(
                    "more than {MAX_ITEMS_PER_MENU} items"
                )));
            }
            if !ids.insert(item.id) {
                return Err(ValidationError::new(format!("item id {} repeats", item.id)));
            }
            validate_item(item).map_err(|e| e.context(format!("item {}", item.id)))?;
        }
    }
    Ok(())
}

fn validate_item(item: &MenuItem) -> Result<(), ValidationError> {
    text("name", &item.name, MAX_TEXT_LEN)?;
    if item.description.len() > MAX_DESCRIPTION_LEN {
        return Err(ValidationError::new("description is too long"));
    }
    if item.price < Cents::ZERO || item.price > MAX_PRICE {
        return Err(ValidationError::new(format!(
            "price must be 0..={}",
            MAX_PRICE.0
        )));
    }
    if item.customizations.len() > MAX_GROUPS_PER_ITEM {
        return Err(ValidationError::new("too many customization groups"));
    }
    let mut names = HashSet::new();
    // The cheapest choice could combine every negative delta: the unit price must stay ≥ 0.
    let mut lowest = item.price;
    for g in &item.customizations {
        text("group name", &g.name, MAX_TEXT_LEN)?;
        let n = g.options.len();
        if n == 0 || n > MAX_OPTIONS_PER_GROUP {
            return Err(ValidationError::new(format!(
                "group {:?} needs 1..={MAX_OPTIONS_PER_GROUP} options",
                g.name
            )));
        }
        if g.required != (g.min >= 1) {
            return Err(ValidationError::new(format!(
                "group {:?}: required must equal min >= 1",
                g.name
            )));
        }
        if g.max == 0 || g.min > g.max || usize::from(g.max) > n {
            return Err(ValidationError::new(format!(
                "group {:?}: bounds must be min <= max, 1 <= max <= options",
                g.name
            )));
        }
        for o in &g.options {
            text("option name", &o.name, MAX_TEXT_LEN)?;
            if o.price_delta.0.abs() > MAX_PRICE.0 {
                return Err(ValidationError::new(format!(
                    "option {:?}: delta out of range",
                    o.name
                )));
            }
            if !names.insert(o.name.trim().to_ascii_lowercase()) {
                return Err(ValidationError::new(format!(
                    "option name {:?} repeats within the item",
                    o.name
                )));
            }
            if o.price_delta < Cents::ZERO {
                lowest += o.price_delta;
            }
        }
    }
    if lowest < Cents::ZERO {
        return Err(ValidationError::new(
            "negative option deltas can push the unit price below zero",
        ));
    }
    Ok(())
}
