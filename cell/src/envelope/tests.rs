//! The envelope's tests: sealing, destroying, reopening, key files.

use super::*;
use std::path::Path;

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

fn rotated(dir: &Path, earlier: bool) -> KeyRing {
    let store = Arc::new(RedbKeyStore::open(&dir.join("keys.redb")).unwrap());
    let old = if earlier {
        vec![(0, Kek::from_bytes(&[7; KEY_LEN]))]
    } else {
        vec![]
    };
    let keks = Keks::rotated((1, Kek::from_bytes(&[8; KEY_LEN])), old);
    KeyRing::with_keks(1, keks, store, CacheLimits::default())
}

#[test]
fn a_rotation_rewraps_every_key_resuming_after_an_interruption_and_retires_the_old_kek() {
    let dir = tempfile::tempdir().unwrap();
    let now = domain::UnixMs(0);
    // Five keys under the first KEK (version 0), one of them destroyed.
    let sealed: Vec<(KeyId, Vec<u8>)> = {
        let r = ring(dir.path());
        let mut v: Vec<_> = (1..=3)
            .map(|c| {
                let id = KeyId::Customer(c);
                (id, r.seal_at(id, b"a", b"addr", now).unwrap())
            })
            .collect();
        v.push((KeyId::Day(9), r.seal(KeyId::Day(9), b"a", b"path").unwrap()));
        r.seal(KeyId::Day(8), b"a", b"gone").unwrap();
        r.destroy(KeyId::Day(8)).unwrap();
        v
    };
    let r = rotated(dir.path(), true);
    assert_eq!(r.kek_version(), 1);
    // New keys are wrapped by the current version at once.
    let fresh = r.seal_at(KeyId::Customer(4), b"a", b"new", now).unwrap();
    assert_eq!(
        r.versions_in_use().unwrap(),
        std::collections::BTreeMap::from([(0, 4), (1, 1)])
    );
    // One page, then the job is killed (the ring dropped with the process).
    let first = r.rewrap_batch(2).unwrap();
    assert_eq!((first.scanned, first.done), (2, false));
    drop(r);
    // A new process goes on after the stored cursor: the first page is not read again.
    let r = rotated(dir.path(), true);
    let mut rest = Rewrapped::default();
    loop {
        let p = r.rewrap_batch(2).unwrap();
        rest.scanned += p.scanned;
        rest.rewrapped += p.rewrapped;
        if p.done {
            break;
        }
    }
    assert_eq!(
        first.scanned + rest.scanned,
        6,
        "every key read once, tombstone included"
    );
    assert_eq!(
        first.rewrapped + rest.rewrapped,
        4,
        "the four live version-0 keys"
    );
    assert_eq!(
        r.versions_in_use().unwrap(),
        std::collections::BTreeMap::from([(1, 5)]),
        "version 0 wraps nothing: retired"
    );
    assert_eq!(r.rewrap_batch(2).unwrap().rewrapped, 0, "done stays done");
    // The data was never touched, and opens without the old KEK.
    drop(r);
    let r = rotated(dir.path(), false);
    for (id, s) in &sealed {
        let back = match id {
            KeyId::Customer(_) => r.open_at(*id, b"a", s, now).unwrap(),
            _ => r.open(*id, b"a", s).unwrap(),
        };
        assert!(back == b"addr" || back == b"path");
    }
    assert_eq!(
        r.open_at(KeyId::Customer(4), b"a", &fresh, now).unwrap(),
        b"new"
    );
    assert!(matches!(
        r.open(KeyId::Day(8), b"a", b"x"),
        Err(KeyError::Destroyed(_))
    ));
    // A ring that only knows version 0 cannot unwrap the rewrapped keys.
    drop(r);
    assert!(matches!(
        ring(dir.path()).open(KeyId::Day(9), b"a", &sealed[3].1),
        Err(KeyError::UnknownKekVersion(1))
    ));
}

#[test]
fn new_keys_from_many_threads_share_commits_and_a_race_on_one_id_has_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbKeyStore::open(&dir.path().join("keys.redb")).unwrap());
    let threads: Vec<_> = (0..16u64)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..50u64 {
                    let id = KeyId::Customer(t * 1_000 + i);
                    let v = vec![1 + (t as u8), i as u8];
                    assert_eq!(store.insert_new(id, &v).unwrap(), Stored::Wrapped(v));
                    mine.push(id);
                }
                // All racing on one id: each offers its own value, and all see the same one.
                let shared = store
                    .insert_new(KeyId::Customer(999_999), &[t as u8 + 1])
                    .unwrap();
                (mine, shared)
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let winner = results[0].1.clone();
    assert!(
        results.iter().all(|(_, s)| *s == winner),
        "one value for the raced id"
    );
    for (ids, _) in &results {
        for id in ids {
            assert!(matches!(store.get(*id).unwrap(), Stored::Wrapped(_)));
        }
    }
    // A destroyed key is never made again through the writer either.
    store.destroy(KeyId::Customer(5)).unwrap();
    assert_eq!(
        store.insert_new(KeyId::Customer(5), &[9]).unwrap(),
        Stored::Destroyed
    );
    // The writer stops with the store, and what it wrote is durable.
    drop(results);
    drop(store);
    let again = RedbKeyStore::open(&dir.path().join("keys.redb")).unwrap();
    assert_eq!(again.get(KeyId::Customer(999_999)).unwrap(), winner);
}
