//! The Grafana dashboard JSON: a dashboard Grafana can import, whose every panel queries
//! something, and the expressions it queries (checked against the exports by the caller).

use crate::Problems;
use crate::prometheus::Expr;
use serde_json::Value;
use std::collections::BTreeSet;

/// Checks the dashboard's structure and returns its PromQL expressions (panel targets and
/// template-variable queries).
pub fn check_dashboard(text: &str) -> (Problems, Vec<Expr>) {
    let mut p = Vec::new();
    let mut exprs = Vec::new();
    let d: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return (vec![format!("does not parse: {e}")], exprs),
    };
    if d["schemaVersion"].as_u64().is_none_or(|v| v < 30) {
        p.push("schemaVersion missing or below 30 (Grafana 8+)".into());
    }
    for key in ["uid", "title"] {
        if d[key].as_str().is_none_or(str::is_empty) {
            p.push(format!("dashboard has no {key}"));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            let q = v["query"]["query"]
                .as_str()
                .or(v["query"].as_str())
                .unwrap_or("");
            let name = v["name"].as_str().unwrap_or("?");
            match template_expr(q) {
                Some(e) => exprs.push(Expr {
                    at: format!("variable ${name}"),
                    expr: e,
                }),
                None => p.push(format!("variable ${name}: unsupported query {q:?}")),
            }
        }
    }
    let panels = d["panels"].as_array().cloned().unwrap_or_default();
    if panels.is_empty() {
        p.push("dashboard has no panels".into());
    }
    let mut ids = BTreeSet::new();
    let mut all = Vec::new();
    for panel in panels {
        // Collapsed rows keep their panels inside.
        all.extend(panel["panels"].as_array().cloned().unwrap_or_default());
        all.push(panel);
    }
    for panel in &all {
        let title = panel["title"].as_str().unwrap_or("");
        let id = panel["id"].as_u64();
        let at = format!(
            "panel {:?} (id {})",
            title,
            id.map_or("none".into(), |i| i.to_string())
        );
        match id {
            Some(i) if ids.insert(i) => {}
            _ => p.push(format!("{at}: id missing or repeated")),
        }
        let g = &panel["gridPos"];
        match (
            g["x"].as_u64(),
            g["y"].as_u64(),
            g["w"].as_u64(),
            g["h"].as_u64(),
        ) {
            (Some(x), Some(_), Some(w), Some(h)) if w > 0 && h > 0 && x + w <= 24 => {}
            _ => p.push(format!(
                "{at}: gridPos must have x, y, w > 0, h > 0 and x + w <= 24"
            )),
        }
        if panel["type"] == "row" {
            continue;
        }
        if title.is_empty() {
            p.push(format!("{at}: no title"));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            p.push(format!("{at}: no targets"));
        }
        let mut refs = BTreeSet::new();
        for t in &targets {
            let r = t["refId"].as_str().unwrap_or("");
            if r.is_empty() || !refs.insert(r.to_owned()) {
                p.push(format!("{at}: refId {r:?} missing or repeated"));
            }
            if panel["datasource"].is_null() && t["datasource"].is_null() {
                p.push(format!("{at}, target {r}: no datasource"));
            }
            match t["expr"].as_str().map(str::trim) {
                Some(e) if !e.is_empty() => exprs.push(Expr {
                    at: format!("{at}, target {r}"),
                    expr: e.to_owned(),
                }),
                _ => p.push(format!("{at}, target {r}: no expr")),
            }
        }
    }
    (p, exprs)
}

/// The PromQL inside a Prometheus template query: `label_values(expr, label)` → `expr`,
/// `query_result(expr)` → `expr`, `label_values(label)` / `label_names()` → nothing to check.
fn template_expr(q: &str) -> Option<String> {
    let q = q.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|s| s.strip_suffix(')'))
    {
        return Some(match inner.rsplit_once(',') {
            Some((expr, _label)) => expr.trim().to_owned(),
            None => String::new(),
        });
    }
    if let Some(inner) = q
        .strip_prefix("query_result(")
        .and_then(|s| s.strip_suffix(')'))
    {
        return Some(inner.trim().to_owned());
    }
    (q == "label_names()").then(String::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"uid": "d", "title": "D", "schemaVersion": 39,
      "templating": {"list": [{"name": "cell", "type": "query",
        "query": {"query": "label_values(cell_pings_total, cell)"}}]},
      "panels": [
        {"id": 1, "type": "row", "title": "R", "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1}, "panels": []},
        {"id": 2, "type": "timeseries", "title": "P", "datasource": {"uid": "p"},
         "gridPos": {"x": 0, "y": 1, "w": 12, "h": 8},
         "targets": [{"refId": "A", "expr": "rate(a_total[1m])"}]}]}"#;

    #[test]
    fn a_good_dashboard_yields_its_expressions() {
        let (p, exprs) = check_dashboard(GOOD);
        assert!(p.is_empty(), "{p:?}");
        let e: Vec<_> = exprs.iter().map(|e| e.expr.as_str()).collect();
        assert_eq!(e, ["cell_pings_total", "rate(a_total[1m])"]);
    }

    #[test]
    fn broken_dashboards_are_reported() {
        let bad = r#"{"schemaVersion": 16, "title": "",
          "templating": {"list": [{"name": "v", "type": "query", "query": "metrics(x)"}]},
          "panels": [
            {"id": 1, "type": "stat", "title": "no targets", "gridPos": {"x": 0, "y": 0, "w": 12, "h": 8}},
            {"id": 1, "type": "timeseries", "title": "t", "gridPos": {"x": 20, "y": 0, "w": 12, "h": 8},
             "targets": [{"refId": "A", "expr": ""}, {"refId": "A", "expr": "x"}]}]}"#;
        let (p, _) = check_dashboard(bad);
        for want in [
            "schemaVersion",
            "no uid",
            "no title",
            "unsupported query",
            "no targets",
            "repeated",
            "gridPos",
            "no expr",
            "no datasource",
        ] {
            assert!(p.iter().any(|x| x.contains(want)), "{want} not in {p:#?}");
        }
        assert!(check_dashboard("{").0[0].contains("parse"));
        assert!(
            check_dashboard(r#"{"uid":"u","title":"t","schemaVersion":39}"#).0[0]
                .contains("no panels")
        );
    }
}
