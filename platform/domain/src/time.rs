//! Time is an input. [`UnixMs`] is the only timestamp type; only the outermost layer of a
//! binary reads the clock and passes `now` down.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Milliseconds since the Unix epoch, UTC.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixMs(pub i64);

impl UnixMs {
    /// Reads the system clock. Call this at the edge (request handler, timer), never in logic.
    pub fn now() -> UnixMs {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        UnixMs(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    pub fn plus(self, d: Duration) -> UnixMs {
        UnixMs(
            self.0
                .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        )
    }

    /// `self - earlier`, zero if `earlier` is later.
    pub fn since(self, earlier: UnixMs) -> Duration {
        Duration::from_millis(u64::try_from(self.0 - earlier.0).unwrap_or(0))
    }
}
