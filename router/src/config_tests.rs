//! Tests of the router's config: the embedded default, a file naming every key, the one
//! validation pass reporting a bad value in every section at once, and the production rules
//! (each unsafe value refused outside demo mode, none of them in demo mode).

use super::*;
use service::testing::ConfigSuite;

const SUITE: ConfigSuite<Config> = ConfigSuite {
    load: Config::layered,
    // The values alone: the production rules have tests of their own below.
    validate: |c: &Config| c.value_problems().into_result(),
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
hold_ms = 5000

[http.edge]
header_read_timeout_ms = 4000
idle_timeout_ms = 30000
max_connections = 5000

[store]
backend = "redb"
data_dir = "/tmp/router"
fdb_cluster_file = "/etc/foundationdb/fdb.cluster"
follow = "http://leader.example.com:8080"
poll_ms = 500

[auth]
jwt_secret = "a-secret-of-enough-bytes"
jwt_secret_file = "@DIR@/jwt"
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
name_claim = "profile.display_name"
phone_claim = "profile.phone"

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
cert_file = "@DIR@/tls.crt"
key_file = "@DIR@/tls.key"

[upstream]
ca_file = "@DIR@/tls.crt"
client_cert_file = "@DIR@/tls.crt"
client_key_file = "@DIR@/tls.key"
source_addrs = ["127.0.1.1", "127.0.1.2"]

[fanout]
search_deadline_ms = 200
orders_deadline_ms = 900

[demo]
enabled = true
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
    (
        "[upstream]\nclient_cert_file = \"c.pem\"\n",
        "upstream.client_key_file",
    ),
    (
        "[fanout]\nsearch_deadline_ms = 0\n",
        "fanout.search_deadline_ms",
    ),
];

#[test]
fn the_default_round_trips_and_validates_clean() {
    SUITE.default_round_trips_and_validates_clean();
}

/// Writes a TLS certificate and key and a JWT secret into `dir`.
fn write_secrets(dir: &std::path::Path) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("tls.crt"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("jwt"), "k3Vq9n2F7xLw0pZc8RtYb5HsJ4dGm1Ae6UoQiXy\n").unwrap();
}

#[test]
fn a_file_setting_every_key_parses_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path());
    let every_key = EVERY_KEY.replace("@DIR@", &dir.path().display().to_string());
    let c = SUITE.every_key_parses_and_validates(&every_key);
    assert_eq!((c.store.poll_ms, c.limits.per_token_burst), (500, 20));
    assert_eq!(c.http.hold_ms, 5000);
    assert_eq!(
        (c.fanout.search_deadline_ms, c.fanout.orders_deadline_ms),
        (200, 900)
    );
    // The file wins over the inline value, without its trailing newline.
    assert_eq!(c.auth.jwt_secret, "k3Vq9n2F7xLw0pZc8RtYb5HsJ4dGm1Ae6UoQiXy");
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

/// Problem keys of `validate` (production rules included unless demo mode), sorted.
fn all_problem_keys(cfg: &Config) -> Vec<String> {
    let mut keys = match cfg.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.key.clone()).collect(),
        Err(e) => panic!("not a validation error: {e}"),
    };
    keys.sort();
    keys
}

#[test]
fn each_unsafe_setting_is_refused_outside_demo_mode_only() {
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path());
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("short"), "too-short-but-16b\n").unwrap();
    let d = dir.path().display();
    let settings = |tls: &str, data: &str, secret: &str| {
        format!(
            "[http]\nlisten_addr = \"0.0.0.0:8080\"\n[tls]\n{tls}[store]\ndata_dir = \"{d}/{data}\"\n\
             [auth]\n{secret}"
        )
    };
    let (tls, data, secret) = (
        format!("cert_file = \"{d}/tls.crt\"\nkey_file = \"{d}/tls.key\"\n"),
        "data",
        format!("jwt_secret_file = \"{d}/jwt\"\n"),
    );
    assert_eq!(
        all_problem_keys(&SUITE.load_text(&settings(&tls, data, &secret))),
        Vec::<String>::new()
    );
    let short = format!("jwt_secret_file = \"{d}/short\"\n");
    for (text, want) in [
        (settings("", data, &secret), vec!["http.listen_addr"]),
        (settings(&tls, "missing", &secret), vec!["store.data_dir"]),
        (
            settings(&tls, data, ""),
            vec!["auth.jwt_secret", "auth.jwt_secret"],
        ),
        (settings(&tls, data, &short), vec!["auth.jwt_secret"]),
        (
            settings("", "missing", ""),
            vec![
                "auth.jwt_secret",
                "auth.jwt_secret",
                "http.listen_addr",
                "store.data_dir",
            ],
        ),
    ] {
        let mut c = SUITE.load_text(&text);
        assert_eq!(all_problem_keys(&c), want, "{text}");
        c.demo.enabled = true;
        assert_eq!(all_problem_keys(&c), Vec::<String>::new(), "demo: {text}");
    }
    // A follower opens no store, so its data directory does not matter.
    let mut c = SUITE.load_text(&settings(&tls, "missing", &secret));
    c.store.follow = "https://leader.example.com".into();
    assert_eq!(all_problem_keys(&c), Vec::<String>::new());
}

/// The edge limits' keys (issue 14 part 4), each bad on its own; [`BAD`] holds one value per
/// section, so these are checked here.
const BAD_EDGE: &[(&str, &str)] = &[
    (
        "[http.edge]\nheader_read_timeout_ms = 0\n",
        "http.edge.header_read_timeout_ms",
    ),
    (
        "[http.edge]\nidle_timeout_ms = 0\n",
        "http.edge.idle_timeout_ms",
    ),
    (
        "[http.edge]\nmax_connections = 0\n",
        "http.edge.max_connections",
    ),
];

#[test]
fn each_edge_limit_reports_its_own_bad_value() {
    for (text, key) in BAD_EDGE {
        assert_eq!(SUITE.problem_keys(&SUITE.load_text(text)), [*key], "{text}");
    }
}

#[test]
fn upstream_client_certificates_need_a_ca_and_files_must_load() {
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path());
    let d = dir.path().display();
    let client = format!("client_cert_file = \"{d}/tls.crt\"\nclient_key_file = \"{d}/tls.key\"\n");
    for (text, want) in [
        (client.clone(), vec!["upstream.ca_file"]),
        (
            format!("ca_file = \"{d}/missing.pem\"\n"),
            vec!["upstream.ca_file"],
        ),
        (format!("ca_file = \"{d}/tls.crt\"\n{client}"), vec![]),
    ] {
        let c = SUITE.load_text(&format!("[upstream]\n{text}"));
        assert_eq!(SUITE.problem_keys(&c), want, "{text}");
    }
    let c = SUITE.load_text(&format!("[upstream]\nca_file = \"{d}/tls.crt\"\n{client}"));
    assert!(c.upstream.client_config().unwrap().is_some());
    assert!(
        Config::load(None)
            .unwrap()
            .upstream
            .client_config()
            .unwrap()
            .is_none()
    );
}

#[test]
fn signing_needs_only_the_auth_section() {
    // The local city's config names TLS files that exist only once the city has run: a token
    // can still be minted (`./dev token` on a fresh clone), while the full check refuses.
    let text =
        "[tls]\ncert_file = \"/nonexistent/router.pem\"\nkey_file = \"/nonexistent/router.key\"\n";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("router.toml");
    std::fs::write(&p, text).unwrap();
    assert!(Config::load(Some(&p)).is_err());
    assert!(Config::load_for_signing(Some(&p)).is_ok());
    std::fs::write(&p, "[auth]\njwt_secret = \"short\"\n").unwrap();
    assert!(Config::load_for_signing(Some(&p)).is_err());
}
