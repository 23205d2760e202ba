//! Profiles from identity tokens: the display name and phone an OIDC issuer puts in a customer's
//! or driver's token (`name`, `phone_number` by default; `[auth.oidc] name_claim`/`phone_claim`)
//! become their profile in this cell. The identity provider owns those facts, so the claims win
//! for what they carry; a phone the claims lack or give malformed keeps the stored one.
//!
//! A request must not write the store, so a memo keeps what was last applied per person and a
//! token's claims are written once per process and change.

use std::collections::HashMap;

use parking_lot::Mutex;
use store::Kv;

use crate::people::{self, Kind, Profile};

/// Memo entries kept before it is cleared (a cleared memo costs one read per person again).
const MEMO_CAP: usize = 100_000;

/// What was applied per person, as a fingerprint of (name, phone).
#[derive(Default)]
pub struct ClaimSync {
    applied: Mutex<HashMap<(Kind, u64), u64>>,
}

/// The profile `name` and `phone` imply over `stored`, or `None` when the name is unusable.
pub fn merged(stored: Option<&Profile>, name: &str, phone: Option<&str>) -> Option<Profile> {
    let name = name.trim();
    let candidate = Profile {
        display_name: name.to_owned(),
        phone: None,
    };
    candidate.validate().ok()?;
    let phone = phone
        .map(str::to_owned)
        .filter(|p| {
            Profile {
                display_name: name.to_owned(),
                phone: Some(p.clone()),
            }
            .validate()
            .is_ok()
        })
        .or_else(|| stored.and_then(|s| s.phone.clone()));
    Some(Profile {
        display_name: name.to_owned(),
        phone,
    })
}

fn fingerprint(name: &str, phone: Option<&str>) -> u64 {
    let mut bytes = name.as_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(phone.unwrap_or("").as_bytes());
    crate::orders::place::fingerprint(&bytes)
}

impl ClaimSync {
    /// Whether `name`/`phone` need no write: no name, or what was last applied. A cheap,
    /// synchronous check that lets every other request skip [`ClaimSync::apply`].
    pub fn is_current(&self, kind: Kind, id: u64, name: Option<&str>, phone: Option<&str>) -> bool {
        name.is_none_or(|name| {
            self.applied.lock().get(&(kind, id)) == Some(&fingerprint(name, phone))
        })
    }

    /// Applies a token's `name`/`phone` claims to the profile of `kind`/`id`, unless they are
    /// what was last applied. Returns whether the store was written.
    pub async fn apply(
        &self,
        kv: &dyn Kv,
        sealer: &people::Sealer<'_>,
        kind: Kind,
        id: u64,
        name: Option<&str>,
        phone: Option<&str>,
    ) -> Result<bool, people::PeopleError> {
        let Some(name) = name else { return Ok(false) };
        let fp = fingerprint(name, phone);
        if self.applied.lock().get(&(kind, id)) == Some(&fp) {
            return Ok(false);
        }
        let stored = people::get_opened(kv, sealer, kind, id).await?;
        let wrote = match merged(stored.as_ref(), name, phone) {
            Some(p) if stored.as_ref() != Some(&p) => {
                people::put(kv, sealer, kind, id, &p).await?;
                true
            }
            _ => false,
        };
        let mut memo = self.applied.lock();
        if memo.len() >= MEMO_CAP {
            memo.clear();
        }
        memo.insert((kind, id), fp);
        Ok(wrote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn profile(name: &str, phone: Option<&str>) -> Profile {
        Profile {
            display_name: name.into(),
            phone: phone.map(Into::into),
        }
    }

    #[test]
    fn claims_win_for_what_they_carry_and_a_bad_phone_keeps_the_stored_one() {
        let stored = profile("Old Name", Some("+4930123456"));
        assert_eq!(
            merged(Some(&stored), " Ada Lovelace ", Some("+441234567890")),
            Some(profile("Ada Lovelace", Some("+441234567890")))
        );
        assert_eq!(
            merged(Some(&stored), "Ada", Some("0301234")),
            Some(profile("Ada", Some("+4930123456")))
        );
        assert_eq!(
            merged(Some(&stored), "Ada", None),
            Some(profile("Ada", Some("+4930123456")))
        );
        assert_eq!(merged(None, "   ", None), None, "a blank name is no name");
        assert_eq!(merged(None, &"x".repeat(81), None), None, "too long");
    }

    #[tokio::test]
    async fn a_token_writes_its_profile_once_per_change() {
        let db = store::model::ModelDb::new(store::model::ModelFaults::none());
        let kv: Arc<dyn Kv> = db.kv();
        let sync = ClaimSync::default();
        let vault = crate::personal::test_vault();
        let sealer = people::Sealer {
            vault: &vault,
            now: domain::UnixMs(0),
        };
        let apply = |name: Option<&'static str>, phone: Option<&'static str>| {
            let (kv, sync, sealer) = (kv.clone(), &sync, &sealer);
            async move {
                sync.apply(&*kv, sealer, Kind::Customer, 7, name, phone)
                    .await
                    .unwrap()
            }
        };
        assert!(!apply(None, None).await, "no name claim, nothing to do");
        assert!(apply(Some("Ada"), Some("+4930123456")).await);
        assert!(!apply(Some("Ada"), Some("+4930123456")).await, "memoized");
        assert_eq!(
            people::get_opened(&*kv, &sealer, Kind::Customer, 7)
                .await
                .unwrap(),
            Some(profile("Ada", Some("+4930123456")))
        );
        assert!(
            apply(Some("Ada L."), None).await,
            "a changed name is written"
        );
        assert_eq!(
            people::get_opened(&*kv, &sealer, Kind::Customer, 7)
                .await
                .unwrap(),
            Some(profile("Ada L.", Some("+4930123456"))),
            "the phone the claims lack is kept"
        );
        // Another process (an empty memo) with the same claims reads and does not rewrite.
        let fresh = ClaimSync::default();
        assert!(
            !fresh
                .apply(&*kv, &sealer, Kind::Customer, 7, Some("Ada L."), None)
                .await
                .unwrap()
        );
        assert_eq!(
            people::get(&*kv, Kind::Driver, 7).await.unwrap(),
            None,
            "kinds are apart"
        );
    }
}
