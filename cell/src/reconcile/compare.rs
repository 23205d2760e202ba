//! The comparison of one order's payment with the provider's record, pure: what drifted, and
//! whether the store can be repaired from the provider's side.
//!
//! Only one drift is repaired automatically: the provider charged (or released, or refunded)
//! and the order does not say so. The provider is the authority on money that moved, and
//! recording it changes nothing at the provider. Everything else is reported for a person:
//! an authorization the provider does not know, an amount that differs (which total is
//! right is not ours to guess), or an order that says more happened than the provider did.

use domain::{Order, PaymentState};
use payments::{AuthorizationStatus, PaymentRecord};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Kinds of drift. Names are stable: the metric label and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// The provider captured; the order does not record it. Repaired.
    CapturedNotRecorded,
    /// The provider voided or refunded; the order does not record it. Repaired.
    ReleasedNotRecorded,
    /// The order names an authorization the provider does not have. Reported.
    MissingAtProvider,
    /// The provider holds another amount than the order's total. Reported.
    AmountMismatch,
    /// The order records a step the provider never took. Reported.
    RecordedNotAtProvider,
}

impl DriftKind {
    pub const ALL: [DriftKind; 5] = [
        DriftKind::CapturedNotRecorded,
        DriftKind::ReleasedNotRecorded,
        DriftKind::MissingAtProvider,
        DriftKind::AmountMismatch,
        DriftKind::RecordedNotAtProvider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::CapturedNotRecorded => "captured_not_recorded",
            DriftKind::ReleasedNotRecorded => "released_not_recorded",
            DriftKind::MissingAtProvider => "missing_at_provider",
            DriftKind::AmountMismatch => "amount_mismatch",
            DriftKind::RecordedNotAtProvider => "recorded_not_at_provider",
        }
    }
}

/// One finding: its kind, and the payment state to record when it can be repaired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    pub kind: DriftKind,
    pub repair: Option<PaymentState>,
}

/// A payment a worker is still carrying out (queued for authorization, or a capture, void or
/// refund the payment worker has yet to perform): its record is about to change, so it is not
/// compared yet. A `failed` one waits for an operator, who sees it in the order already.
fn owned_by_a_worker(s: PaymentState) -> bool {
    s.is_pending() || matches!(s, PaymentState::AuthorizationPending | PaymentState::Failed)
}

/// The provider's status as our payment state.
fn as_state(s: AuthorizationStatus) -> PaymentState {
    match s {
        AuthorizationStatus::Authorized => PaymentState::Authorized,
        AuthorizationStatus::Captured => PaymentState::Captured,
        AuthorizationStatus::Voided => PaymentState::Voided,
        AuthorizationStatus::Refunded => PaymentState::Refunded,
    }
}

/// How far along a payment is: a later step implies the earlier ones happened.
fn rank(s: PaymentState) -> u8 {
    debug_assert!(!owned_by_a_worker(s), "compared only once settled: {s:?}");
    match s {
        // Never compared (see `owned_by_a_worker`); ranked with the step they come from.
        PaymentState::AuthorizationPending
        | PaymentState::Authorized
        | PaymentState::CapturePending
        | PaymentState::VoidPending
        | PaymentState::Failed => 0,
        PaymentState::RefundPending => 1,
        PaymentState::Captured | PaymentState::Voided => 1,
        PaymentState::Refunded => 2,
    }
}

/// Everything that drifted between `order` and the provider's `record` (`None`: the provider
/// has no such authorization).
pub fn compare(order: &Order, record: Option<&PaymentRecord>) -> Vec<Finding> {
    if owned_by_a_worker(order.payment_state) {
        return Vec::new();
    }
    let Some(rec) = record else {
        return vec![Finding {
            kind: DriftKind::MissingAtProvider,
            repair: None,
        }];
    };
    let mut out = Vec::new();
    if rec.authorized != order.total {
        out.push(Finding {
            kind: DriftKind::AmountMismatch,
            repair: None,
        });
    }
    let theirs = as_state(rec.status);
    let ours = order.payment_state;
    if theirs != ours {
        let ahead = rank(theirs) > rank(ours)
            // Captured then refunded is ahead of captured; voided is never followed by more.
            && !(ours == PaymentState::Voided);
        let kind = match (ahead, theirs) {
            (true, PaymentState::Captured) => DriftKind::CapturedNotRecorded,
            (true, _) => DriftKind::ReleasedNotRecorded,
            (false, _) => DriftKind::RecordedNotAtProvider,
        };
        out.push(Finding {
            kind,
            repair: ahead.then_some(theirs),
        });
    }
    out
}

/// The provider's figures, for the drift record.
pub fn provider_summary(rec: Option<&PaymentRecord>) -> Option<ProviderView> {
    rec.map(|r| ProviderView {
        status: r.status,
        authorized_cents: r.authorized.0,
        captured_cents: r.captured.0,
        refunded_cents: r.refunded.0,
    })
}

/// What the provider said, as stored with a drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProviderView {
    #[schema(value_type = String)]
    pub status: AuthorizationStatus,
    pub authorized_cents: i64,
    pub captured_cents: i64,
    pub refunded_cents: i64,
}

/// The order's side, as stored with a drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OrderView {
    #[schema(value_type = String)]
    pub payment_state: PaymentState,
    pub total_cents: i64,
    pub payment_ref: String,
}

impl OrderView {
    pub fn of(o: &Order) -> OrderView {
        OrderView {
            payment_state: o.payment_state,
            total_cents: o.total.0,
            payment_ref: o.payment_ref.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::Cents;

    fn order(state: PaymentState, total: i64) -> Order {
        let mut o = domain::testing::order(
            domain::OrderId(1),
            domain::CustomerId(1),
            domain::RestaurantId(1),
            domain::UnixMs(0),
        );
        o.payment_state = state;
        o.total = Cents(total);
        o
    }

    fn rec(status: AuthorizationStatus, authorized: i64) -> PaymentRecord {
        PaymentRecord {
            id: "pi_1".into(),
            status,
            currency: "usd".into(),
            authorized: Cents(authorized),
            captured: Cents::ZERO,
            refunded: Cents::ZERO,
            billing_country: None,
        }
    }

    fn kinds(f: &[Finding]) -> Vec<(DriftKind, Option<PaymentState>)> {
        f.iter().map(|f| (f.kind, f.repair)).collect()
    }

    #[test]
    fn each_kind_and_only_forward_drift_is_repaired() {
        use AuthorizationStatus as A;
        use PaymentState as P;
        assert_eq!(
            compare(&order(P::Authorized, 100), Some(&rec(A::Authorized, 100))),
            vec![]
        );
        assert_eq!(
            compare(&order(P::Refunded, 100), Some(&rec(A::Refunded, 100))),
            vec![]
        );
        assert_eq!(
            kinds(&compare(
                &order(P::Authorized, 100),
                Some(&rec(A::Captured, 100))
            )),
            [(DriftKind::CapturedNotRecorded, Some(P::Captured))]
        );
        assert_eq!(
            kinds(&compare(
                &order(P::Authorized, 100),
                Some(&rec(A::Voided, 100))
            )),
            [(DriftKind::ReleasedNotRecorded, Some(P::Voided))]
        );
        assert_eq!(
            kinds(&compare(
                &order(P::Captured, 100),
                Some(&rec(A::Refunded, 100))
            )),
            [(DriftKind::ReleasedNotRecorded, Some(P::Refunded))]
        );
        assert_eq!(
            kinds(&compare(
                &order(P::Captured, 100),
                Some(&rec(A::Authorized, 100))
            )),
            [(DriftKind::RecordedNotAtProvider, None)]
        );
        assert_eq!(
            kinds(&compare(
                &order(P::Voided, 100),
                Some(&rec(A::Refunded, 100))
            )),
            [(DriftKind::RecordedNotAtProvider, None)]
        );
        assert_eq!(
            kinds(&compare(&order(P::Authorized, 100), None)),
            [(DriftKind::MissingAtProvider, None)]
        );
        assert_eq!(
            kinds(&compare(
                &order(P::Authorized, 100),
                Some(&rec(A::Captured, 90))
            )),
            [
                (DriftKind::AmountMismatch, None),
                (DriftKind::CapturedNotRecorded, Some(P::Captured))
            ]
        );
    }
}
