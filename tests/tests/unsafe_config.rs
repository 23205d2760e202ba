//! Part 1 of issue 14 against the real binaries: outside demo mode, `check-config` and `run`
//! refuse every unsafe setting, one at a time and all together, with exit status 78 and one
//! line per problem naming its key and the fix; `run` refuses before it binds or opens the
//! store; demo mode starts with none of the production settings made.

use itest::harness::cell_bin;
use itest::router::{Router, router_bin};
use itest::{Cell, CellOpts};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `EX_CONFIG` from BSD's sysexits.h, what both binaries exit with for an unusable config.
const EX_CONFIG: i32 = 78;

/// A secret of our own: long enough and in no shipped file.
const GOOD_SECRET: &str = "k3Vq9n2F7xLw0pZc8RtYb5HsJ4dGm1Ae6UoQiXy";

/// A temp dir with what a production config points at: a TLS certificate and key, secret
/// files (a good one, a short one, a placeholder), an existing data directory.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        std::fs::write(p.join("tls.crt"), ck.cert.pem()).unwrap();
        std::fs::write(p.join("tls.key"), ck.key_pair.serialize_pem()).unwrap();
        std::fs::write(p.join("jwt"), format!("{GOOD_SECRET}\n")).unwrap();
        std::fs::write(p.join("short"), "only-16-bytes-xx\n").unwrap();
        std::fs::write(
            p.join("placeholder"),
            "REPLACE-with-openssl-rand-base64-48\n",
        )
        .unwrap();
        std::fs::write(p.join("stripe"), "sk_live_51HxYzExampleExampleExample\n").unwrap();
        std::fs::create_dir(p.join("data")).unwrap();
        // The location history key-encryption key: 64 hex digits, readable by its owner only.
        std::fs::write(p.join("kek"), format!("{}\n", "5a".repeat(32))).unwrap();
        std::fs::write(p.join("loose-kek"), format!("{}\n", "5a".repeat(32))).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |m| std::fs::Permissions::from_mode(m);
            std::fs::set_permissions(p.join("kek"), mode(0o600)).unwrap();
            std::fs::set_permissions(p.join("loose-kek"), mode(0o644)).unwrap();
        }
        Fixture { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn d(&self) -> String {
        self.path().display().to_string()
    }

    /// A cell config that passes every production rule.
    fn cell_production(&self) -> toml::Table {
        let d = self.d();
        toml(&format!(
            "[http]\nlisten_addr = \"0.0.0.0:8081\"\ntls_cert_file = \"{d}/tls.crt\"\n\
             tls_key_file = \"{d}/tls.key\"\n[store]\ndata_dir = \"{d}/data\"\n\
             [auth]\njwt_secret_file = \"{d}/jwt\"\n\
             [quic]\ncert_path = \"{d}/tls.crt\"\nkey_path = \"{d}/tls.key\"\n\
             [payments.provider]\nkind = \"stripe\"\nbase_url = \"https://api.stripe.com\"\n\
             secret_key_file = \"{d}/stripe\"\n[history]\nkek_file = \"{d}/kek\"\n\
             [demo]\nenabled = false\n"
        ))
    }

    /// A router config that passes every production rule.
    fn router_production(&self) -> toml::Table {
        let d = self.d();
        toml(&format!(
            "[http]\nlisten_addr = \"0.0.0.0:8080\"\n[tls]\ncert_file = \"{d}/tls.crt\"\n\
             key_file = \"{d}/tls.key\"\n[store]\ndata_dir = \"{d}/data\"\n\
             [auth]\njwt_secret_file = \"{d}/jwt\"\n[demo]\nenabled = false\n"
        ))
    }

    /// Writes `table` to a file named `name` and returns its path.
    fn write(&self, name: &str, table: &toml::Table) -> PathBuf {
        let f = self.path().join(name);
        std::fs::write(&f, toml::to_string(table).unwrap()).unwrap();
        f
    }
}

fn toml(text: &str) -> toml::Table {
    toml::from_str(text).expect("test TOML parses")
}

/// `overlay` over `base`, tables merged key by key (as the binaries layer config files),
/// except that a table naming its `kind` replaces the old one (another provider).
fn merged(base: &toml::Table, overlay: &toml::Table) -> toml::Table {
    let mut out = base.clone();
    for (k, v) in overlay {
        match (out.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) if !o.contains_key("kind") => {
                *b = merged(b, o);
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// One unsafe setting: a TOML overlay and/or an environment variable, and the problem lines
/// (`key: start of message`) it must bring, nothing else.
struct Unsafe {
    what: &'static str,
    toml: String,
    env: Option<(&'static str, &'static str)>,
    expect: Vec<&'static str>,
    /// Part of the all-together run: one row per rule, so that no row overrides another
    /// (two secrets for one key cannot both be in effect).
    in_all: bool,
}

fn unsafe_cell_settings(f: &Fixture) -> Vec<Unsafe> {
    let d = f.d();
    vec![
        Unsafe {
            what: "shipped secret, inline",
            toml: "[auth]\njwt_secret_file = \"\"\n".into(),
            env: None,
            expect: vec![
                "auth.jwt_secret: is set inline in the TOML config; outside demo mode a secret \
                 comes from a file (auth.jwt_secret_file",
                "auth.jwt_secret: the value from the TOML config is a shipped default or \
                 placeholder; generate",
            ],
            in_all: true,
        },
        Unsafe {
            what: "placeholder secret in a file",
            toml: format!("[auth]\njwt_secret_file = \"{d}/placeholder\"\n"),
            env: None,
            expect: vec!["auth.jwt_secret: the value from "],
            in_all: false,
        },
        Unsafe {
            what: "short secret in a file",
            toml: format!("[auth]\njwt_secret_file = \"{d}/short\"\n"),
            env: None,
            expect: vec!["auth.jwt_secret: the value from "],
            in_all: false,
        },
        Unsafe {
            what: "short secret in the environment",
            toml: String::new(),
            env: Some(("CELL_AUTH_JWT_SECRET", "too-short")),
            expect: vec![
                "auth.jwt_secret: the value from the environment variable CELL_AUTH_JWT_SECRET \
                 is 9 bytes, must be at least 32",
            ],
            in_all: false,
        },
        Unsafe {
            what: "unreadable secret file",
            toml: format!("[auth]\njwt_secret_file = \"{d}/missing-secret\"\n"),
            env: None,
            expect: vec!["auth.jwt_secret_file: cannot read "],
            in_all: false,
        },
        Unsafe {
            what: "inline secret besides the file",
            toml: format!("[auth]\njwt_secret = \"{GOOD_SECRET}-inline\"\n"),
            env: None,
            expect: vec![
                "auth.jwt_secret: is set inline in the TOML config as well as through \
                 auth.jwt_secret_file",
            ],
            in_all: false,
        },
        Unsafe {
            what: "inline Stripe key",
            toml: "[payments.provider]\nsecret_key_file = \"\"\n\
                   secret_key = \"sk_live_51HxYzInlineInlineInline\"\n"
                .into(),
            env: None,
            expect: vec!["payments.provider.secret_key: is set inline in the TOML config"],
            in_all: false,
        },
        Unsafe {
            what: "sandbox payments",
            toml: "[payments]\nprovider = { kind = \"sandbox\" }\n".into(),
            env: None,
            expect: vec!["payments.provider.kind: is \"sandbox\""],
            in_all: true,
        },
        Unsafe {
            what: "generated QUIC CA",
            toml: "[quic]\ncert_path = \"\"\nkey_path = \"\"\n".into(),
            env: None,
            expect: vec![
                "quic.cert_path: is empty, so the driver gateway would serve a \
                          certificate from a generated development CA",
            ],
            in_all: true,
        },
        Unsafe {
            what: "public HTTP without TLS",
            toml: "[http]\ntls_cert_file = \"\"\ntls_key_file = \"\"\n".into(),
            env: None,
            expect: vec![
                "http.listen_addr: 0.0.0.0:8081 is not a loopback address and TLS is off; set \
                 http.tls_cert_file and http.tls_key_file",
            ],
            in_all: true,
        },
        Unsafe {
            what: "missing store directory",
            toml: format!("[store]\ndata_dir = \"{d}/no-such-dir\"\n"),
            env: None,
            expect: vec!["store.data_dir: "],
            in_all: true,
        },
        Unsafe {
            what: "no location history key file",
            toml: "[history]\nkek_file = \"\"\n".into(),
            env: None,
            // Since issue 20's personal data the message names customers' addresses too.
            expect: vec![
                "history.kek_file: is empty; outside demo mode location history and customers' \
                 addresses are encrypted",
            ],
            in_all: true,
        },
        Unsafe {
            // Customers' addresses are sealed under the same key with history off.
            what: "no key file with location history off",
            toml: "[history]\nenabled = false\nkek_file = \"\"\n".into(),
            env: None,
            expect: vec!["history.kek_file: is empty; "],
            in_all: false,
        },
        Unsafe {
            what: "location history key file readable by others",
            toml: format!("[history]\nkek_file = \"{d}/loose-kek\"\n"),
            env: None,
            expect: vec!["history.kek_file: key file "],
            in_all: false,
        },
    ]
}

fn unsafe_router_settings(f: &Fixture) -> Vec<Unsafe> {
    let d = f.d();
    vec![
        Unsafe {
            what: "shipped secret, inline",
            toml: "[auth]\njwt_secret_file = \"\"\n".into(),
            env: None,
            expect: vec![
                "auth.jwt_secret: is set inline in the TOML config; outside demo mode a secret \
                 comes from a file (auth.jwt_secret_file",
                "auth.jwt_secret: the value from the TOML config is a shipped default",
            ],
            in_all: true,
        },
        Unsafe {
            what: "placeholder secret in a file",
            toml: format!("[auth]\njwt_secret_file = \"{d}/placeholder\"\n"),
            env: None,
            expect: vec!["auth.jwt_secret: the value from "],
            in_all: false,
        },
        Unsafe {
            what: "short secret in the environment",
            toml: String::new(),
            env: Some(("ROUTER_AUTH_JWT_SECRET", "only-16-bytes-xx")),
            expect: vec![
                "auth.jwt_secret: the value from the environment variable \
                 ROUTER_AUTH_JWT_SECRET is 16 bytes, must be at least 32",
            ],
            in_all: false,
        },
        Unsafe {
            what: "unreadable secret file",
            toml: format!("[auth]\njwt_secret_file = \"{d}/missing-secret\"\n"),
            env: None,
            expect: vec!["auth.jwt_secret_file: cannot read "],
            in_all: false,
        },
        Unsafe {
            what: "public HTTP without TLS",
            toml: "[tls]\ncert_file = \"\"\nkey_file = \"\"\n".into(),
            env: None,
            expect: vec![
                "http.listen_addr: 0.0.0.0:8080 is not a loopback address and TLS is off; set \
                 tls.cert_file and tls.key_file",
            ],
            in_all: true,
        },
        Unsafe {
            what: "missing store directory",
            toml: format!("[store]\ndata_dir = \"{d}/no-such-dir\"\n"),
            env: None,
            expect: vec!["store.data_dir: "],
            in_all: true,
        },
    ]
}

/// Runs `bin args..` with `env` set and the secret variables otherwise cleared.
fn run(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_remove("CELL_AUTH_JWT_SECRET")
        .env_remove("ROUTER_AUTH_JWT_SECRET")
        .env_remove("CELL_PAYMENTS_SECRET_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running the binary")
}

/// The problem lines of a refusal (`  key: message` after the header), checked against
/// `expect`: the same number, each starting with its expected text, in order.
fn assert_refused(what: &str, out: &Output, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_CONFIG), "{what}: {stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("config ok"),
        "{what}"
    );
    let header = format!("invalid config ({} problem", expect.len());
    assert!(
        stderr.contains(&header),
        "{what}: want {header:?} in\n{stderr}"
    );
    let lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("  "))
        .collect();
    assert_eq!(lines.len(), expect.len(), "{what}:\n{stderr}");
    let mut want = expect.to_vec();
    let mut got = lines.clone();
    // Problems come in section order; compare as sets of prefixes.
    want.sort_unstable();
    got.sort_unstable();
    for (g, w) in got.iter().zip(&want) {
        assert!(
            g.starts_with(w),
            "{what}: {g:?} does not start with {w:?}\n{stderr}"
        );
    }
    for secret in [GOOD_SECRET, "too-short", "only-16-bytes-xx", "REPLACE-with"] {
        assert!(
            !stderr.contains(secret),
            "{what}: a secret is echoed:\n{stderr}"
        );
    }
}

/// One binary's table: the production config passes, each setting alone is refused with its
/// lines, all of them together with every line at once.
fn check_table(bin: &Path, f: &Fixture, base: &toml::Table, table: &[Unsafe], name: &str) {
    let ok = f.write(&format!("{name}-ok.toml"), base);
    let out = run(
        bin,
        &["check-config", "--config", ok.to_str().unwrap()],
        &[],
    );
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "config ok",
        "{name}: the production config is refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for u in table {
        let file = f.write(&format!("{name}-bad.toml"), &merged(base, &toml(&u.toml)));
        let env: Vec<(&str, &str)> = u.env.into_iter().collect();
        let out = run(
            bin,
            &["check-config", "--config", file.to_str().unwrap()],
            &env,
        );
        assert_refused(&format!("{name}: {}", u.what), &out, &u.expect);
    }
    let (mut all, mut want) = (base.clone(), Vec::new());
    for u in table.iter().filter(|u| u.in_all) {
        all = merged(&all, &toml(&u.toml));
        want.extend(&u.expect);
    }
    let file = f.write(&format!("{name}-all.toml"), &all);
    let out = run(
        bin,
        &["check-config", "--config", file.to_str().unwrap()],
        &[],
    );
    assert_refused(&format!("{name}: all together"), &out, &want);
}

#[test]
fn cell_check_config_refuses_each_unsafe_setting_and_all_at_once() {
    let f = Fixture::new();
    let bin = cell_bin().expect("cell binary");
    check_table(
        &bin,
        &f,
        &f.cell_production(),
        &unsafe_cell_settings(&f),
        "cell",
    );
}

#[test]
fn router_check_config_refuses_each_unsafe_setting_and_all_at_once() {
    let f = Fixture::new();
    let bin = router_bin().expect("router binary");
    check_table(
        &bin,
        &f,
        &f.router_production(),
        &unsafe_router_settings(&f),
        "router",
    );
}

/// `run` checks the same rules before binding its port or opening its store: with the port
/// held by this test, binding would fail differently (exit 1, "binding"); the store would
/// create its directory.
#[test]
fn run_refuses_before_binding_or_opening_the_store() {
    let f = Fixture::new();
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().to_string();
    let missing = f.path().join("never-created");
    let cell = f.write(
        "cell-run.toml",
        &merged(
            &f.cell_production(),
            &toml(
                "[payments]\nprovider = { kind = \"sandbox\" }\n[auth]\njwt_secret_file = \"\"\n",
            ),
        ),
    );
    let out = run(
        &cell_bin().unwrap(),
        &[
            "run",
            "--config",
            cell.to_str().unwrap(),
            "--listen",
            &port,
            "--data-dir",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert_refused(
        "cell run",
        &out,
        &[
            "store.data_dir: ",
            "auth.jwt_secret: is set inline",
            "auth.jwt_secret: the value from the TOML config is a shipped default",
            "payments.provider.kind: is \"sandbox\"",
        ],
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("READY"));
    assert!(!missing.exists(), "the store was opened");
    let router = f.write(
        "router-run.toml",
        &merged(
            &f.router_production(),
            &toml("[tls]\ncert_file = \"\"\nkey_file = \"\"\n"),
        ),
    );
    let out = run(
        &router_bin().unwrap(),
        &[
            "run",
            "--config",
            router.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            missing.to_str().unwrap(),
        ],
        &[],
    );
    assert_refused(
        "router run",
        &out,
        &[
            "http.listen_addr: 0.0.0.0:0 is not a loopback",
            "store.data_dir: ",
        ],
    );
    assert!(!missing.exists(), "the router's store was opened");
    drop(held);
}

/// Demo mode needs none of the production settings: the embedded defaults (shipped secret,
/// payment sandbox, generated QUIC CA) start and print READY.
#[test]
fn demo_mode_starts_with_none_of_them_set() {
    let cell = Cell::start(CellOpts {
        config_toml: Some("[demo]\nrestaurants = 20\n".into()),
        ..CellOpts::default()
    });
    assert!(cell.ready().quic.is_some());
    cell.get("/live").send().expect_status(200);
    let router = Router::start("", None);
    router.get("/live").send().expect_status(200);
}

/// The configs `./dev city` runs with are demo mode and pass the check as they are, once
/// `city.sh` has written the city's certificates (`router dev-certs` into `.data/tls`, relative
/// to where it runs, as here).
#[test]
fn the_local_city_configs_pass_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let city = tempfile::tempdir().unwrap();
    let certs = Command::new(router_bin().unwrap())
        .args(["dev-certs", "--out", ".data/tls"])
        .args([
            "--name",
            "router",
            "--name",
            "cell-berlin",
            "--name",
            "cell-munich",
        ])
        .current_dir(city.path())
        .output()
        .unwrap();
    assert!(certs.status.success(), "router dev-certs: {certs:?}");
    for (bin, file) in [
        (cell_bin().unwrap(), "infra/local/cell-berlin.toml"),
        (cell_bin().unwrap(), "infra/local/cell-munich.toml"),
        (router_bin().unwrap(), "infra/local/router.toml"),
    ] {
        let path = root.join(file);
        let out = Command::new(&bin)
            .args(["check-config", "--config", path.to_str().unwrap()])
            .current_dir(city.path())
            .env_remove("CELL_AUTH_JWT_SECRET")
            .env_remove("ROUTER_AUTH_JWT_SECRET")
            .env_remove("CELL_PAYMENTS_SECRET_KEY")
            .output()
            .expect("running the binary");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "config ok");
    }
}
