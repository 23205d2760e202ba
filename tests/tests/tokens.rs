//! Identity and tokens against a real cell (and the router for the issuer's admin tokens): RS256/ES256 tokens from an OIDC issuer that this
//! test plays (its discovery document and JWKS served on loopback), HS256 key rotation by
//! `kid`, `?token=` refused on REST, and long-lived sessions (a tracking WebSocket, a QUIC
//! driver session) closed with `token_expired` within a second of their token's expiry.

use auth::testing::{Issuer, TestKey};
use driver_client::{DriverClient, Trust};
use itest::fixtures::*;
use itest::live::{Tracker, WAIT, now_ms, runtime};
use itest::{Cell, CellOpts};
use schemas::CloseReason;
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "itest-tokens-current-secret-0123456789";
const OLD_SECRET: &str = "itest-tokens-previous-secret-0123456789";
const AUDIENCE: &str = "food-api";

/// The issuer's keys: RS256 and ES256, each under its own `kid`.
fn rsa() -> Issuer {
    Issuer::new(TestKey::RsaA, "rsa-2026")
}
fn ec() -> Issuer {
    Issuer::new(TestKey::Ec, "ec-2026")
}

/// Serves `/.well-known/openid-configuration` and `/jwks` on a loopback port, on a thread of
/// its own for the whole test binary; returns the issuer URL.
fn issuer_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let base = url.clone();
        std::thread::spawn(move || {
            let rt = runtime();
            rt.block_on(async move {
                listener.set_nonblocking(true).expect("nonblocking");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((mut conn, _)) = listener.accept().await else { continue };
                    let base = base.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        let n = conn.read(&mut buf).await.unwrap_or(0);
                        let req = String::from_utf8_lossy(&buf[..n]);
                        let path = req.split_whitespace().nth(1).unwrap_or("");
                        let (status, body) = match path {
                            "/.well-known/openid-configuration" => (
                                "200 OK",
                                json!({"issuer": base, "jwks_uri": format!("{base}/jwks")}),
                            ),
                            "/jwks" => ("200 OK", Issuer::jwks(&[&rsa(), &ec()])),
                            _ => ("404 Not Found", json!({})),
                        };
                        let body = body.to_string();
                        let resp = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = conn.write_all(resp.as_bytes()).await;
                    });
                }
            });
        });
        url
    })
}

/// A demo cell whose current HS256 key is `k2` (with `k1` retired but still verifying) and
/// which trusts the test's issuer.
fn cell() -> &'static Cell {
    static CELL: OnceLock<Cell> = OnceLock::new();
    CELL.get_or_init(|| {
        Cell::start(CellOpts {
            config_toml: Some(format!(
                "[auth]\njwt_secret = \"{SECRET}\"\n\
                 [auth.hs256]\nkid = \"k2\"\n\
                 [[auth.hs256.previous]]\nkid = \"k1\"\nsecret = \"{OLD_SECRET}\"\n\
                 [auth.oidc]\nissuer = \"{}\"\naudience = \"{AUDIENCE}\"\nmin_refetch_interval_s = 1\n\
                 [demo]\nrestaurants = 200\nradius_km = 3.0\n",
                issuer_url()
            )),
            ..CellOpts::default()
        })
    })
}

fn now_s() -> u64 {
    now_ms() / 1000
}

/// Claims as the issuer would put them, valid for `ttl_s`.
fn oidc_claims(iss: &str, aud: &str, role: &str, sub: u64, ttl_s: u64) -> Value {
    json!({"iss": iss, "aud": aud, "sub": sub.to_string(), "role": role, "iat": now_s(), "exp": now_s() + ttl_s})
}

/// An HS256 token signed with `secret` under `kid`, valid until `exp` (Unix seconds).
fn hs256(secret: &str, kid: Option<&str>, role: &str, sub: u64, exp: u64) -> String {
    let header = jsonwebtoken::Header {
        kid: kid.map(String::from),
        ..Default::default()
    };
    let claims = json!({"sub": sub.to_string(), "role": role, "iat": now_s(), "exp": exp});
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signing")
}

fn orders_status(cell: &Cell, token: &str) -> u16 {
    cell.get("/api/v1/orders?customer=me")
        .token(token)
        .send()
        .status
}

#[test]
fn oidc_tokens_are_accepted_and_wrong_aud_iss_or_kid_are_401() {
    let cell = cell();
    let iss = issuer_url();
    let good = rsa().token(&oidc_claims(iss, AUDIENCE, "customer", 8101, 600));
    assert_eq!(orders_status(cell, &good), 200);
    let es = ec().token(&oidc_claims(iss, AUDIENCE, "customer", 8102, 600));
    assert_eq!(orders_status(cell, &es), 200);
    // An issuer-signed customer may place an order like any other.
    let order = place_new(cell, &good, &simple_order(cell, 0, PM_VISA));
    assert_eq!(get_order(cell, &good, &order)["order_id"], order.as_str());

    let refused = [
        ("wrong aud", rsa().token(&oidc_claims(iss, "another-api", "customer", 8101, 600))),
        ("wrong iss", rsa().token(&oidc_claims("http://127.0.0.1:1", AUDIENCE, "customer", 8101, 600))),
        ("unknown kid", Issuer::new(TestKey::RsaA, "rsa-1999").token(&oidc_claims(iss, AUDIENCE, "customer", 8101, 600))),
        ("known kid, other key", Issuer::new(TestKey::RsaB, "rsa-2026").token(&oidc_claims(iss, AUDIENCE, "customer", 8101, 600))),
        ("expired", rsa().token(&json!({"iss": iss, "aud": AUDIENCE, "sub": "8101", "role": "customer", "iat": now_s() - 120, "exp": now_s() - 60}))),
    ];
    for (what, t) in &refused {
        let r = cell.get("/api/v1/orders?customer=me").token(t).send();
        assert_eq!(r.status, 401, "{what}: {}", r.text);
    }
}

#[test]
fn a_rotated_hs256_key_keeps_its_tokens_valid_until_they_expire() {
    let cell = cell();
    // Minted before the rotation with the old key (then current, kid k1).
    let old = hs256(OLD_SECRET, Some("k1"), "customer", 8201, now_s() + 600);
    assert_eq!(orders_status(cell, &old), 200);
    // Minted now, by the cell itself: the new key, kid k2 in the header.
    let new = cell.token("customer", 8202);
    let header = jsonwebtoken::decode_header(&new).expect("header");
    assert_eq!(header.kid.as_deref(), Some("k2"));
    assert_eq!(orders_status(cell, &new), 200);
    // The old key's tokens end with their own expiry.
    let expired = hs256(OLD_SECRET, Some("k1"), "customer", 8201, now_s() - 1);
    assert_eq!(orders_status(cell, &expired), 401);
    // A kid the cell does not know is 401, even signed with a secret it does know.
    let unknown = hs256(SECRET, Some("k3"), "customer", 8201, now_s() + 600);
    assert_eq!(orders_status(cell, &unknown), 401);
}

#[test]
fn query_tokens_are_refused_on_rest_and_admin_tokens_are_short() {
    let cell = cell();
    let t = cell.token("customer", 8301);
    let r = cell
        .get(&format!("/api/v1/orders?customer=me&token={t}"))
        .send();
    assert_eq!(r.status, 401, "{}", r.text);
    let admin = cell
        .post("/api/v1/dev/token")
        .json(&json!({"role": "admin", "sub": "0"}))
        .send()
        .expect_status(200);
    assert_eq!(admin.json["expires_in_s"], 900);
    let long_admin = hs256(SECRET, Some("k2"), "admin", 0, now_s() + 3600);
    let r = cell
        .get("/api/v1/orders?customer=me")
        .token(&long_admin)
        .send();
    assert_eq!(r.status, 401, "{}", r.text);
}

/// Waits for `closed_at_ms` to be within a second after `exp` (Unix seconds).
fn assert_closed_in_time(what: &str, exp: u64, closed_at_ms: u64) {
    let expiry_ms = exp * 1000;
    assert!(
        closed_at_ms + 50 >= expiry_ms && closed_at_ms <= expiry_ms + 1000,
        "{what} closed {} ms after expiry",
        closed_at_ms as i64 - expiry_ms as i64
    );
}

#[test]
fn a_tracking_socket_closes_with_token_expired_within_a_second() {
    let cell = cell();
    let rt = runtime();
    let cust = cell.token("customer", 8401);
    let order = place_new(cell, &cust, &simple_order(cell, 1, PM_VISA));
    let exp = now_s() + 3;
    let short = hs256(SECRET, Some("k2"), "customer", 8401, exp);
    let mut ws = Tracker::connect(cell, &rt, &order, &short).expect("tracking socket");
    ws.expect("snapshot", WAIT, |v| v["type"] == "snapshot");
    let close = ws.expect_close(Duration::from_secs(6));
    let closed_at = now_ms();
    assert_eq!(close, Some((4001, "token_expired".to_owned())));
    assert_closed_in_time("tracking socket", exp, closed_at);
    // A fresh token opens it again.
    assert!(Tracker::connect(cell, &rt, &order, &cust).is_ok());
}

#[test]
fn a_quic_session_closes_with_token_expired_within_a_second() {
    let cell = cell();
    let rt = runtime();
    let ready = cell.ready();
    let addr = ready.quic.expect("QUIC gateway");
    let name = ready.quic_server_name.as_deref().unwrap_or("localhost");
    let trust = Trust::ca_pem_file(ready.quic_ca.as_ref().expect("dev CA")).expect("CA");
    let exp = now_s() + 3;
    let token = hs256(SECRET, Some("k2"), "driver", 8501, exp);
    let client = rt
        .block_on(DriverClient::connect(
            addr,
            name,
            trust.clone(),
            &token,
            None,
        ))
        .expect("connect");
    let end = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(6), client.closed()).await })
        .expect("closed within 6 s");
    let closed_at = now_ms();
    assert_eq!(end.close_reason(), Some(CloseReason::TokenExpired), "{end}");
    assert_closed_in_time("QUIC session", exp, closed_at);
    // The driver re-authenticates by reconnecting with a fresh token, resuming its session.
    let fresh = cell.token("driver", 8501);
    let again = rt
        .block_on(DriverClient::connect(
            addr,
            name,
            trust,
            &fresh,
            Some(client.hello_ack().session_id),
        ))
        .expect("reconnect");
    assert_ne!(again.hello_ack().session_id, 0);
    // An OIDC driver token works on the gateway too.
    let oidc = ec().token(&oidc_claims(issuer_url(), AUDIENCE, "driver", 8502, 600));
    let trust = Trust::ca_pem_file(ready.quic_ca.as_ref().expect("dev CA")).expect("CA");
    assert!(
        rt.block_on(DriverClient::connect(addr, name, trust, &oidc, None))
            .is_ok()
    );
}

#[test]
fn the_router_takes_the_issuers_admin_tokens_and_refuses_a_wrong_audience() {
    let iss = issuer_url();
    let router = itest::router::Router::start(
        &format!("[auth.oidc]\nissuer = \"{iss}\"\naudience = \"{AUDIENCE}\"\n"),
        None,
    );
    let admin = |aud: &str, ttl_s: u64| rsa().token(&oidc_claims(iss, aud, "admin", 0, ttl_s));
    let cells = |t: &str| router.get("/admin/v1/cells").token(t).send().status;
    assert_eq!(cells(&admin(AUDIENCE, 600)), 200);
    assert_eq!(cells(&admin("another-api", 600)), 401);
    // Admin tokens live at most 15 minutes, whoever signs them.
    assert_eq!(cells(&admin(AUDIENCE, 3600)), 401);
    // The router's own (HS256) admin token still works, and is minted short.
    let own = router.admin();
    assert_eq!(cells(&own), 200);
    let c = jsonwebtoken::dangerous::insecure_decode::<Value>(&own)
        .expect("claims")
        .claims;
    assert!(
        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap() <= 900,
        "{c}"
    );
}

/// Drivesim's drivers, on tokens that live 2 s, keep streaming: each session the cell closes
/// with `token_expired` is resumed on a new connection with a fresh token, not counted as an
/// error.
#[test]
fn drivesim_reconnects_with_a_fresh_token_when_its_token_expires() {
    use std::io::BufRead;
    let cell = cell();
    let ready = cell.ready();
    let bin = itest::harness::workspace_bin("drivesim", "DRIVESIM_BIN").expect("drivesim binary");
    let mut child = std::process::Command::new(bin)
        .args(["--http", &format!("http://{}", cell.addr())])
        .args(["--quic", &ready.quic.expect("QUIC gateway").to_string()])
        .arg("--ca")
        .arg(ready.quic_ca.as_ref().expect("dev CA"))
        .args([
            "--server-name",
            ready.quic_server_name.as_deref().unwrap_or("localhost"),
        ])
        .args([
            "--jwt-secret",
            SECRET,
            "--token-ttl-s",
            "2",
            "--drivers",
            "2",
        ])
        .args(["--first-driver-id", "8601", "--status-every", "1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawning drivesim");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    let ok = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            break false;
        };
        let reauths: u64 = line
            .split(" · re-authenticated ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let done =
            reauths >= 4 && line.contains("drivers 2/2 connected") && !line.contains("errors");
        seen.push(line);
        if done {
            break true;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ok,
        "drivesim never re-authenticated cleanly:\n{}",
        seen.join("\n")
    );
}
