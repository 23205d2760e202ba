//! Which metric series the services export, read from their sources: every
//! `counter!`/`gauge!`/`histogram!` (and `describe_*!`) call with a literal name or a `&str`
//! constant, plus how the Prometheus exporter renders histograms in that binary.

use crate::source::{SourceFile, in_line_comment, line_of};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// How `metrics-exporter-prometheus` renders a binary's histograms: as summaries
/// (`name{quantile=..}`, `_sum`, `_count`; its default) unless buckets are configured
/// (`_bucket`, `_sum`, `_count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramMode {
    Summary,
    Buckets,
    /// Buckets for some metrics only (`set_buckets_for_metric`): either form may exist.
    Mixed,
}

/// A metric registered somewhere in the sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    pub name: String,
    pub kind: Kind,
    /// `file:line` of the first registration.
    pub at: String,
}

/// One binary and the source trees linked into it.
#[derive(Debug, Clone, Copy)]
pub struct Component {
    pub name: &'static str,
    pub dirs: &'static [&'static str],
}

pub const CELL: Component = Component {
    name: "cell",
    dirs: &["cell", "geostore", "platform"],
};
pub const ROUTER: Component = Component {
    name: "router",
    dirs: &["router", "platform"],
};

/// Metric names agreed for a component before its code registers them (the router was written
/// alongside these dashboards). Empty: `router/src` registers every name the dashboards use.
/// [`Exports::notes`] says when a name was taken from here.
pub const ROUTER_PENDING: &[(&str, Kind)] = &[];

/// Series Prometheus itself adds to every scrape target.
pub const PROMETHEUS_SYNTHETIC: &[&str] = &[
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// What the services export.
#[derive(Debug, Default)]
pub struct Exports {
    pub metrics: BTreeMap<String, Metric>,
    /// Every series name a scrape can return (histograms expanded per [`HistogramMode`]).
    pub series: BTreeSet<String>,
    /// Things worth printing: fallbacks used, names that could not be resolved.
    pub notes: Vec<String>,
    /// Problems in the sources themselves (one name registered with two kinds).
    pub problems: Vec<String>,
}

impl Exports {
    pub fn contains(&self, series: &str) -> bool {
        self.series.contains(series) || PROMETHEUS_SYNTHETIC.contains(&series)
    }
}

/// Scans each component's sources; `pending` fills in names a component does not register
/// yet (see [`ROUTER_PENDING`]).
pub fn scan(
    components: &[(Component, Vec<SourceFile>)],
    pending: &[(Component, &[(&str, Kind)])],
) -> Exports {
    let mut ex = Exports::default();
    for (comp, files) in components {
        let mode = histogram_mode(files);
        let (found, unresolved) = registrations(files);
        for u in unresolved {
            ex.notes.push(format!(
                "{}: metric name not a literal or constant: {u}",
                comp.name
            ));
        }
        let mut mine: BTreeMap<String, Metric> = BTreeMap::new();
        for m in found {
            match mine.get(&m.name) {
                Some(prev) if prev.kind != m.kind => ex.problems.push(format!(
                    "{} is a {:?} at {} but a {:?} at {}",
                    m.name, prev.kind, prev.at, m.kind, m.at
                )),
                Some(_) => {}
                None => {
                    mine.insert(m.name.clone(), m);
                }
            }
        }
        for (pcomp, list) in pending.iter().filter(|(c, _)| c.name == comp.name) {
            for (name, kind) in list.iter() {
                match mine.get(*name) {
                    Some(m) if m.kind != *kind => ex.problems.push(format!(
                        "{name}: {} registers a {:?} at {}, the agreed kind is {kind:?}",
                        pcomp.name, m.kind, m.at
                    )),
                    Some(_) => {}
                    None => {
                        ex.notes.push(format!(
                            "{name}: not registered in {}/ yet, taken from the pending list",
                            pcomp.name
                        ));
                        let at = "pending list".to_owned();
                        let m = Metric {
                            name: (*name).to_owned(),
                            kind: *kind,
                            at,
                        };
                        mine.insert(m.name.clone(), m);
                    }
                }
            }
        }
        for m in mine.into_values() {
            ex.series.extend(series_of(&m, mode));
            ex.metrics.entry(m.name.clone()).or_insert(m);
        }
    }
    ex
}

/// The series names one metric shows up as on `/metrics`.
pub fn series_of(m: &Metric, mode: HistogramMode) -> Vec<String> {
    let n = &m.name;
    match (m.kind, mode) {
        (Kind::Counter | Kind::Gauge, _) => vec![n.clone()],
        (Kind::Histogram, HistogramMode::Summary) => {
            vec![n.clone(), format!("{n}_sum"), format!("{n}_count")]
        }
        (Kind::Histogram, HistogramMode::Buckets) => {
            vec![
                format!("{n}_bucket"),
                format!("{n}_sum"),
                format!("{n}_count"),
            ]
        }
        (Kind::Histogram, HistogramMode::Mixed) => vec![
            n.clone(),
            format!("{n}_bucket"),
            format!("{n}_sum"),
            format!("{n}_count"),
        ],
    }
}

pub fn histogram_mode(files: &[SourceFile]) -> HistogramMode {
    let has = |pat: &str| files.iter().any(|f| f.text.contains(pat));
    if has(".set_buckets(") {
        HistogramMode::Buckets
    } else if has(".set_buckets_for_metric(") {
        HistogramMode::Mixed
    } else {
        HistogramMode::Summary
    }
}

/// Metric registrations in `files`, and the name expressions that could not be resolved.
pub fn registrations(files: &[SourceFile]) -> (Vec<Metric>, Vec<String>) {
    let consts = str_constants(files);
    let mut found = Vec::new();
    let mut unresolved = Vec::new();
    for f in files {
        for (kind, word) in [
            (Kind::Counter, "counter!("),
            (Kind::Gauge, "gauge!("),
            (Kind::Histogram, "histogram!("),
        ] {
            for (pos, _) in f.text.match_indices(word) {
                let before = f.text[..pos].chars().next_back();
                // `describe_counter!(` counts; `my_counter!(` or `xcounter!(` does not.
                let ok = match before {
                    None => true,
                    Some(c) if c.is_alphanumeric() => false,
                    Some('_') => f.text[..pos].ends_with("describe_"),
                    Some(_) => true,
                };
                if !ok || in_line_comment(&f.text, pos) {
                    continue;
                }
                let at = format!("{}:{}", f.path.display(), line_of(&f.text, pos));
                let arg = f.text[pos + word.len()..].trim_start();
                let name = if let Some(rest) = arg.strip_prefix('"') {
                    rest.split('"').next().map(str::to_owned)
                } else {
                    let path: String = arg
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                        .collect();
                    let last = path.rsplit("::").next().unwrap_or("").to_owned();
                    match consts.get(&last) {
                        Some(v) => Some(v.clone()),
                        None => {
                            unresolved.push(format!("`{path}` at {at}"));
                            None
                        }
                    }
                };
                if let Some(name) = name {
                    found.push(Metric { name, kind, at });
                }
            }
        }
    }
    (found, unresolved)
}

/// `const NAME: &str = "value";` declarations (names may be reused across modules; the
/// metric constants this resolves are unique).
fn str_constants(files: &[SourceFile]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for f in files {
        for (pos, _) in f.text.match_indices("const ") {
            let rest = &f.text[pos + 6..];
            let Some((name, after)) = rest.split_once(':') else {
                continue;
            };
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let after = after.trim_start();
            let after = after
                .strip_prefix("&'static str")
                .or_else(|| after.strip_prefix("&str"));
            let Some(after) = after else { continue };
            let Some(value) = after.trim_start().strip_prefix('=') else {
                continue;
            };
            if let Some(lit) = value.trim_start().strip_prefix('"')
                && let Some(v) = lit.split('"').next()
            {
                out.insert(name.to_owned(), v.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn finds_literals_constants_and_describe_calls_but_not_comments() {
        let files = [
            file(
                "a.rs",
                "metrics::counter!(\"a_total\", \"k\" => v).increment(1);\n\
                 // metrics::gauge!(\"commented_out\")\n\
                 metrics::histogram!(\n    \"lat_seconds\",\n).record(1.0);\n\
                 describe_gauge!(\"g\", \"help\");\n\
                 my_counter!(\"not_a_metric\");\n\
                 metrics::gauge!(metric::NAMED).set(1.0);\n",
            ),
            file(
                "b.rs",
                "pub mod metric { pub const NAMED: &str = \"named_gauge\"; }",
            ),
        ];
        let (found, unresolved) = registrations(&files);
        let names: Vec<_> = found.iter().map(|m| (m.name.as_str(), m.kind)).collect();
        assert_eq!(
            names,
            [
                ("a_total", Kind::Counter),
                ("g", Kind::Gauge),
                ("named_gauge", Kind::Gauge),
                ("lat_seconds", Kind::Histogram),
            ]
        );
        assert!(unresolved.is_empty(), "{unresolved:?}");
        assert_eq!(found[0].at, "a.rs:1");
    }

    #[test]
    fn dynamic_names_are_reported_not_guessed() {
        let (found, unresolved) =
            registrations(&[file("x.rs", "metrics::counter!(name).increment(1);")]);
        assert!(found.is_empty());
        assert_eq!(unresolved, ["`name` at x.rs:1"]);
    }

    #[test]
    fn histogram_series_follow_the_exporter_mode() {
        let h = Metric {
            name: "h".into(),
            kind: Kind::Histogram,
            at: String::new(),
        };
        assert_eq!(
            series_of(&h, HistogramMode::Summary),
            ["h", "h_sum", "h_count"]
        );
        assert_eq!(
            series_of(&h, HistogramMode::Buckets),
            ["h_bucket", "h_sum", "h_count"]
        );
        let summary = [file("m.rs", "PrometheusBuilder::new().install_recorder()")];
        let buckets = [file(
            "m.rs",
            "PrometheusBuilder::new().set_buckets(&[0.1])?",
        )];
        assert_eq!(histogram_mode(&summary), HistogramMode::Summary);
        assert_eq!(histogram_mode(&buckets), HistogramMode::Buckets);
    }

    #[test]
    fn pending_names_fill_gaps_and_conflicting_kinds_are_problems() {
        let router = vec![file(
            "router/src/m.rs",
            "metrics::counter!(\"router_cell_up\").increment(1);",
        )];
        let pending: &[(&str, Kind)] = &[
            ("router_cell_up", Kind::Gauge),
            ("router_x_total", Kind::Counter),
        ];
        let ex = scan(&[(ROUTER, router)], &[(ROUTER, pending)]);
        assert!(ex.contains("router_x_total"));
        assert!(
            ex.notes.iter().any(|n| n.starts_with("router_x_total")),
            "{:?}",
            ex.notes
        );
        assert_eq!(ex.problems.len(), 1, "{:?}", ex.problems);
        assert!(ex.problems[0].contains("router_cell_up"));
        assert!(ex.contains("up") && !ex.contains("router_y"));
    }

    #[test]
    fn one_name_with_two_kinds_is_a_problem() {
        let f = file("c.rs", "gauge!(\"x\"); counter!(\"x\");");
        let ex = scan(&[(CELL, vec![f])], &[]);
        assert_eq!(ex.problems.len(), 1, "{:?}", ex.problems);
    }
}
