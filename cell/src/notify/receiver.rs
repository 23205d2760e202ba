//! Test-only: an in-process webhook receiver (axum on 127.0.0.1:0) that behaves like a push
//! provider — it dedupes by `Idempotency-Key` — records every attempt, and can be told to
//! fail or stall the next requests.

use super::Notification;
use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Inner {
    /// The key of every request, in arrival order (duplicates and failures included).
    attempts: Vec<String>,
    /// First deliveries only, in order.
    delivered: Vec<Notification>,
    keys: HashSet<String>,
    /// The next `fail.0` requests answer `fail.1` without delivering.
    fail: (usize, u16),
    /// The next `stall.0` requests are held `stall.1` before being processed (so the client
    /// times out, but the notification is delivered anyway, as with a slow real provider).
    stall: (usize, Duration),
    /// Every request takes at least this long.
    delay: Duration,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/hook", post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn fail_next(&self, n: usize, status: u16) {
        self.inner.lock().unwrap().fail = (n, status);
    }

    pub fn stall_next(&self, n: usize, d: Duration) {
        self.inner.lock().unwrap().stall = (n, d);
    }

    pub fn set_delay(&self, d: Duration) {
        self.inner.lock().unwrap().delay = d;
    }

    pub fn attempts(&self) -> Vec<String> {
        self.inner.lock().unwrap().attempts.clone()
    }

    pub fn delivered(&self) -> Vec<Notification> {
        self.inner.lock().unwrap().delivered.clone()
    }

    pub fn delivered_keys(&self) -> Vec<String> {
        let d = self.delivered();
        d.into_iter().map(|n| n.idempotency_key).collect()
    }
}

async fn hook(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Json(n): Json<Notification>,
) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // The header and the body must agree, or dedupe by header would be meaningless.
    if key.is_empty() || key != n.idempotency_key {
        return StatusCode::BAD_REQUEST;
    }
    let (fail, wait) = {
        let mut i = inner.lock().unwrap();
        i.attempts.push(key.clone());
        let fail = if i.fail.0 > 0 {
            i.fail.0 -= 1;
            Some(i.fail.1)
        } else {
            None
        };
        let mut wait = i.delay;
        if fail.is_none() && i.stall.0 > 0 {
            i.stall.0 -= 1;
            wait += i.stall.1;
        }
        (fail, wait)
    };
    if let Some(status) = fail {
        return StatusCode::from_u16(status).unwrap();
    }
    tokio::time::sleep(wait).await;
    let mut i = inner.lock().unwrap();
    if i.keys.insert(key) {
        i.delivered.push(n);
    }
    // A duplicate is acknowledged like the first: the sender's job is done either way.
    StatusCode::OK
}
