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

/// A config layer that could not be read or parsed, or a result that does not fit the type.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct LoadError {
    /// The file, or `<embedded default>`.
    pub path: String,
    pub message: String,
}

/// `default` (the binary's embedded TOML), then `file` over it if given (see [`merge`]),
/// deserialized into `T`.
///
/// # Errors
/// [`LoadError`] naming the layer that failed.
pub fn load_toml<T: serde::de::DeserializeOwned>(
    default: &str,
    file: Option<&std::path::Path>,
) -> Result<T, LoadError> {
    const DEFAULT: &str = "<embedded default>";
    let fail = |path: &str, e: &dyn std::fmt::Display| LoadError {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut value: toml::Table = toml::from_str(default).map_err(|e| fail(DEFAULT, &e))?;
    let shown = file.map_or(DEFAULT.to_owned(), |p| p.display().to_string());
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| fail(&shown, &e))?;
        merge(
            &mut value,
            toml::from_str(&text).map_err(|e| fail(&shown, &e))?,
        );
    }
    value.try_into().map_err(|e| fail(&shown, &e))
}

/// Installs tracing ([`init_tracing`]) and runs `main` to completion on a multi-threaded
/// tokio runtime: the start of every server binary.
///
/// # Errors
/// The runtime could not be built, or `main`'s own error.
pub fn serve_main<E: From<std::io::Error>>(
    log_json: bool,
    default_filter: &str,
    main: impl std::future::Future<Output = Result<(), E>>,
) -> Result<(), E> {
    init_tracing(log_json, default_filter);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(main)
}

/// Lays `overlay` over `base`: tables merge key by key, any other value replaces. So a config
/// file only names the keys it changes.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
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
    use super::{load_toml, merge};

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Conf {
        a: u32,
        t: T,
    }
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct T {
        x: u32,
        y: u32,
    }

    #[test]
    fn file_layers_over_the_default_and_errors_name_the_layer() {
        let dir = std::env::temp_dir().join(format!("service-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(&f, "[t]\ny = 9\n").unwrap();
        let c: Conf = load_toml("a = 1\n[t]\nx = 1\ny = 2\n", Some(&f)).unwrap();
        assert_eq!(
            c,
            Conf {
                a: 1,
                t: T { x: 1, y: 9 }
            }
        );
        std::fs::write(&f, "[t\n").unwrap();
        let e = load_toml::<Conf>("a = 1\n[t]\nx = 1\ny = 2\n", Some(&f)).unwrap_err();
        assert_eq!(e.path, f.display().to_string());
        let e = load_toml::<Conf>("a = ", None).unwrap_err();
        assert_eq!(e.path, "<embedded default>");
        std::fs::remove_dir_all(&dir).unwrap();
    }

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
