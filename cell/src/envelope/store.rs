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
///
/// New keys (one per new customer, on their first order) are group-committed: callers hand
/// them to a writer thread that puts every queued one in one write transaction, so a burst of
/// new customers costs one fsync per batch rather than one each.
pub struct RedbKeyStore {
    db: Arc<redb::Database>,
    new_keys: Mutex<Option<std::sync::mpsc::Sender<NewKey>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A key waiting for the writer thread, and where its outcome goes.
struct NewKey {
    name: String,
    wrapped: Vec<u8>,
    reply: std::sync::mpsc::SyncSender<Result<Stored, KeyError>>,
}

/// Most new keys one commit carries.
const MAX_BATCH: usize = 1024;

/// The writer thread: every queued new key in one transaction, then one commit.
fn write_new_keys(db: &redb::Database, keys: &std::sync::mpsc::Receiver<NewKey>) {
    use redb::ReadableTable;
    while let Ok(first) = keys.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match keys.try_recv() {
                Ok(k) => batch.push(k),
                Err(_) => break,
            }
        }
        let outcome = (|| -> Result<Vec<Stored>, KeyError> {
            let w = db.begin_write().map_err(ks)?;
            let mut out = Vec::with_capacity(batch.len());
            {
                let mut t = w.open_table(KEYS).map_err(ks)?;
                for k in &batch {
                    // An earlier key of the same id (stored, destroyed, or earlier in this
                    // batch) wins.
                    let old = t
                        .get(k.name.as_str())
                        .map_err(ks)?
                        .map(|v| v.value().to_vec());
                    out.push(match old {
                        Some(v) => stored(v),
                        None => {
                            t.insert(k.name.as_str(), k.wrapped.as_slice())
                                .map_err(ks)?;
                            Stored::Wrapped(k.wrapped.clone())
                        }
                    });
                }
            }
            w.commit().map_err(ks)?;
            Ok(out)
        })();
        match outcome {
            Ok(out) => {
                for (k, s) in batch.into_iter().zip(out) {
                    let _ = k.reply.send(Ok(s));
                }
            }
            Err(e) => {
                for k in batch {
                    let _ = k.reply.send(Err(ks(&e)));
                }
            }
        }
    }
}

impl Drop for RedbKeyStore {
    fn drop(&mut self) {
        // Closing the queue stops the writer after what it holds; then the file closes.
        self.new_keys.lock().take();
        if let Some(w) = self.writer.lock().take() {
            let _ = w.join();
        }
    }
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
        let db = Arc::new(db);
        let (tx, rx) = std::sync::mpsc::channel();
        let writer_db = db.clone();
        let writer = std::thread::Builder::new()
            .name("key-store-writer".into())
            .spawn(move || write_new_keys(&writer_db, &rx))
            .map_err(ks)?;
        Ok(Self {
            db,
            new_keys: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
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
        let (reply, outcome) = std::sync::mpsc::sync_channel(1);
        let key = NewKey {
            name: id.to_string(),
            wrapped: wrapped.to_vec(),
            reply,
        };
        self.new_keys
            .lock()
            .as_ref()
            .ok_or_else(|| ks("the key store is closed"))?
            .send(key)
            .map_err(|_| ks("the key store's writer stopped"))?;
        outcome
            .recv()
            .map_err(|_| ks("the key store's writer stopped"))?
    }

    fn destroy(&self, id: KeyId) -> Result<(), KeyError> {
        let w = self.db.begin_write().map_err(ks)?;
        w.open_table(KEYS)
            .map_err(ks)?
            .insert(id.to_string().as_str(), &[][..])
            .map_err(ks)?;
        w.commit().map_err(ks)
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
