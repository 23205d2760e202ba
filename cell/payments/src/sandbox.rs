//! [`SandboxGateway`]: an in-memory provider that behaves like Stripe's test mode, for the
//! demo and for tests. It keeps idempotency records and a state machine per authorization
//! exactly like a provider would, and counts every effect so tests can assert that a
//! retried capture charged once.
//!
//! Magic payment method ids:
//! - `pm_card_visa`, and any other `pm_...` not listed here: succeeds.
//! - `pm_card_chargeDeclined`: declined, code `card_declined`.
//! - `pm_card_chargeDeclinedInsufficientFunds`: declined, code `insufficient_funds`.
//! - `pm_card_timeout`: every call on it answers only after the configured delay (longer
//!   than the wrapper's timeout by default).
//! - `pm_card_flaky`: every call on it fails once as `Unavailable` (a 5xx) for each new
//!   idempotency key, then succeeds: exercises retries.
//! - `pm_card_gb`: succeeds, with a billing address in the United Kingdom (every other card's
//!   is in the United States): the fraud scorer's billing-country rule flags it in a US cell.
//! - anything not starting with `pm_`: `Invalid`.

use crate::config::SandboxConfig;
use crate::error::{PaymentError, Result};
use crate::gateway::{
    Authorization, AuthorizationStatus, AuthorizeRequest, BoxFuture, Op, PaymentGateway,
};
use domain::Cents;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

pub const PM_VISA: &str = "pm_card_visa";
pub const PM_DECLINED: &str = "pm_card_chargeDeclined";
pub const PM_INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";
pub const PM_TIMEOUT: &str = "pm_card_timeout";
pub const PM_FLAKY: &str = "pm_card_flaky";
/// Billed in the United Kingdom ([`billing_country`]).
pub const PM_BILLING_GB: &str = "pm_card_gb";

/// How many times each effect was applied to one authorization. A replayed request does
/// not count: these are what the customer's bank would see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Effects {
    pub authorize: u32,
    pub capture: u32,
    pub void: u32,
    pub refund: u32,
}

/// One authorization as the provider sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// Counters over all calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// Every call that reached the sandbox, replays and injected failures included.
    pub attempts: u64,
    /// Calls answered from an idempotency record.
    pub replays: u64,
    /// Failures injected by `pm_card_flaky` or an outage.
    pub injected_failures: u64,
    /// Declined authorizations (they create no ledger entry).
    pub declines: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct SandboxGateway {
    timeout_card_delay: Duration,
    // A std mutex: no `.await` while it is held, and every critical section is a few map
    // operations.
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// In creation order, so the ledger lists them deterministically.
    auths: Vec<LedgerEntry>,
    by_id: HashMap<String, usize>,
    idempotency: HashMap<String, Stored>,
    /// Keys on which `pm_card_flaky` already failed once.
    flaky_failed: HashSet<String>,
    outage: bool,
    stats: SandboxStats,
}

/// The first answer for an idempotency key and the parameters it was sent with.
#[derive(Debug, Clone)]
struct Stored {
    request: Fingerprint,
    result: Result<Authorization>,
}

/// The parameters of a call, compared on replay.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Fingerprint {
    Authorize(AuthorizeRequest),
    Capture { auth_id: String, amount: Cents },
    Void { auth_id: String },
    Refund { auth_id: String, amount: Cents },
}

impl Fingerprint {
    fn op(&self) -> Op {
        match self {
            Fingerprint::Authorize(_) => Op::Authorize,
            Fingerprint::Capture { .. } => Op::Capture,
            Fingerprint::Void { .. } => Op::Void,
            Fingerprint::Refund { .. } => Op::Refund,
        }
    }
}

impl Default for SandboxGateway {
    fn default() -> Self {
        SandboxGateway::new(&SandboxConfig::default())
    }
}

impl SandboxGateway {
    pub fn new(config: &SandboxConfig) -> Self {
        SandboxGateway {
            timeout_card_delay: Duration::from_millis(config.timeout_card_delay_ms),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A sandbox whose `pm_card_timeout` answers after `delay`.
    pub fn with_timeout_card_delay(delay: Duration) -> Self {
        SandboxGateway {
            timeout_card_delay: delay,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Every authorization, in creation order.
    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.lock().auths.clone()
    }

    /// One authorization by provider id.
    pub fn entry(&self, auth_id: &str) -> Option<LedgerEntry> {
        let inner = self.lock();
        inner.by_id.get(auth_id).map(|&i| inner.auths[i].clone())
    }

    pub fn stats(&self) -> SandboxStats {
        self.lock().stats
    }

    /// While on, every call fails with `Unavailable` before doing anything, like a provider
    /// outage. For circuit-breaker tests and demos.
    pub fn set_outage(&self, on: bool) {
        self.lock().outage = on;
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock leaves plain maps behind, still consistent enough for a
        // test double; propagate the data rather than a second panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The common path of every call: outage, slow card, idempotency, flaky card, effect.
    async fn call(&self, key: &str, request: Fingerprint) -> Result<Authorization> {
        let delay = {
            let mut inner = self.lock();
            inner.stats.attempts += 1;
            if inner.outage {
                inner.stats.injected_failures += 1;
                return Err(PaymentError::Unavailable);
            }
            if inner.payment_method(&request) == Some(PM_TIMEOUT) {
                self.timeout_card_delay
            } else {
                Duration::ZERO
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }

        let mut inner = self.lock();
        if key.is_empty() {
            return Err(PaymentError::Invalid("idempotency key is required".into()));
        }
        if let Some(stored) = inner.idempotency.get(key) {
            if stored.request != request {
                // Not stored: the original record stays authoritative.
                return Err(PaymentError::Invalid(format!(
                    "idempotency key {key:?} was used with different parameters"
                )));
            }
            let result = stored.result.clone();
            inner.stats.replays += 1;
            return result;
        }
        if inner.payment_method(&request) == Some(PM_FLAKY)
            && inner.flaky_failed.insert(key.to_string())
        {
            // Like a 5xx before the provider started executing: nothing stored, so the
            // retry with the same key runs for real.
            inner.stats.injected_failures += 1;
            return Err(PaymentError::Unavailable);
        }
        let result = inner.apply(&request);
        if matches!(&result, Err(PaymentError::Declined { .. })) {
            inner.stats.declines += 1;
        }
        tracing::debug!(op = %request.op(), key, ok = result.is_ok(), "sandbox applied");
        inner.idempotency.insert(
            key.to_string(),
            Stored {
                request,
                result: result.clone(),
            },
        );
        result
    }
}

impl Inner {
    /// The payment method behind a call: the request's, or the authorization's.
    fn payment_method<'a>(&'a self, request: &'a Fingerprint) -> Option<&'a str> {
        match request {
            Fingerprint::Authorize(req) => Some(&req.payment_method_id),
            Fingerprint::Capture { auth_id, .. }
            | Fingerprint::Void { auth_id }
            | Fingerprint::Refund { auth_id, .. } => self
                .by_id
                .get(auth_id)
                .map(|&i| self.auths[i].payment_method_id.as_str()),
        }
    }

    fn apply(&mut self, request: &Fingerprint) -> Result<Authorization> {
        match request {
            Fingerprint::Authorize(req) => self.authorize(req),
            Fingerprint::Capture { auth_id, amount } => {
                let entry = self.entry_mut(auth_id)?;
                positive(*amount)?;
                if entry.status != AuthorizationStatus::Authorized {
                    return Err(illegal("capture", entry));
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
                Ok(answer(entry, *amount))
            }
            Fingerprint::Void { auth_id } => {
                let entry = self.entry_mut(auth_id)?;
                if entry.status != AuthorizationStatus::Authorized {
                    return Err(illegal("void", entry));
                }
                entry.status = AuthorizationStatus::Voided;
                entry.effects.void += 1;
                Ok(answer(entry, entry.authorized))
            }
            Fingerprint::Refund { auth_id, amount } => {
                let entry = self.entry_mut(auth_id)?;
                positive(*amount)?;
                if !matches!(
                    entry.status,
                    AuthorizationStatus::Captured | AuthorizationStatus::Refunded
                ) {
                    return Err(illegal("refund", entry));
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
                Ok(answer(entry, *amount))
            }
        }
    }

    fn authorize(&mut self, req: &AuthorizeRequest) -> Result<Authorization> {
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
            PM_INSUFFICIENT_FUNDS => {
                Some(("insufficient_funds", "Your card has insufficient funds."))
            }
            _ => None,
        };
        if let Some((code, message)) = decline {
            return Err(PaymentError::Declined {
                code: code.into(),
                message: message.into(),
            });
        }
        let index = self.auths.len();
        let id = format!("pi_sandbox_{}", index + 1);
        self.auths.push(LedgerEntry {
            id: id.clone(),
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
        });
        self.by_id.insert(id, index);
        Ok(answer(&self.auths[index], req.amount))
    }

    fn entry_mut(&mut self, auth_id: &str) -> Result<&mut LedgerEntry> {
        match self.by_id.get(auth_id) {
            Some(&i) => Ok(&mut self.auths[i]),
            None => Err(PaymentError::Invalid(format!(
                "no such authorization: {auth_id:?}"
            ))),
        }
    }
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

impl PaymentGateway for SandboxGateway {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.call(&req.idempotency_key, Fingerprint::Authorize(req.clone())))
    }

    fn capture<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        let request = Fingerprint::Capture {
            auth_id: auth_id.to_string(),
            amount,
        };
        Box::pin(self.call(idempotency_key, request))
    }

    fn void<'a>(
        &'a self,
        auth_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        let request = Fingerprint::Void {
            auth_id: auth_id.to_string(),
        };
        Box::pin(self.call(idempotency_key, request))
    }

    fn refund<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        let request = Fingerprint::Refund {
            auth_id: auth_id.to_string(),
            amount,
        };
        Box::pin(self.call(idempotency_key, request))
    }

    fn retrieve<'a>(
        &'a self,
        auth_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<crate::gateway::PaymentRecord>>> {
        Box::pin(async move { self.retrieve_entry(auth_id) })
    }
}

// `retrieve`: a read of the ledger entry, kept in one block. An outage fails reads too (a
// provider that is down answers nothing); the slow and flaky cards do not apply (they model
// effects, and a read has none).
impl SandboxGateway {
    fn retrieve_entry(&self, auth_id: &str) -> Result<Option<crate::gateway::PaymentRecord>> {
        let mut inner = self.lock();
        inner.stats.attempts += 1;
        if inner.outage {
            inner.stats.injected_failures += 1;
            return Err(PaymentError::Unavailable);
        }
        Ok(inner.by_id.get(auth_id).map(|&i| &inner.auths[i]).map(|e| {
            crate::gateway::PaymentRecord {
                id: e.id.clone(),
                status: e.status,
                currency: e.currency.clone(),
                authorized: e.authorized,
                captured: e.captured,
                refunded: e.refunded,
                billing_country: Some(billing_country(&e.payment_method_id).to_string()),
            }
        }))
    }
}

/// The billing country of a magic payment method: `GB` for [`PM_BILLING_GB`], `US` otherwise.
pub fn billing_country(payment_method_id: &str) -> &'static str {
    if payment_method_id == PM_BILLING_GB {
        "GB"
    } else {
        "US"
    }
}

#[cfg(test)]
#[path = "sandbox_tests.rs"]
mod tests;
