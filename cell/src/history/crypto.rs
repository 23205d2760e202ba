//! Envelope encryption of paths: AES-256-GCM (ring) under data keys (one per history day, one
//! per held delivery), each data key wrapped by the cell's key-encryption key (KEK, from a
//! 0600 file) and kept in a [`KeyStore`] apart from the data store.
//!
//! Destroying a day's data key makes that day unreadable in every copy of the data store,
//! backups included, as long as the key store is not backed up with it (crypto-shredding).
//! Every ciphertext carries associated data naming the cell, delivery, day and part it was
//! written for, so a ciphertext copied to another key fails to open.

use parking_lot::Mutex;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Bytes of a key.
pub const KEY_LEN: usize = 32;
/// The first byte of every sealed value: its format.
const VERSION: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {reason}")]
    KekFile { path: String, reason: String },
    #[error("key store: {0}")]
    Store(String),
    /// The key was destroyed (its day was purged, its hold expired).
    #[error("the key {0} was destroyed")]
    Destroyed(KeyId),
    /// No key was ever made for this id.
    #[error("there is no key {0}")]
    Missing(KeyId),
    /// Wrong key, wrong associated data, or altered bytes.
    #[error("a ciphertext did not open (wrong key, moved or altered)")]
    Open,
}

/// Which data key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyId {
    /// Paths that started on this UTC day (days since 1970-01-01).
    Day(u32),
    /// A held delivery's path, re-sealed before its day key went.
    Hold(u64),
}

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyId::Day(d) => write!(f, "day/{d}"),
            KeyId::Hold(d) => write!(f, "hold/{d}"),
        }
    }
}

impl KeyId {
    pub fn parse(s: &str) -> Option<KeyId> {
        let (kind, n) = s.split_once('/')?;
        match kind {
            "day" => n.parse().ok().map(KeyId::Day),
            "hold" => n.parse().ok().map(KeyId::Hold),
            _ => None,
        }
    }
}

/// What the key store holds for an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    Absent,
    Wrapped(Vec<u8>),
    Destroyed,
}

/// Where wrapped data keys live: apart from the data store and its backups.
pub trait KeyStore: Send + Sync {
    fn get(&self, id: KeyId) -> Result<Stored, KeyError>;
    /// Stores `wrapped` unless `id` has a key or was destroyed; returns what is stored after.
    fn insert_new(&self, id: KeyId, wrapped: &[u8]) -> Result<Stored, KeyError>;
    /// Replaces the key with a tombstone, so it is never made again.
    fn destroy(&self, id: KeyId) -> Result<(), KeyError>;
    /// Every id and whether its key is still there (not destroyed).
    fn list(&self) -> Result<Vec<(KeyId, bool)>, KeyError>;
}

const KEYS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("history_keys");

/// The key store in a redb file of its own (the one real [`KeyStore`]).
pub struct RedbKeyStore {
    db: redb::Database,
}

fn ks(e: impl std::fmt::Display) -> KeyError {
    KeyError::Store(e.to_string())
}

/// Key stores open in this process, by path: redb refuses to open a file twice, and two
/// instances of a cell in one process (a test's standby, the simulator) share one.
static OPEN: Mutex<Option<HashMap<std::path::PathBuf, std::sync::Weak<RedbKeyStore>>>> =
    Mutex::new(None);

impl RedbKeyStore {
    /// The key store at `path`, shared with whoever in this process has it open already.
    pub fn open_shared(path: &Path) -> Result<Arc<Self>, KeyError> {
        let mut open = OPEN.lock();
        let map = open.get_or_insert_with(HashMap::new);
        let key = std::path::absolute(path).map_err(ks)?;
        if let Some(s) = map.get(&key).and_then(std::sync::Weak::upgrade) {
            return Ok(s);
        }
        let s = Arc::new(Self::open(path)?);
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key, Arc::downgrade(&s));
        Ok(s)
    }

    pub fn open(path: &Path) -> Result<Self, KeyError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(ks)?;
        }
        let db = redb::Database::create(path).map_err(ks)?;
        let w = db.begin_write().map_err(ks)?;
        w.open_table(KEYS).map_err(ks)?;
        w.commit().map_err(ks)?;
        Ok(Self { db })
    }

    fn write(&self, id: KeyId, value: &[u8], only_new: bool) -> Result<Stored, KeyError> {
        use redb::ReadableTable;
        let w = self.db.begin_write().map_err(ks)?;
        let name = id.to_string();
        let now = {
            let mut t = w.open_table(KEYS).map_err(ks)?;
            let old = t
                .get(name.as_str())
                .map_err(ks)?
                .map(|v| v.value().to_vec());
            match old {
                Some(v) if only_new => stored(v),
                _ => {
                    t.insert(name.as_str(), value).map_err(ks)?;
                    stored(value.to_vec())
                }
            }
        };
        w.commit().map_err(ks)?;
        Ok(now)
    }
}

fn stored(v: Vec<u8>) -> Stored {
    if v.is_empty() {
        Stored::Destroyed
    } else {
        Stored::Wrapped(v)
    }
}

impl KeyStore for RedbKeyStore {
    fn get(&self, id: KeyId) -> Result<Stored, KeyError> {
        use redb::ReadableDatabase;
        let r = self.db.begin_read().map_err(ks)?;
        let t = r.open_table(KEYS).map_err(ks)?;
        let name = id.to_string();
        Ok(match t.get(name.as_str()).map_err(ks)? {
            Some(v) => stored(v.value().to_vec()),
            None => Stored::Absent,
        })
    }

    fn insert_new(&self, id: KeyId, wrapped: &[u8]) -> Result<Stored, KeyError> {
        assert!(!wrapped.is_empty(), "an empty value is a tombstone");
        self.write(id, wrapped, true)
    }

    fn destroy(&self, id: KeyId) -> Result<(), KeyError> {
        self.write(id, &[], false).map(|_| ())
    }

    fn list(&self) -> Result<Vec<(KeyId, bool)>, KeyError> {
        use redb::{ReadableDatabase, ReadableTable};
        let r = self.db.begin_read().map_err(ks)?;
        let t = r.open_table(KEYS).map_err(ks)?;
        let mut out = Vec::new();
        for item in t.iter().map_err(ks)? {
            let (k, v) = item.map_err(ks)?;
            if let Some(id) = KeyId::parse(k.value()) {
                out.push((id, !v.value().is_empty()));
            }
        }
        Ok(out)
    }
}

/// The key-encryption key.
pub struct Kek(LessSafeKey);

impl Kek {
    /// Reads a key file: 64 hex digits (a trailing newline is fine), mode 0600 or stricter.
    pub fn load(path: &Path) -> Result<Kek, KeyError> {
        let bad = |reason: String| KeyError::KekFile {
            path: path.display().to_string(),
            reason,
        };
        let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(bad(format!(
                    "is readable by others (mode {mode:o}); chmod 600 it"
                )));
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let key = parse_hex(text.trim_end())
            .ok_or_else(|| bad("must hold 64 hex digits (openssl rand -hex 32)".into()))?;
        Ok(Kek::from_bytes(&key))
    }

    /// The demo's key file: read if it exists, else generated with mode 0600.
    pub fn load_or_generate(path: &Path) -> Result<Kek, KeyError> {
        if path.exists() {
            return Self::load(path);
        }
        let mut key = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| ks("no randomness"))?;
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(ks)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(path).map_err(|e| KeyError::KekFile {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        f.write_all(format!("{hex}\n").as_bytes()).map_err(ks)?;
        f.sync_all().map_err(ks)?;
        Ok(Kek::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; KEY_LEN]) -> Kek {
        Kek(aead_key(key))
    }
}

fn parse_hex(s: &str) -> Option<[u8; KEY_LEN]> {
    if s.len() != 2 * KEY_LEN || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; KEY_LEN];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn aead_key(key: &[u8; KEY_LEN]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key"))
}

/// `plaintext` sealed: version, a random nonce, ciphertext and tag.
fn seal(key: &LessSafeKey, rng: &SystemRandom, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).expect("the system has randomness");
    let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut body,
    )
    .expect("sealing cannot fail for a sane length");
    out.extend_from_slice(&body);
    out
}

fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
    if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
        return Err(KeyError::Open);
    }
    let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("length checked");
    let mut body = sealed[1 + NONCE_LEN..].to_vec();
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut body,
        )
        .map_err(|_| KeyError::Open)?
        .len();
    body.truncate(n);
    Ok(body)
}

/// The data keys in use: unwrapped on first use and cached (a handful: one per live day and
/// held delivery).
pub struct KeyRing {
    cell: u16,
    kek: Kek,
    store: Arc<dyn KeyStore>,
    cache: Mutex<HashMap<KeyId, Arc<LessSafeKey>>>,
    rng: SystemRandom,
}

impl KeyRing {
    pub fn new(cell: u16, kek: Kek, store: Arc<dyn KeyStore>) -> Self {
        Self {
            cell,
            kek,
            store,
            cache: Mutex::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    pub fn store(&self) -> &Arc<dyn KeyStore> {
        &self.store
    }

    fn wrap_aad(&self, id: KeyId) -> Vec<u8> {
        format!("hist-key/{}/{id}", self.cell).into_bytes()
    }

    /// The data key `id`; made (and stored wrapped) when `create` and there is none yet. A
    /// destroyed key is never made again.
    pub fn key(&self, id: KeyId, create: bool) -> Result<Arc<LessSafeKey>, KeyError> {
        if let Some(k) = self.cache.lock().get(&id) {
            return Ok(k.clone());
        }
        let wrapped = match self.store.get(id)? {
            Stored::Wrapped(w) => w,
            Stored::Destroyed => return Err(KeyError::Destroyed(id)),
            Stored::Absent if !create => return Err(KeyError::Missing(id)),
            Stored::Absent => {
                let mut raw = [0u8; KEY_LEN];
                self.rng.fill(&mut raw).map_err(|_| ks("no randomness"))?;
                let w = seal(&self.kek.0, &self.rng, &self.wrap_aad(id), &raw);
                raw.fill(0);
                // Another writer may have made one first: the stored key wins.
                match self.store.insert_new(id, &w)? {
                    Stored::Wrapped(w) => w,
                    Stored::Destroyed => return Err(KeyError::Destroyed(id)),
                    Stored::Absent => return Err(ks("the key store lost a write")),
                }
            }
        };
        let mut raw = open(&self.kek.0, &self.wrap_aad(id), &wrapped)?;
        let arr: [u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| KeyError::Open)?;
        raw.fill(0);
        let key = Arc::new(aead_key(&arr));
        self.cache.lock().insert(id, key.clone());
        Ok(key)
    }

    /// Destroys `id`: forgotten here first, then tombstoned in the key store.
    pub fn destroy(&self, id: KeyId) -> Result<(), KeyError> {
        self.cache.lock().remove(&id);
        self.store.destroy(id)
    }

    pub fn seal(&self, id: KeyId, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.key(id, true)?;
        Ok(seal(&key, &self.rng, aad, plaintext))
    }

    pub fn open(&self, id: KeyId, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, KeyError> {
        let key = self.key(id, false)?;
        open(&key, aad, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(dir: &Path) -> KeyRing {
        let store = Arc::new(RedbKeyStore::open(&dir.join("keys.redb")).unwrap());
        KeyRing::new(1, Kek::from_bytes(&[7; KEY_LEN]), store)
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_associated_data() {
        let dir = tempfile::tempdir().unwrap();
        let r = ring(dir.path());
        let sealed = r
            .seal(KeyId::Day(5), b"cell1/d9/day5/part0", b"path")
            .unwrap();
        assert_eq!(
            r.open(KeyId::Day(5), b"cell1/d9/day5/part0", &sealed)
                .unwrap(),
            b"path"
        );
        assert!(matches!(
            r.open(KeyId::Day(5), b"cell1/d8/day5/part0", &sealed),
            Err(KeyError::Open)
        ));
        r.key(KeyId::Day(6), true).unwrap();
        assert!(matches!(
            r.open(KeyId::Day(6), b"cell1/d9/day5/part0", &sealed),
            Err(KeyError::Open)
        ));
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(matches!(
            r.open(KeyId::Day(5), b"cell1/d9/day5/part0", &altered),
            Err(KeyError::Open)
        ));
    }

    #[test]
    fn a_destroyed_key_stays_destroyed_across_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = {
            let r = ring(dir.path());
            let s = r.seal(KeyId::Day(5), b"a", b"path").unwrap();
            r.destroy(KeyId::Day(5)).unwrap();
            assert!(matches!(
                r.seal(KeyId::Day(5), b"a", b"x"),
                Err(KeyError::Destroyed(_))
            ));
            s
        };
        let r = ring(dir.path());
        assert!(matches!(
            r.open(KeyId::Day(5), b"a", &sealed),
            Err(KeyError::Destroyed(_))
        ));
        assert_eq!(r.store().list().unwrap(), vec![(KeyId::Day(5), false)]);
    }

    #[test]
    fn a_key_survives_a_reopen_and_another_kek_cannot_unwrap_it() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = ring(dir.path())
            .seal(KeyId::Hold(3), b"a", b"path")
            .unwrap();
        assert_eq!(
            ring(dir.path())
                .open(KeyId::Hold(3), b"a", &sealed)
                .unwrap(),
            b"path"
        );
        let store = Arc::new(RedbKeyStore::open(&dir.path().join("keys.redb")).unwrap());
        let other = KeyRing::new(1, Kek::from_bytes(&[8; KEY_LEN]), store);
        assert!(matches!(
            other.open(KeyId::Hold(3), b"a", &sealed),
            Err(KeyError::Open)
        ));
    }

    #[test]
    fn key_files_must_be_private_hex_keys() {
        let dir = tempfile::tempdir().unwrap();
        let generated = dir.path().join("gen.kek");
        Kek::load_or_generate(&generated).unwrap();
        Kek::load(&generated).unwrap();
        let loose = dir.path().join("loose.kek");
        std::fs::write(&loose, format!("{}\n", "ab".repeat(32))).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Kek::load(&loose).err().unwrap().to_string();
            assert!(e.contains("readable by others"), "{e}");
            std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Kek::load(&loose).unwrap();
        std::fs::write(&loose, "not hex").unwrap();
        assert!(
            Kek::load(&loose)
                .err()
                .unwrap()
                .to_string()
                .contains("64 hex digits")
        );
        assert!(Kek::load(&dir.path().join("none")).is_err());
    }
}
