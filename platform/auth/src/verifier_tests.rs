//! Unit tests of the verifier: HS256 rotation by `kid`, the admin lifetime cap, claim
//! mapping, and the OIDC path against a JWKS endpoint served by the test itself.

use crate::config::{Hs256Config, OidcConfig, PreviousKey};
use crate::testing::{Issuer, TestKey};
use crate::{ADMIN_MAX_TTL, AuthError, JwtKeys, Principal, Role, Verifier};
use domain::{CustomerId, DriverId, UnixMs};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NOW: UnixMs = UnixMs(1_800_000_000_000);
const OLD: &str = "the-old-secret-of-enough-bytes";
const NEW: &str = "the-new-secret-of-enough-bytes";

fn hs(kid: Option<&str>, previous: &[(&str, &str)]) -> Hs256Config {
    Hs256Config {
        kid: kid.map(String::from),
        previous: previous
            .iter()
            .map(|(k, s)| PreviousKey {
                kid: (*k).into(),
                secret: Some((*s).into()),
                secret_file: None,
            })
            .collect(),
    }
}

#[test]
fn a_rotated_hs256_key_verifies_until_its_tokens_expire() {
    let before = Verifier::from_config(OLD.as_bytes(), &hs(Some("k1"), &[]), None).unwrap();
    let old = before.signer().issue(
        Principal::Customer(CustomerId(4)),
        None,
        Duration::from_secs(60),
        NOW,
    );
    let after =
        Verifier::from_config(NEW.as_bytes(), &hs(Some("k2"), &[("k1", OLD)]), None).unwrap();
    let new = after.signer().issue(
        Principal::Driver(DriverId(5)),
        None,
        Duration::from_secs(60),
        NOW,
    );
    assert_eq!(
        jsonwebtoken::decode_header(&new).unwrap().kid.as_deref(),
        Some("k2")
    );
    assert_eq!(
        after.verify(&old, NOW).unwrap().principal,
        Principal::Customer(CustomerId(4))
    );
    assert_eq!(
        after.verify(&new, NOW).unwrap().principal,
        Principal::Driver(DriverId(5))
    );
    assert_eq!(
        after.verify(&old, NOW.plus(Duration::from_secs(60))),
        Err(AuthError::Expired)
    );
    // The old deployment does not know k2.
    assert_eq!(before.verify(&new, NOW), Err(AuthError::Invalid));
    // Once k1 is dropped, its tokens stop verifying.
    let later = Verifier::from_config(NEW.as_bytes(), &hs(Some("k2"), &[]), None).unwrap();
    assert_eq!(later.verify(&old, NOW), Err(AuthError::Invalid));
}

#[test]
fn an_unknown_kid_is_refused_even_with_a_known_secret() {
    let v = Verifier::from_config(NEW.as_bytes(), &hs(Some("k2"), &[]), None).unwrap();
    let forged = JwtKeys::new(Some("k3".into()), NEW.as_bytes(), vec![]).issue(
        Principal::Admin,
        None,
        Duration::from_secs(60),
        NOW,
    );
    assert_eq!(v.verify(&forged, NOW), Err(AuthError::Invalid));
    // A token without kid (minted by a tool that sets none) is tried against every key.
    let bare = JwtKeys::from_secret(NEW.as_bytes()).issue(
        Principal::Admin,
        None,
        Duration::from_secs(60),
        NOW,
    );
    assert_eq!(v.verify(&bare, NOW).unwrap().principal, Principal::Admin);
}

#[test]
fn admin_tokens_live_at_most_fifteen_minutes() {
    let keys = JwtKeys::from_secret(NEW.as_bytes());
    let t = keys.issue(Principal::Admin, None, Duration::from_secs(86_400), NOW);
    let v = keys.verify_full(&t, NOW).unwrap();
    assert_eq!(v.remaining(NOW), ADMIN_MAX_TTL);
    // Others keep their lifetime.
    let c = keys.issue(
        Principal::Customer(CustomerId(1)),
        None,
        Duration::from_secs(86_400),
        NOW,
    );
    assert_eq!(
        keys.verify_full(&c, NOW).unwrap().remaining(NOW),
        Duration::from_secs(86_400)
    );
    // An admin token minted elsewhere with a longer life is refused, as is one without iat.
    let sign = |claims: Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(NEW.as_bytes()),
        )
        .unwrap()
    };
    let iat = NOW.0 as u64 / 1000;
    let long = sign(json!({"sub": "0", "role": "admin", "iat": iat, "exp": iat + 901}));
    assert_eq!(keys.verify_full(&long, NOW), Err(AuthError::Invalid));
    let ok = sign(json!({"sub": "0", "role": "admin", "iat": iat, "exp": iat + 900}));
    assert!(keys.verify_full(&ok, NOW).is_ok());
    let no_iat = sign(json!({"sub": "0", "role": "admin", "exp": iat + 60}));
    assert_eq!(keys.verify_full(&no_iat, NOW), Err(AuthError::Invalid));
}

/// A JWKS endpoint served by the test: discovery plus keys, swappable, counting fetches.
struct TestIssuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve(jwks: Value) -> TestIssuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(Mutex::new(jwks));
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/keys")});
    let (j, f) = (Arc::clone(&jwks), Arc::clone(&fetches));
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || async move { axum::Json(discovery) }),
        )
        .route(
            "/keys",
            axum::routing::get(move || async move {
                f.fetch_add(1, Ordering::SeqCst);
                let body = j.lock().unwrap().clone();
                axum::Json(body)
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    TestIssuer { url, jwks, fetches }
}

fn oidc(issuer: &str) -> OidcConfig {
    toml::from_str::<OidcConfig>(&format!(
        "issuer = \"{issuer}\"\naudience = \"food-api\"\nmin_refetch_interval_s = 1\nrefresh_interval_s = 3600\n"
    ))
    .unwrap()
}

fn claims(iss: &str, aud: &str, role: Value, sub: Value) -> Value {
    let iat = NOW.0 / 1000;
    json!({"iss": iss, "aud": aud, "sub": sub, "role": role, "iat": iat, "exp": iat + 600, "name": "Ada"})
}

#[tokio::test]
async fn oidc_tokens_verify_against_the_fetched_jwks() {
    let a = Issuer::new(TestKey::RsaA, "rsa-1");
    let ec = Issuer::new(TestKey::Ec, "ec-1");
    let server = serve(Issuer::jwks(&[&a, &ec])).await;
    let cfg = oidc(&server.url);
    let v = Verifier::from_config(NEW.as_bytes(), &Hs256Config::default(), Some(&cfg)).unwrap();
    v.start().await;
    assert_eq!(v.oidc_kids(), ["ec-1", "rsa-1"]);
    let iss = server.url.as_str();

    let rs = a.token(&claims(iss, "food-api", json!("customer"), json!("42")));
    let got = v.verify(&rs, NOW).unwrap();
    assert_eq!(got.principal, Principal::Customer(CustomerId(42)));
    assert_eq!(got.name.as_deref(), Some("Ada"));
    assert_eq!(got.phone, None, "no phone_number claim");
    let es = ec.token(&claims(iss, "food-api", json!("driver"), json!(7)));
    assert_eq!(
        v.verify(&es, NOW).unwrap().principal,
        Principal::Driver(DriverId(7))
    );
    // HS256 tokens still work beside the issuer's.
    let ours = v.signer().issue(
        Principal::Driver(DriverId(1)),
        None,
        Duration::from_secs(5),
        NOW,
    );
    assert!(v.verify(&ours, NOW).is_ok());

    let refused = [
        a.token(&claims(iss, "other-api", json!("customer"), json!("42"))),
        a.token(&claims(
            "https://evil.example",
            "food-api",
            json!("customer"),
            json!("42"),
        )),
        Issuer::new(TestKey::RsaA, "rsa-9").token(&claims(
            iss,
            "food-api",
            json!("customer"),
            json!("42"),
        )),
        // A known kid, but signed by another key.
        Issuer::new(TestKey::RsaB, "rsa-1").token(&claims(
            iss,
            "food-api",
            json!("customer"),
            json!("42"),
        )),
        a.token(&claims(iss, "food-api", json!("chef"), json!("42"))),
        a.token(&claims(iss, "food-api", json!("customer"), json!("a-uuid"))),
    ];
    for t in &refused {
        assert_eq!(v.verify(t, NOW), Err(AuthError::Invalid));
    }
    assert_eq!(
        v.verify(&rs, NOW.plus(Duration::from_secs(600))),
        Err(AuthError::Expired)
    );
}

#[tokio::test]
async fn an_unknown_kid_prompts_one_rate_limited_refetch() {
    let a = Issuer::new(TestKey::RsaA, "rsa-1");
    let server = serve(Issuer::jwks(&[&a])).await;
    let v = Verifier::from_config(
        NEW.as_bytes(),
        &Hs256Config::default(),
        Some(&oidc(&server.url)),
    )
    .unwrap();
    v.start().await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 1);
    // The issuer rotates to a new key.
    let b = Issuer::new(TestKey::RsaB, "rsa-2");
    *server.jwks.lock().unwrap() = Issuer::jwks(&[&a, &b]);
    let iss = server.url.as_str();
    let rotated = b.token(&claims(iss, "food-api", json!("customer"), json!("3")));
    assert_eq!(v.verify(&rotated, NOW), Err(AuthError::Invalid));
    // A flood of made-up kids meanwhile.
    for i in 0..500 {
        let t = Issuer::new(TestKey::RsaA, &format!("bogus-{i}")).token(&claims(
            iss,
            "food-api",
            json!("customer"),
            json!("3"),
        ));
        assert_eq!(v.verify(&t, NOW), Err(AuthError::Invalid));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while v.verify(&rotated, NOW).is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "rotated key never fetched"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One fetch at start, one for the whole burst (min_refetch_interval_s = 1).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn role_and_subject_claims_are_configurable() {
    let a = Issuer::new(TestKey::RsaA, "k");
    let server = serve(Issuer::jwks(&[&a])).await;
    let mut cfg = oidc(&server.url);
    cfg.role_claim = "realm_access.roles".into();
    cfg.subject_claim = "food.customer_id".into();
    cfg.default_role = Some(Role::Customer);
    cfg.name_claim = "profile.display".into();
    cfg.phone_claim = "profile.tel".into();
    let v = Verifier::from_config(NEW.as_bytes(), &Hs256Config::default(), Some(&cfg)).unwrap();
    v.start().await;
    let iat = NOW.0 / 1000;
    let base = json!({"iss": server.url, "aud": ["food-api", "account"], "sub": "f3a1-uuid", "iat": iat, "exp": iat + 60, "food": {"customer_id": 9}, "name": "not this one", "profile": {"display": "Grace Hopper", "tel": "+15551234567"}});
    let mut with_roles = base.clone();
    with_roles["realm_access"] = json!({"roles": ["offline_access", "restaurant"]});
    assert_eq!(
        v.verify(&a.token(&with_roles), NOW).unwrap().principal,
        Principal::Restaurant(domain::RestaurantId(9))
    );
    let got = v.verify(&a.token(&base), NOW).unwrap();
    assert_eq!(got.principal, Principal::Customer(CustomerId(9)));
    assert_eq!(
        (got.name.as_deref(), got.phone.as_deref()),
        (Some("Grace Hopper"), Some("+15551234567")),
        "the name and phone come from the configured claims"
    );
}

#[test]
fn token_config_problems_name_their_keys() {
    let mut problems = service::config::Problems::new();
    let mut bad_hs = hs(
        Some(""),
        &[
            ("", "short"),
            ("a", "long-enough-secret-1"),
            ("a", "long-enough-secret-2"),
        ],
    );
    bad_hs.previous.push(PreviousKey {
        kid: "b".into(),
        secret: None,
        secret_file: None,
    });
    problems.validate("auth.hs256", &bad_hs);
    let mut bad_oidc = oidc("http://login.example.com");
    bad_oidc.audience.clear();
    bad_oidc.min_refetch_interval_s = 0;
    bad_oidc.fetch_timeout_ms = 0;
    bad_oidc.jwks_url = Some("ftp://x".into());
    problems.validate("auth.oidc", &bad_oidc);
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "auth.hs256.kid",
            "auth.hs256.previous[0].kid",
            "auth.hs256.previous[0].secret",
            "auth.hs256.previous[2].kid",
            "auth.hs256.previous[3].secret",
            "auth.oidc.issuer",
            "auth.oidc.audience",
            "auth.oidc.jwks_url",
            "auth.oidc.min_refetch_interval_s",
            "auth.oidc.fetch_timeout_ms",
        ]
    );
    assert!(
        service::config::check("auth.oidc", &oidc("https://login.example.com/realms/food")).is_ok()
    );
    assert!(service::config::check("auth.hs256", &hs(Some("k2"), &[("k1", OLD)])).is_ok());
}
