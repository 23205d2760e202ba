//! Search against a brute-force scan, query validation, paging, and the demo generator.

use crate::demo::{self, DemoSpec};
use crate::geo::{Index, haversine_m};
use crate::listing::Listing;
use crate::model::validate;
use crate::pricing::PricingConfig;
use crate::search::*;
use crate::testing::{self, LAT, LNG, NOON};
use domain::{RestaurantId, UnixMs};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

fn spec() -> DemoSpec {
    DemoSpec {
        restaurants: 1_500,
        ..DemoSpec::berlin(7)
    }
}

fn city() -> &'static Index {
    static CITY: OnceLock<Index> = OnceLock::new();
    CITY.get_or_init(|| {
        let mut index = Index::default();
        for (r, _) in demo::generate(&spec()).unwrap() {
            index.put(Arc::new(Listing::build(r)));
        }
        index
    })
}

/// The same city with its rows sorted into tight chunks, as a loaded catalog has them (the
/// index above keeps insertion order: loose chunks).
fn compacted_city() -> &'static Index {
    static CITY: OnceLock<Index> = OnceLock::new();
    CITY.get_or_init(|| {
        let mut index = Index::default();
        for (r, _) in demo::generate(&spec()).unwrap() {
            index.put(Arc::new(Listing::build(r)));
        }
        index.compact();
        index
    })
}

/// The model: every restaurant, checked with the public per-restaurant predicates.
fn brute_force(index: &Index, q: &SearchQuery, now: UnixMs) -> (Vec<(u32, RestaurantId)>, usize) {
    let mut all: Vec<(f64, RestaurantId)> = index
        .listings
        .values()
        .map(|(_, l)| &l.restaurant)
        .filter_map(|r| {
            let d = haversine_m(q.lat, q.lng, r.lat, r.lng);
            let hit = d <= f64::from(q.radius_m)
                && d <= f64::from(r.delivery_radius_m)
                && r.is_open(now)
                && q.cuisine
                    .as_ref()
                    .is_none_or(|c| r.cuisine.eq_ignore_ascii_case(c));
            hit.then_some((d, r.id))
        })
        .collect();
    // Nearest first by exact distance, ties by id.
    all.sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let total = all.len();
    let start = ((q.page - 1) * q.page_size) as usize;
    let page = all
        .into_iter()
        .skip(start)
        .take(q.page_size as usize)
        .map(|(d, id)| (d.round() as u32, id))
        .collect();
    (page, total)
}

fn query(lat: f64, lng: f64, radius_m: u32) -> SearchQuery {
    SearchQuery {
        lat,
        lng,
        radius_m,
        cuisine: None,
        page: 1,
        page_size: 20,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn search_equals_brute_force(
        dlat in -0.25f64..0.25,
        dlng in -0.4f64..0.4,
        radius_m in 1u32..=MAX_RADIUS_M,
        cuisine in prop::option::of(prop::sample::select(vec!["pizza", "SUSHI", "thai", "bakery", "none-such"])),
        page in 1u32..6,
        page_size in 1u32..=MAX_PAGE_SIZE,
        // Any minute of a week in July 2026, so every kind of hours is exercised.
        minute in 0i64..7 * 24 * 60,
    ) {
        let now = UnixMs(NOON.0 + minute * 60_000);
        let q = SearchQuery {
            lat: 52.52 + dlat,
            lng: 13.405 + dlng,
            radius_m,
            cuisine: cuisine.map(str::to_string),
            page,
            page_size,
        };
        let (want, total) = brute_force(city(), &q, now);
        for index in [city(), compacted_city()] {
            let got = index.search_for_test(&q, now);
            let got_keys: Vec<_> = got.restaurants.iter().map(|h| (h.distance_m, h.id)).collect();
            prop_assert_eq!(&got_keys, &want);
            prop_assert_eq!(got.total, total);
            let more = ((page * page_size) as usize) < total;
            prop_assert_eq!(got.next_page, more.then_some(page + 1));
        }
    }
}

impl Index {
    fn search_for_test(&self, q: &SearchQuery, now: UnixMs) -> SearchPage {
        crate::search::search(self, q, now, &PricingConfig::default()).unwrap()
    }
}

#[test]
fn hits_carry_fee_eta_and_card_fields() {
    let page = city().search_for_test(&query(52.52, 13.405, 5_000), NOON);
    assert!(page.total > 50, "a dense centre: {}", page.total);
    assert_eq!(page.restaurants.len(), 20);
    assert_eq!(page.next_page, Some(2));
    let cfg = PricingConfig::default();
    for w in page.restaurants.windows(2) {
        assert!(w[0].distance_m <= w[1].distance_m);
    }
    for h in &page.restaurants {
        assert_eq!(h.delivery_fee, crate::delivery_fee(h.distance_m, &cfg));
        assert_eq!(
            h.estimated_time,
            format!("{}-{} min", h.eta_min_minutes, h.eta_max_minutes)
        );
        assert!((3.2..=5.0).contains(&h.rating));
        assert!(h.thumbnail_url().starts_with("https://"));
    }
    // The seed's fields in the seed's order, the strings from the listing.
    let h = &page.restaurants[0];
    let json = serde_json::to_string(h).unwrap();
    let keys = [
        "id",
        "name",
        "cuisine_type",
        "rating",
        "delivery_fee",
        "estimated_time",
        "eta_min_minutes",
        "eta_max_minutes",
        "distance_m",
        "thumbnail_url",
        "lat",
        "lng",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| json.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_object().unwrap().len(), keys.len());
    let r = &city().get(h.id).unwrap().restaurant;
    assert_eq!(
        (v["name"].as_str(), v["cuisine_type"].as_str()),
        (Some(&*r.name), Some(&*r.cuisine))
    );
    assert_eq!(v["thumbnail_url"].as_str(), Some(&*r.thumbnail_url));
    // Paging walks the whole result without repeats.
    let mut seen = HashSet::new();
    let mut q = query(52.52, 13.405, 5_000);
    q.page_size = MAX_PAGE_SIZE;
    loop {
        let p = city().search_for_test(&q, NOON);
        for h in &p.restaurants {
            assert!(seen.insert(h.id));
        }
        match p.next_page {
            Some(n) => q.page = n,
            None => break,
        }
    }
    assert_eq!(seen.len(), page.total);
    // Past the end: empty, no next page.
    q.page = 200;
    let p = city().search_for_test(&q, NOON);
    assert!(p.restaurants.is_empty() && p.next_page.is_none());
}

#[test]
fn queries_are_validated() {
    let idx = Index::default();
    let run = |q: SearchQuery| search(&idx, &q, NOON, &PricingConfig::default());
    for (lat, lng) in [
        (f64::NAN, 0.0),
        (0.0, f64::INFINITY),
        (90.5, 0.0),
        (0.0, -180.5),
    ] {
        assert_eq!(
            run(query(lat, lng, 1_000)),
            Err(QueryError::InvalidCoordinates)
        );
    }
    assert_eq!(run(query(LAT, LNG, 0)), Err(QueryError::RadiusOutOfRange));
    assert_eq!(
        run(query(LAT, LNG, MAX_RADIUS_M + 1)),
        Err(QueryError::RadiusOutOfRange)
    );
    let mut q = query(LAT, LNG, 1_000);
    q.page = 0;
    assert_eq!(run(q.clone()), Err(QueryError::PageOutOfRange));
    q.page = MAX_PAGE + 1;
    assert_eq!(run(q.clone()), Err(QueryError::PageOutOfRange));
    q.page = 1;
    q.page_size = 0;
    assert_eq!(run(q.clone()), Err(QueryError::PageSizeOutOfRange));
    q.page_size = 10;
    // The limit counts characters (the document's `maxLength`): 64 two-byte ones pass.
    q.cuisine = Some("é".repeat(64));
    assert!(run(q.clone()).is_ok());
    q.cuisine = Some("x".repeat(65));
    assert_eq!(run(q), Err(QueryError::CuisineTooLong));
    // An empty catalog answers an empty page.
    let p = run(query(LAT, LNG, 1_000)).unwrap();
    assert!(p.restaurants.is_empty() && p.total == 0);
}

#[test]
fn radius_parameter_formats() {
    assert_eq!(parse_radius("5km"), Ok(5_000));
    assert_eq!(parse_radius("2.5km"), Ok(2_500));
    assert_eq!(parse_radius("800m"), Ok(800));
    assert_eq!(parse_radius("1200"), Ok(1_200));
    assert_eq!(parse_radius("0.001km"), Ok(1));
    assert_eq!(parse_radius("20km"), Ok(20_000));
    assert_eq!(parse_radius("20000"), Ok(20_000));
    assert_eq!(parse_radius("21km"), Err(QueryError::RadiusOutOfRange));
    assert_eq!(parse_radius("20001m"), Err(QueryError::RadiusOutOfRange));
    assert_eq!(parse_radius("0"), Err(QueryError::RadiusOutOfRange));
    assert_eq!(parse_radius("0.000km"), Err(QueryError::RadiusOutOfRange));
    // Only what the OpenAPI pattern allows: no spaces, signs, exponents, leading zeros,
    // fractions of metres or NaN (the float parser took all of these before).
    for bad in [
        "", "km", "five", "5 miles", "-", " 1200 ", "NaNkm", "+5km", "1e3", "05km", "2.km", "2.5",
        "800.5m", "2.5000km", "inf",
    ] {
        assert!(
            matches!(parse_radius(bad), Err(QueryError::BadRadius(_))),
            "{bad}"
        );
    }
}

#[test]
fn closed_and_out_of_reach_restaurants_are_hidden() {
    let mut idx = Index::default();
    let mut closed = testing::restaurant(1);
    closed.manually_closed = true;
    let mut small = testing::restaurant(2);
    small.delivery_radius_m = 100;
    small.lat += 0.01; // ~1.1 km north
    let open = testing::restaurant(3);
    for r in [closed, small, open] {
        idx.put(Arc::new(Listing::build(r)));
    }
    let p = idx.search_for_test(&query(LAT, LNG, 5_000), NOON);
    let ids: Vec<_> = p.restaurants.iter().map(|h| h.id).collect();
    assert_eq!(ids, vec![testing::rid(3)]);
    assert_eq!(p.restaurants[0].distance_m, 0);
    assert_eq!(p.restaurants[0].rating, 4.5);
    // Before opening time nothing is open.
    assert_eq!(
        idx.search_for_test(&query(LAT, LNG, 5_000), testing::MORNING)
            .total,
        0
    );
    // Replacing and removing keep the buckets consistent.
    idx.remove(testing::rid(3));
    assert_eq!(idx.search_for_test(&query(LAT, LNG, 5_000), NOON).total, 0);
}

/// Chunks cache which rows are open per minute of the week: a write after a search (closing
/// by hand, new hours, a new or removed restaurant) is seen by the next search at once.
#[test]
fn edits_after_a_search_are_seen_at_once() {
    let mut idx = Index::default();
    // Enough neighbours for several chunks, all within the radius.
    for i in 1..=100u64 {
        let mut r = testing::restaurant(i);
        r.lat += (i % 10) as f64 * 0.0005;
        r.lng += (i / 10) as f64 * 0.0005;
        idx.put(Arc::new(Listing::build(r)));
    }
    idx.compact();
    let q = SearchQuery {
        page_size: 5,
        ..query(LAT + 0.02, LNG, 10_000)
    };
    let check = |idx: &Index, want_total: usize| {
        let got = idx.search_for_test(&q, NOON);
        let (want, total) = brute_force(idx, &q, NOON);
        let keys: Vec<_> = got
            .restaurants
            .iter()
            .map(|h| (h.distance_m, h.id))
            .collect();
        assert_eq!((keys, got.total), (want, total));
        assert_eq!(total, want_total);
    };
    check(&idx, 100);
    let mut closed = testing::restaurant(7);
    closed.lat += 0.0035;
    closed.manually_closed = true;
    idx.put(Arc::new(Listing::build(closed)));
    check(&idx, 99);
    let mut night = testing::restaurant(8);
    night.lat += 0.004;
    night.hours = crate::hours::WeeklyHours::default();
    idx.put(Arc::new(Listing::build(night)));
    check(&idx, 98);
    idx.remove(testing::rid(9));
    check(&idx, 97);
    idx.put(Arc::new(Listing::build(testing::restaurant(9))));
    check(&idx, 98);
}

#[test]
fn generator_is_deterministic_and_valid() {
    let a = demo::generate(&spec()).unwrap();
    let b = demo::generate(&spec()).unwrap();
    assert_eq!(a, b);
    // A smaller city is a prefix of the larger one.
    let small = demo::generate(&DemoSpec {
        restaurants: 10,
        ..spec()
    })
    .unwrap();
    assert_eq!(small[..], a[..10]);
    let other = demo::generate(&DemoSpec::berlin(8)).unwrap();
    assert_ne!(other[0], a[0]);

    let mut rest_ids = HashSet::new();
    let mut item_ids = HashSet::new();
    let mut cuisines = HashSet::new();
    let (mut all_day, mut past_midnight, mut closed_day, mut unavailable) = (0, 0, 0, 0);
    for (r, m) in a.iter().chain(other.iter()) {
        validate(r, m).unwrap();
        assert!(rest_ids.insert(r.id));
        assert_eq!(
            r.id.region().unwrap(),
            domain::RegionId::from_latlng(r.lat, r.lng).unwrap()
        );
        assert!(haversine_m(52.52, 13.405, r.lat, r.lng) <= 12_050.0);
        let items: Vec<_> = m.items().collect();
        assert!((20..=120).contains(&items.len()), "{}", items.len());
        for it in &items {
            assert!(item_ids.insert(it.id), "item id {} repeats", it.id);
            unavailable += usize::from(!it.available);
        }
        cuisines.insert(r.cuisine.clone());
        let days: Vec<_> = (0..7).map(|d| r.hours.day(d)).collect();
        all_day += usize::from(days.iter().all(|d| *d == [crate::Interval::all_day()]));
        past_midnight += usize::from(days.iter().flat_map(|d| d.iter()).any(|i| i.close < i.open));
        closed_day += usize::from(days.iter().any(|d| d.is_empty()));
    }
    assert!(cuisines.len() >= 12, "{cuisines:?}");
    assert!(all_day > 0 && past_midnight > 0 && closed_day > 0 && unavailable > 0);
    assert!(a.iter().any(|(_, m)| m.items().any(|i| {
        i.customizations
            .iter()
            .any(|g| g.options.iter().any(|o| o.name == "No onions"))
    })));
    assert!(
        demo::generate(&DemoSpec {
            timezone: "Mars/Olympus".into(),
            ..spec()
        })
        .is_err()
    );
    assert!(
        demo::generate(&DemoSpec {
            center_lat: f64::NAN,
            ..spec()
        })
        .is_err()
    );
}
