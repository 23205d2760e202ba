//! Write priority: work nobody waits on (the payment worker settling captures, compaction,
//! purges) marks its transactions as background, and a backend with a single writer lets
//! them ride along at a bounded rate instead of lengthening the commits that requests wait
//! for. The mark is a task-local, so it follows the work through every wrapper (`Scoped`,
//! `Metered`, the lease's fenced handle) and into code that does not know it runs in the
//! background (a payment provider's own store writes, for the sandbox).
//!
//! Only the embedded backend ([`crate::RedbStore`]) acts on it; FoundationDB has no single
//! writer to protect, and the model store runs everything in one order.

use std::future::Future;

tokio::task_local! {
    static BACKGROUND: ();
}

/// Runs `fut` with its store writes marked as background work.
pub async fn background<F: Future>(fut: F) -> F::Output {
    BACKGROUND.scope((), fut).await
}

/// Whether the caller runs inside [`background`].
#[must_use]
pub fn is_background() -> bool {
    BACKGROUND.try_with(|()| ()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_mark_holds_inside_the_scope_only() {
        assert!(!is_background());
        assert!(background(async { is_background() }).await);
        // Nested futures polled inside the scope see it too.
        let inner = async {
            tokio::task::yield_now().await;
            is_background()
        };
        assert!(background(inner).await);
        assert!(!is_background());
    }
}
