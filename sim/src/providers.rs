//! Simulated providers, answering at once (no real waiting): a payment provider behind the
//! cell's [`PaymentGateway`] trait that honours idempotency keys as Stripe's test mode does
//! and keeps a ledger per order, and a push provider that dedupes by key. Their faults are
//! drawn from their own seeded streams; the ledgers are what the checkers read.

use crate::faults::{FaultCounters, FaultKind};
use cell::notify::{Notification, PushError, PushProvider, Recipient};
use domain::{Cents, EventKind, OrderId};
use payments::{
    Authorization, AuthorizationStatus, AuthorizeRequest, BoxFuture, PaymentError, PaymentGateway,
    PaymentRecord,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The order an idempotency key `order-<id>-<op>` speaks for.
fn order_of_key(key: &str) -> Option<OrderId> {
    key.strip_prefix("order-")?
        .split('-')
        .next()?
        .parse()
        .ok()
        .map(OrderId)
}

/// Payment fault switches and their probabilities (per call).
#[derive(Debug, Clone, Copy, Default)]
pub struct PayFaults {
    pub outage: bool,
    pub decline: f64,
    pub timeout_not_applied: f64,
    pub timeout_applied: f64,
}

/// What the provider did for one order's authorization.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PayLedger {
    pub auth_id: String,
    pub authorized: i64,
    pub captured: i64,
    pub voided: i64,
    pub refunded: i64,
    /// Capture effects applied (a second one is a double charge).
    pub captures: u32,
    pub status: Option<AuthorizationStatus>,
}

#[derive(Debug)]
struct PayState {
    rng: ChaCha8Rng,
    faults: PayFaults,
    /// Idempotency key → (request fingerprint, first answer).
    keys: BTreeMap<String, (String, Result<Authorization, PaymentError>)>,
    auths: BTreeMap<String, OrderId>,
    ledger: BTreeMap<OrderId, PayLedger>,
    next: u64,
    fired: FaultCounters,
}

/// The simulated payment provider.
#[derive(Debug)]
pub struct SimPayments {
    st: Mutex<PayState>,
}

/// One call, as the provider sees it.
enum Call<'a> {
    Authorize(&'a AuthorizeRequest),
    Capture(&'a str, Cents),
    Void(&'a str),
    Refund(&'a str, Cents),
}

impl SimPayments {
    pub fn new(rng: ChaCha8Rng) -> Self {
        Self {
            st: Mutex::new(PayState {
                rng,
                faults: PayFaults::default(),
                keys: BTreeMap::new(),
                auths: BTreeMap::new(),
                ledger: BTreeMap::new(),
                next: 1,
                fired: FaultCounters::default(),
            }),
        }
    }

    pub fn set_faults(&self, f: PayFaults) {
        lock(&self.st).faults = f;
    }

    pub fn ledger(&self) -> BTreeMap<OrderId, PayLedger> {
        lock(&self.st).ledger.clone()
    }

    pub fn ledger_of(&self, o: OrderId) -> Option<PayLedger> {
        lock(&self.st).ledger.get(&o).cloned()
    }

    pub fn fired(&self) -> FaultCounters {
        lock(&self.st).fired.clone()
    }

    fn call(&self, key: &str, call: Call<'_>) -> Result<Authorization, PaymentError> {
        let mut st = lock(&self.st);
        let f = st.faults;
        if f.outage {
            st.fired.hit(FaultKind::PaymentOutage);
            return Err(PaymentError::Unavailable);
        }
        if f.timeout_not_applied > 0.0 && st.rng.random_bool(f.timeout_not_applied) {
            st.fired.hit(FaultKind::PaymentTimeoutNotApplied);
            return Err(PaymentError::Timeout);
        }
        let fingerprint = match &call {
            Call::Authorize(r) => format!("auth:{}:{}", r.amount.0, r.payment_method_id),
            Call::Capture(a, c) => format!("capture:{a}:{}", c.0),
            Call::Void(a) => format!("void:{a}"),
            Call::Refund(a, c) => format!("refund:{a}:{}", c.0),
        };
        let answer = match st.keys.get(key) {
            Some((fp, _)) if *fp != fingerprint => Err(PaymentError::Invalid(format!(
                "idempotency key {key} reused with different parameters"
            ))),
            Some((_, first)) => first.clone(),
            None => {
                let a = st.apply(key, call);
                // Declines are recorded too: a retry with the key gets the same decline.
                if !matches!(a, Err(PaymentError::Invalid(_))) {
                    st.keys.insert(key.to_owned(), (fingerprint, a.clone()));
                }
                a
            }
        };
        if f.timeout_applied > 0.0 && st.rng.random_bool(f.timeout_applied) {
            st.fired.hit(FaultKind::PaymentTimeoutApplied);
            return Err(PaymentError::Timeout);
        }
        answer
    }
}

impl PayState {
    fn decline(&mut self, op: &str) -> Option<PaymentError> {
        let p = self.faults.decline;
        if p > 0.0 && self.rng.random_bool(p) {
            self.fired.hit(FaultKind::PaymentDecline);
            return Some(PaymentError::Declined {
                code: "card_declined".into(),
                message: format!("simulated decline of a {op}"),
            });
        }
        None
    }

    fn apply(&mut self, key: &str, call: Call<'_>) -> Result<Authorization, PaymentError> {
        let invalid = |m: &str| Err(PaymentError::Invalid(m.to_owned()));
        match call {
            Call::Authorize(req) => {
                if let Some(e) = self.decline("authorization") {
                    return Err(e);
                }
                let id = format!("pi_sim_{}", self.next);
                self.next += 1;
                let order = order_of_key(key).unwrap_or(OrderId(0));
                self.auths.insert(id.clone(), order);
                let l = self.ledger.entry(order).or_default();
                l.auth_id = id.clone();
                l.authorized += req.amount.0;
                l.status = Some(AuthorizationStatus::Authorized);
                Ok(Authorization {
                    id,
                    amount: req.amount,
                    status: AuthorizationStatus::Authorized,
                })
            }
            Call::Capture(auth, amount) => {
                let Some(order) = self.auths.get(auth).copied() else {
                    return invalid("no such authorization");
                };
                let status = self.ledger.get(&order).and_then(|l| l.status);
                if matches!(
                    status,
                    Some(AuthorizationStatus::Voided | AuthorizationStatus::Refunded)
                ) {
                    return invalid("authorization is not capturable");
                }
                if let Some(e) = self.decline("capture") {
                    return Err(e);
                }
                // Multi-capture: a second capture under a new key charges again, so a missing
                // key shows as a double charge in the ledger.
                let l = self.ledger.entry(order).or_default();
                l.captured += amount.0;
                l.captures += 1;
                l.status = Some(AuthorizationStatus::Captured);
                Ok(Authorization {
                    id: auth.to_owned(),
                    amount,
                    status: AuthorizationStatus::Captured,
                })
            }
            Call::Void(auth) => {
                let Some(order) = self.auths.get(auth).copied() else {
                    return invalid("no such authorization");
                };
                let l = self.ledger.entry(order).or_default();
                if l.status != Some(AuthorizationStatus::Authorized) {
                    return invalid("only an uncaptured authorization can be voided");
                }
                l.voided = l.authorized - l.captured;
                l.status = Some(AuthorizationStatus::Voided);
                Ok(Authorization {
                    id: auth.to_owned(),
                    amount: Cents(l.voided),
                    status: AuthorizationStatus::Voided,
                })
            }
            Call::Refund(auth, amount) => {
                let Some(order) = self.auths.get(auth).copied() else {
                    return invalid("no such authorization");
                };
                let l = self.ledger.entry(order).or_default();
                if l.status != Some(AuthorizationStatus::Captured) {
                    return invalid("only a captured authorization can be refunded");
                }
                let give = amount.0.min(l.captured - l.refunded);
                l.refunded += give;
                l.status = Some(AuthorizationStatus::Refunded);
                Ok(Authorization {
                    id: auth.to_owned(),
                    amount: Cents(give),
                    status: AuthorizationStatus::Refunded,
                })
            }
        }
    }
}

impl PaymentGateway for SimPayments {
    fn authorize<'a>(
        &'a self,
        req: &'a AuthorizeRequest,
    ) -> BoxFuture<'a, payments::Result<Authorization>> {
        let r = self.call(&req.idempotency_key, Call::Authorize(req));
        Box::pin(async move { r })
    }

    fn capture<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, payments::Result<Authorization>> {
        let r = self.call(idempotency_key, Call::Capture(auth_id, amount));
        Box::pin(async move { r })
    }

    fn void<'a>(
        &'a self,
        auth_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, payments::Result<Authorization>> {
        let r = self.call(idempotency_key, Call::Void(auth_id));
        Box::pin(async move { r })
    }

    fn refund<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, payments::Result<Authorization>> {
        let r = self.call(idempotency_key, Call::Refund(auth_id, amount));
        Box::pin(async move { r })
    }

    fn retrieve<'a>(
        &'a self,
        auth_id: &'a str,
    ) -> BoxFuture<'a, payments::Result<Option<PaymentRecord>>> {
        let st = lock(&self.st);
        let r = if st.faults.outage {
            Err(PaymentError::Unavailable)
        } else {
            Ok(st
                .auths
                .get(auth_id)
                .and_then(|o| st.ledger.get(o))
                .map(|l| PaymentRecord {
                    id: l.auth_id.clone(),
                    status: l.status.unwrap_or(AuthorizationStatus::Authorized),
                    currency: "eur".into(),
                    authorized: Cents(l.authorized),
                    captured: Cents(l.captured),
                    refunded: Cents(l.refunded),
                    billing_country: None,
                }))
        };
        drop(st);
        Box::pin(async move { r })
    }
}

/// One notification the receiver showed (the first send of its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub key: String,
    pub order: OrderId,
    pub kind: EventKind,
    pub recipient: Recipient,
}

#[derive(Debug)]
struct PushState {
    rng: ChaCha8Rng,
    fail: f64,
    sends: BTreeMap<String, u32>,
    shown: Vec<Shown>,
    /// Shown since the world last took them (the apps' inboxes).
    inbox: Vec<Shown>,
    fired: u64,
}

/// The simulated push provider: dedupes by idempotency key, as the real receivers do.
#[derive(Debug)]
pub struct SimPush {
    st: Mutex<PushState>,
}

impl SimPush {
    pub fn new(rng: ChaCha8Rng) -> Self {
        Self {
            st: Mutex::new(PushState {
                rng,
                fail: 0.0,
                sends: BTreeMap::new(),
                shown: Vec::new(),
                inbox: Vec::new(),
                fired: 0,
            }),
        }
    }

    pub fn set_failure(&self, p: f64) {
        lock(&self.st).fail = p;
    }

    /// Notifications shown since the last call.
    pub fn take_inbox(&self) -> Vec<Shown> {
        std::mem::take(&mut lock(&self.st).inbox)
    }

    pub fn shown(&self) -> Vec<Shown> {
        lock(&self.st).shown.clone()
    }

    pub fn fired(&self) -> u64 {
        lock(&self.st).fired
    }
}

impl PushProvider for SimPush {
    fn send<'a>(&'a self, n: &'a Notification) -> BoxFuture<'a, Result<(), PushError>> {
        let mut st = lock(&self.st);
        let fail = st.fail;
        let r = if fail > 0.0 && st.rng.random_bool(fail) {
            st.fired += 1;
            Err(PushError::Unavailable)
        } else {
            let count = st.sends.entry(n.idempotency_key.clone()).or_default();
            *count += 1;
            if *count == 1 {
                let s = Shown {
                    key: n.idempotency_key.clone(),
                    order: n.order_id,
                    kind: n.kind,
                    recipient: n.recipient,
                };
                st.shown.push(s.clone());
                st.inbox.push(s);
            }
            Ok(())
        };
        drop(st);
        Box::pin(async move { r })
    }

    fn name(&self) -> &'static str {
        "sim"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn req(order: u64) -> AuthorizeRequest {
        AuthorizeRequest {
            amount: Cents(1_000),
            currency: "eur".into(),
            payment_method_id: "pm_card_visa".into(),
            customer_ref: "1".into(),
            idempotency_key: format!("order-{order}-authorize"),
        }
    }

    #[test]
    fn a_key_replays_its_first_answer_and_a_new_key_charges_again() {
        let p = SimPayments::new(ChaCha8Rng::seed_from_u64(1));
        let a = p
            .call("order-7-authorize", Call::Authorize(&req(7)))
            .unwrap();
        let again = p
            .call("order-7-authorize", Call::Authorize(&req(7)))
            .unwrap();
        assert_eq!(a, again);
        p.call("order-7-capture", Call::Capture(&a.id, Cents(1_000)))
            .unwrap();
        p.call("order-7-capture", Call::Capture(&a.id, Cents(1_000)))
            .unwrap();
        assert_eq!(p.ledger_of(OrderId(7)).unwrap().captures, 1);
        p.call("other", Call::Capture(&a.id, Cents(1_000))).unwrap();
        let l = p.ledger_of(OrderId(7)).unwrap();
        assert_eq!((l.captures, l.captured, l.authorized), (2, 2_000, 1_000));
    }

    #[test]
    fn a_timeout_after_the_effect_still_applies_it() {
        let p = SimPayments::new(ChaCha8Rng::seed_from_u64(1));
        p.set_faults(PayFaults {
            timeout_applied: 1.0,
            ..PayFaults::default()
        });
        assert_eq!(
            p.call("order-9-authorize", Call::Authorize(&req(9))),
            Err(PaymentError::Timeout)
        );
        assert_eq!(p.ledger_of(OrderId(9)).unwrap().authorized, 1_000);
        assert_eq!(p.fired().get(FaultKind::PaymentTimeoutApplied), 1);
    }
}
