//! The stores the orders tests run on: the embedded store (redb) and the FoundationDB-semantics
//! model with conflicts and unknown commit results injected, so every order flow is checked
//! against both the backend the tests can run for real and the semantics production has.

use std::sync::Arc;
use store::Kv;
use store::model::{ModelDb, ModelFaults};

/// One store under test. `_dir` keeps redb's directory alive.
pub struct TestStore {
    pub name: &'static str,
    pub kv: Arc<dyn Kv>,
    /// Set for the model: its fault counters.
    pub model: Option<ModelDb>,
    _dir: Option<tempfile::TempDir>,
}

impl TestStore {
    /// Event positions are consecutive counters on redb; on the model they are commit
    /// versionstamps (increasing, with gaps).
    pub fn gap_free_log(&self) -> bool {
        self.model.is_none()
    }
}

/// A fresh redb store in a temporary directory.
pub fn redb() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let kv = store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap();
    TestStore {
        name: "redb",
        kv: Arc::new(kv),
        model: None,
        _dir: Some(dir),
    }
}

/// Retryable faults at `rate` each: conflicts and commits applied but reported unknown.
pub fn faults(seed: u64, rate: f64) -> ModelFaults {
    ModelFaults {
        seed,
        conflict: rate,
        unknown_result: rate,
        ..ModelFaults::none()
    }
}

/// A fresh model database with `faults`.
pub fn model(faults: ModelFaults) -> TestStore {
    let db = ModelDb::new(faults);
    TestStore {
        name: "model",
        kv: db.kv(),
        model: Some(db),
        _dir: None,
    }
}

/// Both backends: redb, and the model with 10 % conflicts and 10 % unknown results.
pub fn both() -> [TestStore; 2] {
    [redb(), model(faults(16, 0.1))]
}

/// Order flows on `kv` as the dispatch tests drive them: an empty catalog, the memory-only
/// payment sandbox, ids of cell 1 starting just before `now` (call `renew_ids` for more).
pub async fn plain_orders(
    kv: Arc<dyn Kv>,
    log: store::LogId,
    now: domain::UnixMs,
) -> Arc<crate::orders::Orders> {
    let catalog = Arc::new(catalog::Catalog::load(kv.clone()).await.unwrap());
    let cell = domain::CellId::new(1).unwrap();
    Arc::new(crate::orders::Orders::new(
        kv,
        log,
        domain::SnowflakeGen::resume(cell, now.0 - 1_000),
        Arc::new(payments::SandboxGateway::new(
            &payments::SandboxConfig::default(),
        )),
        "eur".into(),
        crate::orders::Pricing {
            catalog,
            config: Default::default(),
        },
        Arc::new(crate::ownership::Ownership::new(1)),
        crate::personal::test_vault(),
    ))
}
