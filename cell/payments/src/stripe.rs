//! [`StripeGateway`]: a client for a Stripe-style REST API over reqwest.
//!
//! | operation | request |
//! |---|---|
//! | authorize | `POST /v1/payment_intents` amount, currency, payment_method, customer, `capture_method=manual`, `confirm=true` |
//! | capture | `POST /v1/payment_intents/{id}/capture` amount_to_capture |
//! | void | `POST /v1/payment_intents/{id}/cancel` |
//! | refund | `POST /v1/refunds` payment_intent, amount |
//! | retrieve | `GET /v1/payment_intents/{id}?expand[]=payment_method` (404: no such intent) |
//!
//! Bodies are form-encoded, the secret key goes as a bearer token, and every request carries
//! an `Idempotency-Key` header. One attempt per call: retries live in
//! [`ResilientGateway`](crate::ResilientGateway).

use crate::config::StripeConfig;
use crate::error::{PaymentError, Result};
use crate::gateway::{
    Authorization, AuthorizationStatus, AuthorizeRequest, BoxFuture, PaymentGateway, PaymentRecord,
};
use domain::Cents;
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// See the module doc.
#[derive(Clone)]
pub struct StripeGateway {
    client: reqwest::Client,
    /// Without a trailing slash, so paths join with `format!`.
    base_url: String,
    secret_key: String,
}

impl std::fmt::Debug for StripeGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeGateway")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The parts of a PaymentIntent we read. Unknown fields are ignored: the provider adds
/// fields over time.
#[derive(Debug, Deserialize)]
struct PaymentIntent {
    id: String,
    amount: i64,
    #[serde(default)]
    amount_received: i64,
    status: String,
}

/// A PaymentIntent as `GET` returns it, with its payment method expanded.
#[derive(Debug, Deserialize)]
struct RetrievedIntent {
    id: String,
    amount: i64,
    #[serde(default)]
    amount_received: i64,
    #[serde(default)]
    currency: String,
    status: String,
    /// Stripe keeps refunds on the latest charge; `amount_refunded` is its total.
    #[serde(default)]
    latest_charge: Option<Charge>,
    #[serde(default)]
    payment_method: Option<PaymentMethod>,
}

#[derive(Debug, Default, Deserialize)]
struct Charge {
    #[serde(default)]
    amount_refunded: i64,
}

#[derive(Debug, Default, Deserialize)]
struct PaymentMethod {
    #[serde(default)]
    billing_details: BillingDetails,
}

#[derive(Debug, Default, Deserialize)]
struct BillingDetails {
    #[serde(default)]
    address: Option<BillingAddress>,
}

#[derive(Debug, Default, Deserialize)]
struct BillingAddress {
    #[serde(default)]
    country: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Refund {
    amount: i64,
    #[serde(default)]
    status: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetail {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl StripeGateway {
    pub fn new(config: &StripeConfig) -> Result<Self> {
        let url = reqwest::Url::parse(&config.base_url).map_err(|e| {
            PaymentError::Invalid(format!("stripe base_url {:?}: {e}", config.base_url))
        })?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.connect_timeout_ms))
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .build()
            .map_err(|e| PaymentError::Provider(format!("building the HTTP client: {e}")))?;
        Ok(StripeGateway {
            client,
            base_url: url.as_str().trim_end_matches('/').to_string(),
            secret_key: config.secret_key.clone(),
        })
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<T> {
        if idempotency_key.is_empty() {
            return Err(PaymentError::Invalid("idempotency key is required".into()));
        }
        let response = self
            .client
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if !status.is_success() {
            return Err(error_from_response(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| {
            PaymentError::Provider(format!("unreadable {status} answer from {path}: {e}"))
        })
    }

    async fn authorize_once(&self, req: &AuthorizeRequest) -> Result<Authorization> {
        if req.amount <= Cents::ZERO {
            return Err(PaymentError::Invalid(format!(
                "amount {} must be positive",
                req.amount
            )));
        }
        let form = [
            ("amount", req.amount.0.to_string()),
            ("currency", req.currency.clone()),
            ("payment_method", req.payment_method_id.clone()),
            ("customer", req.customer_ref.clone()),
            ("capture_method", "manual".to_string()),
            ("confirm", "true".to_string()),
        ];
        let pi: PaymentIntent = self
            .post("/v1/payment_intents", &req.idempotency_key, &form)
            .await?;
        match pi.status.as_str() {
            "requires_capture" => Ok(Authorization {
                id: pi.id,
                amount: Cents(pi.amount),
                status: AuthorizationStatus::Authorized,
            }),
            // 3-D Secure or another customer step: we have no way to show it at this point
            // of checkout, so it is a decline the customer can resolve with another card.
            "requires_action" => Err(PaymentError::Declined {
                code: "authentication_required".into(),
                message: "The card needs an authentication step this checkout cannot do.".into(),
            }),
            // Confirmation failed without an error body (Stripe normally answers 402).
            "requires_payment_method" => Err(PaymentError::Declined {
                code: "card_declined".into(),
                message: "The payment method was not accepted.".into(),
            }),
            other => Err(unexpected_status("authorize", other)),
        }
    }

    async fn capture_once(&self, auth_id: &str, amount: Cents, key: &str) -> Result<Authorization> {
        let path = format!("/v1/payment_intents/{}/capture", path_segment(auth_id)?);
        let form = [("amount_to_capture", amount.0.to_string())];
        let pi: PaymentIntent = self.post(&path, key, &form).await?;
        match pi.status.as_str() {
            "succeeded" => Ok(Authorization {
                id: pi.id,
                amount: Cents(pi.amount_received),
                status: AuthorizationStatus::Captured,
            }),
            other => Err(unexpected_status("capture", other)),
        }
    }

    async fn void_once(&self, auth_id: &str, key: &str) -> Result<Authorization> {
        let path = format!("/v1/payment_intents/{}/cancel", path_segment(auth_id)?);
        let pi: PaymentIntent = self.post(&path, key, &[]).await?;
        match pi.status.as_str() {
            "canceled" => Ok(Authorization {
                id: pi.id,
                amount: Cents(pi.amount),
                status: AuthorizationStatus::Voided,
            }),
            other => Err(unexpected_status("void", other)),
        }
    }

    async fn refund_once(&self, auth_id: &str, amount: Cents, key: &str) -> Result<Authorization> {
        let form = [
            ("payment_intent", path_segment(auth_id)?.to_string()),
            ("amount", amount.0.to_string()),
        ];
        let refund: Refund = self.post("/v1/refunds", key, &form).await?;
        match refund.status.as_deref() {
            Some("failed" | "canceled") => Err(PaymentError::Provider(format!(
                "refund of {auth_id} ended {:?}",
                refund.status
            ))),
            // "pending" is normal for some payment methods: the money is on its way back.
            _ => Ok(Authorization {
                id: auth_id.to_string(),
                amount: Cents(refund.amount),
                status: AuthorizationStatus::Refunded,
            }),
        }
    }
}

impl StripeGateway {
    async fn retrieve_once(&self, auth_id: &str) -> Result<Option<PaymentRecord>> {
        let path = format!("/v1/payment_intents/{}", path_segment(auth_id)?);
        let response = self
            .client
            .get(format!(
                "{}{path}?expand%5B%5D=payment_method&expand%5B%5D=latest_charge",
                self.base_url
            ))
            .bearer_auth(&self.secret_key)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport_error)?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(error_from_response(status, &body));
        }
        let pi: RetrievedIntent = serde_json::from_slice(&body).map_err(|e| {
            PaymentError::Provider(format!("unreadable {status} answer from {path}: {e}"))
        })?;
        let refunded = pi.latest_charge.map_or(0, |c| c.amount_refunded);
        let status = match pi.status.as_str() {
            "requires_capture" => AuthorizationStatus::Authorized,
            "succeeded" if refunded > 0 => AuthorizationStatus::Refunded,
            "succeeded" => AuthorizationStatus::Captured,
            "canceled" => AuthorizationStatus::Voided,
            other => return Err(unexpected_status("retrieve", other)),
        };
        let billing_country = pi
            .payment_method
            .and_then(|m| m.billing_details.address)
            .and_then(|a| a.country)
            .map(|c| c.to_ascii_uppercase());
        Ok(Some(PaymentRecord {
            id: pi.id,
            status,
            currency: pi.currency,
            authorized: Cents(pi.amount),
            captured: Cents(pi.amount_received),
            refunded: Cents(refunded),
            billing_country,
        }))
    }
}

/// Provider ids go into URL paths: accept only the characters Stripe ids use, so an id
/// can never change which endpoint we call.
fn path_segment(id: &str) -> Result<&str> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(PaymentError::Invalid(format!(
            "malformed authorization id {id:?}"
        )))
    }
}

fn unexpected_status(op: &str, status: &str) -> PaymentError {
    PaymentError::Provider(format!("{op} answered with unexpected status {status:?}"))
}

/// No HTTP answer: our timeout, or the network.
fn transport_error(e: reqwest::Error) -> PaymentError {
    if e.is_timeout() {
        PaymentError::Timeout
    } else if e.is_builder() {
        PaymentError::Provider(format!("building the request: {e}"))
    } else {
        // Refused, reset, DNS, TLS: the provider is unreachable from here right now.
        tracing::debug!(error = %e, "payment provider unreachable");
        PaymentError::Unavailable
    }
}

/// An HTTP answer that is not a success, mapped by what the caller can do about it.
fn error_from_response(status: StatusCode, body: &[u8]) -> PaymentError {
    let detail = serde_json::from_slice::<ErrorBody>(body)
        .unwrap_or_default()
        .error;
    let message = detail
        .message
        .clone()
        .unwrap_or_else(|| format!("HTTP {status}"));
    if status == StatusCode::PAYMENT_REQUIRED || detail.kind.as_deref() == Some("card_error") {
        let code = detail
            .decline_code
            .or(detail.code)
            .unwrap_or_else(|| "card_declined".to_string());
        return PaymentError::Declined { code, message };
    }
    match status {
        // Our key is wrong or lacks permission: an operator must fix the config.
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            PaymentError::Provider(format!("provider refused our credentials: {message}"))
        }
        // 409: another request with this key is still in flight; 429: rate limited. Both
        // succeed later with the same key.
        StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS => PaymentError::Unavailable,
        s if s.is_client_error() => PaymentError::Invalid(message),
        s if s.is_server_error() => PaymentError::Unavailable,
        _ => PaymentError::Provider(format!("unexpected HTTP {status}: {message}")),
    }
}

impl PaymentGateway for StripeGateway {
    fn authorize<'a>(&'a self, req: &'a AuthorizeRequest) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.authorize_once(req))
    }

    fn capture<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.capture_once(auth_id, amount, idempotency_key))
    }

    fn void<'a>(
        &'a self,
        auth_id: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.void_once(auth_id, idempotency_key))
    }

    fn refund<'a>(
        &'a self,
        auth_id: &'a str,
        amount: Cents,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<Authorization>> {
        Box::pin(self.refund_once(auth_id, amount, idempotency_key))
    }

    fn retrieve<'a>(&'a self, auth_id: &'a str) -> BoxFuture<'a, Result<Option<PaymentRecord>>> {
        Box::pin(self.retrieve_once(auth_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(status: u16, body: &str) -> PaymentError {
        error_from_response(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn card_errors_are_declines_with_the_most_specific_code() {
        let body = r#"{"error":{"type":"card_error","code":"card_declined",
            "decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#;
        assert_eq!(
            err(402, body),
            PaymentError::Declined {
                code: "insufficient_funds".into(),
                message: "Your card has insufficient funds.".into()
            }
        );
        let body = r#"{"error":{"type":"card_error","code":"expired_card","message":"m"}}"#;
        assert!(
            matches!(err(402, body), PaymentError::Declined { code, .. } if code == "expired_card")
        );
        assert!(
            matches!(err(402, "garbage"), PaymentError::Declined { code, .. } if code == "card_declined")
        );
    }

    #[test]
    fn other_statuses_map_by_what_the_caller_can_do() {
        let invalid =
            r#"{"error":{"type":"invalid_request_error","message":"No such payment_intent"}}"#;
        assert_eq!(
            err(400, invalid),
            PaymentError::Invalid("No such payment_intent".into())
        );
        assert_eq!(
            err(404, invalid),
            PaymentError::Invalid("No such payment_intent".into())
        );
        let reuse = r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}}"#;
        assert!(matches!(err(400, reuse), PaymentError::Invalid(_)));
        assert!(matches!(err(401, "{}"), PaymentError::Provider(_)));
        assert_eq!(err(409, "{}"), PaymentError::Unavailable);
        assert_eq!(err(429, "{}"), PaymentError::Unavailable);
        assert_eq!(err(500, "<html>oops</html>"), PaymentError::Unavailable);
        assert_eq!(err(503, "{}"), PaymentError::Unavailable);
        assert!(matches!(err(302, "{}"), PaymentError::Provider(_)));
    }

    #[test]
    fn ids_cannot_escape_their_path_segment() {
        assert!(path_segment("pi_3MtwBwLkdIwHu7ix28a3tqPa").is_ok());
        for bad in ["", "../v1/refunds", "pi_1?x=1", "pi 1", "pi_1/cancel"] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_base_url_is_a_config_error() {
        let cfg = StripeConfig::new("not a url", "sk_test_x");
        assert!(matches!(
            StripeGateway::new(&cfg),
            Err(PaymentError::Invalid(_))
        ));
    }
}
