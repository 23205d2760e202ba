//! TLS end to end with real processes: certificates from `router dev-certs`, a cell serving
//! HTTPS that requires client certificates, and a router serving HTTPS in front of it that
//! reaches the cell over TLS with the cell's certificate verified. An order is placed through
//! the router over https:// and tracked over wss://, every client verifying certificates;
//! plain http:// to either TLS listener is not served; and the router refuses a cell whose
//! certificate its CA did not sign, or any https cell when it has no CA.

use futures::StreamExt;
use itest::harness::{Cell, CellOpts};
use itest::live;
use itest::router::{NO_LIMITS, Router, router_bin};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `router dev-certs --out DIR --name …`: the CA and one certificate per name.
fn dev_certs(dir: &Path, names: &[&str]) -> PathBuf {
    let mut cmd = Command::new(router_bin().expect("router binary"));
    cmd.arg("dev-certs").arg("--out").arg(dir);
    for n in names {
        cmd.args(["--name", n]);
    }
    let out = cmd.output().expect("running router dev-certs");
    assert!(out.status.success(), "router dev-certs failed: {out:?}");
    dir.join("ca.pem")
}

fn pem(dir: &Path, name: &str) -> (String, String) {
    let f = |ext: &str| dir.join(format!("{name}.{ext}")).display().to_string();
    (f("pem"), f("key"))
}

/// A cell serving HTTPS with `name`'s certificate from `dir`, requiring client certificates
/// signed by `client_ca`.
fn tls_cell(dir: &Path, name: &str, client_ca: &Path) -> Cell {
    let (cert, key) = pem(dir, name);
    Cell::start(CellOpts {
        config_toml: Some(format!(
            "[http]\ntls_cert_file = \"{cert}\"\ntls_key_file = \"{key}\"\n\
             tls_client_ca_file = \"{}\"\n",
            client_ca.display()
        )),
        ..CellOpts::default()
    })
}

/// A blocking HTTPS client that trusts only `ca` (besides the system's roots, which never
/// sign our test CA's names).
fn https_client(ca: &Path) -> reqwest::blocking::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    reqwest::blocking::Client::builder()
        .add_root_certificate(ca)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn call(req: reqwest::blocking::RequestBuilder, token: &str, body: Option<&Value>) -> (u16, Value) {
    let req = req.bearer_auth(token);
    let req = match body {
        Some(b) => req.json(b),
        None => req,
    };
    let resp = req.send().expect("an https request with the CA trusted");
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

type Wss =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// Opens `wss://localhost:{port}{path}` on `addr`, verifying the server against `ca`.
async fn wss_open(addr: SocketAddr, ca: &Path, path: &str) -> Wss {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("the router's certificate verifies against the test CA");
    let url = format!("wss://localhost:{}{path}", addr.port());
    let (ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .expect("the tracking socket opens through the router");
    ws
}

/// The next JSON message, within 10 s.
async fn next_json(ws: &mut Wss) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a tracking message within 10 s")
            .expect("the socket stays open")
            .expect("a readable frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[test]
fn order_over_https_and_tracking_over_wss_through_the_router_with_tls_to_the_cell() {
    let certs = tempfile::tempdir().unwrap();
    let ca = dev_certs(certs.path(), &["router", "cell"]);
    let cell = tls_cell(certs.path(), "cell", &ca);
    assert!(cell.ready().tls, "the cell's READY line says it serves TLS");
    let (rcert, rkey) = pem(certs.path(), "router");
    let router = Router::start(
        &format!(
            "{NO_LIMITS}\n[tls]\ncert_file = \"{rcert}\"\nkey_file = \"{rkey}\"\n\
             [upstream]\nca_file = \"{ca}\"\nclient_cert_file = \"{rcert}\"\n\
             client_key_file = \"{rkey}\"\n",
            ca = ca.display()
        ),
        None,
    );
    let https = https_client(&ca);
    let base = format!("https://localhost:{}", router.addr().port());
    let at = |path: &str| format!("{base}{path}");
    // `localhost` is what the certificates name; the listener is on 127.0.0.1.
    let https_at = |m: reqwest::Method, path: &str| https.request(m, at(path));

    let endpoint = format!("https://localhost:{}", cell.addr().port());
    let (status, map) = call(
        https_at(reqwest::Method::POST, "/admin/v1/cells"),
        &router.admin(),
        Some(&json!({ "http": endpoint })),
    );
    assert_eq!(status, 201, "registering the https cell: {map}");

    // A restaurant open around the clock near Berlin's centre, found through the router.
    let customer = router.token("customer", 42, Some(1));
    let (status, found) = call(
        https_at(
            reqwest::Method::GET,
            "/api/v1/restaurants?lat=52.52&lng=13.405&radius=3km&page_size=50",
        ),
        &customer,
        None,
    );
    assert_eq!(status, 200, "{found}");
    let menus = found["restaurants"]
        .as_array()
        .expect("restaurants")
        .iter()
        .map(|r| {
            let id = r["id"].as_str().expect("id").to_owned();
            let (status, menu) = call(
                https_at(
                    reqwest::Method::GET,
                    &format!("/api/v1/restaurants/{id}/menu"),
                ),
                &customer,
                None,
            );
            assert_eq!(status, 200, "{menu}");
            (id, menu)
        });
    let (rid, menu) = menus
        .into_iter()
        .find(|(_, m)| {
            m["restaurant"]["hours"]["mon"]
                .as_array()
                .is_some_and(|iv| {
                    iv.iter()
                        .any(|i| i["open"] == "00:00" && i["close"] == "24:00")
                })
        })
        .expect("a restaurant open around the clock within 3 km");
    let lines = itest::fixtures::valid_lines(&menu, false);
    let body =
        itest::fixtures::order_body(&rid, &[(&lines[0], 1)], (52.52, 13.405), "pm_card_visa");
    let (status, placed) = call(
        https_at(reqwest::Method::POST, "/api/v1/orders")
            .header("Idempotency-Key", itest::fixtures::idem_key("tls")),
        &customer,
        Some(&body),
    );
    assert_eq!(
        status, 201,
        "placing the order through the router: {placed}"
    );
    let order = placed["order_id"].as_str().expect("order_id").to_owned();

    // Tracked over wss:// through the router (which splices it to the cell over TLS): the
    // snapshot first, then the restaurant's acceptance (status `confirmed`).
    let rt = live::runtime();
    let track = format!("/ws/orders/{order}/track?token={customer}");
    let mut ws = rt.block_on(wss_open(router.addr(), &ca, &track));
    let snapshot = rt.block_on(next_json(&mut ws));
    assert_eq!(snapshot["type"], "snapshot", "{snapshot:#}");
    assert_eq!(
        snapshot["order"]["order_id"],
        order.as_str(),
        "{snapshot:#}"
    );
    let rest = router.token("restaurant", rid.parse().expect("numeric id"), None);
    let (status, acc) = call(
        https_at(
            reqwest::Method::PATCH,
            &format!("/api/v1/restaurants/orders/{order}"),
        ),
        &rest,
        Some(&json!({ "status": "accepted" })),
    );
    assert_eq!(status, 200, "{acc}");
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|m: &Value| m["type"] == "status_update" && m["status"] == "confirmed")
    {
        assert!(seen.len() < 10, "no acceptance over wss: {seen:#?}");
        seen.push(rt.block_on(next_json(&mut ws)));
    }

    // Plain http:// to either TLS listener is not served.
    let plain = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for addr in [router.addr(), cell.addr()] {
        let r = plain.get(format!("http://{addr}/live")).send();
        assert!(
            r.is_err(),
            "plain http to the TLS listener {addr} was answered: {r:?}"
        );
    }
}

#[test]
fn the_router_refuses_a_cell_whose_certificate_its_ca_did_not_sign() {
    let (ours, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ca = dev_certs(ours.path(), &["router"]);
    let foreign_ca = dev_certs(theirs.path(), &["cell"]);
    let cell = tls_cell(theirs.path(), "cell", &foreign_ca);
    let router = Router::start(
        &format!("[upstream]\nca_file = \"{}\"\n", ca.display()),
        None,
    );
    let endpoint = format!("https://localhost:{}", cell.addr().port());
    let r = router
        .post("/admin/v1/cells")
        .token(&router.admin())
        .json(&json!({ "http": endpoint }))
        .send();
    assert_ne!(
        r.status, 201,
        "a cell with a foreign certificate was added: {}",
        r.text
    );
    assert!(
        r.text.contains("certificate") || r.text.contains("UnknownIssuer"),
        "the refusal names the certificate: {}",
        r.text
    );
    assert_eq!(router.cells()["cells"], json!([]));

    // A router without a CA does not try an https cell: the caller is told what is missing.
    let no_ca = Router::start("", None);
    let r = no_ca
        .post("/admin/v1/cells")
        .token(&no_ca.admin())
        .json(&json!({ "http": endpoint }))
        .send()
        .expect_status(400);
    assert!(r.text.contains("[upstream] ca_file"), "{}", r.text);
}
