//! Report math: merging, rates, SLOs, coordinated-omission correction, pacing, Prometheus.

use super::slo::{Slo, SloMetric, evaluate};
use super::stats::{OpStats, Outcome, Recorder, rate};
use super::{OpReport, metrics};
use crate::pacing::{Profile, Schedule, parse_duration};
use std::time::Duration;

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn merging_shards_equals_recording_in_one() {
    let rec = Recorder::with_shards(&["a", "b"], 4);
    let mut single = OpStats::new();
    for i in 0..10_000u64 {
        let lat = us(100 + (i * 7919) % 50_000);
        let outcome = if i % 100 == 0 {
            Outcome::Status(503)
        } else {
            Outcome::Ok
        };
        rec.record_in((i % 4) as usize, 0, false, outcome, lat, lat, None);
        single.record(outcome, lat, lat);
    }
    let merged = &rec.steady()[0];
    assert_eq!(merged.ok, single.ok);
    assert_eq!(merged.failed, single.failed);
    assert_eq!(merged.latency.len(), single.latency.len());
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(
            merged.latency.value_at_quantile(q),
            single.latency.value_at_quantile(q),
            "q={q}"
        );
    }
    assert_eq!(rec.steady()[1].completed(), 0);
}

#[test]
fn interval_is_taken_and_reset_but_totals_stay() {
    let rec = Recorder::with_shards(&["a"], 2);
    rec.record_in(0, 0, false, Outcome::Ok, us(10), us(10), None);
    rec.record_in(
        1,
        0,
        true,
        Outcome::Timeout,
        us(5_000_000),
        us(5_000_000),
        None,
    );
    let iv = rec.take_interval();
    assert_eq!(iv[0].completed(), 2);
    assert_eq!(rec.take_interval()[0].completed(), 0);
    assert_eq!(rec.steady()[0].ok, 1);
    assert_eq!(rec.ramp()[0].timed_out, 1);
}

#[test]
fn errors_are_counted_not_timed_but_timeouts_are_timed() {
    let mut s = OpStats::new();
    s.record(Outcome::Ok, us(1_000), us(900));
    s.record(Outcome::Status(500), us(1), us(1));
    s.record(Outcome::Transport, us(1), us(1));
    s.record(Outcome::Timeout, us(5_000_000), us(5_000_000));
    assert_eq!(s.errors(), 3);
    assert_eq!(s.completed(), 4);
    assert_eq!(s.latency.len(), 2);
    assert!(s.latency_ms(1.0) >= 4_990.0);
}

#[test]
fn rate_over_window() {
    assert_eq!(rate(5_000, Duration::from_secs(2)), 2_500.0);
    assert_eq!(rate(10, Duration::ZERO), 0.0);
    assert!((rate(1, Duration::from_millis(250)) - 4.0).abs() < 1e-9);
}

/// A server that stalls for 1 s while requests are due every 1 ms. Measured from the
/// actual send of a closed-loop client only the one stuck request is slow; measured
/// from the intended times (what the driver does), every request that was due during
/// the stall is as late as it really was.
#[test]
fn coordinated_omission_is_corrected_by_intended_times() {
    let interval = 1_000u64; // µs between intended sends
    let service = 100u64;
    let stall_at = 1_000u64; // the 1000th request hits a 1 s stall
    let mut naive = OpStats::new();
    let mut open_loop = OpStats::new();
    let mut server_free = 0u64; // when the (serial) server can take the next request
    for i in 0..10_000u64 {
        let intended = i * interval;
        let sent = intended.max(server_free); // the connection is busy until then
        let took = if i == stall_at { 1_000_000 } else { service };
        let done = sent + took;
        server_free = done;
        naive.record(Outcome::Ok, us(done - sent), us(done - sent));
        open_loop.record(Outcome::Ok, us(done - intended), us(done - sent));
    }
    // Naive: p99 is the service time; the stall is a single outlier.
    assert!(naive.latency_ms(0.99) < 0.2, "{}", naive.latency_ms(0.99));
    // Open loop: ~1000 requests (10%) waited behind the stall, up to a second.
    assert!(
        open_loop.latency_ms(0.95) > 400.0,
        "{}",
        open_loop.latency_ms(0.95)
    );
    assert!(open_loop.latency_ms(0.99) > 800.0);
    // The service histogram kept beside it still shows the server's own time.
    assert!(open_loop.service.value_at_quantile(0.99) < 200);
}

#[test]
fn slo_parsing() {
    let s: Slo = "p99_ms=2".parse().unwrap();
    assert_eq!(
        (s.op.as_deref(), s.metric, s.limit),
        (None, SloMetric::Quantile(99.0), 2.0)
    );
    let s: Slo = "search.p99_ms=2.5".parse().unwrap();
    assert_eq!(s.op.as_deref(), Some("search"));
    assert_eq!(s.limit, 2.5);
    let s: Slo = "place.p99.9_ms=10".parse().unwrap();
    assert_eq!(
        (s.op.as_deref(), s.metric),
        (Some("place"), SloMetric::Quantile(99.9))
    );
    let s: Slo = "p99.9_ms=10".parse().unwrap();
    assert_eq!((s.op, s.metric), (None, SloMetric::Quantile(99.9)));
    assert_eq!(
        "p999_ms=1".parse::<Slo>().unwrap().metric,
        SloMetric::Quantile(99.9)
    );
    assert_eq!("errors=0".parse::<Slo>().unwrap().metric, SloMetric::Errors);
    assert_eq!(
        "min_rate=4900".parse::<Slo>().unwrap().metric,
        SloMetric::MinRate
    );
    for bad in [
        "p99_ms",
        "p99=2",
        "p99_ms=-1",
        "p99_ms=abc",
        "p101_ms=1",
        ".p99_ms=1",
        "x.y=1",
    ] {
        assert!(bad.parse::<Slo>().is_err(), "{bad}");
    }
}

fn op(name: &str, lat_us: &[u64], errors: u64, window: Duration) -> OpReport {
    let mut s = OpStats::new();
    for l in lat_us {
        s.record(Outcome::Ok, us(*l), us(*l));
    }
    for _ in 0..errors {
        s.record(Outcome::Status(500), us(1), us(1));
    }
    OpReport::build(name, lat_us.len() as u64 + errors, s, window)
}

#[test]
fn slo_evaluation() {
    let w = Duration::from_secs(1);
    let lat: Vec<u64> = (1..=1000).map(|i| i * 10).collect(); // 10 µs .. 10 ms
    let ops = vec![op("search", &lat, 0, w), op("place", &lat, 5, w)];
    let slos: Vec<Slo> = [
        "p99_ms=9.95",
        "search.p50_ms=4",
        "errors=0",
        "place.min_rate=900",
        "nope.p99_ms=1",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let r = evaluate(&slos, &ops);
    let verdict = |slo: &str, op: &str| r.iter().find(|v| v.slo == slo && v.op == op).unwrap().pass;
    assert!(verdict("p99_ms=9.95", "search")); // p99 = 9.9 ms
    assert!(verdict("p99_ms=9.95", "place"));
    assert!(!verdict("search.p50_ms=4", "search")); // p50 = 5 ms
    assert!(verdict("errors=0", "search"));
    assert!(!verdict("errors=0", "place"));
    assert!(verdict("place.min_rate=900", "place")); // 1000 ok in 1 s
    let missing = r.iter().find(|v| v.slo == "nope.p99_ms=1").unwrap();
    assert!(!missing.pass && missing.actual.is_none());
    assert_eq!(r.len(), 7);
}

#[test]
fn slo_on_untimed_ping_ops_and_loss() {
    let w = Duration::from_secs(2);
    let lat: Vec<u64> = (1..=100).map(|i| i * 100).collect(); // 0.1 .. 10 ms
    let mut ping = OpReport::untimed("ping", 2100, 2000, 3, w);
    ping.loss_pct = Some(0.4);
    let ops = vec![op("push", &lat, 0, w), ping];
    let slos: Vec<Slo> = [
        "p99_ms=20",
        "loss_pct=0.5",
        "ping.loss_pct=0.1",
        "min_rate=900",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    let r = evaluate(&slos, &ops);
    let find = |slo: &str, op: &str| {
        r.iter()
            .find(|v| v.slo == slo && v.op == op)
            .unwrap_or_else(|| panic!("{slo} {op}: {r:?}"))
    };
    // A latency SLO without op skips the untimed ping op (no latency to judge)...
    assert!(find("p99_ms=20", "push").pass);
    assert!(!r.iter().any(|v| v.slo == "p99_ms=20" && v.op == "ping"));
    // ... and loss applies only where loss is measured.
    assert!(find("loss_pct=0.5", "ping").pass);
    assert!(!r.iter().any(|v| v.slo == "loss_pct=0.5" && v.op == "push"));
    let strict = find("ping.loss_pct=0.1", "ping");
    assert!(!strict.pass);
    assert_eq!(strict.actual, Some(0.4));
    // The ping op's rate is what was handed to QUIC in the steady window: 2000 / 2 s.
    assert!(find("min_rate=900", "ping").pass);
    assert!(!find("min_rate=900", "push").pass); // 100 / 2 s
    // A latency SLO aimed at the untimed op has nothing to judge: missed, not passed.
    let r = evaluate(&["ping.p99_ms=1".parse().unwrap()], &ops);
    assert!(!r[0].pass && r[0].actual.is_none());
    assert_eq!(ops[1].errors, 3);
}

#[test]
fn html_report_is_self_contained_with_plots_per_op() {
    use super::TimelinePoint;
    use super::html::Page;
    let w = Duration::from_secs(3);
    let lat: Vec<u64> = (1..=300).map(|i| i * 10).collect();
    let mut ping = OpReport::untimed("ping", 300, 300, 0, w);
    ping.loss_pct = Some(0.25);
    let ops = vec![op("search", &lat, 2, w), ping];
    let mut stats = vec![OpStats::new(), OpStats::new()];
    for l in &lat {
        stats[0].record(Outcome::Ok, us(*l), us(*l));
    }
    stats[1].ok = 100;
    let timeline: Vec<TimelinePoint> = (1..=3)
        .map(|i| {
            TimelinePoint::build(
                us(i * 1_000_000),
                us(1_000_000),
                &["search", "ping"],
                &stats,
            )
        })
        .collect();
    let slo = evaluate(&["p99_ms=0.001".parse().unwrap()], &ops);
    let (cpu, machine) = (
        super::machine::CpuUse::default(),
        super::machine::Machine::at_start(),
    );
    let page = Page {
        title: "loadgen <test> & co".into(),
        summary: "search  sent 302 <pre>".into(),
        ops: &ops,
        timeline: &timeline,
        slo: &slo,
        server: vec![("cell_http_requests_total".into(), 302.0)],
        cpu: &cpu,
        machine: &machine,
        facts: vec![("loss".into(), "0.25%".into())],
    };
    let html = page.render();
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Latency and rate for the timed op, rate only for the untimed one.
    assert!(html.contains("search: latency per second"));
    assert!(html.contains("search: rate"));
    assert!(html.contains("ping: rate"));
    assert!(!html.contains("ping: latency"));
    assert_eq!(html.matches("<svg").count(), 3);
    assert_eq!(html.matches("<polyline").count(), 4); // p50, p99, two rates
    // Three seconds plotted: three points on each line.
    let line = html.split("<polyline").nth(1).unwrap();
    let pts = line
        .split("points=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert_eq!(pts.split(' ').count(), 3);
    // The verdict, the server delta, the facts, escaped text; nothing fetched.
    assert!(html.contains("MISSED"));
    assert!(html.contains("cell_http_requests_total"));
    assert!(html.contains("0.250")); // loss column
    assert!(html.contains("loadgen &lt;test&gt; &amp; co"));
    assert!(html.contains("&lt;pre&gt;"));
    for external in ["<script", "<link", "src=", "href=", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
}

#[test]
fn schedule_is_open_loop_with_linear_ramp() {
    let s = Schedule::flat(1000.0, Duration::from_secs(2), Duration::from_secs(3));
    // Ramp sends rate·R/2 = 1000 requests, then 3000 more.
    assert_eq!(s.total_requests(), 4000);
    assert_eq!(s.offset(0), Some(Duration::ZERO));
    let t1000 = s.offset(1000).unwrap().as_secs_f64();
    assert!((t1000 - 2.0).abs() < 1e-9);
    let t = s.offset(2000).unwrap().as_secs_f64();
    assert!((t - 3.0).abs() < 1e-9);
    // Half the ramp's requests come in its last ~29%: t = R·sqrt(1/2).
    let half = s.offset(500).unwrap().as_secs_f64();
    assert!((half - 2.0 * 0.5f64.sqrt()).abs() < 1e-9);
    assert!(s.offset(3999).is_some());
    assert!(s.offset(4000).is_none());
    let flat = Schedule::flat(10.0, Duration::ZERO, Duration::from_secs(1));
    assert_eq!(flat.offset(3), Some(Duration::from_millis(300)));
    assert_eq!(flat.total_requests(), 10);
    assert!(flat.offset(10).is_none());
}

#[test]
fn dinner_profile_rises_to_five_times_base_and_back() {
    let s = Schedule {
        profile: Profile::Dinner,
        ..Schedule::flat(100.0, Duration::from_secs(1), Duration::from_secs(10))
    };
    let at = |t: f64| s.rate_at(Duration::from_secs_f64(t));
    assert!((at(0.5) - 50.0).abs() < 1e-9); // ramp
    assert!((at(2.0) - 100.0).abs() < 1e-9); // base
    assert!((at(4.0) - 300.0).abs() < 1e-9); // rising
    assert!((at(6.0) - 500.0).abs() < 1e-9); // peak
    assert!((at(10.5) - 100.0).abs() < 1e-9); // base again
    assert_eq!(at(11.5), 0.0);
    // ramp 50 + base 200 + rise 600 + peak 1000 + fall 600 + base 200.
    assert_eq!(s.total_requests(), 2650);
    // offset() inverts due() across every segment, and the gaps follow the rate.
    let mut prev = Duration::ZERO;
    for i in (0..2650).step_by(7) {
        let t = s.offset(i).unwrap();
        assert!((s.due(t) - i as f64).abs() < 1e-6, "{i}");
        assert!(t >= prev);
        prev = t;
    }
    assert!(s.offset(2650).is_none());
    let gap = |i| (s.offset(i + 1).unwrap() - s.offset(i).unwrap()).as_secs_f64();
    assert!((gap(100) - 0.01).abs() < 1e-6); // base 100/s
    assert!((gap(1500) - 0.002).abs() < 1e-6); // peak 500/s
}

#[test]
fn durations_parse() {
    assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
    assert!(parse_duration("fast").is_err());
}

#[test]
fn prometheus_deltas() {
    let before = metrics::parse(
        "# HELP x\n# TYPE cell_http_requests_total counter\n\
         cell_http_requests_total{route=\"/a b\",status=\"200\"} 10\n\
         cell_orders_created_total 3\nother_total 1\n",
    );
    let after = metrics::parse(
        "cell_http_requests_total{route=\"/a b\",status=\"200\"} 25\n\
         cell_http_requests_total{route=\"/a b\",status=\"500\"} 2\n\
         cell_orders_created_total 3 1700000000\nother_total 9\n",
    );
    let d = metrics::deltas(
        &before,
        &after,
        &["cell_http_requests_total", "cell_orders_created_total"],
    );
    assert_eq!(d.families["cell_http_requests_total"], 17.0);
    assert_eq!(d.families["cell_orders_created_total"], 0.0);
    assert!(!d.families.contains_key("other_total"));
    assert_eq!(
        d.series["cell_http_requests_total{route=\"/a b\",status=\"500\"}"],
        2.0
    );
    assert_eq!(d.series.len(), 2);
}

#[test]
fn quantiles_and_histogram_serialization() {
    let r = op("x", &[1_000, 2_000, 3_000], 1, Duration::from_secs(3));
    assert_eq!(r.ok, 3);
    assert_eq!(r.errors, 1);
    assert_eq!(r.failed["500"], 1);
    assert!((r.rate_ok_per_s - 1.0).abs() < 1e-9);
    assert!((r.latency_ms.p50 - 2.0).abs() < 0.01);
    assert!((r.latency_ms.max - 3.0).abs() < 0.01);
    assert!(!r.latency_hist_b64.is_empty());
}

#[test]
fn rate_window_extends_to_the_last_answer_when_the_target_fell_behind() {
    use std::time::Instant;
    let rec = Recorder::with_shards(&["place"], 2);
    let t0 = Instant::now();
    // 1000 requests scheduled over 1 s, the last answered at 4 s.
    for i in 0..1000u64 {
        let done = t0 + Duration::from_millis(4 * i + 4);
        rec.record_in(
            (i % 2) as usize,
            0,
            false,
            Outcome::Ok,
            us(1),
            us(1),
            Some(done),
        );
    }
    let s = &rec.steady()[0];
    assert_eq!(s.last_done, Some(t0 + Duration::from_millis(4000)));
    let w = super::steady_window(Duration::from_secs(1), t0, s.last_done);
    assert_eq!(w, Duration::from_secs(4));
    assert!((rate(s.ok, w) - 250.0).abs() < 1e-9);
    // Answers within the schedule: the window is the schedule's.
    assert_eq!(
        super::steady_window(Duration::from_secs(5), t0, s.last_done),
        Duration::from_secs(5)
    );
}
