//! Tests of the Kubernetes manifest checks, each on a small inline manifest: a good cell
//! passes, and each kind of mistake (malformed objects, probes, selectors, ports, the FDB
//! secret, the kustomization list) is reported.

use super::*;
use crate::OPS_PATHS;

const CELL: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: cell-x}
spec:
  serviceName: cell-x
  selector: {matchLabels: {app: cell-x}}
  template:
    metadata: {labels: {app: cell-x, tier: cell}}
    spec:
      containers:
        - name: cell
          image: cell:1
          args: ["run", "--config", "/etc/delivery/config/cell.toml"]
          ports:
            - {name: http, containerPort: 8081}
            - {name: quic, containerPort: 4433, protocol: UDP}
          readinessProbe: {httpGet: {path: /ready, port: http}}
          livenessProbe: {httpGet: {path: /live, port: 8081}}
          volumeMounts:
            - {name: config, mountPath: /etc/delivery/config}
            - {name: fdb, mountPath: /etc/foundationdb}
      volumes:
        - name: config
          secret: {secretName: cell-x-config, items: [{key: cell.toml, path: cell.toml}]}
        - name: fdb
          secret: {secretName: fdb-cluster-file, items: [{key: fdb.cluster, path: fdb.cluster}]}
---
apiVersion: v1
kind: Service
metadata: {name: cell-x}
spec:
  clusterIP: None
  selector: {app: cell-x}
  ports:
    - {name: http, port: 8081, targetPort: http}
    - {name: quic, port: 4433, targetPort: quic, protocol: UDP}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: cell-x}
spec: {minAvailable: 1, selector: {matchLabels: {app: cell-x}}}
"#;

const FDB_CONFIG: &str =
    "[store]\nbackend = \"fdb\"\nfdb_cluster_file = \"/etc/foundationdb/fdb.cluster\"\n";

fn docs(text: &str) -> Vec<Value> {
    parse_docs(text).unwrap()
}

fn config(text: &'static str) -> impl Fn(&str, &str) -> Option<String> {
    move |obj, key| (obj == "cell-x-config" && key == "cell.toml").then(|| text.to_owned())
}

#[test]
fn a_good_cell_passes_every_check() {
    let d = docs(CELL);
    assert_eq!(d.len(), 3);
    assert!(check_objects(&d).is_empty(), "{:?}", check_objects(&d));
    assert!(
        check_workloads(&d, &OPS_PATHS).is_empty(),
        "{:?}",
        check_workloads(&d, &OPS_PATHS)
    );
    assert!(check_services(&d).is_empty(), "{:?}", check_services(&d));
    let p = check_cells_on_fdb(&d, &config(FDB_CONFIG));
    assert!(p.is_empty(), "{p:?}");
}

#[test]
fn malformed_objects_are_reported() {
    assert!(parse_docs("a: [").is_err());
    let d = docs(
        "kind: Service\nmetadata: {name: Bad_Name}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: a}\n",
    );
    let p = check_objects(&d);
    assert!(p.iter().any(|x| x.contains("no apiVersion")), "{p:?}");
    assert!(p.iter().any(|x| x.contains("Bad_Name")), "{p:?}");
    assert!(p.iter().any(|x| x.contains("defined twice")), "{p:?}");
}

#[test]
fn wrong_probes_and_selectors_are_reported() {
    let bad = CELL
        .replace("path: /ready, port: http", "path: /healthz, port: http")
        .replace("path: /live, port: 8081", "path: /live, port: 9999")
        .replace(
            "matchLabels: {app: cell-x}}\n  template",
            "matchLabels: {app: other}}\n  template",
        );
    let p = check_workloads(&docs(&bad), &OPS_PATHS);
    for want in [
        "/healthz",
        "should use /ready",
        "port 9999",
        "selector.matchLabels",
    ] {
        assert!(p.iter().any(|x| x.contains(want)), "{want} not in {p:#?}");
    }
    let no_probe = CELL.replace(
        "          readinessProbe: {httpGet: {path: /ready, port: http}}\n",
        "",
    );
    assert!(check_workloads(&docs(&no_probe), &OPS_PATHS)[0].contains("no readinessProbe"));
}

#[test]
fn service_ports_must_match_container_ports() {
    let bad = CELL
        .replace(
            "{name: quic, port: 4433, targetPort: quic, protocol: UDP}",
            "{name: quic, port: 4433, targetPort: quic}",
        )
        .replace(
            "{name: http, port: 8081, targetPort: http}",
            "{name: http, port: 8081, targetPort: 8080}",
        );
    let p = check_services(&docs(&bad));
    assert_eq!(p.len(), 2, "{p:#?}");
    let not_headless = CELL.replace("clusterIP: None", "type: ClusterIP");
    assert!(check_services(&docs(&not_headless))[0].contains("headless"));
    let orphan = CELL.replace(
        "selector: {app: cell-x}\n  ports",
        "selector: {app: nobody}\n  ports",
    );
    assert!(check_services(&docs(&orphan))[0].contains("matches 0 workloads"));
    let pdb = CELL.replace("matchLabels: {app: cell-x}}}", "matchLabels: {app: y}}}");
    assert!(check_services(&docs(&pdb))[0].contains("PodDisruptionBudget"));
}

#[test]
fn cells_must_run_on_fdb_from_the_secret() {
    let d = docs(CELL);
    let redb = check_cells_on_fdb(
        &d,
        &config(
            "[store]\nbackend = \"redb\"\nfdb_cluster_file = \"/etc/foundationdb/fdb.cluster\"\n",
        ),
    );
    assert!(redb[0].contains("expected \"fdb\""), "{redb:?}");
    let elsewhere = check_cells_on_fdb(
        &d,
        &config("[store]\nbackend = \"fdb\"\nfdb_cluster_file = \"/etc/fdb.cluster\"\n"),
    );
    assert!(elsewhere[0].contains("fdb-cluster-file"), "{elsewhere:?}");
    // The Secret projects only `fdb.cluster`: another file name there does not exist.
    let wrong_key = check_cells_on_fdb(
        &d,
        &config("[store]\nbackend = \"fdb\"\nfdb_cluster_file = \"/etc/foundationdb/cluster\"\n"),
    );
    assert_eq!(wrong_key.len(), 1, "{wrong_key:?}");
    let no_secret = CELL.replace("secretName: fdb-cluster-file", "secretName: something-else");
    assert_eq!(
        check_cells_on_fdb(&docs(&no_secret), &config(FDB_CONFIG)).len(),
        1
    );
    let unmounted = CELL.replace("/etc/delivery/config/cell.toml", "/opt/cell.toml");
    assert!(
        check_cells_on_fdb(&docs(&unmounted), &config(FDB_CONFIG))[0]
            .contains("not a file from a mounted")
    );
    assert!(check_cells_on_fdb(&d, &|_: &str, _: &str| None)[0].contains("not generated"));
    assert!(check_cells_on_fdb(&[], &config(FDB_CONFIG))[0].contains("no StatefulSet"));
}

#[test]
fn kustomization_lists_every_manifest_and_existing_files() {
    let k = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml, gone.yaml]\nsecretGenerator:\n  - name: cell-x-config\n    files: [cell.toml=config/x.toml, config/missing.toml]\n";
    let exists = |f: &str| matches!(f, "a.yaml" | "b.yaml" | "config/x.toml");
    let (p, generated) = check_kustomization(k, &["a.yaml".into(), "b.yaml".into()], &exists);
    for want in [
        "gone.yaml does not exist",
        "b.yaml is not listed",
        "config/missing.toml does not exist",
    ] {
        assert!(p.iter().any(|x| x.contains(want)), "{want} not in {p:#?}");
    }
    assert_eq!(
        generated["cell-x-config"],
        [
            ("cell.toml".into(), "config/x.toml".into()),
            ("missing.toml".into(), "config/missing.toml".into())
        ]
    );
}
