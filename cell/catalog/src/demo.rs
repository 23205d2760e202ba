//! A deterministic demo city: the same [`DemoSpec`] always gives the same restaurants, menus
//! and ids, on every machine (ChaCha8, no floats from the OS, no clock).
//!
//! Restaurant `i` draws from its own ChaCha stream (`seed`, stream `i`), so it does not depend
//! on how many restaurants are generated: a 100-restaurant city is a prefix of a 5,000 one,
//! and [`generate_range`] makes any slice of a city on its own (the seeder imports a big city
//! in slices, so memory stays bounded).
//!
//! # A metro
//! Most restaurants (70%) crowd a downtown: their distance from the centre is Gamma(2) with a
//! scale of a sixth of `radius_km`, so the density per km² falls off exponentially from the
//! centre (at `radius_km = 25`, 50,000 restaurants give about 200 per km² downtown, like
//! central London or Manhattan, and a few per km² at the edge). The rest cluster around six
//! neighbourhood centres (fixed by the seed) a third to three quarters of the radius out. Cuisines are drawn by weight; menus have 20 to 120 items,
//! most near the low end (about 50 on average).
//!
//! # Ids
//! - Restaurant: `RestaurantId::new(region of its location, local)` with
//!   `local = seed_tag << 18 | i`, where `seed_tag` is 16 bits mixed from the seed. So two
//!   demo cities with different seeds in the same region do not collide, and `local < 2^34`.
//! - Menu item: `region << 41 | local << 7 | index` (index < 128 on a menu of ≤ 120 items),
//!   so item ids are unique platform-wide as long as restaurant ids are.

use crate::demo_data::{
    CUISINES, CuisineDef, DESSERTS, DRINK_SIZES, DRINKS, Item, SPICE_LEVELS, STREET_KINDS, STREETS,
    VARIANT_PREFIXES,
};
use crate::error::ValidationError;
use crate::hours::{Interval, WeeklyHours};
use crate::model::{Category, CustomOption, CustomizationGroup, Menu, MenuItem, Restaurant};
use domain::{Cents, MenuItemId, RegionId, RestaurantId};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Most restaurants one spec may generate (`i` has 18 bits in the id).
pub const MAX_RESTAURANTS: usize = 1 << 18;
const MIN_ITEMS: usize = 20;
const MAX_ITEMS: usize = 120;
/// Neighbourhood centres besides downtown.
const NEIGHBOURHOODS: usize = 6;
/// Share of restaurants downtown; the rest are in the neighbourhoods.
const DOWNTOWN_SHARE: f64 = 0.7;

/// What city to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSpec {
    pub seed: u64,
    pub center_lat: f64,
    pub center_lng: f64,
    /// Restaurants are spread over this radius, denser towards the centre.
    pub radius_km: f64,
    pub restaurants: usize,
    pub city_name: String,
    /// IANA zone for every restaurant's hours.
    pub timezone: String,
}

impl DemoSpec {
    /// A 3,000-restaurant city around Berlin's centre.
    pub fn berlin(seed: u64) -> DemoSpec {
        DemoSpec {
            seed,
            center_lat: 52.5200,
            center_lng: 13.4050,
            radius_km: 12.0,
            restaurants: 3_000,
            city_name: "Berlin".into(),
            timezone: "Europe/Berlin".into(),
        }
    }
}

/// What [`generate`] refuses, each under its key (the cell's `[demo]` section has the same
/// keys, so its config validation reports these before anything starts).
impl service::config::Validate for DemoSpec {
    fn validate(&self, s: &mut service::config::Section<'_>) {
        // Beyond ±80° the H3 discovery cells and the km-per-degree spread degenerate.
        s.ensure(
            self.center_lat.is_finite() && self.center_lat.abs() <= 80.0,
            "center_lat",
            || format!("must be within -80..=80 (got {})", self.center_lat),
        );
        s.ensure(
            self.center_lng.is_finite() && self.center_lng.abs() <= 180.0,
            "center_lng",
            || format!("must be within -180..=180 (got {})", self.center_lng),
        );
        s.ensure(
            self.radius_km.is_finite() && (0.1..=100.0).contains(&self.radius_km),
            "radius_km",
            || format!("must be in 0.1..=100 (got {})", self.radius_km),
        );
        s.ensure(self.restaurants <= MAX_RESTAURANTS, "restaurants", || {
            format!(
                "must be at most {MAX_RESTAURANTS} (got {})",
                self.restaurants
            )
        });
        s.ensure(
            self.timezone.parse::<chrono_tz::Tz>().is_ok(),
            "timezone",
            || format!("must be an IANA time zone (got {:?})", self.timezone),
        );
    }
}

/// Generates the city. Errors only for an unusable spec (bad centre, radius, time zone, or
/// more than [`MAX_RESTAURANTS`]).
pub fn generate(spec: &DemoSpec) -> Result<Vec<(Restaurant, Menu)>, ValidationError> {
    generate_range(spec, 0..spec.restaurants)
}

/// Restaurants `range` of the city `spec` describes (the same as those of [`generate`]),
/// clipped to `spec.restaurants`.
pub fn generate_range(
    spec: &DemoSpec,
    range: std::ops::Range<usize>,
) -> Result<Vec<(Restaurant, Menu)>, ValidationError> {
    let mut problems = service::config::Problems::new();
    problems.validate("demo", spec);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(ValidationError::new(list.join("; ")));
    }
    let tag = seed_tag(spec.seed);
    let hoods = neighbourhoods(spec);
    (range.start..range.end.min(spec.restaurants))
        .map(|i| {
            let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
            rng.set_stream(i as u64);
            restaurant(spec, &hoods, tag, i, &mut rng)
        })
        .collect()
}

/// 16 bits of the seed, mixed (splitmix64 finalizer) so nearby seeds get distant tags.
fn seed_tag(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) & ((1 << 16) - 1)
}

/// The platform-wide item id for item `index` of a demo restaurant (see the module doc).
pub fn item_id(restaurant: RestaurantId, index: usize) -> MenuItemId {
    let region = restaurant.0 >> 41;
    let local = restaurant.0 & ((1 << 34) - 1);
    MenuItemId((region << 41) | (local << 7) | (index as u64 & 127))
}

fn restaurant(
    spec: &DemoSpec,
    hoods: &[(f64, f64)],
    tag: u64,
    i: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Restaurant, Menu), ValidationError> {
    let (lat, lng) = location(spec, hoods, rng);
    let region = RegionId::from_latlng(lat, lng)
        .map_err(|e| ValidationError::new(format!("demo location: {e}")))?;
    let id = RestaurantId::new(region, (tag << 18) | i as u64);
    let c = pick_cuisine(rng);
    let name = if rng.random_bool(0.15) {
        format!(
            "{} {}",
            spec.city_name,
            c.name_second.choose(rng).expect("names")
        )
    } else {
        format!(
            "{} {}",
            c.name_first.choose(rng).expect("names"),
            c.name_second.choose(rng).expect("names")
        )
    };
    let address = format!(
        "{} {} {}, {}",
        rng.random_range(1..400),
        STREETS.choose(rng).expect("streets"),
        STREET_KINDS.choose(rng).expect("kinds"),
        spec.city_name
    );
    // Ratings cluster around 4.1 (three dice), 3.2 to 5.0.
    let rating_tenths = 32 + (0..3).map(|_| rng.random_range(0..=6u8)).sum::<u8>();
    let delivery_radius_m = *[2_000, 3_000, 4_000, 4_000, 5_000, 5_000, 6_000, 8_000]
        .choose(rng)
        .expect("radii");
    let r = Restaurant {
        id,
        name,
        address,
        lat,
        lng,
        cuisine: c.tag.to_string(),
        rating_tenths,
        delivery_radius_m,
        timezone: spec.timezone.clone(),
        hours: hours(c, rng),
        manually_closed: rng.random_bool(0.02),
        prep_time_min: rng.random_range(c.prep.0..=c.prep.1),
        thumbnail_url: format!("https://img.example.com/restaurants/{id}.jpg"),
    };
    let menu = menu(id, c, rng);
    Ok((r, menu))
}

/// The neighbourhood centres, as (distance from the centre in metres, bearing): from the
/// seed alone (a stream no restaurant uses), so every slice of a city agrees on them.
fn neighbourhoods(spec: &DemoSpec) -> Vec<(f64, f64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    rng.set_stream(u64::MAX);
    let radius_m = spec.radius_km * 1000.0;
    (0..NEIGHBOURHOODS)
        .map(|k| {
            let r = radius_m * rng.random_range(0.33..0.75);
            // Spread around the compass, a little irregular.
            let bearing = (k as f64 + rng.random_range(0.0..0.6)) * std::f64::consts::TAU
                / NEIGHBOURHOODS as f64;
            (r, bearing)
        })
        .collect()
}

/// A point within `radius_km` of the centre: downtown with density falling off from the
/// centre, or around a neighbourhood centre (see the module doc).
fn location(spec: &DemoSpec, hoods: &[(f64, f64)], rng: &mut ChaCha8Rng) -> (f64, f64) {
    let radius_m = spec.radius_km * 1000.0;
    // Gamma(2) distance, the sum of two exponentials: density per area ∝ e^(-d/scale).
    // Drawn again past the edge (rarely: 4% downtown).
    let gamma2 = |rng: &mut ChaCha8Rng, scale: f64| -> f64 {
        let (u, v): (f64, f64) = (rng.random(), rng.random());
        -((1.0 - u).ln() + (1.0 - v).ln()) * scale
    };
    let (mut x, mut y) = (0.0, 0.0);
    for _ in 0..8 {
        let (cx, cy, scale) = if rng.random_bool(DOWNTOWN_SHARE) {
            (0.0, 0.0, radius_m / 6.0)
        } else {
            let (r, b) = hoods[rng.random_range(0..hoods.len())];
            (r * b.cos(), r * b.sin(), radius_m / 20.0)
        };
        let d = gamma2(rng, scale);
        let bearing = rng.random_range(0.0..std::f64::consts::TAU);
        (x, y) = (cx + d * bearing.cos(), cy + d * bearing.sin());
        if x.hypot(y) <= radius_m {
            break;
        }
        (x, y) = (0.0, 0.0);
    }
    let dlat = (x / crate::geo::EARTH_RADIUS_M).to_degrees();
    let dlng = (y / (crate::geo::EARTH_RADIUS_M * spec.center_lat.to_radians().cos())).to_degrees();
    let mut lng = spec.center_lng + dlng;
    if lng > 180.0 {
        lng -= 360.0;
    } else if lng < -180.0 {
        lng += 360.0;
    }
    (spec.center_lat + dlat, lng)
}

fn pick_cuisine(rng: &mut ChaCha8Rng) -> &'static CuisineDef {
    let total: u32 = CUISINES.iter().map(|c| c.weight).sum();
    let mut x = rng.random_range(0..total);
    for c in CUISINES {
        if x < c.weight {
            return c;
        }
        x -= c.weight;
    }
    &CUISINES[0]
}

fn hours(c: &CuisineDef, rng: &mut ChaCha8Rng) -> WeeklyHours {
    let mut h = if c.bakery_hours {
        let open = *[(6, 0), (6, 30), (7, 0), (8, 0)]
            .choose(rng)
            .expect("times");
        let close = *[(14, 0), (15, 0), (16, 0), (18, 0)]
            .choose(rng)
            .expect("times");
        WeeklyHours::every_day(&[Interval::hm(open, close)])
    } else {
        let u: f64 = rng.random();
        if u < 0.07 {
            // Round the clock.
            WeeklyHours::every_day(&[Interval::all_day()])
        } else if u < 0.19 {
            // Late night, past midnight, later at the weekend.
            let mut h = WeeklyHours::every_day(&[Interval::hm((17, 0), (2, 0))]);
            h.fri = vec![Interval::hm((17, 0), (3, 30))];
            h.sat = vec![Interval::hm((12, 0), (3, 30))];
            h
        } else if u < 0.31 {
            // Lunch and dinner service.
            WeeklyHours::every_day(&[
                Interval::hm((11, 30), (14, 30)),
                Interval::hm((17, 30), (22, 0)),
            ])
        } else {
            let open = *[(10, 0), (11, 0), (11, 0), (11, 30), (12, 0)]
                .choose(rng)
                .expect("times");
            let close = *[(21, 0), (22, 0), (22, 0), (22, 30), (23, 0)]
                .choose(rng)
                .expect("times");
            let mut h = WeeklyHours::every_day(&[Interval::hm(open, close)]);
            // Weekends run past midnight at some places.
            if rng.random_bool(0.3) {
                h.fri = vec![Interval::hm(open, (0, 30))];
                h.sat = vec![Interval::hm(open, (0, 30))];
            }
            h
        }
    };
    // A weekly closing day, usually Monday.
    if rng.random_bool(0.15) {
        let day = if rng.random_bool(0.6) {
            0
        } else {
            rng.random_range(0..7)
        };
        h.day_mut(day).clear();
    }
    h
}

/// A price near `base`, ending in 9 cents like real menus.
fn price_near(base: i64, rng: &mut ChaCha8Rng) -> Cents {
    let p = (base as f64 * rng.random_range(0.85..1.25)) as i64;
    Cents((p / 10) * 10 + 9)
}

fn menu(id: RestaurantId, c: &CuisineDef, rng: &mut ChaCha8Rng) -> Menu {
    // Every candidate: (category, name, typical price, is main course).
    let mut pool: Vec<(&'static str, String, i64, bool)> = Vec::new();
    for (cat, items) in c.categories {
        for (name, price) in items.iter() {
            pool.push((cat, name.to_string(), *price, true));
        }
    }
    let mains = pool.clone();
    let extra = |cat: &'static str, items: &[Item]| {
        items
            .iter()
            .map(move |(n, p)| (cat, n.to_string(), *p, false))
            .collect::<Vec<_>>()
    };
    pool.extend(extra("Desserts", DESSERTS));
    pool.extend(extra("Drinks", DRINKS));
    // Most menus are short: u² puts the median near 45 items, the mean near 53.
    let u: f64 = rng.random();
    let n = MIN_ITEMS + ((MAX_ITEMS - MIN_ITEMS) as f64 * u * u).round() as usize;
    if n <= pool.len() {
        // Keep a random `n`, in menu order.
        let mut keep: Vec<usize> = (0..pool.len()).collect();
        keep.shuffle(rng);
        keep.truncate(n);
        keep.sort_unstable();
        pool = keep.into_iter().map(|k| pool[k].clone()).collect();
    } else {
        // Variants of main courses ("Chef's Pad Thai") fill the menu up to `n`.
        'fill: for prefix in VARIANT_PREFIXES {
            for (cat, name, price, _) in &mains {
                if pool.len() >= n {
                    break 'fill;
                }
                pool.push((cat, format!("{prefix} {name}"), price + price / 5, true));
            }
        }
        pool.sort_by_key(|(cat, ..)| category_rank(c, cat));
    }

    let mut categories: Vec<Category> = Vec::new();
    for (index, (cat, name, base, main)) in pool.into_iter().enumerate() {
        let item = MenuItem {
            id: item_id(id, index),
            description: description(&name, c, cat == "Drinks", rng),
            price: price_near(base, rng),
            available: !rng.random_bool(0.03),
            customizations: customizations(c, cat, main, rng),
            name,
        };
        match categories.last_mut() {
            Some(last) if last.name == cat => last.items.push(item),
            _ => categories.push(Category {
                name: cat.to_string(),
                items: vec![item],
            }),
        }
    }
    Menu { categories }
}

fn category_rank(c: &CuisineDef, cat: &str) -> usize {
    c.categories
        .iter()
        .position(|(n, _)| *n == cat)
        .unwrap_or(if cat == "Desserts" { 100 } else { 101 })
}

fn description(name: &str, c: &CuisineDef, drink: bool, rng: &mut ChaCha8Rng) -> String {
    if drink {
        return format!("{name}, served chilled.");
    }
    let picked: Vec<&&str> = c.ingredients.choose_multiple(rng, 3).collect();
    format!(
        "{name} with {}, {} and {}.",
        picked[0], picked[1], picked[2]
    )
}

fn group(name: &str, required: bool, max: u8, options: Vec<CustomOption>) -> CustomizationGroup {
    CustomizationGroup {
        name: name.to_string(),
        required,
        min: u8::from(required),
        max,
        options,
    }
}

fn opts(list: &[(&str, i64)]) -> Vec<CustomOption> {
    list.iter()
        .map(|(n, d)| CustomOption {
            name: n.to_string(),
            price_delta: Cents(*d),
        })
        .collect()
}

fn customizations(
    c: &CuisineDef,
    cat: &str,
    main: bool,
    rng: &mut ChaCha8Rng,
) -> Vec<CustomizationGroup> {
    let mut groups = Vec::new();
    if cat == "Drinks" {
        if rng.random_bool(0.5) {
            groups.push(group("Size", true, 1, opts(DRINK_SIZES)));
        }
        return groups;
    }
    if !main {
        return groups;
    }
    if rng.random_bool(0.6) {
        groups.push(group("Size", true, 1, opts(c.sizes)));
    }
    if c.spicy && rng.random_bool(0.5) {
        let levels: Vec<_> = SPICE_LEVELS.iter().map(|s| (*s, 0)).collect();
        groups.push(group("Spice level", true, 1, opts(&levels)));
    }
    if rng.random_bool(0.5) {
        let max = c.extras.len().min(3) as u8;
        groups.push(group("Extras", false, max, opts(c.extras)));
    }
    if rng.random_bool(0.6) {
        let removals: Vec<_> = c.removals.iter().map(|s| (*s, 0)).collect();
        groups.push(group(
            "Remove",
            false,
            removals.len() as u8,
            opts(&removals),
        ));
    }
    groups
}
