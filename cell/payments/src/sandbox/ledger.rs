//! The sandbox's provider logic as a pure function: given the idempotency record and the
//! authorization a call touches, what it answers and what it writes. The gateway runs it on
//! memory or inside a store transaction ([`super::persist`]); either way the same rules apply.

use crate::error::{PaymentError, Result};
use crate::gateway::{Authorization, AuthorizationStatus, AuthorizeRequest, Op};
use domain::Cents;
use serde::{Deserialize, Serialize};

use super::{PM_DECLINED, PM_INSUFFICIENT_FUNDS};

/// How many times each effect was applied to one authorization. A replayed request does
/// not count: these are what the customer's bank would see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Effects {
    pub authorize: u32,
    pub capture: u32,
    pub void: u32,
    pub refund: u32,
}

impl Effects {
    /// Every effect counted: grows by one per applied call, so it orders versions of an entry.
    pub fn total(&self) -> u64 {
        u64::from(self.authorize)
            + u64::from(self.capture)
            + u64::from(self.void)
            + u64::from(self.refund)
    }
}

/// One authorization as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: String,
    pub payment_method_id: String,
    pub customer_ref: String,
    pub currency: String,
    pub authorized: Cents,
    pub captured: Cents,
    pub refunded: Cents,
    pub status: AuthorizationStatus,
    pub effects: Effects,
}

/// The first answer for an idempotency key and the parameters it was sent with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Stored {
    pub request: Fingerprint,
    pub result: Result<Authorization>,
}

/// The parameters of a call, compared on replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Fingerprint {
    Authorize(AuthorizeRequest),
    Capture { auth_id: String, amount: Cents },
    Void { auth_id: String },
    Refund { auth_id: String, amount: Cents },
}

impl Fingerprint {
    pub fn op(&self) -> Op {
        match self {
            Fingerprint::Authorize(_) => Op::Authorize,
            Fingerprint::Capture { .. } => Op::Capture,
            Fingerprint::Void { .. } => Op::Void,
            Fingerprint::Refund { .. } => Op::Refund,
        }
    }

    /// The authorization the call acts on: an existing one, or the one `authorize` creates
    /// (its id derives from the idempotency key, so no counter is shared between calls and
    /// a store needs no hot key).
    pub fn auth_id(&self, key: &str) -> String {
        match self {
            Fingerprint::Authorize(_) => auth_id_for(key),
            Fingerprint::Capture { auth_id, .. }
            | Fingerprint::Void { auth_id }
            | Fingerprint::Refund { auth_id, .. } => auth_id.clone(),
        }
    }
}

/// The provider id of the authorization created with idempotency key `key`: the key's
/// letters and digits kept, every other byte written as `_xx` (hex), so ids stay unique per key
/// and use only the characters Stripe ids use (they go into URL paths).
pub fn auth_id_for(key: &str) -> String {
    let mut id = String::from("pi_sandbox_");
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() {
            id.push(char::from(b));
        } else {
            id.push_str(&format!("_{b:02x}"));
        }
    }
    id
}

/// What a call does, decided from what the provider holds.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Answered from the idempotency record; nothing is written.
    Replay(Result<Authorization>),
    /// The key was used with other parameters; nothing is written (the original record stays
    /// authoritative).
    Mismatch(PaymentError),
    /// Performed: store the record (and the entry, when it changed).
    Applied {
        stored: Box<Stored>,
        entry: Option<LedgerEntry>,
    },
}

/// The provider's rules for one call. `decline_capture` is the fault mode "decline after
/// authorization": captures are refused as if the hold had expired.
pub(super) fn execute(
    key: &str,
    request: Fingerprint,
    stored: Option<Stored>,
    entry: Option<LedgerEntry>,
    decline_capture: bool,
) -> Outcome {
    if let Some(stored) = stored {
        if stored.request != request {
            return Outcome::Mismatch(PaymentError::Invalid(format!(
                "idempotency key {key:?} was used with different parameters"
            )));
        }
        return Outcome::Replay(stored.result);
    }
    let (result, entry) = match apply(key, &request, entry, decline_capture) {
        Ok((answer, entry)) => (Ok(answer), Some(entry)),
        Err(e) => (Err(e), None),
    };
    Outcome::Applied {
        stored: Box::new(Stored { request, result }),
        entry,
    }
}

fn apply(
    key: &str,
    request: &Fingerprint,
    entry: Option<LedgerEntry>,
    decline_capture: bool,
) -> Result<(Authorization, LedgerEntry)> {
    let existing = |entry: Option<LedgerEntry>, id: &str| {
        entry.ok_or_else(|| PaymentError::Invalid(format!("no such authorization: {id:?}")))
    };
    match request {
        Fingerprint::Authorize(req) => authorize(key, req),
        Fingerprint::Capture { auth_id, amount } => {
            let mut entry = existing(entry, auth_id)?;
            positive(*amount)?;
            if entry.status != AuthorizationStatus::Authorized {
                return Err(illegal("capture", &entry));
            }
            if decline_capture {
                return Err(PaymentError::Declined {
                    code: "authorization_expired".into(),
                    message: "The authorization can no longer be captured.".into(),
                });
            }
            if *amount > entry.authorized {
                return Err(PaymentError::Invalid(format!(
                    "capture amount {} exceeds authorized {}",
                    amount, entry.authorized
                )));
            }
            entry.captured = *amount;
            entry.status = AuthorizationStatus::Captured;
            entry.effects.capture += 1;
            Ok((answer(&entry, *amount), entry))
        }
        Fingerprint::Void { auth_id } => {
            let mut entry = existing(entry, auth_id)?;
            if entry.status != AuthorizationStatus::Authorized {
                return Err(illegal("void", &entry));
            }
            entry.status = AuthorizationStatus::Voided;
            entry.effects.void += 1;
            Ok((answer(&entry, entry.authorized), entry))
        }
        Fingerprint::Refund { auth_id, amount } => {
            let mut entry = existing(entry, auth_id)?;
            positive(*amount)?;
            if !matches!(
                entry.status,
                AuthorizationStatus::Captured | AuthorizationStatus::Refunded
            ) {
                return Err(illegal("refund", &entry));
            }
            let refundable = entry.captured - entry.refunded;
            if *amount > refundable {
                return Err(PaymentError::Invalid(format!(
                    "refund amount {amount} exceeds refundable {refundable}"
                )));
            }
            entry.refunded += *amount;
            entry.status = AuthorizationStatus::Refunded;
            entry.effects.refund += 1;
            Ok((answer(&entry, *amount), entry))
        }
    }
}

fn authorize(key: &str, req: &AuthorizeRequest) -> Result<(Authorization, LedgerEntry)> {
    positive(req.amount)?;
    if req.currency.len() != 3 || !req.currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(PaymentError::Invalid(format!(
            "currency {:?} is not a lower-case ISO 4217 code",
            req.currency
        )));
    }
    let pm = req.payment_method_id.as_str();
    if !pm.starts_with("pm_") {
        return Err(PaymentError::Invalid(format!(
            "no such payment method: {pm:?}"
        )));
    }
    let decline = match pm {
        PM_DECLINED => Some(("card_declined", "Your card was declined.")),
        PM_INSUFFICIENT_FUNDS => Some(("insufficient_funds", "Your card has insufficient funds.")),
        _ => None,
    };
    if let Some((code, message)) = decline {
        return Err(PaymentError::Declined {
            code: code.into(),
            message: message.into(),
        });
    }
    let entry = LedgerEntry {
        id: auth_id_for(key),
        payment_method_id: req.payment_method_id.clone(),
        customer_ref: req.customer_ref.clone(),
        currency: req.currency.clone(),
        authorized: req.amount,
        captured: Cents::ZERO,
        refunded: Cents::ZERO,
        status: AuthorizationStatus::Authorized,
        effects: Effects {
            authorize: 1,
            ..Effects::default()
        },
    };
    Ok((answer(&entry, req.amount), entry))
}

fn positive(amount: Cents) -> Result<()> {
    if amount <= Cents::ZERO {
        return Err(PaymentError::Invalid(format!(
            "amount {amount} must be positive"
        )));
    }
    Ok(())
}

fn illegal(what: &str, entry: &LedgerEntry) -> PaymentError {
    PaymentError::Invalid(format!(
        "cannot {what} authorization {} in status {:?}",
        entry.id, entry.status
    ))
}

fn answer(entry: &LedgerEntry, amount: Cents) -> Authorization {
    Authorization {
        id: entry.id.clone(),
        amount,
        status: entry.status,
    }
}
