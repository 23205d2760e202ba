//! [`SandboxGateway`]: a provider that behaves like Stripe's test mode, for the demo and for
//! tests. It keeps idempotency records and a state machine per authorization exactly like a
//! provider would, and counts every effect per authorization so tests (and the cell's payment
//! checker) can assert that a retried capture charged once.
//!
//! State: in memory ([`SandboxGateway::new`], for unit tests), or in the cell's store
//! ([`SandboxGateway::open`]): then every call is one store transaction and a restart loses
//! nothing — authorizations, idempotency records, per-authorization effect counts. A memory
//! mirror of the ledger answers [`SandboxGateway::ledger`]; the store is the truth.
//!
//! Fault modes ([`Faults`]): fail N % of calls, time out, be down for a period, decline
//! captures after authorization. From config at startup, at runtime via
//! [`SandboxGateway::set_faults`] (the cell's fault endpoint).
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
//!
//! Layout: `sandbox/ledger.rs` the provider rules as a pure function, `sandbox/faults.rs` the
//! fault modes, `sandbox/persist.rs` the store records.

mod faults;
mod ledger;
mod persist;

pub use faults::{FaultPatch, FaultState, Faults, Injected};
pub use ledger::{Effects, LedgerEntry, auth_id_for};
pub use persist::load_ledger;

use crate::config::SandboxConfig;
use crate::error::{PaymentError, Result};
use crate::gateway::{Authorization, AuthorizeRequest, BoxFuture, PaymentGateway};
use domain::Cents;
use ledger::{Fingerprint, Outcome, Stored, execute};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Kv;

pub const PM_VISA: &str = "pm_card_visa";
pub const PM_DECLINED: &str = "pm_card_chargeDeclined";
pub const PM_INSUFFICIENT_FUNDS: &str = "pm_card_chargeDeclinedInsufficientFunds";
pub const PM_TIMEOUT: &str = "pm_card_timeout";
pub const PM_FLAKY: &str = "pm_card_flaky";
/// Billed in the United Kingdom ([`billing_country`]).
pub const PM_BILLING_GB: &str = "pm_card_gb";

/// Counters over all calls (in memory: they restart with the process).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SandboxStats {
    /// Every call that reached the sandbox, replays and injected failures included.
    pub attempts: u64,
    /// Calls answered from an idempotency record.
    pub replays: u64,
    /// Failures injected by `pm_card_flaky`, an outage or a fault mode.
    pub injected_failures: u64,
    /// Declined calls (a declined authorization creates no ledger entry).
    pub declines: u64,
}

/// See the module doc.
pub struct SandboxGateway {
    timeout_card_delay: Duration,
    /// Where the state lives; `None` keeps it in `inner` only.
    store: Option<Arc<dyn Kv>>,
    // A std mutex: no `.await` while it is held, and every critical section is a few map
    // operations.
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for SandboxGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxGateway")
            .field("persistent", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// In creation order (load order after a restart), so the ledger lists them
    /// deterministically. With a store, a mirror of it.
    auths: Vec<LedgerEntry>,
    by_id: HashMap<String, usize>,
    /// Idempotency records of the memory-only sandbox (with a store they live there).
    idempotency: HashMap<String, Stored>,
    /// Keys on which `pm_card_flaky` already failed once.
    flaky_failed: HashSet<String>,
    outage: bool,
    faults: Faults,
    /// Calls seen, the seed of the fault roll.
    rolls: u64,
    stats: SandboxStats,
}

impl Default for SandboxGateway {
    fn default() -> Self {
        SandboxGateway::new(&SandboxConfig::default())
    }
}

impl SandboxGateway {
    /// A memory-only sandbox with the config's fault modes (`down_for_ms` counted from now).
    pub fn new(config: &SandboxConfig) -> Self {
        let gw = SandboxGateway {
            timeout_card_delay: Duration::from_millis(config.timeout_card_delay_ms),
            store: None,
            inner: Mutex::new(Inner::default()),
        };
        // Validated config: the patch cannot be refused.
        let _ = gw.set_faults(config.faults());
        gw
    }

    /// A sandbox whose `pm_card_timeout` answers after `delay`.
    pub fn with_timeout_card_delay(delay: Duration) -> Self {
        SandboxGateway {
            timeout_card_delay: delay,
            store: None,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A sandbox whose state lives in `kv` (the cell's scoped store), picking up every
    /// authorization a previous run left there.
    pub async fn open(config: &SandboxConfig, kv: Arc<dyn Kv>) -> Result<Self> {
        let entries = load_ledger(&*kv)
            .await
            .map_err(|e| PaymentError::Provider(format!("loading the sandbox ledger: {e}")))?;
        let mut gw = SandboxGateway::new(config);
        gw.store = Some(kv);
        {
            let mut inner = gw.lock();
            for e in entries {
                inner.mirror(e);
            }
        }
        Ok(gw)
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

    /// Changes the fault modes (missing fields unchanged) and answers the new state.
    pub fn set_faults(&self, patch: FaultPatch) -> std::result::Result<FaultState, String> {
        let now = crate::resilient::now();
        let mut inner = self.lock();
        inner.faults.patch(patch, now)?;
        Ok(inner.faults.state(now))
    }

    /// The fault modes now.
    pub fn faults(&self) -> FaultState {
        let now = crate::resilient::now();
        self.lock().faults.state(now)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock leaves plain maps behind, still consistent enough for a
        // test double; propagate the data rather than a second panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The common path of every call: outage and faults, slow card, idempotency, flaky
    /// card, effect.
    async fn call(&self, key: &str, request: Fingerprint) -> Result<Authorization> {
        let now = crate::resilient::now();
        let (delay, unanswered) = {
            let mut inner = self.lock();
            inner.stats.attempts += 1;
            inner.rolls += 1;
            let roll = crate::resilient::splitmix64(inner.rolls);
            let injected = if inner.outage {
                Some(Injected::Unavailable)
            } else {
                inner.faults.check(now, roll)
            };
            match injected {
                Some(Injected::Unavailable) => {
                    inner.stats.injected_failures += 1;
                    return Err(PaymentError::Unavailable);
                }
                Some(Injected::Timeout) => {
                    inner.stats.injected_failures += 1;
                    (self.timeout_card_delay, true)
                }
                None if inner.payment_method(&request) == Some(PM_TIMEOUT) => {
                    (self.timeout_card_delay, false)
                }
                None => (Duration::ZERO, false),
            }
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if unanswered {
            return Err(PaymentError::Timeout);
        }
        if key.is_empty() {
            return Err(PaymentError::Invalid("idempotency key is required".into()));
        }

        let decline_capture = {
            let mut inner = self.lock();
            if inner.payment_method(&request) == Some(PM_FLAKY)
                && !inner.idempotency.contains_key(key)
                && inner.flaky_failed.insert(key.to_string())
            {
                // Like a 5xx before the provider started executing: nothing stored, so the
                // retry with the same key runs for real.
                inner.stats.injected_failures += 1;
                return Err(PaymentError::Unavailable);
            }
            inner.faults.decline_after_authorize
        };
        let op = request.op();
        let outcome = match &self.store {
            Some(kv) => persist::call(&**kv, key, request, decline_capture).await?,
            None => {
                let mut inner = self.lock();
                let stored = inner.idempotency.get(key).cloned();
                let entry = match &stored {
                    Some(_) => None,
                    None => inner.entry_of(&request.auth_id(key)),
                };
                let outcome = execute(key, request, stored, entry, decline_capture);
                if let Outcome::Applied { stored, .. } = &outcome {
                    inner
                        .idempotency
                        .insert(key.to_string(), (**stored).clone());
                }
                outcome
            }
        };
        let mut inner = self.lock();
        match outcome {
            Outcome::Replay(result) => {
                inner.stats.replays += 1;
                result
            }
            Outcome::Mismatch(e) => Err(e),
            Outcome::Applied { stored, entry } => {
                if let Some(entry) = entry {
                    inner.mirror(entry);
                }
                if matches!(&stored.result, Err(PaymentError::Declined { .. })) {
                    inner.stats.declines += 1;
                }
                tracing::debug!(%op, key, ok = stored.result.is_ok(), "sandbox applied");
                stored.result
            }
        }
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

    fn entry_of(&self, auth_id: &str) -> Option<LedgerEntry> {
        self.by_id.get(auth_id).map(|&i| self.auths[i].clone())
    }

    /// Records `entry` unless a later version is already there (calls on one authorization
    /// may finish their store commits in one order and get here in another).
    fn mirror(&mut self, entry: LedgerEntry) {
        match self.by_id.get(&entry.id) {
            Some(&i) => {
                if self.auths[i].effects.total() < entry.effects.total() {
                    self.auths[i] = entry;
                }
            }
            None => {
                self.by_id.insert(entry.id.clone(), self.auths.len());
                self.auths.push(entry);
            }
        }
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
        let now = crate::resilient::now();
        let mut inner = self.lock();
        inner.stats.attempts += 1;
        inner.rolls += 1;
        let roll = crate::resilient::splitmix64(inner.rolls);
        // The fault modes apply to reads as to every call (a timeout answers as unavailable:
        // a read has nothing to leave half done). With a store the entries are its mirror.
        if inner.outage || inner.faults.check(now, roll).is_some() {
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

#[cfg(test)]
#[path = "sandbox_store_tests.rs"]
mod store_tests;
