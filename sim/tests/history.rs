//! Location history on simulated time: the cell's recorder, flush and compaction fed by the
//! simulated drivers, and the sizes issue 20 promises (a full day's figures: `sim history`).

use sim::day::CitySize;

#[test]
fn a_lunch_hour_of_paths_is_stored_in_a_few_bytes_per_ping() {
    let size = CitySize {
        orders_per_day: 2_000,
        drivers: 60,
        restaurants: 60,
        hours: 1.0,
    };
    let f = sim::history::run(3, size, 11.75).expect("the day runs");
    assert!(f.deliveries >= 20, "{f:?}");
    assert!(f.median_bytes_per_ping <= 6.0, "{f:?}");
    assert!(f.median_core_bytes_per_ping <= 4.0, "{f:?}");
    assert!(f.handed_over_stored <= 3.5, "{f:?}");
    // Every delivery's path reads back (`run` decodes each), with the pings of its trips (a
    // trip lasts minutes, pings come every 5 s).
    assert!(f.pings >= 20 * f.deliveries as u64, "{f:?}");
}
