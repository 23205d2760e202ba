//! The one-screen summary printed at the end of a run.

use super::Report;
use std::fmt::Write;

/// A latency in ms with about three significant digits.
pub fn ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Renders the summary table, SLO verdicts and server deltas as text.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n{} against {} — steady {:.1}s after {:.1}s ramp-up; latency in ms from the intended send time",
        r.scenario, r.target, r.steady_s, r.ramp_up_s
    );
    let _ = writeln!(
        s,
        "{:<10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "op", "sent", "ok/s", "p50", "p90", "p99", "p99.9", "max", "svc p99", "errors"
    );
    for o in &r.ops {
        if o.sent == 0 && o.ok == 0 && o.errors == 0 {
            continue;
        }
        let l = &o.latency_ms;
        let mut errs = o.errors.to_string();
        if o.errors > 0 {
            let mut parts: Vec<String> = o.failed.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            if o.timed_out > 0 {
                parts.push(format!("timeout:{}", o.timed_out));
            }
            if o.transport_errors > 0 {
                parts.push(format!("conn:{}", o.transport_errors));
            }
            errs = format!("{errs} ({})", parts.join(" "));
        }
        // Untimed ops (pings: datagrams, no answer) show their loss instead.
        let q = |v: f64| if o.timed { ms(v) } else { "-".into() };
        if let Some(loss) = o.loss_pct {
            errs = format!("{errs} (loss {loss:.3}%)");
        }
        let _ = writeln!(
            s,
            "{:<10} {:>9} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            o.op,
            o.sent,
            o.rate_ok_per_s,
            q(l.p50),
            q(l.p90),
            q(l.p99),
            q(l.p999),
            q(l.max),
            q(o.service_ms.p99),
            errs
        );
    }
    let late: Vec<String> = r
        .ops
        .iter()
        .filter(|o| o.rate_window_s > r.steady_s + 0.5)
        .map(|o| format!("{} {:.1}s", o.op, o.rate_window_s))
        .collect();
    if !late.is_empty() {
        let _ = writeln!(
            s,
            "answers kept coming after the schedule ended; rates over: {}",
            late.join(", ")
        );
    }
    if r.unfinished > 0 || r.in_flight_cap_waits > 0 {
        let _ = writeln!(
            s,
            "unfinished at stop: {}   waits for an in-flight slot: {}",
            r.unfinished, r.in_flight_cap_waits
        );
    }
    let _ = writeln!(
        s,
        "dispatcher max lag {} ms   CPU (cores): loadgen {:.2}{}   load avg {} -> {}   {} × {}",
        ms(r.max_dispatch_lag_ms),
        r.cpu.loadgen_cores,
        r.cpu
            .target_cores
            .map(|c| format!(", target {c:.2}"))
            .unwrap_or_default(),
        r.machine.loadavg_start,
        r.machine.loadavg_end,
        r.machine.cores,
        r.machine.cpu_model
    );
    if r.server.scraped {
        let fams: Vec<String> = r
            .server
            .families
            .iter()
            .filter(|(k, _)| !k.ends_with("_sum") && !k.ends_with("_count"))
            .map(|(k, v)| format!("{k} +{v:.0}"))
            .collect();
        let _ = writeln!(s, "server: {}", fams.join("   "));
        let sum = r
            .server
            .families
            .get("cell_http_request_duration_seconds_sum");
        let count = r
            .server
            .families
            .get("cell_http_request_duration_seconds_count");
        if let (Some(sum), Some(count)) = (sum, count)
            && *count > 0.0
        {
            let _ = writeln!(
                s,
                "server: mean in-handler time {} ms over {count:.0} requests",
                ms(sum / count * 1000.0)
            );
        }
    } else {
        let _ = writeln!(s, "server: /metrics not scraped");
    }
    s += &super::slo::render(&r.slo);
    for e in r.error_samples.iter().take(5) {
        let _ = writeln!(s, "error sample: {e}");
    }
    s
}
