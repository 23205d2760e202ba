//! Tests of the cell's config: the embedded default, a file naming every key, the one
//! validation pass reporting a bad value in every section at once, and the production rules
//! (each unsafe value refused outside demo mode, none of them in demo mode).

use super::*;
use service::testing::ConfigSuite;

const SUITE: ConfigSuite<Config> = ConfigSuite {
    load: Config::load,
    // The production rules have tests of their own below.
    validate: Config::validate_values,
    bad: BAD,
};

#[test]
fn default_config_loads_and_validates() {
    let mut c = Config::load(None).unwrap();
    c.validate_values().unwrap();
    assert!(!c.redacted().contains(&c.auth.jwt_secret));
    // The default is not demo mode, and not fit for production either: it refuses to run.
    assert!(c.validate().is_err());
    c.demo.enabled = true;
    c.validate().unwrap();
}

#[test]
fn unknown_keys_and_bad_values_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("c.toml");
    std::fs::write(&p, "[http]\nlisten_adr = \"x\"\n").unwrap();
    assert!(
        Config::load(Some(&p))
            .unwrap_err()
            .to_string()
            .contains("listen_adr")
    );
    std::fs::write(&p, "[cell]\nid = 5000\n[auth]\njwt_secret = \"x\"\n").unwrap();
    let err = Config::load(Some(&p))
        .unwrap()
        .validate()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cell.id") && err.contains("jwt_secret"),
        "{err}"
    );
}

/// A file that sets every key of every section (the Stripe provider: the sandbox's one key is
/// covered in `payments`), each to a usable value other than its default.
const EVERY_KEY: &str = include_str!("config_tests_every_key.toml");

/// One unusable value per section, and the key its problem must name.
const BAD: &[(&str, &str)] = &[
    ("[cell]\nid = 5000\n", "cell.id"),
    (
        "[http]\nrequest_timeout_ms = 0\n",
        "http.request_timeout_ms",
    ),
    ("[store]\ndata_dir = \"\"\n", "store.data_dir"),
    ("[auth]\njwt_secret = \"short\"\n", "auth.jwt_secret"),
    ("[auth.hs256]\nkid = \"\"\n", "auth.hs256.kid"),
    (
        "[auth.oidc]\nissuer = \"http://login.example.com\"\naudience = \"food-api\"\n",
        "auth.oidc.issuer",
    ),
    (
        "[demo]\nenabled = true\nradius_km = 0.0\n",
        "demo.radius_km",
    ),
    ("[pricing]\nroad_factor = 0.0\n", "pricing.road_factor"),
    ("[payments]\ntimeout_ms = 0\n", "payments.timeout_ms"),
    (
        "[dispatch.matching]\ncandidates = 0\n",
        "dispatch.matching.candidates",
    ),
    ("[tracking]\nqueue_depth = 0\n", "tracking.queue_depth"),
    ("[quic]\nmax_connections = 0\n", "quic.max_connections"),
    ("[notify]\nprovider = \"webhook\"\n", "notify.webhook_url"),
    ("[drain]\ntick_ms = 0\n", "drain.tick_ms"),
    (
        "[fraud]\ndelivery_country = \"usa\"\n",
        "fraud.delivery_country",
    ),
    ("[reconcile]\nbatch = 0\n", "reconcile.batch"),
    (
        "[payment_queue]\nconcurrency = 0\n",
        "payment_queue.concurrency",
    ),
    ("[limits]\norder_window_ms = 0\n", "limits.order_window_ms"),
    (
        "[payment_worker]\nconcurrency = 0\n",
        "payment_worker.concurrency",
    ),
    ("[history]\nsegment_ms = 0\n", "history.segment_ms"),
    (
        "[privacy]\nkey_cache_entries = 0\n",
        "privacy.key_cache_entries",
    ),
];

#[test]
fn the_default_round_trips_and_validates_clean() {
    SUITE.default_round_trips_and_validates_clean();
}

/// Writes a TLS certificate and key, a JWT secret and a Stripe key into `dir`, the files
/// [`EVERY_KEY`] and the production tests name.
fn write_secrets(dir: &std::path::Path) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("tls.crt"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("tls.key"), ck.key_pair.serialize_pem()).unwrap();
    std::fs::write(dir.join("jwt"), "k3Vq9n2F7xLw0pZc8RtYb5HsJ4dGm1Ae6UoQiXy\n").unwrap();
    std::fs::write(dir.join("stripe"), "sk_live_51HxYzExampleExampleExample\n").unwrap();
    write_kek(&dir.join("kek"), 0o600);
}

/// A location history key file with `mode`.
fn write_kek(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("{}\n", "5a".repeat(32))).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_file_setting_every_key_parses_and_validates() {
    let dir = tempfile::tempdir().unwrap();
    write_secrets(dir.path());
    let every_key = EVERY_KEY.replace("@DIR@", &dir.path().display().to_string());
    let c = SUITE.every_key_parses_and_validates(&every_key);
    assert_eq!((c.cell.id, c.pricing.road_factor), (7, 1.4));
    assert_eq!(c.dispatch.pings.ping_burst, 50);
    assert_eq!(c.quic.gateway_threads, 2);
    assert_eq!(c.notify.log_keep, 100);
    assert_eq!(c.fraud.delivery_country, "DE");
    assert_eq!(c.fraud.rules.pair_cancellations.count, 3);
    assert_eq!(c.reconcile.batch, 50);
    assert_eq!(
        c.privacy.driver_address_from,
        crate::personal::config::RevealFrom::Acceptance
    );
    assert_eq!(c.privacy.key_cache_ttl_ms, 60_000);
    assert_eq!(
        (c.history.kek_version, c.history.rewrap_batch_keys),
        (2, 500)
    );
    assert_eq!(
        (c.history.segment_ms, c.history.retention_days),
        (30_000, 14)
    );
    // The files win over the inline values, without their trailing newline.
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
        err.contains("pricing.road_factor: must be in 1..=5 (got 0)"),
        "{err}"
    );
}

#[test]
fn a_clock_offset_is_refused_outside_demo_mode() {
    let off = SUITE.load_text("[demo]\nclock_offset_ms = -10000\n");
    assert_eq!(SUITE.problem_keys(&off), ["demo.clock_offset_ms"]);
    let demo = SUITE.load_text("[demo]\nenabled = true\nclock_offset_ms = -10000\n");
    assert_eq!(SUITE.problem_keys(&demo), Vec::<String>::new());
}

#[test]
fn a_lease_outside_its_bounds_is_refused() {
    for ms in [0, 999, 120_001] {
        let c = SUITE.load_text(&format!("[store]\nlease_ms = {ms}\n"));
        assert_eq!(SUITE.problem_keys(&c), ["store.lease_ms"], "{ms}");
    }
    for ms in [1_000, 120_000] {
        let c = SUITE.load_text(&format!("[store]\nlease_ms = {ms}\n"));
        assert_eq!(SUITE.problem_keys(&c), Vec::<String>::new(), "{ms}");
    }
}

#[test]
fn cache_sizes_come_from_config_within_bounds() {
    let d = SUITE.load_text("");
    assert_eq!(d.store.cache_bytes, 64 << 20);
    assert_eq!(d.catalog.menu_cache(), None);
    let c = SUITE.load_text("[store]\ncache_bytes = 1048576\n[catalog]\nmenu_cache_menus = 7\n");
    assert_eq!(SUITE.problem_keys(&c), Vec::<String>::new());
    assert_eq!(
        (c.store.cache_bytes, c.catalog.menu_cache()),
        (1 << 20, Some(7))
    );
    let c = SUITE.load_text("[store]\ncache_bytes = 1000\n[catalog]\nmenu_cache_menus = 1000001\n");
    assert_eq!(
        SUITE.problem_keys(&c),
        ["store.cache_bytes", "catalog.menu_cache_menus"]
    );
}

/// A config that passes the production rules: secrets from files, Stripe with a live key,
/// HTTPS on a public address, a QUIC certificate, an existing store directory.
fn production_text(dir: &std::path::Path) -> String {
    write_secrets(dir);
    std::fs::create_dir_all(dir.join("data")).unwrap();
    let d = dir.display();
    format!(
        "[http]\nlisten_addr = \"0.0.0.0:8081\"\ntls_cert_file = \"{d}/tls.crt\"\n\
         tls_key_file = \"{d}/tls.key\"\n[store]\ndata_dir = \"{d}/data\"\n\
         [auth]\njwt_secret_file = \"{d}/jwt\"\n[quic]\ncert_path = \"{d}/tls.crt\"\n\
         key_path = \"{d}/tls.key\"\n[payments.provider]\nkind = \"stripe\"\n\
         base_url = \"https://api.stripe.com\"\nsecret_key_file = \"{d}/stripe\"\n\
         [history]\nkek_file = \"{d}/kek\"\n"
    )
}

/// Each unsafe setting (laid over the production config) and the problem keys it brings.
fn unsafe_settings(dir: &std::path::Path) -> Vec<(String, Vec<&'static str>)> {
    let d = dir.display();
    vec![
        (
            "[auth]\njwt_secret_file = \"\"\n".into(),
            vec!["auth.jwt_secret", "auth.jwt_secret_file"],
        ),
        (
            format!("[auth]\njwt_secret_file = \"{d}/nope\"\n"),
            vec!["auth.jwt_secret_file"],
        ),
        (
            format!("[auth]\njwt_secret_file = \"{d}/short\"\n"),
            vec!["auth.jwt_secret"],
        ),
        (
            format!("[auth]\njwt_secret_file = \"{d}/placeholder\"\n"),
            vec!["auth.jwt_secret"],
        ),
        (
            "[auth]\njwt_secret = \"another-secret-typed-into-the-file\"\n".into(),
            vec!["auth.jwt_secret"],
        ),
        (
            "[payments.provider]\nkind = \"sandbox\"\n".into(),
            vec!["payments.provider.kind"],
        ),
        (
            "[quic]\ncert_path = \"\"\nkey_path = \"\"\n".into(),
            vec!["quic.cert_path"],
        ),
        (
            "[http]\ntls_cert_file = \"\"\ntls_key_file = \"\"\n".into(),
            vec!["http.listen_addr"],
        ),
        (
            format!("[store]\ndata_dir = \"{d}/missing\"\n"),
            vec!["store.data_dir"],
        ),
        (
            "[history]\nkek_file = \"\"\n".into(),
            vec!["history.kek_file"],
        ),
        (
            format!("[history]\nkek_file = \"{d}/loose-kek\"\n"),
            vec!["history.kek_file"],
        ),
    ]
}

/// `setting` laid over `base` the way a config file lays over the default.
fn overlay(base: &str, setting: &str) -> String {
    let mut t: toml::Table = toml::from_str(base).unwrap();
    // Another provider kind replaces the provider's table instead of merging into it.
    if setting.contains("kind = ") {
        t["payments"].as_table_mut().unwrap().remove("provider");
    }
    service::config::merge(&mut t, toml::from_str(setting).unwrap());
    toml::to_string(&t).unwrap()
}

/// Problem keys of `validate` (production rules included unless demo mode).
fn all_problem_keys(cfg: &Config) -> Vec<String> {
    match cfg.validate() {
        Ok(()) => Vec::new(),
        Err(ConfigError::Invalid(p)) => p.iter().map(|p| p.key.clone()).collect(),
        Err(e) => panic!("not a validation error: {e}"),
    }
}

#[test]
fn each_unsafe_setting_is_refused_outside_demo_mode_only() {
    let dir = tempfile::tempdir().unwrap();
    let base = production_text(dir.path());
    std::fs::write(dir.path().join("short"), "too-short\n").unwrap();
    std::fs::write(
        dir.path().join("placeholder"),
        "REPLACE-with-openssl-rand-base64-48\n",
    )
    .unwrap();
    write_kek(&dir.path().join("loose-kek"), 0o644);
    assert_eq!(
        all_problem_keys(&SUITE.load_text(&base)),
        Vec::<String>::new()
    );
    for (setting, mut want) in unsafe_settings(dir.path()) {
        // The inline default secret is used once the file is unset: inline and shipped.
        if want == ["auth.jwt_secret", "auth.jwt_secret_file"] {
            want = vec!["auth.jwt_secret", "auth.jwt_secret"];
        }
        let mut c = SUITE.load_text(&overlay(&base, &setting));
        let got = all_problem_keys(&c);
        let mut got_sorted = got.clone();
        got_sorted.sort();
        assert_eq!(got_sorted, want, "{setting}");
        c.demo.enabled = true;
        // Demo mode accepts all of them, except a file that cannot be read: that secret is
        // unusable anywhere.
        let demo = all_problem_keys(&c);
        let unreadable = setting.contains("/nope");
        assert_eq!(demo.len(), usize::from(unreadable), "{setting}: {demo:?}");
    }
}

#[test]
fn the_secrets_come_from_the_environment_first() {
    let dir = tempfile::tempdir().unwrap();
    let base = production_text(dir.path());
    let mut c = SUITE.load_text(&base);
    let mut secret = "dev-only-secret-change-me".to_owned();
    // `resolve` reads the process environment; `resolve_with` is the same with the value
    // passed in, so this test does not race others over a process-wide variable.
    let src = service::secret::resolve_with(
        &mut secret,
        &c.auth.jwt_secret_file,
        JWT_SECRET_ENV,
        Some("an-environment-secret-of-enough-bytes-0123".into()),
        "dev-only-secret-change-me",
    );
    assert_eq!(secret, "an-environment-secret-of-enough-bytes-0123");
    (c.auth.jwt_secret, c.auth.jwt_secret_source) = (secret, src);
    assert_eq!(all_problem_keys(&c), Vec::<String>::new());
    let shown = c.redacted();
    assert!(!shown.contains("an-environment-secret") && !shown.contains("sk_live_"));
    assert!(
        shown.contains("secret_key_file = "),
        "the file's path is not a secret"
    );
    // A Stripe test-mode key is no better than the sandbox in production.
    if let payments::ProviderConfig::Stripe(s) = &mut c.payments.provider {
        s.secret_key = "sk_test_51HxYzExampleExampleExample".into();
    }
    assert_eq!(all_problem_keys(&c), ["payments.provider.secret_key"]);
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
    (
        "[tracking]\nmax_subscriptions_per_token = 0\n",
        "tracking.max_subscriptions_per_token",
    ),
    (
        "[tracking]\nws_fragment_timeout_ms = 0\n",
        "tracking.ws_fragment_timeout_ms",
    ),
    (
        "[quic]\nmax_handshakes = 0\nretry_above_handshakes = 0\n",
        "quic.max_handshakes",
    ),
    (
        "[quic]\nretry_above_handshakes = 5000\nmax_handshakes = 100\n",
        "quic.retry_above_handshakes",
    ),
];

#[test]
fn each_edge_limit_reports_its_own_bad_value() {
    for (text, key) in BAD_EDGE {
        assert_eq!(SUITE.problem_keys(&SUITE.load_text(text)), [*key], "{text}");
    }
}

#[test]
fn a_client_ca_needs_tls_and_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let c = SUITE.load_text("[http]\ntls_client_ca_file = \"ca.pem\"\n");
    assert_eq!(SUITE.problem_keys(&c), ["http.tls_client_ca_file"]);
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("tls.crt"), ck.cert.pem()).unwrap();
    std::fs::write(dir.path().join("tls.key"), ck.key_pair.serialize_pem()).unwrap();
    let with_tls = |ca: &str| {
        format!(
            "[http]\ntls_cert_file = \"{d}/tls.crt\"\ntls_key_file = \"{d}/tls.key\"\n\
             tls_client_ca_file = \"{ca}\"\n"
        )
    };
    let c = SUITE.load_text(&with_tls(&format!("{d}/missing.pem")));
    assert_eq!(SUITE.problem_keys(&c), ["http.tls_client_ca_file"]);
    let c = SUITE.load_text(&with_tls(&format!("{d}/tls.crt")));
    assert_eq!(SUITE.problem_keys(&c), Vec::<String>::new());
    assert!(c.http.tls_acceptor().unwrap().is_some());
}

#[test]
fn placement_waits_for_the_provider_less_than_a_request_may_take() {
    let c = SUITE.load_text(
        "[http]\nrequest_timeout_ms = 5000\n[payment_queue]\nplacement_wait_ms = 5000\n",
    );
    assert_eq!(SUITE.problem_keys(&c), ["payment_queue.placement_wait_ms"]);
    let c = SUITE.load_text(
        "[http]\nrequest_timeout_ms = 5000\n[payment_queue]\nplacement_wait_ms = 4000\n",
    );
    assert_eq!(SUITE.problem_keys(&c), Vec::<String>::new());
}
