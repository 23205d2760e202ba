//! The one error type of the crate.

/// What can go wrong with a payment call. The variants are sorted by what the caller should
/// do about them, not by where they came from: the same `Unavailable` comes from an open
/// circuit, an HTTP 503 or a refused connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum PaymentError {
    /// The provider answered and said no (card declined, insufficient funds, ...). Retrying
    /// with the same card will not help; the customer must act.
    #[error("payment declined ({code}): {message}")]
    Declined { code: String, message: String },
    /// No answer within the per-call timeout. The provider may or may not have acted, which
    /// is why every call carries an idempotency key: retrying with the same key is safe.
    #[error("payment provider timed out")]
    Timeout,
    /// The provider is down or overloaded (5xx, refused connection, rate limited), or our
    /// circuit breaker is open. Retry later with the same idempotency key.
    #[error("payment provider unavailable")]
    Unavailable,
    /// The request itself is wrong: bad parameters, an illegal state change (capturing a
    /// voided authorization), or an idempotency key reused with different parameters.
    #[error("invalid payment request: {0}")]
    Invalid(String),
    /// The provider answered something we do not understand, or rejected our credentials.
    /// Not retryable: a person has to look.
    #[error("payment provider error: {0}")]
    Provider(String),
}

impl PaymentError {
    /// Whether the same call (same idempotency key) may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            PaymentError::Timeout | PaymentError::Unavailable => true,
            PaymentError::Declined { .. }
            | PaymentError::Invalid(_)
            | PaymentError::Provider(_) => false,
        }
    }

    /// Whether this outcome says the provider is unhealthy, which is what the circuit
    /// breaker counts. A decline or a bad request is a healthy provider doing its job.
    pub fn is_provider_failure(&self) -> bool {
        match self {
            PaymentError::Timeout | PaymentError::Unavailable | PaymentError::Provider(_) => true,
            PaymentError::Declined { .. } | PaymentError::Invalid(_) => false,
        }
    }

    /// A short, stable label for metrics and logs.
    pub fn outcome(&self) -> &'static str {
        match self {
            PaymentError::Declined { .. } => "declined",
            PaymentError::Timeout => "timeout",
            PaymentError::Unavailable => "unavailable",
            PaymentError::Invalid(_) => "invalid",
            PaymentError::Provider(_) => "provider_error",
        }
    }
}

/// The crate's result type.
pub type Result<T, E = PaymentError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_timeouts_and_unavailability_are_retryable() {
        let declined = PaymentError::Declined {
            code: "card_declined".into(),
            message: "no".into(),
        };
        assert!(!declined.is_retryable());
        assert!(!PaymentError::Invalid("x".into()).is_retryable());
        assert!(!PaymentError::Provider("x".into()).is_retryable());
        assert!(PaymentError::Timeout.is_retryable());
        assert!(PaymentError::Unavailable.is_retryable());
    }

    #[test]
    fn declines_do_not_count_against_the_provider() {
        let declined = PaymentError::Declined {
            code: "insufficient_funds".into(),
            message: "no".into(),
        };
        assert!(!declined.is_provider_failure());
        assert!(!PaymentError::Invalid("x".into()).is_provider_failure());
        assert!(PaymentError::Provider("x".into()).is_provider_failure());
        assert!(PaymentError::Timeout.is_provider_failure());
    }
}
