//! Kubernetes manifests: every object is well-formed, Services and budgets select a workload
//! and target its ports, probes hit paths the binaries serve, and each cell's StatefulSet runs
//! on FoundationDB with the cluster file from the `fdb-cluster-file` Secret.

use crate::Problems;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The Secret holding the FoundationDB cluster file.
pub const FDB_SECRET: &str = "fdb-cluster-file";

/// All documents of a multi-document YAML file (empty documents dropped).
pub fn parse_docs(text: &str) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| e.to_string())?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn id(o: &Value) -> String {
    format!("{}/{}", o["kind"].as_str().unwrap_or("?"), name(o))
}

/// RFC 1123 label: what Kubernetes accepts for most object names.
fn dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Every object has apiVersion, kind and a valid metadata.name, unique per kind.
pub fn check_objects(docs: &[Value]) -> Problems {
    let mut p = Vec::new();
    let mut seen = BTreeMap::new();
    for (i, o) in docs.iter().enumerate() {
        for key in ["apiVersion", "kind"] {
            if o[key].as_str().is_none_or(str::is_empty) {
                p.push(format!("document {i}: no {key}"));
            }
        }
        if !dns_label(name(o)) {
            p.push(format!(
                "document {i} ({}): metadata.name {:?} is not a DNS label",
                id(o),
                name(o)
            ));
        } else if seen.insert(id(o), i).is_some() {
            p.push(format!("{} defined twice", id(o)));
        }
    }
    p
}

fn is_workload(o: &Value) -> bool {
    matches!(o["kind"].as_str(), Some("Deployment" | "StatefulSet"))
}

fn pod_labels(w: &Value) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    w["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
}

/// True when every `selector` entry is among `labels` (an empty selector selects nothing here:
/// ours always name their pods).
fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    selector
        .as_object()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

fn containers(w: &Value) -> Vec<&Value> {
    w["spec"]["template"]["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect()
}

/// `(name, number, protocol)` of every container port of a workload.
/// The `FILE` of a container's `--config FILE` arguments.
pub fn config_arg(c: &Value) -> Option<&str> {
    let args: Vec<&str> = c["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let at = args.iter().position(|a| *a == "--config")?;
    args.get(at + 1).copied()
}

fn container_ports(w: &Value) -> Vec<(String, u64, String)> {
    containers(w)
        .into_iter()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_owned(),
                p["containerPort"].as_u64().unwrap_or(0),
                p["protocol"].as_str().unwrap_or("TCP").to_owned(),
            )
        })
        .collect()
}

/// Workloads: selector matches the pod labels; containers have an image and named ports;
/// liveness/readiness/startup probes use HTTP GET on `served_paths` via a declared port.
pub fn check_workloads(docs: &[Value], served_paths: &[&str]) -> Problems {
    let mut p = Vec::new();
    for w in docs.iter().filter(|o| is_workload(o)) {
        let at = id(w);
        if !selects(&w["spec"]["selector"]["matchLabels"], pod_labels(w)) {
            p.push(format!(
                "{at}: selector.matchLabels do not match the pod template labels"
            ));
        }
        let ports = container_ports(w);
        if containers(w).is_empty() {
            p.push(format!("{at}: no containers"));
        }
        for c in containers(w) {
            let cname = c["name"].as_str().unwrap_or("?");
            if c["image"].as_str().is_none_or(str::is_empty) {
                p.push(format!("{at}, container {cname}: no image"));
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                let pr = &c[probe];
                if pr.is_null() {
                    if probe != "startupProbe" {
                        p.push(format!("{at}, container {cname}: no {probe}"));
                    }
                    continue;
                }
                let path = pr["httpGet"]["path"].as_str().unwrap_or("");
                if !served_paths.contains(&path) {
                    p.push(format!(
                        "{at}, container {cname}: {probe} path {path:?} is not served"
                    ));
                }
                if !port_ref_ok(&pr["httpGet"]["port"], "TCP", &ports) {
                    p.push(format!(
                        "{at}, container {cname}: {probe} port {} is not a TCP container port",
                        pr["httpGet"]["port"]
                    ));
                }
            }
            // The expected probe per kind: readiness must be /ready, liveness /live.
            for (probe, want) in [("livenessProbe", "/live"), ("readinessProbe", "/ready")] {
                let got = c[probe]["httpGet"]["path"].as_str();
                if got.is_some() && got != Some(want) {
                    p.push(format!(
                        "{at}, container {cname}: {probe} should use {want}"
                    ));
                }
            }
        }
    }
    p
}

/// A port reference (name or number) names a container port with `protocol`.
fn port_ref_ok(r: &Value, protocol: &str, ports: &[(String, u64, String)]) -> bool {
    ports.iter().any(|(n, num, proto)| {
        proto == protocol && (r.as_str() == Some(n.as_str()) || r.as_u64() == Some(*num))
    })
}

/// Services select exactly one workload's pods and target its ports with the same protocol;
/// StatefulSets name a headless Service; PodDisruptionBudgets select a workload.
pub fn check_services(docs: &[Value]) -> Problems {
    let mut p = Vec::new();
    let workloads: Vec<&Value> = docs.iter().filter(|o| is_workload(o)).collect();
    let matching = |sel: &Value| -> Vec<&Value> {
        workloads
            .iter()
            .copied()
            .filter(|w| selects(sel, pod_labels(w)))
            .collect()
    };
    for s in docs.iter().filter(|o| o["kind"] == "Service") {
        let at = id(s);
        let targets = matching(&s["spec"]["selector"]);
        if targets.len() != 1 {
            p.push(format!(
                "{at}: selector matches {} workloads, expected 1",
                targets.len()
            ));
            continue;
        }
        let ports = container_ports(targets[0]);
        for sp in s["spec"]["ports"].as_array().into_iter().flatten() {
            let proto = sp["protocol"].as_str().unwrap_or("TCP");
            let target = if sp["targetPort"].is_null() {
                &sp["port"]
            } else {
                &sp["targetPort"]
            };
            if !port_ref_ok(target, proto, &ports) {
                p.push(format!(
                    "{at}: port {} targets {target} ({proto}), which {} does not expose",
                    sp["name"].as_str().unwrap_or("?"),
                    id(targets[0])
                ));
            }
        }
    }
    for st in docs.iter().filter(|o| o["kind"] == "StatefulSet") {
        let svc = st["spec"]["serviceName"].as_str().unwrap_or("");
        let headless = docs
            .iter()
            .any(|o| o["kind"] == "Service" && name(o) == svc && o["spec"]["clusterIP"] == "None");
        if !headless {
            p.push(format!(
                "{}: serviceName {svc:?} is not a headless Service",
                id(st)
            ));
        }
    }
    for b in docs.iter().filter(|o| o["kind"] == "PodDisruptionBudget") {
        if matching(&b["spec"]["selector"]["matchLabels"]).len() != 1 {
            p.push(format!(
                "{}: selector does not match exactly one workload",
                id(b)
            ));
        }
    }
    p
}

/// A file a pod sees, resolved to the Secret or ConfigMap behind it: `(kind, object, key)`.
pub fn mounted_source(
    w: &Value,
    container: &Value,
    file: &str,
) -> Option<(String, String, String)> {
    let mount = container["volumeMounts"].as_array()?.iter().find(|m| {
        m["mountPath"].as_str().is_some_and(|mp| {
            file.strip_prefix(mp)
                .is_some_and(|rest| rest.starts_with('/'))
        })
    })?;
    let rel = &file[mount["mountPath"].as_str()?.len() + 1..];
    let vol = w["spec"]["template"]["spec"]["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == mount["name"])?;
    let (kind, src, obj) = if !vol["secret"].is_null() {
        (
            "Secret",
            &vol["secret"],
            vol["secret"]["secretName"].as_str()?,
        )
    } else if !vol["configMap"].is_null() {
        (
            "ConfigMap",
            &vol["configMap"],
            vol["configMap"]["name"].as_str()?,
        )
    } else {
        return None;
    };
    // With `items`, only the listed keys appear, at their `path`.
    let key = match src["items"].as_array() {
        Some(items) => items.iter().find(|i| i["path"] == rel)?["key"]
            .as_str()?
            .to_owned(),
        None => rel.to_owned(),
    };
    Some((kind.to_owned(), obj.to_owned(), key))
}

/// Each StatefulSet (a cell) runs with `--config FILE` where FILE comes from a Secret or
/// ConfigMap whose text `config_text(name, key)` returns; that config sets `store.backend =
/// "fdb"` and `store.fdb_cluster_file` to a file mounted from [`FDB_SECRET`].
pub fn check_cells_on_fdb(
    docs: &[Value],
    config_text: &dyn Fn(&str, &str) -> Option<String>,
) -> Problems {
    let mut p = Vec::new();
    let cells: Vec<&Value> = docs.iter().filter(|o| o["kind"] == "StatefulSet").collect();
    if cells.is_empty() {
        p.push("no StatefulSet (one per cell expected)".into());
    }
    for w in cells {
        let at = id(w);
        let Some(c) = containers(w).into_iter().next() else {
            p.push(format!("{at}: no container"));
            continue;
        };
        let Some(cfg) = config_arg(c) else {
            p.push(format!("{at}: container args have no --config FILE"));
            continue;
        };
        let Some((_, obj, key)) = mounted_source(w, c, cfg) else {
            p.push(format!(
                "{at}: --config {cfg} is not a file from a mounted Secret or ConfigMap"
            ));
            continue;
        };
        let Some(text) = config_text(&obj, &key) else {
            p.push(format!(
                "{at}: config {obj}/{key} is not generated by the kustomization"
            ));
            continue;
        };
        let table: toml::Table = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => {
                p.push(format!("{at}: config {obj}/{key} does not parse: {e}"));
                continue;
            }
        };
        let store = table.get("store").and_then(|s| s.as_table());
        let backend = store
            .and_then(|s| s.get("backend"))
            .and_then(|b| b.as_str());
        if backend != Some("fdb") {
            p.push(format!(
                "{at}: config {obj}/{key} sets store.backend = {backend:?}, expected \"fdb\""
            ));
        }
        let cluster = store
            .and_then(|s| s.get("fdb_cluster_file"))
            .and_then(|b| b.as_str())
            .unwrap_or("");
        match mounted_source(w, c, cluster) {
            Some((kind, obj, _)) if kind == "Secret" && obj == FDB_SECRET => {}
            _ => p.push(format!(
                "{at}: store.fdb_cluster_file {cluster:?} is not a file of the mounted {FDB_SECRET} Secret"
            )),
        }
    }
    p
}

/// `kustomization.yaml`: resources and generator files that exist, every manifest in the
/// directory listed. Returns the generated Secrets/ConfigMaps as `name → [(key, file)]`.
pub fn check_kustomization(
    text: &str,
    manifests: &[String],
    file_exists: &dyn Fn(&str) -> bool,
) -> (Problems, BTreeMap<String, Vec<(String, String)>>) {
    let mut p = Vec::new();
    let mut generated = BTreeMap::new();
    let k: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                vec![format!("kustomization does not parse: {e}")],
                generated,
            );
        }
    };
    if k["kind"] != "Kustomization" {
        p.push("kustomization.yaml is not a Kustomization".into());
    }
    let resources: Vec<&str> = k["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for r in &resources {
        if !file_exists(r) {
            p.push(format!("resource {r} does not exist"));
        }
    }
    for m in manifests {
        if !resources.contains(&m.as_str()) {
            p.push(format!("{m} is not listed in resources"));
        }
    }
    for gen_key in ["secretGenerator", "configMapGenerator"] {
        for g in k[gen_key].as_array().into_iter().flatten() {
            let gname = g["name"].as_str().unwrap_or("").to_owned();
            let mut files = Vec::new();
            for f in g["files"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let (key, path) = f
                    .split_once('=')
                    .unwrap_or((f.rsplit('/').next().unwrap_or(f), f));
                if !file_exists(path) {
                    p.push(format!("{gen_key} {gname}: file {path} does not exist"));
                }
                files.push((key.to_owned(), path.to_owned()));
            }
            generated.insert(gname, files);
        }
    }
    (p, generated)
}

#[cfg(test)]
#[path = "k8s_tests.rs"]
mod tests;
