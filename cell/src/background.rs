//! [`Background`]: a runtime for work nobody waits on (payment effects, reconciliation), on
//! one thread of its own at a lower OS priority.
//!
//! Requests and this work share two cores. On the request runtime a burst of background work
//! queues in front of requests (tokio has no task priorities); on its own thread, niced, the
//! kernel runs request threads first whenever both want a core, and the background catches up
//! in the gaps. Its store writes are marked background too (`store::priority`), so they also
//! wait behind requests at the store's writer.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long tasks get to stop after shutdown before the runtime drops them. They are written
/// to be stopped at any point (the store keeps their progress), so this is only politeness.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// See the module doc.
pub struct Background {
    handle: Handle,
    tasks: std::sync::Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Background {
    /// Starts the thread at niceness `nice` (0: as the process) and runs until `shutdown`
    /// flips, then gives its tasks [`STOP_GRACE`] to finish.
    pub fn start(nice: i32, mut shutdown: watch::Receiver<bool>) -> std::io::Result<Background> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let tasks: std::sync::Arc<Mutex<Vec<JoinHandle<()>>>> = Default::default();
        let held = tasks.clone();
        std::thread::Builder::new()
            .name("cell-background".into())
            .spawn(move || {
                lower_priority(nice);
                runtime.block_on(async move {
                    while !*shutdown.borrow() {
                        if shutdown.changed().await.is_err() {
                            break;
                        }
                    }
                    let tasks: Vec<_> = std::mem::take(&mut *held.lock().expect("not poisoned"));
                    let _ =
                        tokio::time::timeout(STOP_GRACE, futures::future::join_all(tasks)).await;
                });
            })?;
        Ok(Background { handle, tasks })
    }

    /// Runs `fut` on the background thread, its store writes marked background.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let task = self.handle.spawn(store::priority::background(fut));
        self.tasks.lock().expect("not poisoned").push(task);
    }
}

/// Lowers the calling thread's scheduling priority. On Linux `setpriority(PRIO_PROCESS, tid)`
/// applies to that one thread. A failure only costs the preference, so it is logged.
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // SAFETY: plain syscalls on the calling thread's own id, no memory is passed.
    let r = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, nice)
    };
    if r != 0 {
        tracing::warn!(nice, error = %std::io::Error::last_os_error(), "could not lower the background thread's priority");
    }
}
