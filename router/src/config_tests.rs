//! Tests of the router's config: the embedded default, a file naming every key, and the one
//! validation pass reporting a bad value in every section at once.

use super::*;
use service::testing::ConfigSuite;

const SUITE: ConfigSuite<Config> = ConfigSuite {
    load: Config::layered,
    validate: Config::validate,
    every_key: EVERY_KEY,
    bad: BAD,
};

#[test]
fn defaults_load_and_overlay_wins() {
    let c = Config::load(None).unwrap();
    assert_eq!(c.http.listen_addr.port(), 8080);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("r.toml");
    std::fs::write(&f, "[limits]\nper_ip_rps = 5\n").unwrap();
    let c = Config::load(Some(&f)).unwrap();
    assert_eq!(c.limits.per_ip_rps, 5);
    assert_eq!(c.limits.per_ip_burst, 4000);
    std::fs::write(&f, "[limits]\nper_ip_rsp = 5\n").unwrap();
    assert!(matches!(
        Config::load(Some(&f)),
        Err(ConfigError::Parse { .. })
    ));
    std::fs::write(&f, "[tls]\ncert_file = \"x.pem\"\n").unwrap();
    assert!(matches!(
        Config::load(Some(&f)),
        Err(ConfigError::Invalid(_))
    ));
}

/// A file that sets every key of every section, each to a usable value other than its
/// default.
const EVERY_KEY: &str = r#"
[http]
listen_addr = "127.0.0.1:9080"
max_body_bytes = 32768
upstream_timeout_ms = 5000
pool_max_idle_per_cell = 64

[store]
backend = "redb"
data_dir = "/tmp/router"
fdb_cluster_file = "/etc/foundationdb/fdb.cluster"
follow = "http://leader.example.com:8080"
poll_ms = 500

[auth]
jwt_secret = "a-secret-of-enough-bytes"
token_ttl_s = 3600

[auth.hs256]
kid = "2026-12"

[[auth.hs256.previous]]
kid = "2026-11"
secret = "the-previous-secret-of-enough-bytes"

[[auth.hs256.previous]]
kid = "2026-10"
secret_file = "/run/secrets/jwt-2026-10"

[auth.oidc]
issuer = "https://login.example.com/realms/food"
audience = "food-api"
jwks_url = "https://login.example.com/realms/food/protocol/openid-connect/certs"
refresh_interval_s = 600
min_refetch_interval_s = 10
fetch_timeout_ms = 3000
role_claim = "realm_access.roles"
default_role = "customer"
subject_claim = "food_id"

[health]
interval_ms = 2000
timeout_ms = 1500
failure_threshold = 5

[limits]
per_ip_rps = 100
per_ip_burst = 200
per_token_rps = 10
per_token_burst = 20

[tls]
cert_file = "/etc/router/tls.crt"
key_file = "/etc/router/tls.key"
"#;

/// One unusable value per section, and the key its problem must name.
const BAD: &[(&str, &str)] = &[
    ("[http]\nmax_body_bytes = 0\n", "http.max_body_bytes"),
    ("[store]\nfollow = \"leader:8080\"\n", "store.follow"),
    ("[auth]\njwt_secret = \"too-short\"\n", "auth.jwt_secret"),
    ("[auth.hs256]\nkid = \"\"\n", "auth.hs256.kid"),
    (
        "[auth.oidc]\nissuer = \"http://login.example.com\"\naudience = \"food-api\"\n",
        "auth.oidc.issuer",
    ),
    (
        "[health]\nfailure_threshold = 0\n",
        "health.failure_threshold",
    ),
    ("[limits]\nper_token_burst = 0\n", "limits.per_token_burst"),
    ("[tls]\ncert_file = \"x.pem\"\n", "tls.key_file"),
];

#[test]
fn the_default_round_trips_and_validates_clean() {
    SUITE.default_round_trips_and_validates_clean();
}

#[test]
fn a_file_setting_every_key_parses_and_validates() {
    let c = SUITE.every_key_parses_and_validates();
    assert_eq!((c.store.poll_ms, c.limits.per_token_burst), (500, 20));
}

#[test]
fn each_section_reports_its_own_bad_value() {
    SUITE.each_section_reports_its_own_bad_value();
}

#[test]
fn a_bad_value_in_every_section_is_reported_at_once() {
    let err = SUITE.a_bad_value_in_every_section_is_reported_at_once();
    assert!(
        err.contains("health.failure_threshold: must be at least 1 (got 0)"),
        "{err}"
    );
}
