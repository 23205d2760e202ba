//! Envelope encryption for the cell: AES-256-GCM (ring) under data keys, each wrapped by the
//! cell's key-encryption key (KEK, from a 0600 file) and kept in a [`KeyStore`] apart from the
//! data store. Data keys: one per location-history day, one per held delivery (`history`),
//! one per customer (`personal`: addresses, phones, delivery notes).
//!
//! Destroying a data key makes what it sealed unreadable in every copy of the data store,
//! backups included, as long as the key store is not backed up with it (crypto-shredding).
//! Every ciphertext carries associated data naming the record and field it was written for,
//! so a ciphertext copied elsewhere fails to open.
//!
//! - `kek`: the key-encryption key and the sealing format; `store`: the key store;
//!   `cache`: the bounded, expiring cache of customer keys; `rotate`: key-encryption key
//!   versions and the resumable rewrap job.

mod cache;
mod kek;
mod rotate;
mod store;
#[cfg(test)]
mod tests;

pub use cache::CacheLimits;
pub use kek::Kek;
pub use rotate::{Keks, Rewrapped};
pub use store::{KeyStore, RedbKeyStore, Stored};

use domain::UnixMs;
use parking_lot::Mutex;
use ring::aead::LessSafeKey;
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroize;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {reason}")]
    KekFile { path: String, reason: String },
    #[error("key store: {0}")]
    Store(String),
    /// The key was destroyed (its day was purged, its hold expired, its customer erased).
    #[error("the key {0} was destroyed")]
    Destroyed(KeyId),
    /// No key was ever made for this id.
    #[error("there is no key {0}")]
    Missing(KeyId),
    /// Wrong key, wrong associated data, or altered bytes.
    #[error("a ciphertext did not open (wrong key, moved or altered)")]
    Open,
    /// A key was wrapped by a key-encryption key version this ring was not given.
    #[error("key-encryption key version {0} is not configured")]
    UnknownKekVersion(u32),
}

pub(crate) fn ks(e: impl std::fmt::Display) -> KeyError {
    KeyError::Store(e.to_string())
}

/// Which data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyId {
    /// Paths that started on this UTC day (days since 1970-01-01).
    Day(u32),
    /// A held delivery's path, re-sealed before its day key went.
    Hold(u64),
    /// A customer's personal data (delivery addresses, phones, notes).
    Customer(u64),
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyId::Day(d) => write!(f, "day/{d}"),
            KeyId::Hold(d) => write!(f, "hold/{d}"),
            KeyId::Customer(c) => write!(f, "customer/{c}"),
        }
    }
}

impl KeyId {
    pub fn parse(s: &str) -> Option<KeyId> {
        let (kind, n) = s.split_once('/')?;
        match kind {
            "day" => n.parse().ok().map(KeyId::Day),
            "hold" => n.parse().ok().map(KeyId::Hold),
            "customer" => n.parse().ok().map(KeyId::Customer),
            _ => None,
        }
    }
}

/// The data keys in use, unwrapped on first use. History keys (a handful: one per live day and
/// held delivery) stay cached; customer keys (one per customer, millions) go to a bounded
/// cache whose entries expire, so a key unused for a while is only in the key store.
pub struct KeyRing {
    cell: u16,
    keks: Keks,
    store: Arc<dyn KeyStore>,
    pinned: Mutex<HashMap<KeyId, Arc<LessSafeKey>>>,
    customers: Mutex<cache::KeyCache>,
    rng: SystemRandom,
}

impl KeyRing {
    pub fn new(cell: u16, kek: Kek, store: Arc<dyn KeyStore>) -> Self {
        Self::with_limits(cell, kek, store, CacheLimits::default())
    }

    pub fn with_limits(cell: u16, kek: Kek, store: Arc<dyn KeyStore>, limits: CacheLimits) -> Self {
        Self::with_keks(cell, Keks::single(kek), store, limits)
    }

    /// A ring over several key-encryption key versions (during a rotation).
    pub fn with_keks(cell: u16, keks: Keks, store: Arc<dyn KeyStore>, limits: CacheLimits) -> Self {
        Self {
            cell,
            keks,
            store,
            pinned: Mutex::new(HashMap::new()),
            customers: Mutex::new(cache::KeyCache::new(limits)),
            rng: SystemRandom::new(),
        }
    }

    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    pub fn cell(&self) -> u16 {
        self.cell
    }

    fn wrap_aad(&self, id: KeyId) -> Vec<u8> {
        // The prefix predates customer keys; keys wrapped under it must keep opening.
        format!("hist-key/{}/{id}", self.cell).into_bytes()
    }

    /// The history data key `id` (a day or a hold); made (and stored wrapped) when `create`
    /// and there is none yet. A destroyed key is never made again.
    pub fn key(&self, id: KeyId, create: bool) -> Result<Arc<LessSafeKey>, KeyError> {
        assert!(
            !matches!(id, KeyId::Customer(_)),
            "customer keys go through key_at (bounded cache)"
        );
        if let Some(k) = self.pinned.lock().get(&id) {
            return Ok(k.clone());
        }
        let key = self.unwrap_or_make(id, create)?;
        self.pinned.lock().insert(id, key.clone());
        Ok(key)
    }

    /// A customer's data key, through the bounded cache (`now` ages its entries).
    pub fn key_at(
        &self,
        id: KeyId,
        create: bool,
        now: UnixMs,
    ) -> Result<Arc<LessSafeKey>, KeyError> {
        if let Some(k) = self.customers.lock().get(id, now) {
            return Ok(k);
        }
        let key = self.unwrap_or_make(id, create)?;
        self.customers.lock().insert(id, key.clone(), now);
        Ok(key)
    }

    /// Whether a customer's key is in the cache now (then [`KeyRing::key_at`] does no I/O).
    pub fn is_cached(&self, id: KeyId, now: UnixMs) -> bool {
        self.customers.lock().get(id, now).is_some()
    }

    fn unwrap_or_make(&self, id: KeyId, create: bool) -> Result<Arc<LessSafeKey>, KeyError> {
        let wrapped = match self.store.get(id)? {
            Stored::Wrapped(w) => w,
            Stored::Destroyed => return Err(KeyError::Destroyed(id)),
            Stored::Absent if !create => return Err(KeyError::Missing(id)),
            Stored::Absent => {
                let mut raw = [0u8; KEY_LEN];
                self.rng.fill(&mut raw).map_err(|_| ks("no randomness"))?;
                let w = self.wrap_raw(id, &raw);
                raw.zeroize();
                // Another writer may have made one first: the stored key wins.
                match self.store.insert_new(id, &w)? {
                    Stored::Wrapped(w) => w,
                    Stored::Destroyed => return Err(KeyError::Destroyed(id)),
                    Stored::Absent => return Err(ks("the key store lost a write")),
                }
            }
        };
        let mut raw = self.unwrap_raw(id, &wrapped)?;
        let arr: Result<[u8; KEY_LEN], _> = raw.as_slice().try_into();
        raw.zeroize();
        let mut arr = arr.map_err(|_| KeyError::Open)?;
        let key = Arc::new(kek::aead_key(&arr));
        arr.zeroize();
        Ok(key)
    }

    /// `raw` wrapped under the current key-encryption key, framed with its version.
    fn wrap_raw(&self, id: KeyId, raw: &[u8]) -> Vec<u8> {
        let kek = self.keks.current_kek();
        let sealed = kek::seal(&kek.0, &self.rng, &self.wrap_aad(id), raw);
        rotate::frame(self.keks.current(), sealed)
    }

    /// The raw data key of a stored wrapped key, under whichever version wrapped it.
    fn unwrap_raw(&self, id: KeyId, wrapped: &[u8]) -> Result<Vec<u8>, KeyError> {
        let (version, sealed) = rotate::unframe(wrapped)?;
        kek::open(&self.keks.get(version)?.0, &self.wrap_aad(id), sealed)
    }

    /// The version new keys are wrapped with.
    pub fn kek_version(&self) -> u32 {
        self.keks.current()
    }

    /// Destroys `id`: forgotten here first, then tombstoned in the key store.
    pub fn destroy(&self, id: KeyId) -> Result<(), KeyError> {
        self.pinned.lock().remove(&id);
        self.customers.lock().remove(id);
        self.store.destroy(id)
    }

    pub fn seal(&self, id: KeyId, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.key(id, true)?;
        Ok(kek::seal(&key, &self.rng, aad, plaintext))
    }

    pub fn open(&self, id: KeyId, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.key(id, false)?;
        kek::open(&key, aad, sealed)
    }

    /// Seals under a customer key (made on first use).
    pub fn seal_at(
        &self,
        id: KeyId,
        aad: &[u8],
        plaintext: &[u8],
        now: UnixMs,
    ) -> Result<Vec<u8>, KeyError> {
        let key = self.key_at(id, true, now)?;
        Ok(kek::seal(&key, &self.rng, aad, plaintext))
    }

    /// Opens under a customer key. The plaintext is the caller's to zeroize.
    pub fn open_at(
        &self,
        id: KeyId,
        aad: &[u8],
        sealed: &[u8],
        now: UnixMs,
    ) -> Result<Vec<u8>, KeyError> {
        let key = self.key_at(id, false, now)?;
        kek::open(&key, aad, sealed)
    }

    /// Customer keys cached now (for the cache's tests and metrics).
    pub fn cached_customer_keys(&self) -> usize {
        self.customers.lock().len()
    }
}

/// The rotation job: rewraps `page` keys at a time under the current key-encryption key
/// version (at most ten pages a second, off the async threads) until every key is on it, then
/// logs which versions still wrap keys. Picks up after the cursor of an earlier, interrupted
/// run. Stops early when `stop` flips.
pub async fn run_rewrap(
    ring: Arc<KeyRing>,
    page: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let pause = std::time::Duration::from_millis(100);
    let mut total = 0usize;
    loop {
        let r = ring.clone();
        let step = tokio::task::spawn_blocking(move || r.rewrap_batch(page)).await;
        let wait = match step {
            Ok(Ok(p)) => {
                total += p.rewrapped;
                metrics::counter!("cell_keys_rewrapped_total").increment(p.rewrapped as u64);
                if p.done {
                    let r = ring.clone();
                    let versions = tokio::task::spawn_blocking(move || r.versions_in_use()).await;
                    match versions {
                        Ok(Ok(v)) => tracing::info!(
                            rewrapped = total,
                            kek_version = ring.kek_version(),
                            in_use = ?v,
                            "key rotation: every data key is on the current key-encryption key; versions not listed are retired"
                        ),
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "key rotation: could not count key versions")
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "key rotation: counting key versions panicked")
                        }
                    }
                    return;
                }
                pause
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "key rotation: a page failed; retrying");
                pause * 50
            }
            Err(e) => {
                tracing::warn!(error = %e, "key rotation: a page panicked; retrying");
                pause * 50
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
