//! Tests of the step logic: p99 from scrapes, per-driver windows, rates, verdicts.

use super::*;

fn scrape(lines: &[(&str, f64)]) -> BTreeMap<String, f64> {
    lines.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn p99_from_bucket_deltas_of_the_window() {
    let b = |le: &str| format!("{PUSH}_bucket{{le=\"{le}\"}}");
    let (b1, b2, b3) = (b("0.01"), b("0.05"), b("+Inf"));
    // Before the window: 1,000 slow pushes, which must not count.
    let before = scrape(&[(&b1, 0.0), (&b2, 0.0), (&b3, 1000.0)]);
    // In the window: 990 under 10 ms, 10 more under 50 ms.
    let after = scrape(&[(&b1, 990.0), (&b2, 1000.0), (&b3, 2000.0)]);
    // Delta: 990 / 1000 / 1000 of 1000.
    assert_eq!(push_p99_ms(&before, &after), Some((10.0, "histogram")));
    let after = scrape(&[(&b1, 900.0), (&b2, 995.0), (&b3, 2000.0)]);
    assert_eq!(push_p99_ms(&before, &after), Some((50.0, "histogram")));
    // Over 1 % above the last finite bound: the p99 is unbounded, which fails any limit.
    let after = scrape(&[(&b1, 900.0), (&b2, 985.0), (&b3, 2000.0)]);
    assert_eq!(
        push_p99_ms(&before, &after),
        Some((f64::INFINITY, "histogram"))
    );
}

#[test]
fn p99_from_the_summary_only_when_something_was_pushed() {
    let q = format!("{PUSH}{{quantile=\"0.99\"}}");
    let n = format!("{PUSH}_count");
    let before = scrape(&[(&n, 10.0), (&q, 0.002)]);
    let after = scrape(&[(&n, 50.0), (&q, 0.02)]);
    assert_eq!(push_p99_ms(&before, &after), Some((20.0, "summary")));
    assert_eq!(push_p99_ms(&after, &after), None);
    assert_eq!(push_p99_ms(&BTreeMap::new(), &BTreeMap::new()), None);
}

#[test]
fn default_is_the_command_line_default() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        steps: StepArgs,
    }
    assert_eq!(Cli::parse_from(["loadgen"]).steps, StepArgs::default());
    let c = Cli::parse_from(["loadgen", "--step", "2", "--max-rate", "8000"]);
    assert_eq!((c.steps.step, c.steps.max_rate), (2.0, Some(8000.0)));
}

fn args(max_rate: Option<f64>) -> StepArgs {
    StepArgs {
        step: 1.5,
        step_duration: Duration::from_secs(20),
        warm_up: Duration::from_secs(5),
        max_rate,
        max_loss_pct: 0.1,
        max_p99_ms: 50.0,
    }
}

#[test]
fn per_driver_window_counts_by_seq_and_only_this_runs_drivers() {
    let seen = |n: &[(u64, u64, u64)]| -> Snapshot {
        n.iter()
            .map(|&(id, max_seq, accepted)| {
                let s = seen::Seen {
                    received: accepted,
                    accepted,
                    max_seq,
                    ..seen::Seen::default()
                };
                (id, s)
            })
            .collect()
    };
    // Driver 1 sent seq 11..=20 and 9 were accepted; driver 2 appeared in the window;
    // driver 99 is another client's.
    let before = seen(&[(1, 10, 10), (99, 5, 5)]);
    let after = seen(&[(1, 20, 19), (2, 4, 4), (99, 500, 500)]);
    assert_eq!(per_driver_window(&[1, 2, 3], &before, &after), (14, 13));
}

#[test]
fn rates_step_up_to_the_cap_and_stop_there() {
    assert_eq!(next_rate(1000.0, &args(None)), Some(1500.0));
    assert_eq!(next_rate(1000.0, &args(Some(1200.0))), Some(1200.0));
    assert_eq!(next_rate(1200.0, &args(Some(1200.0))), None);
}

#[test]
fn a_step_holds_only_within_loss_latency_and_the_sent_rate() {
    let step = |achieved: f64, accepted: u64, p99: Option<f64>| {
        let server = ServerPings {
            scraped: true,
            arrived: accepted,
            accepted,
            ..ServerPings::default()
        };
        Step {
            target_rate: 1000.0,
            achieved_rate: achieved,
            window_s: 10.0,
            sent: 10_000,
            send_errors: 0,
            loss_pct: Loss::new(10_000, &server).loss_pct,
            loss_source: "metrics",
            sent_per_driver: None,
            accepted_per_driver: None,
            loss: Loss::new(10_000, &server),
            p99_ms: p99,
            p99_source: None,
            cpu: CpuUse::default(),
            cell_us_per_ping: None,
            loadgen_us_per_ping: 1.0,
            held: false,
        }
    };
    let a = args(None);
    assert_eq!(judge(&step(1000.0, 10_000, Some(5.0)), &a), None);
    assert_eq!(judge(&step(1000.0, 9_995, None), &a), None);
    assert!(
        judge(&step(1000.0, 9_980, None), &a)
            .unwrap()
            .starts_with("loss")
    );
    assert!(
        judge(&step(1000.0, 10_000, Some(60.0)), &a)
            .unwrap()
            .starts_with("p99")
    );
    assert!(
        judge(&step(900.0, 10_000, None), &a)
            .unwrap()
            .contains("load generator")
    );
}
