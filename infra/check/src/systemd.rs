//! systemd unit files: they parse as INI with the sections systemd needs, run the binary with a
//! config, restart on failure and carry the hardening the units promise.

use crate::Problems;

/// `(section, key, value)` in file order. Errors name the offending line.
pub fn parse_ini(text: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut section: Option<String> = None;
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let mut line = raw.trim().to_owned();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        // A trailing backslash continues the value on the next line.
        while line.ends_with('\\') {
            line.pop();
            match lines.next() {
                Some((_, more)) => line.push_str(more.trim()),
                None => return Err(format!("line {}: continuation at end of file", n + 1)),
            }
        }
        if let Some(name) = line.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: unclosed section header", n + 1))?;
            section = Some(name.to_owned());
            continue;
        }
        let Some(sec) = &section else {
            return Err(format!("line {}: key outside any section", n + 1));
        };
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: not key=value: {line}", n + 1))?;
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("line {}: bad key {k:?}", n + 1));
        }
        out.push((sec.clone(), k.to_owned(), v.trim().to_owned()));
    }
    Ok(out)
}

/// Settings every unit of ours must have, as `(section, key, required value or "" for any)`.
const REQUIRED: &[(&str, &str, &str)] = &[
    ("Unit", "Description", ""),
    ("Service", "ExecStart", ""),
    ("Service", "Restart", "on-failure"),
    ("Service", "LimitNOFILE", ""),
    ("Service", "StateDirectory", ""),
    ("Service", "ProtectSystem", "strict"),
    ("Service", "ProtectHome", "yes"),
    ("Service", "PrivateTmp", "yes"),
    ("Service", "NoNewPrivileges", "yes"),
    ("Install", "WantedBy", ""),
];

/// Checks a unit. `unit_name` is the file name (`delivery-cell@.service` is a template, whose
/// per-instance files must use `%i`).
pub fn check_unit(unit_name: &str, text: &str) -> Problems {
    let entries = match parse_ini(text) {
        Ok(e) => e,
        Err(e) => return vec![format!("{unit_name}: {e}")],
    };
    let mut p = Vec::new();
    let get = |s: &str, k: &str| -> Vec<&str> {
        entries
            .iter()
            .filter(|(es, ek, _)| es == s && ek == k)
            .map(|(_, _, v)| v.as_str())
            .collect()
    };
    for (s, _, _) in &entries {
        if !matches!(s.as_str(), "Unit" | "Service" | "Install") {
            p.push(format!("{unit_name}: unexpected section [{s}]"));
        }
    }
    for (s, k, want) in REQUIRED {
        let vals = get(s, k);
        match vals.last() {
            None => p.push(format!("{unit_name}: [{s}] {k} missing")),
            Some(v) if !want.is_empty() && v != want => {
                p.push(format!("{unit_name}: [{s}] {k}={v}, expected {want}"))
            }
            _ => {}
        }
    }
    let dynamic = get("Service", "DynamicUser").last() == Some(&"yes");
    if !dynamic && get("Service", "User").is_empty() {
        p.push(format!(
            "{unit_name}: runs as root (set DynamicUser=yes or User=)"
        ));
    }
    let creds: Vec<(&str, &str)> = get("Service", "LoadCredential")
        .into_iter()
        .filter_map(|v| v.split_once(':'))
        .collect();
    let template = unit_name.contains("@.");
    if template {
        for (name, src) in &creds {
            if !src.contains("%i") && !SHARED_CREDENTIALS.contains(name) {
                p.push(format!(
                    "{unit_name}: credential {name} ({src}) is the same for every instance"
                ));
            }
        }
    }
    let exec = get("Service", "ExecStart").last().copied().unwrap_or("");
    let args: Vec<&str> = exec.split_whitespace().collect();
    if !args.first().is_some_and(|b| b.starts_with('/')) {
        p.push(format!(
            "{unit_name}: ExecStart needs an absolute binary path"
        ));
    }
    if args.get(1) != Some(&"run") {
        p.push(format!(
            "{unit_name}: ExecStart must run the `run` subcommand"
        ));
    }
    match args
        .iter()
        .position(|a| *a == "--config")
        .and_then(|i| args.get(i + 1))
    {
        None => p.push(format!("{unit_name}: ExecStart has no --config FILE")),
        Some(cfg) => {
            if let Some(cred) = cfg.strip_prefix("%d/") {
                if !creds.iter().any(|(n, _)| *n == cred) {
                    p.push(format!(
                        "{unit_name}: --config {cfg} but no LoadCredential={cred}:..."
                    ));
                }
            } else if template && !cfg.contains("%i") {
                p.push(format!(
                    "{unit_name}: --config {cfg} is the same for every instance"
                ));
            }
        }
    }
    p
}

/// Credentials every instance of a template unit loads from the same file, by design: the JWT
/// secret, which the router and every cell must share.
pub const SHARED_CREDENTIALS: [&str; 1] = ["jwt_secret"];

/// The credential names a unit loads (`LoadCredential=NAME:SOURCE`) and their sources.
pub fn credentials(text: &str) -> Vec<(String, String)> {
    parse_ini(text)
        .unwrap_or_default()
        .into_iter()
        .filter(|(s, k, _)| s == "Service" && k == "LoadCredential")
        .filter_map(|(_, _, v)| v.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "[Unit]\nDescription=cell %i\n\n[Service]\nExecStart=/usr/local/bin/cell run \\\n  --config %d/cell.toml\nLoadCredential=cell.toml:/etc/delivery/cell-%i.toml\nRestart=on-failure\nLimitNOFILE=65536\nDynamicUser=yes\nStateDirectory=delivery/cell-%i\nProtectSystem=strict\nProtectHome=yes\nPrivateTmp=yes\nNoNewPrivileges=yes\n\n[Install]\nWantedBy=multi-user.target\n";

    #[test]
    fn a_hardened_template_unit_passes() {
        assert_eq!(
            check_unit("delivery-cell@.service", GOOD),
            Vec::<String>::new()
        );
        assert_eq!(
            credentials(GOOD),
            [(
                "cell.toml".to_owned(),
                "/etc/delivery/cell-%i.toml".to_owned()
            )]
        );
    }

    #[test]
    fn syntax_errors_are_reported_with_the_line() {
        assert!(parse_ini("Foo=bar\n").unwrap_err().contains("line 1"));
        assert!(parse_ini("[Unit\n").unwrap_err().contains("unclosed"));
        assert!(
            parse_ini("[Unit]\njust words\n")
                .unwrap_err()
                .contains("line 2")
        );
        assert!(check_unit("x.service", "[Unit]\nA=\\")[0].contains("continuation"));
    }

    #[test]
    fn missing_hardening_and_bad_exec_are_reported() {
        let weak = GOOD
            .replace("Restart=on-failure", "Restart=always")
            .replace("DynamicUser=yes\n", "")
            .replace("ProtectSystem=strict\n", "")
            .replace(
                "LoadCredential=cell.toml:/etc/delivery/cell-%i.toml",
                "LoadCredential=cell.toml:/etc/delivery/cell.toml",
            )
            .replace("[Install]", "[Instal]");
        let p = check_unit("delivery-cell@.service", &weak);
        for want in [
            "Restart=always",
            "runs as root",
            "ProtectSystem missing",
            "same for every instance",
            "[Instal]",
            "WantedBy missing",
        ] {
            assert!(p.iter().any(|x| x.contains(want)), "{want} not in {p:#?}");
        }
        let exec = GOOD.replace("--config %d/cell.toml", "--config %d/other.toml");
        assert!(
            check_unit("delivery-cell@.service", &exec)[0].contains("LoadCredential=other.toml")
        );
        let exec = GOOD.replace("/usr/local/bin/cell run", "cell serve");
        assert_eq!(check_unit("delivery-cell@.service", &exec).len(), 2);
    }
}
