//! A small blocking HTTP client for tests: build a request, send it, get a [`Resp`] with
//! status, text and parsed JSON. Transport failures panic with the cell's log path, since
//! they usually mean the cell died.

use reqwest::Method;
use reqwest::blocking::Client as Http;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Talks to one cell process.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: Http,
    /// Named in transport-error panics.
    log_path: PathBuf,
}

/// A request being built; [`Req::send`] sends it.
pub struct Req<'a> {
    client: &'a Client,
    method: Method,
    path: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<(Option<String>, Vec<u8>)>,
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Resp {
    /// "PATCH /api/v1/...", for assertion messages.
    pub what: String,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub content_type: String,
    pub text: String,
    /// `Value::Null` when the body is not JSON.
    pub json: Value,
}

// === impl Client ===

impl Client {
    pub fn new(addr: SocketAddr, log_path: PathBuf) -> Client {
        let http = Http::builder()
            // Never route 127.0.0.1 through an HTTP_PROXY from the environment.
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("building the HTTP client");
        Client {
            base: format!("http://{addr}"),
            http,
            log_path,
        }
    }

    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            client: self,
            method,
            path: path.to_owned(),
            token: None,
            headers: Vec::new(),
            body: None,
        }
    }
}

// === impl Req ===

impl Req<'_> {
    /// `Authorization: Bearer <token>`.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn json(mut self, body: &impl serde::Serialize) -> Self {
        let bytes = serde_json::to_vec(body).expect("serializing a request body");
        self.body = Some((Some("application/json".into()), bytes));
        self
    }

    /// A body sent as is, with `content_type` if given.
    pub fn raw(mut self, content_type: Option<&str>, bytes: impl Into<Vec<u8>>) -> Self {
        self.body = Some((content_type.map(str::to_owned), bytes.into()));
        self
    }

    pub fn send(self) -> Resp {
        let what = format!("{} {}", self.method, self.path);
        let mut rb = self
            .client
            .http
            .request(self.method, format!("{}{}", self.client.base, self.path));
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        for (k, v) in &self.headers {
            rb = rb.header(k, v);
        }
        if let Some((ct, bytes)) = self.body {
            if let Some(ct) = ct {
                rb = rb.header(reqwest::header::CONTENT_TYPE, ct);
            }
            rb = rb.body(bytes);
        }
        let resp = rb.send().unwrap_or_else(|e| {
            panic!(
                "{what}: no response ({e}); did the cell die? log: {}",
                self.client.log_path.display()
            )
        });
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let headers = resp.headers().clone();
        let text = resp
            .text()
            .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp {
            what,
            status,
            headers,
            content_type,
            text,
            json,
        }
    }
}

// === impl Resp ===

impl Resp {
    /// Panics unless the status is `status`, showing the body.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Self {
        assert_eq!(
            self.status, status,
            "{}: expected {status}, got {} with body {}",
            self.what, self.status, self.text
        );
        self
    }

    /// Panics unless this is an error with `status`, the documented JSON shape
    /// `{"error": {"code", "message"}}` (plus `status` for a refused transition), and `code`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Self {
        let r = self.expect_status(status);
        assert_error_shape(&r);
        assert_eq!(
            r.error_code(),
            code,
            "{}: wrong error code in {}",
            r.what,
            r.text
        );
        r
    }

    /// The error body's `code`, or "" when the body is not our error shape.
    pub fn error_code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// The error body's `message`, or "".
    pub fn error_message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }
}

/// Every error body is JSON `{"error": {"code": "<non-empty>", "message": "<non-empty>"}}`,
/// with an optional string `status`, on a 429 from a per-user limit an optional `limit`
/// (`max`, `window_s`, `retry_after_s`, whole numbers), and nothing else.
#[track_caller]
pub fn assert_error_shape(r: &Resp) {
    let ctx = || format!("{} ({}): body {:?}", r.what, r.status, r.text);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}: content-type {:?}",
        ctx(),
        r.content_type
    );
    let top = r
        .json
        .as_object()
        .unwrap_or_else(|| panic!("{}: not a JSON object", ctx()));
    assert_eq!(top.len(), 1, "{}: only `error` at the top level", ctx());
    let err = top["error"]
        .as_object()
        .unwrap_or_else(|| panic!("{}: `error` is not an object", ctx()));
    for key in ["code", "message"] {
        let v = err.get(key).and_then(Value::as_str);
        assert!(
            v.is_some_and(|s| !s.is_empty()),
            "{}: `error.{key}` missing or empty",
            ctx()
        );
    }
    for key in err.keys() {
        assert!(
            matches!(key.as_str(), "code" | "message" | "status" | "limit"),
            "{}: unexpected key error.{key}",
            ctx()
        );
    }
    if let Some(s) = err.get("status") {
        assert!(s.is_string(), "{}: error.status must be a string", ctx());
    }
    if let Some(l) = err.get("limit") {
        assert_eq!(r.status, 429, "{}: error.limit outside a 429", ctx());
        let l = l
            .as_object()
            .unwrap_or_else(|| panic!("{}: error.limit is not an object", ctx()));
        let mut keys: Vec<&str> = l.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["max", "retry_after_s", "window_s"], "{}", ctx());
        assert!(
            l.values().all(Value::is_u64),
            "{}: error.limit holds counts",
            ctx()
        );
    }
}
