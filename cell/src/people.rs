//! The people behind the ids: a profile (display name, phone) per customer, driver and
//! restaurant contact, kept in the cell's store under `("prof", kind, id)`. Profiles come in
//! through the admin API (`PUT /api/v1/admin/profiles/{kind}/{id}`) or, in demo mode, from
//! [`demo_name`], a name made up from the id so a local city shows people, not numbers.
//!
//! What others see is the least that serves them: a customer and a restaurant see a driver's
//! first name ([`first_name`]); phones are read by admins only.

use serde::{Deserialize, Serialize};
use store::Kv;

/// Whose profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Customer,
    Driver,
    Restaurant,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Customer => "c",
            Kind::Driver => "d",
            Kind::Restaurant => "r",
        }
    }
}

/// A profile as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The name shown to others (a driver's first word only, see [`first_name`]).
    #[schema(min_length = 1, max_length = 80)]
    pub display_name: String,
    /// E.164 (`+4930123456`); personal data, shown to admins only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$")]
    pub phone: Option<String>,
}

/// Why a profile is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("display_name must be 1 to 80 characters, not blank")]
    Name,
    #[error("phone must be E.164: + then 7 to 15 digits, the first not 0")]
    Phone,
}

impl Profile {
    /// Checks what the schema promises.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let n = self.display_name.chars().count();
        if self.display_name.trim().is_empty() || n > 80 {
            return Err(ProfileError::Name);
        }
        if let Some(p) = &self.phone {
            let digits = p.strip_prefix('+').unwrap_or("");
            let ok = (7..=15).contains(&digits.len())
                && digits.bytes().all(|b| b.is_ascii_digit())
                && !digits.starts_with('0');
            if !ok {
                return Err(ProfileError::Phone);
            }
        }
        Ok(())
    }
}

pub(crate) fn key(kind: Kind, id: u64) -> Vec<u8> {
    store::keys::pack(&("prof", kind.tag(), id))
}

/// A profile as stored: a customer's phone sealed under their data key (`phone_sealed`,
/// `crate::personal`); drivers' and restaurants' phones, and customers' written before
/// sealing, plain.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    phone_sealed: Option<String>,
}

/// What seals and opens customers' phones: the cell's vault, and the time its key cache ages
/// by.
pub struct Sealer<'a> {
    pub vault: &'a crate::personal::Vault,
    pub now: domain::UnixMs,
}

/// Why a profile could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Personal(#[from] crate::personal::PersonalError),
}

async fn get_stored(kv: &dyn Kv, kind: Kind, id: u64) -> Result<Option<Stored>, store::StoreError> {
    let r = store::read(kv, move |txn| {
        Box::pin(async move {
            let v = txn.get(&key(kind, id)).await?;
            Ok::<_, store::TxnError<()>>(v.and_then(|b| serde_json::from_slice(&b).ok()))
        })
    })
    .await;
    r.map_err(flatten)
}

/// The stored profile, if any, without a sealed phone (names only need this).
pub async fn get(kv: &dyn Kv, kind: Kind, id: u64) -> Result<Option<Profile>, store::StoreError> {
    Ok(get_stored(kv, kind, id).await?.map(|s| Profile {
        display_name: s.display_name,
        phone: s.phone,
    }))
}

/// The stored profile with a customer's phone opened (an erased customer's stays shut: none).
pub async fn get_opened(
    kv: &dyn Kv,
    sealer: &Sealer<'_>,
    kind: Kind,
    id: u64,
) -> Result<Option<Profile>, PeopleError> {
    let Some(s) = get_stored(kv, kind, id).await? else {
        return Ok(None);
    };
    let phone = match s.phone_sealed {
        Some(sealed) => {
            let customer = domain::CustomerId(id);
            let profile = crate::personal::Record::Profile;
            match sealer
                .vault
                .open_field(customer, profile, "phone", &sealed, sealer.now)
            {
                Ok(p) => Some(p),
                Err(crate::personal::PersonalError::KeyDestroyed(_)) => None,
                Err(e) => return Err(e.into()),
            }
        }
        None => s.phone,
    };
    Ok(Some(Profile {
        display_name: s.display_name,
        phone,
    }))
}

/// Stores `p` (validated by the caller); a customer's phone sealed.
pub async fn put(
    kv: &dyn Kv,
    sealer: &Sealer<'_>,
    kind: Kind,
    id: u64,
    p: &Profile,
) -> Result<(), PeopleError> {
    if let (Kind::Customer, Some(_)) = (kind, &p.phone) {
        // The key store's I/O off the async worker (a new customer's key is a durable write).
        sealer
            .vault
            .warm(domain::CustomerId(id), sealer.now)
            .await?;
    }
    let stored = match (kind, &p.phone) {
        (Kind::Customer, Some(phone)) => Stored {
            display_name: p.display_name.clone(),
            phone: None,
            phone_sealed: Some(sealer.vault.seal_field(
                domain::CustomerId(id),
                crate::personal::Record::Profile,
                "phone",
                phone,
                sealer.now,
            )?),
        },
        _ => Stored {
            display_name: p.display_name.clone(),
            phone: p.phone.clone(),
            phone_sealed: None,
        },
    };
    let bytes = serde_json::to_vec(&stored).expect("a profile serializes");
    let r = store::transact(kv, move |txn| {
        let bytes = bytes.clone();
        Box::pin(async move {
            txn.set(&key(kind, id), &bytes);
            Ok::<_, store::TxnError<()>>(())
        })
    })
    .await;
    Ok(r.map_err(flatten)?)
}

/// A transaction's error when its closure never aborts: the store's.
pub(crate) fn flatten(e: store::TxnError<()>) -> store::StoreError {
    match e {
        store::TxnError::Store(e) => e,
        store::TxnError::Abort(()) => store::StoreError::Closed,
    }
}

/// The first word of a display name: what a customer or a restaurant sees of a driver.
pub fn first_name(display: &str) -> String {
    display.split_whitespace().next().unwrap_or("").to_owned()
}

const FIRST: [&str; 24] = [
    "Alex", "Ana", "Ben", "Chiara", "David", "Elif", "Emma", "Felix", "Hana", "Ivan", "Jonas",
    "Julia", "Karim", "Lea", "Lukas", "Maya", "Mehmet", "Mia", "Noah", "Olga", "Paul", "Sara",
    "Tom", "Yusuf",
];
const LAST: [&str; 16] = [
    "Becker", "Demir", "Fischer", "Hoffmann", "Kaya", "Klein", "Koch", "Meyer", "Müller", "Nowak",
    "Richter", "Schmidt", "Schulz", "Wagner", "Weber", "Wolf",
];

/// A made-up name for `id`, the same every time (demo mode's profiles).
pub fn demo_name(id: u64) -> String {
    // A multiplicative hash spreads consecutive ids over the lists.
    let h = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let first = FIRST[(h >> 40) as usize % FIRST.len()];
    let last = LAST[(h >> 20) as usize % LAST.len()];
    format!("{first} {last}")
}

/// The display name for `id`: the stored profile's, else a demo name in demo mode.
pub async fn display_name(kv: &dyn Kv, kind: Kind, id: u64, demo: bool) -> Option<String> {
    match get(kv, kind, id).await {
        Ok(Some(p)) => Some(p.display_name),
        Ok(None) | Err(_) if demo => Some(demo_name(id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_checked_as_the_schema_says() {
        let ok = Profile {
            display_name: "Maya Schulz".into(),
            phone: Some("+4930123456".into()),
        };
        assert_eq!(ok.validate(), Ok(()));
        let blank = Profile {
            display_name: "  ".into(),
            ..ok.clone()
        };
        assert_eq!(blank.validate(), Err(ProfileError::Name));
        let long = Profile {
            display_name: "x".repeat(81),
            ..ok.clone()
        };
        assert_eq!(long.validate(), Err(ProfileError::Name));
        for bad in [
            "4930123456",
            "+0301234567",
            "+49 30 1234",
            "+123",
            "+1234567890123456",
        ] {
            let p = Profile {
                phone: Some(bad.into()),
                ..ok.clone()
            };
            assert_eq!(p.validate(), Err(ProfileError::Phone), "{bad}");
        }
    }

    #[test]
    fn others_see_a_first_name_and_demo_names_are_stable() {
        assert_eq!(first_name("Maya  Schulz"), "Maya");
        assert_eq!(first_name(""), "");
        assert_eq!(demo_name(42), demo_name(42));
        let names: std::collections::HashSet<String> = (1..50).map(demo_name).collect();
        assert!(names.len() > 20, "consecutive ids get varied names");
    }

    #[tokio::test]
    async fn a_profile_round_trips_through_the_store() {
        let db = store::model::ModelDb::new(store::model::ModelFaults::none());
        let kv = db.kv();
        assert_eq!(get(&*kv, Kind::Driver, 7).await.unwrap(), None);
        let p = Profile {
            display_name: "Jonas Weber".into(),
            phone: None,
        };
        let vault = crate::personal::test_vault();
        let sealer = Sealer {
            vault: &vault,
            now: domain::UnixMs(0),
        };
        put(&*kv, &sealer, Kind::Driver, 7, &p).await.unwrap();
        assert_eq!(get(&*kv, Kind::Driver, 7).await.unwrap(), Some(p));
        assert_eq!(
            get(&*kv, Kind::Customer, 7).await.unwrap(),
            None,
            "kinds apart"
        );
        assert_eq!(
            display_name(&*kv, Kind::Customer, 7, true).await,
            Some(demo_name(7))
        );
        assert_eq!(display_name(&*kv, Kind::Customer, 7, false).await, None);
    }

    #[tokio::test]
    async fn a_customer_s_phone_is_sealed_and_gone_once_they_are_erased() {
        let db = store::model::ModelDb::new(store::model::ModelFaults::none());
        let kv = db.kv();
        let vault = crate::personal::test_vault();
        let sealer = Sealer {
            vault: &vault,
            now: domain::UnixMs(0),
        };
        let p = Profile {
            display_name: "Ada Lovelace".into(),
            phone: Some("+4930999888".into()),
        };
        for kind in [Kind::Customer, Kind::Driver] {
            put(&*kv, &sealer, kind, 9, &p).await.unwrap();
        }
        let raw = |kind| {
            let kv = kv.clone();
            async move {
                store::read(&*kv, move |txn| {
                    Box::pin(async move {
                        Ok::<_, store::TxnError<()>>(txn.get(&key(kind, 9)).await?.unwrap())
                    })
                })
                .await
                .unwrap()
            }
        };
        let has_phone = |b: &[u8]| b.windows(11).any(|w| w == b"+4930999888");
        assert!(!has_phone(&raw(Kind::Customer).await), "sealed at rest");
        assert!(
            has_phone(&raw(Kind::Driver).await),
            "a driver's phone is not a customer's"
        );
        assert_eq!(
            get_opened(&*kv, &sealer, Kind::Customer, 9).await.unwrap(),
            Some(p.clone())
        );
        assert_eq!(
            get(&*kv, Kind::Customer, 9).await.unwrap().unwrap().phone,
            None,
            "names only: the phone stays shut"
        );
        vault.destroy_key(domain::CustomerId(9)).unwrap();
        let after = get_opened(&*kv, &sealer, Kind::Customer, 9).await.unwrap();
        assert_eq!(after.unwrap().phone, None);
    }
}
