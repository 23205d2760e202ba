//! Secrets in the shipped artifacts: no config carries one inline, and every file a config
//! names for a secret or a private key comes from a Kubernetes Secret (a mounted file) or a
//! systemd credential. The binaries refuse inline secrets outside demo mode; this catches an
//! artifact that would be refused (or would leak a secret into a ConfigMap) before deploy.

use crate::Problems;
use crate::k8s::{config_arg, mounted_source};
use serde_json::Value;

/// Keys that would hold a secret inline: `(table path, key)`.
pub const INLINE_SECRET_KEYS: [(&str, &str); 2] =
    [("auth", "jwt_secret"), ("payments.provider", "secret_key")];

/// Keys naming a file with a secret or a private key, in the cell's or the router's config.
pub const SECRET_FILE_KEYS: [(&str, &str); 6] = [
    ("auth", "jwt_secret_file"),
    ("payments.provider", "secret_key_file"),
    ("http", "tls_key_file"),
    ("tls", "key_file"),
    ("upstream", "client_key_file"),
    ("quic", "key_path"),
];

fn get<'a>(t: &'a toml::Table, table: &str, key: &str) -> Option<&'a toml::Value> {
    let mut cur = t;
    for part in table.split('.') {
        cur = cur.get(part)?.as_table()?;
    }
    cur.get(key)
}

/// The config sets no secret inline and names the JWT secret's file; returns the problems
/// and the `*_file` values `(dotted key, path)` it sets.
pub fn check_config(what: &str, text: &str) -> (Problems, Vec<(String, String)>) {
    let t: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => return (vec![format!("{what}: does not parse: {e}")], Vec::new()),
    };
    let mut p = Vec::new();
    for (table, key) in INLINE_SECRET_KEYS {
        if get(&t, table, key).is_some() {
            p.push(format!(
                "{what}: {table}.{key} is set inline; name a file ({key}_file) instead"
            ));
        }
    }
    let files: Vec<(String, String)> = SECRET_FILE_KEYS
        .iter()
        .filter_map(|(table, key)| {
            let v = get(&t, table, key)?.as_str()?;
            (!v.is_empty()).then(|| (format!("{table}.{key}"), v.to_owned()))
        })
        .collect();
    if !files.iter().any(|(k, _)| k == "auth.jwt_secret_file") {
        p.push(format!("{what}: no auth.jwt_secret_file"));
    }
    (p, files)
}

/// Where a workload's JWT secret comes from: `(workload, (Secret, key))`.
pub type JwtSources = Vec<(String, (String, String))>;

/// For every Deployment and StatefulSet: the `--config` file's secrets (see [`check_config`])
/// are files of mounted Secrets, never of ConfigMaps, and no container sets a secret-looking
/// environment variable to a literal value. Returns the problems and, per workload, the
/// `(Secret, key)` its JWT secret comes from.
pub fn check_k8s(
    docs: &[Value],
    config_text: &dyn Fn(&str, &str) -> Option<String>,
) -> (Problems, JwtSources) {
    let mut p = Vec::new();
    let mut jwt = Vec::new();
    for w in docs
        .iter()
        .filter(|o| o["kind"] == "Deployment" || o["kind"] == "StatefulSet")
    {
        let at = format!(
            "{}/{}",
            w["kind"].as_str().unwrap_or("?"),
            w["metadata"]["name"].as_str().unwrap_or("?")
        );
        for c in w["spec"]["template"]["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
        {
            for e in c["env"].as_array().into_iter().flatten() {
                let name = e["name"].as_str().unwrap_or("");
                let secretish = ["SECRET", "KEY", "TOKEN", "PASSWORD"]
                    .iter()
                    .any(|s| name.contains(s));
                if secretish && !e["value"].is_null() {
                    p.push(format!(
                        "{at}: env {name} has a literal value; use valueFrom.secretKeyRef"
                    ));
                }
            }
            let Some(cfg) = config_arg(c) else {
                continue;
            };
            let Some(text) = mounted_source(w, c, cfg).and_then(|(_, o, k)| config_text(&o, &k))
            else {
                p.push(format!(
                    "{at}: --config {cfg} is not a generated, mounted config"
                ));
                continue;
            };
            let (mut cp, files) = check_config(&format!("{at} {cfg}"), &text);
            p.append(&mut cp);
            for (key, file) in files {
                match mounted_source(w, c, &file) {
                    Some((kind, obj, k)) if kind == "Secret" => {
                        if key == "auth.jwt_secret_file" {
                            jwt.push((at.clone(), (obj, k)));
                        }
                    }
                    Some((kind, obj, _)) => p.push(format!(
                        "{at}: {key} {file} is a file of the {kind} {obj}, not of a Secret"
                    )),
                    None => p.push(format!(
                        "{at}: {key} {file} is not a file of a mounted Secret"
                    )),
                }
            }
        }
    }
    (p, jwt)
}

/// A systemd unit and the config it runs with: every secret file the config names is
/// `/run/credentials/<unit>/NAME` with a `LoadCredential=NAME:SOURCE` in the unit. `unit` is
/// the instance's unit name (`delivery-cell@berlin.service`), `unit_text` the (template)
/// unit. Returns the problems and the source of the JWT secret's credential.
pub fn check_systemd(
    unit: &str,
    unit_text: &str,
    config_what: &str,
    config_text: &str,
) -> (Problems, Option<String>) {
    let (mut p, files) = check_config(config_what, config_text);
    let creds = crate::systemd::credentials(unit_text);
    let dir = format!("/run/credentials/{unit}/");
    let mut jwt = None;
    for (key, file) in files {
        let Some(name) = file.strip_prefix(&dir) else {
            p.push(format!(
                "{config_what}: {key} {file} is not a credential of {unit} (under {dir})"
            ));
            continue;
        };
        match creds.iter().find(|(n, _)| n == name) {
            Some((_, src)) => {
                if key == "auth.jwt_secret_file" {
                    jwt = Some(src.clone());
                }
            }
            None => p.push(format!(
                "{config_what}: {key} {file} but {unit} has no LoadCredential={name}:..."
            )),
        }
    }
    (p, jwt)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIT: &str = "[Service]\nExecStart=/usr/local/bin/router run --config %d/router.toml\n\
                        LoadCredential=router.toml:/etc/delivery/router.toml\n\
                        LoadCredential=jwt_secret:/etc/delivery/secrets/jwt_secret\n";

    #[test]
    fn inline_secrets_and_files_outside_credentials_are_reported() {
        let good = "[auth]\njwt_secret_file = \"/run/credentials/r.service/jwt_secret\"\n";
        let (p, jwt) = check_systemd("r.service", UNIT, "router.toml", good);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(jwt.as_deref(), Some("/etc/delivery/secrets/jwt_secret"));
        let inline = "[auth]\njwt_secret = \"x\"\n[payments.provider]\nsecret_key = \"sk\"\n";
        let (p, _) = check_systemd("r.service", UNIT, "router.toml", inline);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("auth.jwt_secret is set inline"));
        assert!(p[1].contains("payments.provider.secret_key is set inline"));
        assert!(p[2].contains("no auth.jwt_secret_file"));
        let elsewhere = "[auth]\njwt_secret_file = \"/etc/jwt\"\n[tls]\nkey_file = \
                         \"/run/credentials/r.service/tls.key\"\n";
        let (p, _) = check_systemd("r.service", UNIT, "router.toml", elsewhere);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("is not a credential of r.service"));
        assert!(p[1].contains("no LoadCredential=tls.key"));
    }

    #[test]
    fn k8s_secrets_must_be_files_of_secrets_not_config_maps() {
        let docs = crate::k8s::parse_docs(
            r#"
kind: Deployment
metadata: {name: router}
spec:
  template:
    spec:
      containers:
        - name: router
          args: ["run", "--config", "/etc/c/router.toml"]
          env: [{name: ROUTER_AUTH_JWT_SECRET, value: "x"}]
          volumeMounts:
            - {name: config, mountPath: /etc/c}
            - {name: s, mountPath: /etc/s}
      volumes:
        - {name: config, configMap: {name: router-config}}
        - {name: s, secret: {secretName: delivery-secrets}}
"#,
        )
        .unwrap();
        let cfg = |file: &str| {
            let file = file.to_owned();
            move |obj: &str, key: &str| {
                (obj == "router-config" && key == "router.toml")
                    .then(|| format!("[auth]\njwt_secret_file = \"{file}\"\n"))
            }
        };
        let (p, jwt) = check_k8s(&docs, &cfg("/etc/s/jwt_secret"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("env ROUTER_AUTH_JWT_SECRET has a literal value"));
        assert_eq!(
            jwt,
            [(
                "Deployment/router".to_owned(),
                ("delivery-secrets".to_owned(), "jwt_secret".to_owned())
            )]
        );
        let (p, _) = check_k8s(&docs, &cfg("/etc/c/jwt_secret"));
        assert!(
            p.iter()
                .any(|l| l.contains("is a file of the ConfigMap router-config")),
            "{p:?}"
        );
    }
}
