//! Key-encryption key rotation. Each wrapped data key records the version of the KEK that
//! wrapped it; a ring holds the current version (which wraps every new key) and the earlier
//! ones still needed to unwrap. [`KeyRing::rewrap_batch`] moves existing keys to the current
//! version a page at a time, never touching the data they seal; its cursor is kept in the key
//! store, so a job killed half-way goes on from its last page. An earlier version is retired
//! (its file can go) once [`KeyRing::versions_in_use`] no longer names it.
//!
//! Wrapped formats: version 0 (the first KEK, and every store written before rotation) is
//! the bare sealed value (first byte 1); a later version `v` is `2, v as u32 big-endian`, then
//! the sealed value.

use super::{Kek, KeyError, KeyRing};
use std::collections::BTreeMap;

/// The first byte of a wrapped key that names its KEK version.
const VERSIONED: u8 = 2;
/// The key store's record of the rewrap job: `<target version>:<last key name done>`, or
/// `<target version>:` + [`DONE`].
const CURSOR: &str = "rewrap_cursor";
const DONE: &str = "\u{1}done";

/// The key-encryption keys a ring knows, by version.
pub struct Keks {
    current: u32,
    all: BTreeMap<u32, Kek>,
}

impl Keks {
    /// One key, version 0 (no rotation yet).
    pub fn single(kek: Kek) -> Keks {
        Keks {
            current: 0,
            all: BTreeMap::from([(0, kek)]),
        }
    }

    /// `current` wraps new keys; `earlier` still unwrap the keys they wrapped.
    pub fn rotated(current: (u32, Kek), earlier: Vec<(u32, Kek)>) -> Keks {
        let mut all: BTreeMap<u32, Kek> = earlier.into_iter().collect();
        all.insert(current.0, current.1);
        Keks {
            current: current.0,
            all,
        }
    }

    pub fn current(&self) -> u32 {
        self.current
    }

    pub(super) fn current_kek(&self) -> &Kek {
        &self.all[&self.current]
    }

    pub(super) fn get(&self, version: u32) -> Result<&Kek, KeyError> {
        self.all
            .get(&version)
            .ok_or(KeyError::UnknownKekVersion(version))
    }
}

/// `sealed` (a key sealed under KEK `version`) as stored.
pub(super) fn frame(version: u32, sealed: Vec<u8>) -> Vec<u8> {
    if version == 0 {
        return sealed;
    }
    let mut out = Vec::with_capacity(5 + sealed.len());
    out.push(VERSIONED);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&sealed);
    out
}

/// The KEK version of a stored wrapped key and its sealed part.
pub(super) fn unframe(wrapped: &[u8]) -> Result<(u32, &[u8]), KeyError> {
    match wrapped.first() {
        Some(&VERSIONED) if wrapped.len() > 5 => {
            let v = u32::from_be_bytes(wrapped[1..5].try_into().expect("4 bytes"));
            Ok((v, &wrapped[5..]))
        }
        Some(_) => Ok((0, wrapped)),
        None => Err(KeyError::Open),
    }
}

/// What one page of the rewrap job did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Keys read (tombstones included).
    pub scanned: usize,
    /// Keys moved to the current version.
    pub rewrapped: usize,
    /// Every key is on the current version (as of this page).
    pub done: bool,
}

impl KeyRing {
    /// Rewraps up to `page` keys under the current KEK version, after the cursor the last
    /// page left in the key store. Data keys keep their bytes: nothing they sealed changes.
    pub fn rewrap_batch(&self, page: usize) -> Result<Rewrapped, KeyError> {
        let target = self.keks.current();
        let cursor = self
            .store
            .meta(CURSOR)?
            .and_then(|v| String::from_utf8(v).ok());
        // A cursor for another target version starts over: every key may need the new one.
        let after = cursor.as_deref().and_then(|c| {
            let (v, name) = c.split_once(':')?;
            (v.parse::<u32>().ok()? == target).then(|| name.to_owned())
        });
        if after.as_deref() == Some(DONE) {
            return Ok(Rewrapped {
                done: true,
                ..Rewrapped::default()
            });
        }
        let keys = self.store.scan(after.as_deref(), page.max(1))?;
        let mut out = Rewrapped {
            scanned: keys.len(),
            ..Rewrapped::default()
        };
        let mut swaps = Vec::new();
        for (id, wrapped) in &keys {
            if wrapped.is_empty() {
                continue;
            }
            let (version, _) = unframe(wrapped)?;
            if version == target {
                continue;
            }
            let mut raw = self.unwrap_raw(*id, wrapped)?;
            let new = self.wrap_raw(*id, &raw);
            zeroize::Zeroize::zeroize(&mut raw);
            swaps.push((*id, wrapped.clone(), new));
        }
        // One commit per page; a key changed meanwhile (destroyed, or rewrapped by another
        // job) is left as it is.
        if !swaps.is_empty() {
            out.rewrapped = self.store.replace_many(&swaps)?;
        }
        out.done = keys.len() < page.max(1);
        let next = match (out.done, keys.last()) {
            (true, _) | (false, None) => DONE.to_owned(),
            (false, Some((id, _))) => id.to_string(),
        };
        self.store
            .set_meta(CURSOR, format!("{target}:{next}").as_bytes())?;
        Ok(out)
    }

    /// How many live keys each KEK version wraps. A version absent here (and not current) is
    /// retired: its key file can be removed from the config.
    pub fn versions_in_use(&self) -> Result<BTreeMap<u32, usize>, KeyError> {
        let mut out = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let keys = self.store.scan(after.as_deref(), 10_000)?;
            for (_, w) in keys.iter().filter(|(_, w)| !w.is_empty()) {
                *out.entry(unframe(w)?.0).or_insert(0) += 1;
            }
            match keys.last() {
                Some((id, _)) if keys.len() == 10_000 => after = Some(id.to_string()),
                _ => return Ok(out),
            }
        }
    }
}
