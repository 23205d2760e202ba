//! Order writes that happen once even when their commit is retried. On FoundationDB (and the
//! model) a commit can be applied yet reported `commit_unknown_result`; the store layer then
//! reruns the transaction, which would see its own first effect (the status already moved,
//! the driver already busy) and answer a spurious 409 or `DriverBusy`. Every order write that
//! a rerun would not repeat identically carries a [`WriteOp`]: a transaction id made once per
//! logical operation, before the first attempt, recorded with the outcome in the same
//! transaction (`store::transact_once`), so a retry returns the first outcome.
//!
//! Ids live under `("txid", created_ms, id)` in the cell's subspace and are purged after
//! [`TXN_ID_TTL`] by a background loop (`server::spawn_background`).

use domain::UnixMs;
use ring::rand::{SecureRandom, SystemRandom};
use std::cell::Cell;
use std::time::Duration;
use store::keys::Subspace;
use store::{Kv, StoreError, TxnId};

/// How long a transaction id is kept: far beyond any retry of its operation (the layer gives
/// up after 100 attempts, each transaction lives at most 5 s).
pub const TXN_ID_TTL: Duration = Duration::from_secs(3600);

/// The key family of the cell's transaction ids.
pub fn txn_ids() -> Subspace {
    Subspace::new(&("txid",))
}

/// One logical order write: its transaction id, shared by every retry of it, and its time.
#[derive(Debug, Clone)]
pub struct WriteOp {
    pub txn: TxnId,
    pub now: UnixMs,
}

thread_local! {
    /// The state of this thread's seeded id sequence, when a simulation set one.
    static SEEDED_IDS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// From now on, [`WriteOp::new`] on this thread takes its ids from a sequence seeded with
/// `seed` instead of the system's random source. For a deterministic simulation (one thread,
/// one seed): the ids are written to the store, so random ones would make two runs of a seed
/// differ byte for byte. Ids stay distinct (each comes from a distinct state of a bijective
/// generator); they are not secret, and nothing needs them to be.
pub fn seed_ids_on_this_thread(seed: u64) {
    SEEDED_IDS.set(Some(seed));
}

/// SplitMix64: the state advances by a fixed odd constant and the output is a bijection of
/// the state, so 2^64 draws are distinct.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl WriteOp {
    /// A fresh operation at `now`, with 16 random bytes as its id (seeded ones under a
    /// simulation, see [`seed_ids_on_this_thread`]). Make it once per operation, outside
    /// anything that retries it.
    pub fn new(now: UnixMs) -> Self {
        let mut id = [0u8; 16];
        if let Some(mut state) = SEEDED_IDS.get() {
            id[..8].copy_from_slice(&splitmix64(&mut state).to_be_bytes());
            id[8..].copy_from_slice(&splitmix64(&mut state).to_be_bytes());
            SEEDED_IDS.set(Some(state));
        } else {
            SystemRandom::new()
                .fill(&mut id)
                .expect("the system random source is available");
        }
        Self::with_id(id, now)
    }

    /// An operation with a chosen id (tests, or an id derived from a client's request).
    pub fn with_id(id: [u8; 16], now: UnixMs) -> Self {
        let created_ms = u64::try_from(now.0).unwrap_or(0);
        Self {
            txn: TxnId::new(&txn_ids(), id, created_ms),
            now,
        }
    }
}

/// Drops the transaction ids older than [`TXN_ID_TTL`] at `now`: one range clear.
pub async fn purge_txn_ids(kv: &dyn Kv, now: UnixMs) -> Result<(), StoreError> {
    let ttl = TXN_ID_TTL.as_millis() as u64;
    let cutoff = u64::try_from(now.0).unwrap_or(0).saturating_sub(ttl);
    store::purge_txn_ids(kv, &txn_ids(), cutoff).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The ids `n` operations get on a fresh thread, seeded or not.
    fn ids(seed: Option<u64>, n: usize) -> Vec<TxnId> {
        std::thread::spawn(move || {
            if let Some(s) = seed {
                seed_ids_on_this_thread(s);
            }
            (0..n).map(|_| WriteOp::new(UnixMs(1_000)).txn).collect()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn seeded_ids_repeat_per_seed_and_stay_distinct() {
        let a = ids(Some(7), 10_000);
        assert_eq!(a, ids(Some(7), 10_000), "the same seed, the same ids");
        assert_ne!(a[..10], ids(Some(8), 10)[..], "another seed, other ids");
        assert_eq!(a.iter().collect::<HashSet<_>>().len(), a.len());
        // Without a seed the ids are random: two threads never agree.
        assert_ne!(ids(None, 4), ids(None, 4));
    }
}
