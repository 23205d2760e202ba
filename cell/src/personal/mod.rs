//! A customer's personal data (issue 20): delivery addresses, phones and delivery notes are
//! sealed at rest under one data key per customer ([`KeyId::Customer`] in the cell's
//! [`KeyRing`], wrapped by the key-encryption key, kept in the key store apart from the data
//! store). Erasing a customer destroys that key, so every copy of their orders, backups
//! included, keeps only ciphertext nobody can open (crypto-shredding).
//!
//! Each field is its own AES-256-GCM ciphertext with associated data naming the cell, the
//! customer, the order and the field, so a ciphertext moved to another order, customer or
//! field does not open. Plaintext lives in a [`Contact`], wiped when dropped, and is never
//! logged (its `Debug` prints no field).
//!
//! Orders written before this change keep their plaintext `formatted` address and no sealed
//! fields: they are read as they are (legacy) and blanked when their customer is erased
//! (`erase`); nothing rewrites them otherwise.
//!
//! - `window`: what a driver sees of the address at each step of the delivery.
//! - `export` and `erase`: the customer's own copy of their data, and its erasure.
//! - `config`: `[privacy]`.

pub mod config;
pub mod erase;
pub mod export;
pub mod window;

#[cfg(test)]
mod tests;

pub use config::PrivacyConfig;

use crate::envelope::{KeyError, KeyId, KeyRing};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use domain::{Address, CustomerId, OrderId, SealedContact, UnixMs};
use std::sync::Arc;
use zeroize::Zeroize;

/// The personal fields of a delivery address, in plaintext: wiped when dropped.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// The street address as the customer wrote it.
    pub formatted: String,
    /// A phone number for the driver to call at the door.
    pub phone: Option<String>,
    /// Delivery notes ("ring twice, 3rd floor").
    pub notes: Option<String>,
}

impl Drop for Contact {
    fn drop(&mut self) {
        self.formatted.zeroize();
        self.phone.zeroize();
        self.notes.zeroize();
    }
}

impl std::fmt::Debug for Contact {
    /// Never the fields: a `Contact` in a log line or a panic message leaks nothing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contact { .. }")
    }
}

impl Contact {
    pub fn is_empty(&self) -> bool {
        self.formatted.is_empty() && self.phone.is_none() && self.notes.is_none()
    }
}

/// Why personal data could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum PersonalError {
    /// The customer was erased: their data key is gone and their ciphertext stays shut.
    #[error("key_destroyed: customer {0}'s data key was destroyed (the customer was erased)")]
    KeyDestroyed(CustomerId),
    /// Altered bytes, or a ciphertext moved from another record, customer or field.
    #[error("a sealed {field} of {record} did not open (moved or altered)")]
    Open { record: Record, field: &'static str },
    #[error(transparent)]
    Key(KeyError),
}

impl PersonalError {
    /// The stable code clients and logs see.
    pub fn code(&self) -> &'static str {
        match self {
            PersonalError::KeyDestroyed(_) => "key_destroyed",
            PersonalError::Open { .. } => "personal.unreadable",
            PersonalError::Key(_) => "personal.keys_unavailable",
        }
    }
}

/// Which record of a customer a sealed field belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// An order's delivery address.
    Order(OrderId),
    /// The customer's profile (its phone).
    Profile,
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Record::Order(o) => write!(f, "order {o}"),
            Record::Profile => f.write_str("profile"),
        }
    }
}

/// The associated data of one sealed field: where it belongs.
pub fn aad(cell: u16, customer: CustomerId, record: Record, field: &str) -> Vec<u8> {
    match record {
        Record::Order(o) => format!("pii/{cell}/{}/{}/{field}", customer.0, o.0),
        Record::Profile => format!("pii/{cell}/{}/profile/{field}", customer.0),
    }
    .into_bytes()
}

/// Seals and opens customers' personal fields with their data keys.
pub struct Vault {
    ring: Arc<KeyRing>,
}

impl Vault {
    pub fn new(ring: Arc<KeyRing>) -> Self {
        Self { ring }
    }

    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    fn key_error(customer: CustomerId, e: KeyError) -> PersonalError {
        match e {
            KeyError::Destroyed(_) => PersonalError::KeyDestroyed(customer),
            e => PersonalError::Key(e),
        }
    }

    /// One field sealed for `record` of `customer`, base64.
    pub fn seal_field(
        &self,
        customer: CustomerId,
        record: Record,
        field: &str,
        text: &str,
        now: UnixMs,
    ) -> Result<String, PersonalError> {
        let aad = aad(self.ring.cell(), customer, record, field);
        let sealed = self
            .ring
            .seal_at(KeyId::Customer(customer.0), &aad, text.as_bytes(), now)
            .map_err(|e| Self::key_error(customer, e))?;
        Ok(B64.encode(sealed))
    }

    /// One field of `record` opened (the caller zeroizes the plaintext or wraps it).
    pub fn open_field(
        &self,
        customer: CustomerId,
        record: Record,
        field: &'static str,
        sealed: &str,
        now: UnixMs,
    ) -> Result<String, PersonalError> {
        let bad = || PersonalError::Open { record, field };
        let bytes = B64.decode(sealed).map_err(|_| bad())?;
        let aad = aad(self.ring.cell(), customer, record, field);
        let mut plain = self
            .ring
            .open_at(KeyId::Customer(customer.0), &aad, &bytes, now)
            .map_err(|e| match e {
                KeyError::Open => bad(),
                e => Self::key_error(customer, e),
            })?;
        let text = String::from_utf8(std::mem::take(&mut plain)).map_err(|e| {
            e.into_bytes().zeroize();
            bad()
        });
        plain.zeroize();
        text
    }

    /// Makes sure `customer`'s key is cached, made if they have none, with the key store's
    /// I/O (a durable write for a new key) on the blocking pool rather than on the caller's
    /// async worker: a burst of first orders then shares the key store's commits instead of
    /// stalling the runtime one fsync at a time. [`Vault::seal`] right after does no I/O.
    pub async fn warm(&self, customer: CustomerId, now: UnixMs) -> Result<(), PersonalError> {
        let id = KeyId::Customer(customer.0);
        if self.ring.is_cached(id, now) {
            return Ok(());
        }
        let ring = self.ring.clone();
        tokio::task::spawn_blocking(move || ring.key_at(id, true, now).map(|_| ()))
            .await
            .map_err(|e| PersonalError::Key(crate::envelope::ks(e)))?
            .map_err(|e| Self::key_error(customer, e))
    }

    /// `contact` sealed for `order` of `customer` (the customer's key is made on first use;
    /// an erased customer's key is never made again).
    pub fn seal(
        &self,
        customer: CustomerId,
        order: OrderId,
        contact: &Contact,
        now: UnixMs,
    ) -> Result<SealedContact, PersonalError> {
        let field =
            |name: &str, v: &str| self.seal_field(customer, Record::Order(order), name, v, now);
        Ok(SealedContact {
            formatted: (!contact.formatted.is_empty())
                .then(|| field("formatted", &contact.formatted))
                .transpose()?,
            phone: contact
                .phone
                .as_deref()
                .map(|p| field("phone", p))
                .transpose()?,
            notes: contact
                .notes
                .as_deref()
                .map(|n| field("notes", n))
                .transpose()?,
        })
    }

    /// The personal fields of `order`'s address: opened when sealed, as stored when legacy
    /// plaintext.
    pub fn open(
        &self,
        customer: CustomerId,
        order: OrderId,
        address: &Address,
        now: UnixMs,
    ) -> Result<Contact, PersonalError> {
        let Some(s) = &address.sealed else {
            return Ok(Contact {
                formatted: address.formatted.clone(),
                phone: None,
                notes: None,
            });
        };
        let mut c = Contact::default();
        if let Some(f) = &s.formatted {
            c.formatted = self.open_field(customer, Record::Order(order), "formatted", f, now)?;
        }
        if let Some(p) = &s.phone {
            c.phone = Some(self.open_field(customer, Record::Order(order), "phone", p, now)?);
        }
        if let Some(n) = &s.notes {
            c.notes = Some(self.open_field(customer, Record::Order(order), "notes", n, now)?);
        }
        Ok(c)
    }

    /// Destroys the customer's data key: every field sealed under it stays shut from now on.
    pub fn destroy_key(&self, customer: CustomerId) -> Result<(), PersonalError> {
        self.ring
            .destroy(KeyId::Customer(customer.0))
            .map_err(PersonalError::Key)
    }

    /// Whether the customer's key was destroyed (they were erased).
    pub fn is_erased(&self, customer: CustomerId) -> Result<bool, PersonalError> {
        match self.ring.store().get(KeyId::Customer(customer.0)) {
            Ok(crate::envelope::Stored::Destroyed) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) => Err(PersonalError::Key(e)),
        }
    }
}

/// A vault over a key store in a directory kept for the rest of the test run (for tests of
/// other concerns that place orders).
#[cfg(test)]
pub(crate) fn test_vault() -> Arc<Vault> {
    let dir = tempfile::tempdir().expect("a temp dir").keep();
    let store =
        Arc::new(crate::envelope::RedbKeyStore::open(&dir.join("keys.redb")).expect("a key store"));
    let kek = crate::envelope::Kek::from_bytes(&[1; crate::envelope::KEY_LEN]);
    Arc::new(Vault::new(Arc::new(KeyRing::new(1, kek, store))))
}
