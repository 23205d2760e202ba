//! Opening the backend a process's configuration names, so cells and routers share one path
//! (and the FoundationDB network thread is booted once per process, however many open).

use crate::{Kv, StoreError};
use std::path::Path;
use std::sync::Arc;

/// Which backend holds the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// Embedded redb in a data directory: nothing to install.
    Redb,
    /// FoundationDB (build with `--features fdb`).
    Fdb,
}

/// Opens `backend`: redb in `data_dir` (created if missing), or FoundationDB through
/// `fdb_cluster_file` (empty: the client library's default).
pub fn open(
    backend: Backend,
    data_dir: &Path,
    fdb_cluster_file: &str,
) -> Result<Arc<dyn Kv>, StoreError> {
    open_with(
        backend,
        data_dir,
        fdb_cluster_file,
        crate::RedbOptions::default(),
    )
}

/// [`open`] with the embedded backend's tuning (its page cache size, most of all); `redb` is
/// ignored for FoundationDB.
pub fn open_with(
    backend: Backend,
    data_dir: &Path,
    fdb_cluster_file: &str,
    redb: crate::RedbOptions,
) -> Result<Arc<dyn Kv>, StoreError> {
    match backend {
        Backend::Redb => {
            std::fs::create_dir_all(data_dir).map_err(|e| {
                StoreError::Backend(format!("creating {}: {e}", data_dir.display()))
            })?;
            Ok(Arc::new(crate::RedbStore::open(data_dir, redb)?))
        }
        Backend::Fdb => open_fdb(fdb_cluster_file),
    }
}

#[cfg(feature = "fdb")]
fn open_fdb(cluster_file: &str) -> Result<Arc<dyn Kv>, StoreError> {
    static NETWORK: std::sync::Once = std::sync::Once::new();
    NETWORK.call_once(|| {
        // The network thread must outlive every transaction: the guard is leaked for the
        // life of the process.
        // SAFETY: `Once` makes this the first and only boot, before any other FDB call.
        let network = unsafe { crate::fdb::boot_network() };
        std::mem::forget(network);
    });
    let file = (!cluster_file.is_empty()).then(|| Path::new(cluster_file));
    Ok(Arc::new(crate::FdbStore::open(
        file,
        crate::FdbOptions::default(),
    )?))
}

#[cfg(not(feature = "fdb"))]
fn open_fdb(_: &str) -> Result<Arc<dyn Kv>, StoreError> {
    Err(StoreError::Backend(
        "store.backend = \"fdb\" needs a build with --features fdb".into(),
    ))
}
