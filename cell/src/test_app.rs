//! Tests only: the cell's app built in process the way startup builds it (`server::build`),
//! in demo mode on a temporary redb store, with a clock the test sets and no background tasks.

use crate::app::{App, Clock};
use crate::config::Config;
use domain::UnixMs;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Where every test app's clock starts.
pub const NOW: UnixMs = UnixMs(1_784_109_600_000);

/// Virtual time, set by the test.
pub struct Virtual(AtomicI64);

impl Clock for Virtual {
    fn now(&self) -> UnixMs {
        UnixMs(self.0.load(Ordering::SeqCst))
    }
}

/// An app, its clock and the directory its store lives in.
pub struct TestApp {
    pub app: App,
    pub clock: Arc<Virtual>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// Demo mode (the shipped secrets and the payment sandbox are accepted), three demo
    /// restaurants to keep the start short, the data directory (history keys) in a temporary
    /// one; `adjust` changes the rest.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::load(None).unwrap();
        cfg.demo.enabled = true;
        cfg.demo.restaurants = 3;
        cfg.store.data_dir = dir.path().to_path_buf();
        adjust(&mut cfg);
        let kv: Arc<dyn store::Kv> =
            Arc::new(store::RedbStore::open(dir.path(), store::RedbOptions::default()).unwrap());
        let lease = crate::lease::CellLease::new(kv, &cfg);
        let clock = Arc::new(Virtual(AtomicI64::new(NOW.0)));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        lease.acquire(&*dyn_clock, |_| {}).await;
        let app = crate::server::build(cfg, lease, dyn_clock, None)
            .await
            .unwrap();
        TestApp {
            app,
            clock,
            _dir: dir,
        }
    }

    pub fn now(&self) -> UnixMs {
        self.clock.now()
    }

    pub fn set(&self, t: UnixMs) {
        self.clock.0.store(t.0, Ordering::SeqCst);
    }

    pub fn advance(&self, ms: i64) {
        self.clock.0.fetch_add(ms, Ordering::SeqCst);
    }
}
