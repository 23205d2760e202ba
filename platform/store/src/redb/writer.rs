//! The writer thread's loop: forms each batch (requests first, a few background jobs riding
//! along), lingers under concurrency, runs and commits it, recovers after a failed commit.

use super::{Job, RedbOptions, Shared, recover, run_batch};
use crate::TxnError;
use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::Instant;

pub(super) fn writer_loop(
    shared: &Shared,
    jobs: &mpsc::Receiver<Job>,
    runtime: Option<tokio::runtime::Handle>,
    opts: &RedbOptions,
) {
    // Closures may use tokio types (timers, channels) even though we drive them here.
    let _rt = runtime.as_ref().map(|h| h.enter());
    let max_batch = opts.max_batch.max(1);
    let per_batch = opts.background_per_batch.max(1);
    let mut last_batch = 1;
    // Background jobs received but not yet run, oldest first.
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        let mut batch = Vec::new();
        // Block for work only when no background job is waiting for its turn.
        if waiting.is_empty() {
            match jobs.recv() {
                Ok(j) => route(j, &mut batch, &mut waiting),
                Err(_) => return,
            }
        }
        let drain = |batch: &mut Vec<Job>, waiting: &mut VecDeque<Job>| {
            while batch.len() < max_batch {
                match jobs.try_recv() {
                    Ok(j) => route(j, batch, waiting),
                    Err(_) => break,
                }
            }
        };
        drain(&mut batch, &mut waiting);
        // Linger: when transactions are concurrent, the callers answered by the last commit are
        // resubmitting right now. Waiting while they keep arriving (at most `linger_max`) puts
        // them in this batch instead of splitting them between two fsyncs.
        if last_batch > 1 && !opts.linger_max.is_zero() {
            let deadline = Instant::now() + opts.linger_max;
            while batch.len() < max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match jobs.recv_timeout(opts.linger_gap.min(left)) {
                    Ok(j) => {
                        route(j, &mut batch, &mut waiting);
                        drain(&mut batch, &mut waiting);
                    }
                    Err(_) => break,
                }
            }
        }
        // Background jobs ride along a few per commit, so a burst of them (a worker settling
        // 64 captures at once) cannot make the commit a request waits for many times longer.
        let room = max_batch.saturating_sub(batch.len()).max(1);
        batch.extend(waiting.drain(..per_batch.min(room).min(waiting.len())));
        last_batch = batch.len();
        // After a failed commit, recover before the next batch; stop if the store is dropped.
        if let Err(e) = run_batch(shared, batch) {
            // The waiting background jobs are refused like the ones queued behind the failure.
            for j in waiting.drain(..) {
                let _ = j.reply.send(Err(TxnError::Store(shared.unavailable())));
            }
            if !recover::until_healthy(shared, jobs, e) {
                return;
            }
        }
    }
}

/// A request's job joins the batch being formed; a background job waits its turn.
fn route(j: Job, batch: &mut Vec<Job>, waiting: &mut VecDeque<Job>) {
    if j.background {
        waiting.push_back(j);
    } else {
        batch.push(j);
    }
}
