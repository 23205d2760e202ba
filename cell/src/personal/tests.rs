//! Sealing personal fields: per-record associated data, crypto-shredding, legacy plaintext.

use super::*;
use crate::envelope::{Kek, RedbKeyStore};

fn vault(dir: &std::path::Path) -> Vault {
    let store = Arc::new(RedbKeyStore::open(&dir.join("keys.redb")).unwrap());
    Vault::new(Arc::new(KeyRing::new(3, Kek::from_bytes(&[5; 32]), store)))
}

fn contact() -> Contact {
    Contact {
        formatted: "Canary Lane 7".into(),
        phone: Some("+4915100000007".into()),
        notes: Some("ring twice".into()),
    }
}

fn address(sealed: SealedContact) -> Address {
    Address {
        lat: 52.5,
        lng: 13.4,
        formatted: String::new(),
        sealed: Some(sealed),
    }
}

const NOW: UnixMs = UnixMs(1_000);

#[test]
fn sealed_fields_round_trip_and_hold_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let v = vault(dir.path());
    let (c, o) = (CustomerId(1), OrderId(10));
    let sealed = v.seal(c, o, &contact(), NOW).unwrap();
    let json = serde_json::to_string(&sealed).unwrap();
    assert!(!json.contains("Canary") && !json.contains("4915100000007") && !json.contains("twice"));
    assert_eq!(v.open(c, o, &address(sealed), NOW).unwrap(), contact());
    assert_eq!(
        format!("{:?}", contact()),
        "Contact { .. }",
        "Debug prints no field"
    );
}

#[test]
fn a_ciphertext_swapped_between_two_orders_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let v = vault(dir.path());
    let c = CustomerId(1);
    let a = v.seal(c, OrderId(10), &contact(), NOW).unwrap();
    let mut other = contact();
    other.formatted = "Other Street 1".into();
    let b = v.seal(c, OrderId(11), &other, NOW).unwrap();
    // The two orders' address ciphertexts trade places.
    let mut a_swapped = a.clone();
    a_swapped.formatted = b.formatted.clone();
    assert!(matches!(
        v.open(c, OrderId(10), &address(a_swapped), NOW),
        Err(PersonalError::Open {
            record: Record::Order(OrderId(10)),
            field: "formatted"
        })
    ));
    // Another customer's order with the same id, and another field of the same order.
    v.seal(CustomerId(2), OrderId(12), &contact(), NOW).unwrap();
    assert!(matches!(
        v.open(CustomerId(2), OrderId(10), &address(a.clone()), NOW),
        Err(PersonalError::Open { .. })
    ));
    let mut moved = a.clone();
    moved.notes = a.phone.clone();
    assert!(matches!(
        v.open(c, OrderId(10), &address(moved), NOW),
        Err(PersonalError::Open { field: "notes", .. })
    ));
    assert_eq!(v.open(c, OrderId(11), &address(b), NOW).unwrap(), other);
}

#[test]
fn an_erased_customer_s_ciphertext_fails_with_key_destroyed_even_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let c = CustomerId(7);
    let sealed = {
        let v = vault(dir.path());
        let s = v.seal(c, OrderId(1), &contact(), NOW).unwrap();
        // Cached now: the erase must drop the cached key too.
        v.open(c, OrderId(1), &address(s.clone()), NOW).unwrap();
        assert!(!v.is_erased(c).unwrap());
        v.destroy_key(c).unwrap();
        let e = v.open(c, OrderId(1), &address(s.clone()), NOW).unwrap_err();
        assert!(matches!(e, PersonalError::KeyDestroyed(x) if x == c));
        assert_eq!(e.code(), "key_destroyed");
        assert!(
            matches!(
                v.seal(c, OrderId(2), &contact(), NOW),
                Err(PersonalError::KeyDestroyed(_))
            ),
            "an erased customer's key is never made again"
        );
        s
    };
    let v = vault(dir.path());
    assert!(v.is_erased(c).unwrap());
    assert!(matches!(
        v.open(c, OrderId(1), &address(sealed), NOW),
        Err(PersonalError::KeyDestroyed(_))
    ));
    // Other customers are untouched.
    let s = v.seal(CustomerId(8), OrderId(3), &contact(), NOW).unwrap();
    assert_eq!(
        v.open(CustomerId(8), OrderId(3), &address(s), NOW).unwrap(),
        contact()
    );
}

#[test]
fn legacy_orders_are_read_as_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let v = vault(dir.path());
    let legacy = Address {
        lat: 1.0,
        lng: 2.0,
        formatted: "Old Road 3".into(),
        sealed: None,
    };
    let c = v.open(CustomerId(1), OrderId(1), &legacy, NOW).unwrap();
    assert_eq!(c.formatted, "Old Road 3");
    assert!(c.phone.is_none() && c.notes.is_none());
}
