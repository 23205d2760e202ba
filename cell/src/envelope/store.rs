//! Where wrapped data keys live: the [`KeyStore`] trait and its one real implementation, a
//! redb file of its own beside (never inside) the data store, so the data store's backups hold
//! no key and destroying one here reaches every backup.

use super::{KeyError, KeyId, ks};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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
    /// Replaces `id`'s wrapped key with `new` if it is still `expected` (rewrapping under a
    /// new key-encryption key); `false` if it changed meanwhile (destroyed, rewrapped).
    fn replace(&self, id: KeyId, expected: &[u8], new: &[u8]) -> Result<bool, KeyError> {
        self.replace_many(&[(id, expected.to_vec(), new.to_vec())])
            .map(|n| n == 1)
    }
    /// [`KeyStore::replace`] for a page of keys in one commit; returns how many were replaced.
    fn replace_many(&self, swaps: &[(KeyId, Vec<u8>, Vec<u8>)]) -> Result<usize, KeyError>;
    /// Up to `limit` keys (tombstones included, as empty values) after the one named `after`,
    /// in name order: the rewrap job's pages.
    fn scan(&self, after: Option<&str>, limit: usize) -> Result<Vec<(KeyId, Vec<u8>)>, KeyError>;
    /// A bookkeeping value of the key store itself (the rewrap job's cursor).
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, KeyError>;
    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), KeyError>;
}

/// Bookkeeping entries share the table under this prefix; [`KeyId::parse`] never takes them.
const META: &str = "meta/";

// The table keeps its first name (`history_keys`): stores written before customer keys open
// unchanged.
const KEYS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("history_keys");

/// The key store in a redb file of its own (the one real [`KeyStore`]).
pub struct RedbKeyStore {
    db: redb::Database,
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

    fn replace_many(&self, swaps: &[(KeyId, Vec<u8>, Vec<u8>)]) -> Result<usize, KeyError> {
        use redb::ReadableTable;
        let w = self.db.begin_write().map_err(ks)?;
        let mut replaced = 0;
        {
            let mut t = w.open_table(KEYS).map_err(ks)?;
            for (id, expected, new) in swaps {
                assert!(!new.is_empty(), "an empty value is a tombstone");
                let name = id.to_string();
                let same = t
                    .get(name.as_str())
                    .map_err(ks)?
                    .is_some_and(|v| v.value() == expected.as_slice());
                if same {
                    t.insert(name.as_str(), new.as_slice()).map_err(ks)?;
                    replaced += 1;
                }
            }
        }
        w.commit().map_err(ks)?;
        Ok(replaced)
    }

    fn scan(&self, after: Option<&str>, limit: usize) -> Result<Vec<(KeyId, Vec<u8>)>, KeyError> {
        use redb::ReadableDatabase;
        use std::ops::Bound;
        let r = self.db.begin_read().map_err(ks)?;
        let t = r.open_table(KEYS).map_err(ks)?;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for item in t.range::<&str>((start, Bound::Unbounded)).map_err(ks)? {
            let (k, v) = item.map_err(ks)?;
            if let Some(id) = KeyId::parse(k.value()) {
                out.push((id, v.value().to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, KeyError> {
        use redb::ReadableDatabase;
        let r = self.db.begin_read().map_err(ks)?;
        let t = r.open_table(KEYS).map_err(ks)?;
        let key = format!("{META}{name}");
        Ok(t.get(key.as_str()).map_err(ks)?.map(|v| v.value().to_vec()))
    }

    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), KeyError> {
        let w = self.db.begin_write().map_err(ks)?;
        {
            let mut t = w.open_table(KEYS).map_err(ks)?;
            let key = format!("{META}{name}");
            t.insert(key.as_str(), value).map_err(ks)?;
        }
        w.commit().map_err(ks)
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
