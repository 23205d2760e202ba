//! What every long-running binary of ours (the cell, the router) does the same way: logs to
//! stderr through `tracing` (`RUST_LOG` or a default filter; JSON for log shippers), stops on
//! SIGINT or SIGTERM, and layers TOML config files over an embedded default.

/// Installs the global `tracing` subscriber: stderr, `RUST_LOG` if set, else `default_filter`.
pub fn init_tracing(json: bool, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on the first SIGINT (ctrl-c) or SIGTERM (what systemd and Kubernetes send).
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
}

/// Lays `overlay` over `base`: tables merge key by key, any other value replaces. So a config
/// file only names the keys it changes.
pub fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::merge;

    #[test]
    fn overlay_changes_only_the_keys_it_names() {
        let mut base: toml::Table =
            toml::from_str("a = 1\n[t]\nx = 1\ny = 2\n[u]\nz = 3\n").unwrap();
        let overlay: toml::Table = toml::from_str("a = 5\n[t]\ny = 9\nw = 0\n").unwrap();
        merge(&mut base, overlay);
        let want: toml::Table =
            toml::from_str("a = 5\n[t]\nx = 1\ny = 9\nw = 0\n[u]\nz = 3\n").unwrap();
        assert_eq!(base, want);
    }
}
