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
