//! Orders through a payment provider outage, and the per-user limits, against real cells.
//!
//! The outage is scaled down from the "provider down for 60 s at 200 orders/s"
//! (`loadgen/bench/payments-outage.sh` runs that): the cell talks to a Stripe-shaped provider
//! served by this test (the cell's real `StripeGateway` over real HTTP), which is switched
//! down (503 to everything) and back up. Orders placed while it is down get 202
//! `payment_pending`; a retry with the same Idempotency-Key gets the same order; once the
//! provider is back the cell's authorization queue holds the funds and the orders go on to
//! `pending`, where the restaurant accepts them and the payment is captured.
//!
//! The limits: the 6th order of a customer in an hour is 429 with Retry-After and the limit
//! in the body, also after a restart (the count comes from the stored orders); the per-user
//! request rate is 429 past its burst, and admins are exempt.

use itest::fixtures::*;
use itest::{Cell, CellOpts};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the queue may take to authorize after the provider is back: generous, as the
/// breaker's cooldown and the queue's poll come first (a deadline to wait, not a timing).
const WAIT: Duration = Duration::from_secs(30);

/// What the stand-in provider saw and holds.
#[derive(Default)]
struct Provider {
    down: AtomicBool,
    /// Idempotency key → payment intent id (the same key answers the same intent).
    intents: Mutex<HashMap<String, String>>,
    /// Every request that reached it while up: (path, idempotency key).
    seen: Mutex<Vec<(String, String)>>,
}

impl Provider {
    /// Serves Stripe-shaped answers on a local port until the test ends.
    fn start() -> (Arc<Provider>, u16) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the provider");
        let port = listener.local_addr().expect("addr").port();
        let p = Arc::new(Provider::default());
        let served = p.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let p = served.clone();
                std::thread::spawn(move || p.serve(conn));
            }
        });
        (p, port)
    }

    /// One request per connection (answered with `Connection: close`).
    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().expect("clone"));
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let (mut len, mut key) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or(("", ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => len = value.trim().parse().unwrap_or(0),
                "idempotency-key" => key = value.trim().to_owned(),
                _ => {}
            }
        }
        let mut body = vec![0; len];
        let _ = reader.read_exact(&mut body);
        let form: HashMap<String, String> = String::from_utf8_lossy(&body)
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (status, answer) = self.answer(&path, &key, &form);
        let text = answer.to_string();
        let mut out = conn;
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
            text.len()
        );
    }

    fn answer(&self, path: &str, key: &str, form: &HashMap<String, String>) -> (&str, Value) {
        if self.down.load(Ordering::SeqCst) {
            let e = json!({"error": {"type": "api_error", "message": "down for the test"}});
            return ("503 Service Unavailable", e);
        }
        self.seen
            .lock()
            .unwrap()
            .push((path.to_owned(), key.to_owned()));
        let amount: i64 = form
            .get("amount")
            .or_else(|| form.get("amount_to_capture"))
            .and_then(|a| a.parse().ok())
            .unwrap_or(0);
        if path == "/v1/payment_intents" {
            let mut intents = self.intents.lock().unwrap();
            let n = intents.len();
            let id = intents
                .entry(key.to_owned())
                .or_insert_with(|| format!("pi_itest{n}"))
                .clone();
            return (
                "200 OK",
                json!({"id": id, "amount": amount, "status": "requires_capture"}),
            );
        }
        let id = path.split('/').nth(3).unwrap_or("").to_owned();
        if path.ends_with("/capture") {
            let pi = json!({"id": id, "amount": amount, "amount_received": amount, "status": "succeeded"});
            return ("200 OK", pi);
        }
        if path.ends_with("/cancel") {
            return (
                "200 OK",
                json!({"id": id, "amount": amount, "status": "canceled"}),
            );
        }
        ("404 Not Found", json!({"error": {"message": "no route"}}))
    }

    fn authorize_keys(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == "/v1/payment_intents")
            .map(|(_, k)| k.clone())
            .collect()
    }
}

/// Polls the order until its status is `want` (or panics after [`WAIT`]).
fn wait_for_status(cell: &Cell, token: &str, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let o = get_order(cell, token, id);
        if o["status"] == want {
            return o;
        }
        assert!(
            Instant::now() < deadline,
            "order {id} still {} after {WAIT:?}, want {want}",
            o["status"]
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn orders_placed_while_the_provider_is_down_are_queued_then_authorized_when_it_is_back() {
    let (provider, port) = Provider::start();
    provider.down.store(true, Ordering::SeqCst);
    let cell = Cell::start(CellOpts {
        config_toml: Some(format!(
            "[demo]\nrestaurants = 300\n\
             [payments]\ntimeout_ms = 500\nmax_retries = 0\nbreaker_cooldown_ms = 300\n\
             [payments.provider]\nkind = \"stripe\"\nbase_url = \"http://127.0.0.1:{port}/\"\n\
             secret_key = \"sk_test_itest\"\n\
             [payment_queue]\npoll_interval_ms = 100\n"
        )),
        ..CellOpts::default()
    });
    let pick = restaurant(&cell, 0);
    let body = simple_order(&cell, 0, PM_VISA);
    let rest = cell.token("restaurant", &pick.id);

    // Down: every placement is accepted for processing, none fails.
    let mut placed = Vec::new();
    for c in 0..3 {
        let cust = cell.token("customer", 9100 + c);
        let key = idem_key("outage");
        let r = place(&cell, &cust, &body, &key).expect_status(202);
        assert_eq!(r.json["status"], "payment_pending", "{}", r.text);
        assert_eq!(r.json["message"], "Order is being processed");
        let id = r.json["order_id"].as_str().expect("order_id").to_owned();
        placed.push((cust, key, id));
    }
    // A retry while queued: the same order, still 202.
    let (cust0, key0, id0) = &placed[0];
    let again = place(&cell, cust0, &body, key0).expect_status(202);
    assert_eq!(again.json["order_id"], id0.as_str());
    // The restaurant cannot act on it yet: a refusal, not a server error.
    set_status(&cell, &rest, id0, "accepted").expect_error(409, "order.invalid_transition");
    let o = get_order(&cell, cust0, id0);
    assert_eq!(
        (o["status"].as_str(), o["payment_status"].as_str()),
        (Some("payment_pending"), Some("authorization_pending"))
    );
    assert!(provider.authorize_keys().is_empty());

    // Back up: the queue authorizes each order once, and they go on as usual.
    provider.down.store(false, Ordering::SeqCst);
    for (cust, _, id) in &placed {
        let o = wait_for_status(&cell, cust, id, "pending");
        assert_eq!(o["payment_status"], "authorized");
    }
    let mut keys = provider.authorize_keys();
    keys.sort();
    let mut want: Vec<String> = placed
        .iter()
        .map(|(_, _, id)| format!("order-{id}-authorize"))
        .collect();
    want.sort();
    keys.dedup();
    assert_eq!(keys, want, "one authorization key per order");
    set_status(&cell, &rest, id0, "accepted").expect_status(200);
    // The capture is committed as pending and performed by the payment worker.
    let o = itest::fixtures::settled_order(&cell, cust0, id0);
    assert_eq!(o["payment_status"], "captured");
    // The same key once more: the same order, now an ordinary replay.
    let replay = place(&cell, cust0, &body, key0).expect_status(200);
    assert_eq!(replay.json["order_id"], id0.as_str());
}

#[test]
fn the_sixth_order_in_an_hour_is_429_with_retry_after_also_after_a_restart() {
    let mut cell = Cell::start(CellOpts {
        config_toml: Some("[demo]\nrestaurants = 300\n".into()),
        ..CellOpts::default()
    });
    let body = simple_order(&cell, 0, PM_VISA);
    let cust = cell.token("customer", 9200);
    for _ in 0..5 {
        place(&cell, &cust, &body, &idem_key("limit")).expect_status(201);
    }
    let check = |cell: &Cell| {
        let r =
            place(cell, &cust, &body, &idem_key("sixth")).expect_error(429, "order.limit_reached");
        let retry: u64 = r.headers["retry-after"]
            .to_str()
            .expect("ascii")
            .parse()
            .expect("seconds");
        assert!((1..=3600).contains(&retry), "Retry-After {retry}");
        let limit = &r.json["error"]["limit"];
        assert_eq!(
            (limit["max"].as_u64(), limit["window_s"].as_u64()),
            (Some(5), Some(3600))
        );
        assert_eq!(limit["retry_after_s"].as_u64(), Some(retry));
    };
    check(&cell);
    // Another customer is not affected.
    place(
        &cell,
        &cell.token("customer", 9201),
        &body,
        &idem_key("other"),
    )
    .expect_status(201);
    // Derived from the stored orders: a restart does not reset it.
    cell.restart();
    check(&cell);
}

#[test]
fn the_per_user_request_rate_is_429_past_its_burst_and_admins_are_exempt() {
    let cell = Cell::start(CellOpts {
        config_toml: Some(
            "[demo]\nrestaurants = 300\n[limits]\nper_user_rps = 1\nper_user_burst = 3\n".into(),
        ),
        ..CellOpts::default()
    });
    let cust = cell.token("customer", 9300);
    let list = |t: &str| cell.get("/api/v1/orders?customer=me").token(t).send();
    // The burst, then refusals: the requests follow each other far faster than one a
    // second, so at most one refill lets another through.
    let statuses: Vec<u16> = (0..8).map(|_| list(&cust).status).collect();
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    let r = (0..100)
        .map(|_| list(&cust))
        .find(|r| r.status == 429)
        .expect("a 429 past the burst")
        .expect_error(429, "request.rate_limited");
    assert!(
        r.headers.contains_key("retry-after"),
        "429 without Retry-After"
    );
    assert_eq!(r.json["error"]["limit"]["max"], 1);
    // Another user has their own allowance; an admin has none to spend.
    list(&cell.token("customer", 9301)).expect_status(200);
    let admin = cell.token("admin", 0);
    for _ in 0..20 {
        cell.get("/api/v1/admin/pings")
            .token(&admin)
            .send()
            .expect_status(200);
    }
}
