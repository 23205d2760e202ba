//! The report on small hand-made days whose answers are worked out in the comments:
//! nearest-rank percentiles, idle share with overlapping shifts and busy intervals (batched
//! orders, an order running past the shift's end), orders never assigned, an empty day, and
//! the table and HTML built from them.

use super::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn order(order: u64, placed: i64) -> OrderRecord {
    OrderRecord {
        order,
        placed_ms: placed,
        ..OrderRecord::default()
    }
}

/// Two hours, five orders, two drivers:
/// - o1 placed 0:00, assigned +1 min, delivered +30 min, promised +40 min, 1 offer;
/// - o2 placed 0:10, assigned +2 min, delivered +45 min, promised +40 min (late), 3 offers;
/// - o3 placed 1:00, never assigned, cancelled at 1:10, 2 offers;
/// - o4 placed 1:01:40, never assigned, still waiting at the end, no offer;
/// - o5 placed 1:06:40, assigned +5 min, delivered +20 min, no promise, 4 offers.
fn day() -> DayRecord {
    let mut o1 = order(1, 0);
    o1.assigned_ms = Some(MIN);
    o1.delivered_ms = Some(30 * MIN);
    o1.promised_ms = Some(40 * MIN);
    o1.offers = 1;
    let mut o2 = order(2, 10 * MIN);
    o2.assigned_ms = Some(12 * MIN);
    o2.delivered_ms = Some(55 * MIN);
    o2.promised_ms = Some(50 * MIN);
    o2.offers = 3;
    let mut o3 = order(3, HOUR);
    o3.cancelled_ms = Some(HOUR + 10 * MIN);
    o3.offers = 2;
    let o4 = order(4, 3_700_000);
    let mut o5 = order(5, 4_000_000);
    o5.assigned_ms = Some(4_000_000 + 5 * MIN);
    o5.delivered_ms = Some(4_000_000 + 20 * MIN);
    o5.offers = 4;
    DayRecord {
        label: "current".into(),
        seed: 7,
        start_ms: 0,
        end_ms: 2 * HOUR,
        orders: vec![o1, o2, o3, o4, o5],
        drivers: vec![
            // Overlapping shifts: on shift 0:00–2:00 (2 h). Busy 0:01–0:33:20 and, batched,
            // 0:16:40–0:33:20 (one stretch 0:01–0:33:20 = 1,940 s), and 1:56:40–2:13:20, of
            // which 200 s fall in the shift: busy 2,140 s.
            DriverRecord {
                driver: 1,
                shifts: vec![(0, HOUR), (HOUR / 2, 2 * HOUR)],
                busy: vec![
                    (MIN, 2_000_000),
                    (1_000_000, 2_000_000),
                    (7_000_000, 8_000_000),
                ],
            },
            // On shift 1:00–1:30 (1,800 s); busy from before the shift to 1:06:40: 400 s count.
            DriverRecord {
                driver: 2,
                shifts: vec![(HOUR, 5_400_000)],
                busy: vec![(3_000_000, 4_000_000)],
            },
        ],
    }
}

#[test]
fn percentiles_are_nearest_rank() {
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(percentile(&v, 50.0), Some(5.0));
    assert_eq!(percentile(&v, 90.0), Some(9.0));
    assert_eq!(percentile(&v, 99.0), Some(10.0));
    assert_eq!(percentile(&v, 0.0), Some(1.0));
    assert_eq!(percentile(&[42.0], 99.0), Some(42.0));
    assert_eq!(percentile(&[], 50.0), None);
}

#[test]
fn a_day_summarized() {
    let s = summarize(&day());
    assert_eq!(
        (s.placed, s.delivered, s.cancelled, s.never_assigned),
        (5, 3, 1, 2)
    );
    // Delivery times 20, 30, 45 min: p50 is the 2nd, p90 and p99 the 3rd.
    let m = |x: i64| Some((x * MIN) as f64);
    assert_eq!(
        s.delivery_time_ms,
        Percentiles {
            p50: m(30),
            p90: m(45),
            p99: m(45)
        }
    );
    // Waits 1, 2, 5 min; the two never assigned are not among them.
    assert_eq!(
        s.wait_for_assignment_ms,
        Percentiles {
            p50: m(2),
            p90: m(5),
            p99: m(5)
        }
    );
    // Offers 1, 3, 2, 0, 4: mean 2, p90 the 5th of 5.
    assert_eq!((s.offers_mean, s.offers_p90), (Some(2.0), Some(4.0)));
    // One of the two delivered orders with a promise was late; o5 had none.
    assert_eq!((s.late, s.late_share), (1, Some(0.5)));
}

#[test]
fn idle_share_counts_overlaps_once_and_only_time_on_shift() {
    let s = summarize(&day());
    assert_eq!(s.on_shift_ms, 2 * HOUR + HOUR / 2);
    assert_eq!(s.busy_ms, 2_140_000 + 400_000);
    let idle = s.idle_share.unwrap();
    assert!((idle - 6_460_000.0 / 9_000_000.0).abs() < 1e-12, "{idle}");
    // Three delivered over 2.5 driver-hours.
    assert!((s.orders_per_driver_hour.unwrap() - 1.2).abs() < 1e-12);
}

#[test]
fn per_hour_figures_go_by_the_hour_of_placement() {
    let h = hourly(&day());
    assert_eq!(h.placed, vec![2, 3]);
    let m = |x: i64| Some((x * MIN) as f64);
    // Hour 0: deliveries of 30 and 45 min (p50 the 1st of 2); hour 1: o5's 20 min.
    assert_eq!(h.delivery_p50_ms, vec![m(30), m(20)]);
    assert_eq!(h.wait_p50_ms, vec![m(1), m(5)]);
    // Hour 1's only delivered order had no promise: nothing to judge.
    assert_eq!(h.late_share, vec![Some(0.5), None]);
    // Hour 0: driver 1 on for 3,600 s, busy 1,940 s. Hour 1: driver 1 on 3,600 s, busy
    // 200 s; driver 2 on 1,800 s, busy 400 s.
    let idle = [
        (3_600_000.0 - 1_940_000.0) / 3_600_000.0,
        (5_400_000.0 - 600_000.0) / 5_400_000.0,
    ];
    for (got, want) in h.idle_share.iter().zip(idle) {
        assert!((got.unwrap() - want).abs() < 1e-12, "{got:?} vs {want}");
    }
}

#[test]
fn an_empty_day_has_counts_of_zero_and_no_figures() {
    let d = DayRecord {
        start_ms: 0,
        end_ms: 24 * HOUR,
        ..DayRecord::default()
    };
    let s = summarize(&d);
    assert_eq!(s, Summary::default());
    let h = hourly(&d);
    assert_eq!(h.placed, vec![0; 24]);
    assert!(h.delivery_p50_ms.iter().all(Option::is_none));
    assert!(h.idle_share.iter().all(Option::is_none));
    let t = table(&d, &d);
    assert!(t.contains("delivery time p50"), "{t}");
    let page = html(&d, &d);
    assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
}

#[test]
fn orders_never_assigned_count_apart_and_leave_the_waits_empty() {
    let mut d = day();
    for o in &mut d.orders {
        o.assigned_ms = None;
        o.delivered_ms = None;
    }
    let s = summarize(&d);
    assert_eq!((s.never_assigned, s.delivered), (5, 0));
    assert_eq!(s.wait_for_assignment_ms, Percentiles::default());
    assert_eq!(s.delivery_time_ms, Percentiles::default());
    assert_eq!((s.late, s.late_share), (0, None));
    assert_eq!(s.orders_per_driver_hour, Some(0.0));
}

/// `day()` with every delivery 10 % slower and o2 on time.
fn slower() -> DayRecord {
    let mut b = day();
    b.label = "nearest only".into();
    for o in &mut b.orders {
        if let Some(d) = &mut o.delivered_ms {
            *d = o.placed_ms + (*d - o.placed_ms) * 11 / 10;
        }
    }
    b.orders[1].promised_ms = Some(HOUR);
    b
}

#[test]
fn the_table_puts_a_and_b_side_by_side() {
    let (a, b) = (day(), slower());
    let r = rows(&a, &b);
    let row = |name: &str| r.iter().find(|x| x.metric == name).unwrap().clone();
    let p50 = row("delivery time p50");
    assert_eq!((p50.a.as_str(), p50.b.as_str()), ("30.0 min", "33.0 min"));
    assert_eq!(p50.b_vs_a, "×1.10");
    let late = row("late share");
    assert_eq!((late.a.as_str(), late.b.as_str()), ("50.0 %", "0.0 %"));
    assert_eq!(late.b_vs_a, "-50.0 pp");
    assert_eq!(row("late deliveries").b_vs_a, "-1");
    assert_eq!(row("wait for assignment p50").b_vs_a, "×1.00");

    let t = table(&a, &b);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("metric") && lines[0].contains("A: current"));
    assert!(lines[0].contains("B: nearest only") && lines[0].ends_with("B vs A"));
    assert_eq!(lines.len(), 2 + r.len());
    // Right-aligned columns: every data line is as long as the header's.
    let w = lines[0].chars().count();
    assert!(lines[2..].iter().all(|l| l.chars().count() == w), "{t}");

    let md = markdown_table(&a, &b);
    let md: Vec<&str> = md.lines().collect();
    assert_eq!(md[0], "| metric | A: current | B: nearest only | B vs A |");
    assert_eq!(md[1], "|:--|--:|--:|--:|");
    assert_eq!(
        md[2 + 4],
        "| delivery time p50 | 30.0 min | 33.0 min | ×1.10 |"
    );
    assert_eq!(md.len(), 2 + r.len());
}

#[test]
fn the_html_page_is_self_contained_with_five_plots_and_a_legend() {
    let mut b = slower();
    b.label = "<nearest> & only".into();
    let page = html(&day(), &b);
    assert!(page.starts_with("<!doctype html>"));
    assert_eq!(page.matches("<svg").count(), 5);
    for title in [
        "Orders placed per hour",
        "Delivery time p50",
        "Wait for assignment p50",
        "Driver idle share per hour",
        "Late deliveries",
    ] {
        assert!(page.contains(title), "{title}");
    }
    // Loads nothing: no scripts, stylesheets, images or fonts from anywhere; the only URL is
    // the SVG namespace, which is a name, not a fetch.
    for banned in ["<script", "<link", "src=", "url(", "@import", "https://"] {
        assert!(!page.contains(banned), "{banned}");
    }
    let urls = page.matches("http://").count();
    assert_eq!(urls, page.matches("http://www.w3.org/2000/svg").count());
    // Labels are escaped wherever they appear: title, heading, table header, the five
    // legends, the points' tooltips.
    assert!(!page.contains("<nearest>"));
    assert!(page.matches("B: &lt;nearest&gt; &amp; only").count() > 1 + 5);
    assert!(page.contains("minutes (delivered − placed)"));
    assert!(page.contains("30.0 min") && !page.contains("NaN"));
}

#[test]
fn the_page_names_the_days_start_in_utc() {
    assert_eq!(html::clock_for_tests(0), "1970-01-01 00:00");
    assert_eq!(html::clock_for_tests(1_784_109_600_000), "2026-07-15 10:00");
    assert_eq!(html::clock_for_tests(951_782_400_000), "2000-02-29 00:00");
}
