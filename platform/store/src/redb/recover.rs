//! What the writer does after a failed commit. redb latches an I/O error: every later
//! operation on that `Database` fails with `PreviousIo` until it is closed and reopened. So the
//! writer reopens the file at once (reads are served again; redb repairs the file on open if the
//! failed commit left it unclean) and then probes with a tiny durable write, backing off between
//! tries, until a commit succeeds: only then does it accept writes again. A failed probe latches
//! the fresh `Database` too (reads fail until the next reopen), so while the filesystem has less
//! than [`MIN_FREE_TO_PROBE`] free the writer does not probe at all and reads stay served.

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, mpsc};
use std::time::{Duration, Instant};

use super::{DATA, Job, Shared, backend, lock, open_db};
use crate::{Result, StoreError, TxnError, keys};

/// First wait between probes; doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between probes: the store accepts writes again at most this long after the
/// disk does.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Free space below which a probe would only fail again (and latch the reopened file): a
/// commit may need to grow the redb file by a region.
const MIN_FREE_TO_PROBE: u64 = 4 << 20;
/// How long a reopen waits for readers still holding the old `Database` (they take
/// microseconds; the file lock is released when the last one finishes).
const REOPEN_WAIT: Duration = Duration::from_millis(200);

/// Marks the store faulty: writes fail fast with `reason`, `/ready` reports it.
pub(super) fn set_fault(shared: &Shared, reason: String) {
    *lock(&shared.fault) = Some(reason);
    shared.faulty.store(true, Ordering::Release);
    metrics::gauge!("store_healthy").set(0.0);
}

fn clear_fault(shared: &Shared) {
    shared.faulty.store(false, Ordering::Release);
    *lock(&shared.fault) = None;
    metrics::gauge!("store_healthy").set(1.0);
}

/// Recovers the store after the failed commit `first`. Returns `false` if the store is being
/// dropped meanwhile (the job channel closed), `true` once commits work again.
pub(super) fn until_healthy(
    shared: &Shared,
    jobs: &mpsc::Receiver<Job>,
    first: StoreError,
) -> bool {
    let started = Instant::now();
    let mut backoff = MIN_BACKOFF;
    let mut attempts = 0u32;
    let mut open = reopen(shared).is_ok();
    loop {
        if !open {
            open = reopen(shared).is_ok();
        }
        let room = free_bytes(&shared.path).is_none_or(|free| free >= MIN_FREE_TO_PROBE);
        if open && room {
            attempts += 1;
            match probe(shared, attempts) {
                Ok(()) => {
                    clear_fault(shared);
                    tracing::warn!(
                        after_ms = started.elapsed().as_millis() as u64,
                        attempts,
                        first_error = %first,
                        "store recovered: accepting writes again"
                    );
                    return true;
                }
                Err(e) => {
                    metrics::counter!("store_commit_failures_total").increment(1);
                    tracing::debug!(error = %e, attempts, "store probe commit failed");
                    *lock(&shared.fault) = Some(format!("commit failed: {e} (retrying)"));
                    open = reopen(shared).is_ok();
                }
            }
        }
        // Jobs sent before `faulty` was visible to their sender are refused here.
        let deadline = Instant::now() + backoff;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match jobs.recv_timeout(left) {
                Ok(job) => {
                    let _ = job.reply.send(Err(TxnError::Store(shared.unavailable())));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
            }
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Free bytes for unprivileged writers on the filesystem holding `path`, if `statvfs` says.
fn free_bytes(path: &Path) -> Option<u64> {
    let dir = path.parent().unwrap_or(path);
    let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is a NUL-terminated path and `st` points to writable memory of the right
    // type; statvfs only writes through it.
    if unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// Closes the (latched) database and opens the file again.
fn reopen(shared: &Shared) -> Result<()> {
    let old = shared
        .db
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    drop(old);
    let deadline = Instant::now() + REOPEN_WAIT;
    let db = loop {
        match open_db(&shared.path, shared.cache_size) {
            Err(StoreError::AlreadyOpen { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                tracing::warn!(error = %e, "reopening the store failed; retrying");
                return Err(e);
            }
            Ok(db) => break db,
        }
    };
    *shared.db.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(db));
    Ok(())
}

/// One durable write transaction of its own, the way a batch commits; `attempt` is the value,
/// so every probe really writes.
fn probe(shared: &Shared, attempt: u32) -> Result<()> {
    let db = shared.db()?;
    let wtx = db.begin_write().map_err(backend)?;
    {
        let mut table = wtx.open_table(DATA).map_err(backend)?;
        table
            .insert(
                keys::probe_key().as_slice(),
                attempt.to_be_bytes().as_slice(),
            )
            .map_err(backend)?;
    }
    wtx.commit().map_err(backend)?;
    Ok(())
}
