//! Validation of `infra/`: Kubernetes manifests, systemd units, the Prometheus config and rules,
//! the Grafana dashboard, and the example configs. The point is that every metric a dashboard or
//! an alert references is one the code exports, and that the deployment artifacts agree with
//! what the binaries serve (probe paths, ports, config keys), so they cannot silently rot.
//!
//! Each checker returns the problems it found as readable strings (an empty list = valid); the
//! tests in `tests/repo.rs` run them on the real files, the unit tests on broken inputs.

pub mod config_keys;
pub mod exports;
pub mod grafana;
pub mod k8s;
pub mod prometheus;
pub mod promql;
pub mod secrets;
pub mod source;
pub mod systemd;

use std::path::{Path, PathBuf};

/// What went wrong reading or parsing an input; rule violations are [`Problems`] instead.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

/// Rule violations found by a checker, one readable line each.
pub type Problems = Vec<String>;

/// HTTP paths both binaries serve for operations (`cell/src/http/ops.rs`; the router serves
/// the same three).
pub const OPS_PATHS: [&str; 3] = ["/live", "/ready", "/metrics"];

/// The repository root (this crate lives in `infra/check`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}
