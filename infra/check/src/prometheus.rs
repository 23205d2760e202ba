//! The Prometheus scrape config and rule files, and the metric-reference check shared with the
//! Grafana dashboard.

use crate::exports::Exports;
use crate::{Problems, promql};
use serde_json::Value;
use std::collections::BTreeSet;

/// An expression found in a config, with where it came from (for messages).
#[derive(Debug, Clone)]
pub struct Expr {
    pub at: String,
    pub expr: String,
}

/// Parses YAML into a JSON value (the checks navigate JSON values; YAML is a superset).
pub fn yaml_value(text: &str) -> Result<Value, String> {
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

/// Checks `prometheus.yml`: jobs named uniquely, each scraping `host:port` targets on a path
/// the services serve; `rule_files` exist (`rule_file_exists` answers for a listed name).
pub fn check_config(
    text: &str,
    served_paths: &[&str],
    rule_file_exists: &dyn Fn(&str) -> bool,
) -> Problems {
    let mut p = Vec::new();
    let doc = match yaml_value(text) {
        Ok(v) => v,
        Err(e) => return vec![format!("does not parse: {e}")],
    };
    for f in doc["rule_files"].as_array().into_iter().flatten() {
        match f.as_str() {
            Some(name) if rule_file_exists(name) => {}
            Some(name) => p.push(format!("rule file {name} does not exist")),
            None => p.push(format!("rule_files entry {f} is not a string")),
        }
    }
    let Some(jobs) = doc["scrape_configs"].as_array().filter(|a| !a.is_empty()) else {
        p.push("no scrape_configs".into());
        return p;
    };
    let mut names = BTreeSet::new();
    for job in jobs {
        let Some(name) = job["job_name"].as_str() else {
            p.push("a scrape config has no job_name".into());
            continue;
        };
        if !names.insert(name) {
            p.push(format!("job {name} defined twice"));
        }
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        if !served_paths.contains(&path) {
            p.push(format!("job {name}: metrics_path {path} is not served"));
        }
        let statics = job["static_configs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if statics.is_empty() {
            p.push(format!("job {name}: no static_configs"));
        }
        for sc in &statics {
            let targets = sc["targets"].as_array().cloned().unwrap_or_default();
            if targets.is_empty() {
                p.push(format!("job {name}: a static config has no targets"));
            }
            for t in targets {
                let ok = t
                    .as_str()
                    .and_then(|s| s.rsplit_once(':'))
                    .is_some_and(|(h, port)| !h.is_empty() && port.parse::<u16>().is_ok());
                if !ok {
                    p.push(format!("job {name}: target {t} is not host:port"));
                }
            }
        }
    }
    p
}

/// Checks a rule file: groups with unique names; each rule either records or alerts, with an
/// expression; alerts carry a severity and a summary. Returns the expressions and the recorded
/// names for the metric check.
pub fn check_rules(text: &str) -> (Problems, Vec<Expr>, Vec<String>) {
    let mut p = Vec::new();
    let mut exprs = Vec::new();
    let mut recorded = Vec::new();
    let doc = match yaml_value(text) {
        Ok(v) => v,
        Err(e) => return (vec![format!("does not parse: {e}")], exprs, recorded),
    };
    let Some(groups) = doc["groups"].as_array().filter(|g| !g.is_empty()) else {
        return (vec!["no rule groups".into()], exprs, recorded);
    };
    let mut group_names = BTreeSet::new();
    for g in groups {
        let gname = g["name"].as_str().unwrap_or("");
        if gname.is_empty() || !group_names.insert(gname) {
            p.push(format!("group name {gname:?} is empty or repeated"));
        }
        let rules = g["rules"].as_array().cloned().unwrap_or_default();
        if rules.is_empty() {
            p.push(format!("group {gname}: no rules"));
        }
        for r in rules {
            let (record, alert) = (r["record"].as_str(), r["alert"].as_str());
            let id = record.or(alert).unwrap_or("?").to_owned();
            let at = format!("group {gname}, rule {id}");
            match (record, alert) {
                (Some(name), None) => recorded.push(name.to_owned()),
                (None, Some(_)) => {
                    if r["labels"]["severity"].as_str().is_none() {
                        p.push(format!("{at}: alert without labels.severity"));
                    }
                    if r["annotations"]["summary"].as_str().is_none() {
                        p.push(format!("{at}: alert without annotations.summary"));
                    }
                }
                _ => p.push(format!("{at}: needs exactly one of record or alert")),
            }
            match r["expr"].as_str().map(str::trim) {
                Some(e) if !e.is_empty() => exprs.push(Expr {
                    at,
                    expr: e.to_owned(),
                }),
                _ => p.push(format!("{at}: no expr")),
            }
        }
    }
    (p, exprs, recorded)
}

/// Every metric an expression selects must be exported by the code, recorded by a rule, or
/// added by Prometheus itself.
pub fn check_metric_refs(exprs: &[Expr], exports: &Exports, recorded: &[String]) -> Problems {
    let mut p = Vec::new();
    for e in exprs {
        match promql::metric_names(&e.expr) {
            Err(why) => p.push(format!(
                "{}: expression does not lex ({why}): {}",
                e.at, e.expr
            )),
            Ok(names) => {
                for n in names {
                    if !exports.contains(&n) && !recorded.contains(&n) {
                        p.push(format!("{}: `{n}` is not a metric the code exports", e.at));
                    }
                }
            }
        }
    }
    p
}

/// HTTP routes a binary serves, from its sources: `.route("/x", ..)` and
/// `#[utoipa::path(.., path = "/x", ..)]`, as the `route` label shows them (axum's matched path).
pub fn served_routes(files: &[crate::source::SourceFile]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        for pat in [".route(\"", "path = \""] {
            for (pos, _) in f.text.match_indices(pat) {
                if let Some(r) = f.text[pos + pat.len()..].split('"').next()
                    && r.starts_with('/')
                {
                    out.push(r.to_owned());
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// `route="..."` matchers on series whose name starts with `prefix` name a served route, so an
/// alert on one route cannot go silent when the route is renamed.
pub fn check_route_labels(exprs: &[Expr], prefix: &str, routes: &[String]) -> Problems {
    let mut p = Vec::new();
    for e in exprs {
        let mut rest = e.expr.as_str();
        while let Some(i) = rest.find(prefix) {
            rest = &rest[i..];
            let sel_end = rest.find(['{', ' ', ')', '[']).unwrap_or(rest.len());
            if rest[sel_end..].starts_with('{') {
                let body = rest[sel_end + 1..].split('}').next().unwrap_or("");
                for m in body.split(',') {
                    if let Some(v) = m.trim().strip_prefix("route=\"") {
                        let v = v.trim_end_matches('"');
                        if !routes.iter().any(|r| r == v) {
                            p.push(format!("{}: route {v:?} is not a served route", e.at));
                        }
                    }
                }
            }
            rest = &rest[prefix.len()..];
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exports::{CELL, scan};
    use crate::source::SourceFile;

    const GOOD_CONFIG: &str = "rule_files: [rules.yml]\nscrape_configs:\n  - job_name: cell\n    static_configs:\n      - targets: ['127.0.0.1:8081']\n";

    #[test]
    fn config_checks_jobs_targets_paths_and_rule_files() {
        let exists = |n: &str| n == "rules.yml";
        assert_eq!(
            check_config(GOOD_CONFIG, &["/metrics"], &exists),
            Vec::<String>::new()
        );
        let bad = "rule_files: [missing.yml]\nscrape_configs:\n  - job_name: a\n    metrics_path: /stats\n    static_configs:\n      - targets: ['nohost']\n  - job_name: a\n    static_configs: []\n";
        let p = check_config(bad, &["/metrics"], &exists);
        for want in [
            "missing.yml",
            "/stats",
            "nohost",
            "defined twice",
            "no static_configs",
        ] {
            assert!(p.iter().any(|x| x.contains(want)), "{want} not in {p:?}");
        }
        assert!(check_config("scrape_configs: [", &[], &exists)[0].contains("parse"));
    }

    #[test]
    fn rules_need_expr_and_alert_metadata() {
        let good = "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: sum(x)\n      - alert: A\n        expr: a:b > 1\n        labels: {severity: page}\n        annotations: {summary: s}\n";
        let (p, exprs, rec) = check_rules(good);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!((exprs.len(), rec), (2, vec!["a:b".to_owned()]));
        let bad = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: ''\n      - record: r\n        alert: B\n        expr: x\n  - name: g\n    rules: []\n";
        let (p, _, _) = check_rules(bad);
        for want in [
            "severity",
            "summary",
            "no expr",
            "exactly one",
            "repeated",
            "no rules",
        ] {
            assert!(p.iter().any(|x| x.contains(want)), "{want} not in {p:?}");
        }
    }

    #[test]
    fn unknown_metrics_are_reported() {
        let src = SourceFile {
            path: "c.rs".into(),
            text: "metrics::histogram!(\"lat_seconds\"); metrics::counter!(\"n_total\");".into(),
        };
        let ex = scan(&[(CELL, vec![src])], &[]);
        let e = |s: &str| Expr {
            at: "t".into(),
            expr: s.into(),
        };
        let ok = [
            e(r#"lat_seconds{quantile="0.99"} > 0.05 and rate(n_total[1m]) > 0 and up == 1"#),
            e("rec:x > 1"),
        ];
        assert!(check_metric_refs(&ok, &ex, &["rec:x".into()]).is_empty());
        // Summaries have no buckets: histogram_quantile over `_bucket` finds nothing.
        let bad = [
            e("histogram_quantile(0.99, rate(lat_seconds_bucket[5m]))"),
            e("rate(n_totl[1m])"),
            e("sum(rate(n_total[1m])"),
        ];
        let p = check_metric_refs(&bad, &ex, &[]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("lat_seconds_bucket") && p[1].contains("n_totl"));
        assert!(p[2].contains("does not lex"));
    }
    #[test]
    fn route_matchers_must_name_served_routes() {
        let src = crate::source::SourceFile {
            path: "h.rs".into(),
            text: "#[utoipa::path(post, path = \"/api/v1/orders\")]\n.route(\"/live\", get(x))"
                .into(),
        };
        let routes = served_routes(&[src]);
        assert_eq!(routes, ["/api/v1/orders", "/live"]);
        let e = |s: &str| Expr {
            at: "t".into(),
            expr: s.into(),
        };
        let ok =
            e(r#"max(cell_http_request_duration_seconds{route="/api/v1/orders", method="POST"})"#);
        assert!(check_route_labels(&[ok], "cell_http_", &routes).is_empty());
        let bad = e(
            r#"cell_http_requests_total{method="GET"} + cell_http_request_duration_seconds{route="/api/v1/order"}"#,
        );
        let p = check_route_labels(&[bad], "cell_http_", &routes);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("/api/v1/order\""));
    }
}
