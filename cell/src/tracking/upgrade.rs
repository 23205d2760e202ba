//! The tracking sockets' own WebSocket upgrade (in place of axum's `WebSocketUpgrade`): the
//! same handshake checks and `101` answer, plus a [`Watched`] stream under tungstenite that
//! reads the client's frame headers as they pass, so the socket task knows when a fragmented
//! message was started and can close it if it is not finished in time. tungstenite buffers
//! fragments and returns only whole messages, so this is not visible above it.
//!
//! The first message (the snapshot, the largest a socket sends) is written as a raw frame
//! before tungstenite takes the connection ([`Switched::send_first`]): tungstenite keeps its
//! write buffer at the size of the largest message it ever sent, for the life of the socket,
//! and with 100K trackers per cell that is the difference between a few hundred bytes and a
//! snapshot's 1–2 KiB each.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The upgraded connection under a tracking socket.
pub type Io = Watched<TokioIo<hyper::upgrade::Upgraded>>;

/// A tracking socket: tungstenite over the watched upgraded connection.
pub type Socket = WebSocketStream<Io>;

/// A connection that has switched to WebSocket, before tungstenite takes it.
pub struct Switched {
    io: Io,
    config: WebSocketConfig,
}

impl Switched {
    /// Writes `text` as one unmasked server text frame (RFC 6455 §5.2), straight to the
    /// connection: the way for the first message, so that its size never sets tungstenite's
    /// write buffer (see the module doc).
    pub async fn send_first(&mut self, text: &str) -> std::io::Result<()> {
        self.io.write_all(&text_frame(text.as_bytes())).await?;
        self.io.flush().await
    }

    /// tungstenite over the connection, for everything after the first message.
    pub async fn into_socket(self) -> Socket {
        WebSocketStream::from_raw_socket(self.io, Role::Server, Some(self.config)).await
    }
}

/// A final, unmasked text frame holding `payload`.
fn text_frame(payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut f = Vec::with_capacity(n + 10);
    f.push(0x81);
    if n < 126 {
        f.push(n as u8);
    } else if let Ok(n16) = u16::try_from(n) {
        f.push(126);
        f.extend_from_slice(&n16.to_be_bytes());
    } else {
        f.push(127);
        f.extend_from_slice(&(n as u64).to_be_bytes());
    }
    f.extend_from_slice(payload);
    f
}

/// When the client's unfinished fragmented message began (`None`: none open).
pub type FragmentOpen = watch::Receiver<Option<Instant>>;

/// A valid WebSocket upgrade request, not yet answered.
pub struct Upgrade {
    key: axum::http::HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
    config: WebSocketConfig,
}

/// Why a request is not a WebSocket upgrade; the statuses axum's extractor uses.
#[derive(Debug)]
pub struct NotAnUpgrade(StatusCode, &'static str);

impl IntoResponse for NotAnUpgrade {
    /// In the API's error shape, like every other refusal.
    fn into_response(self) -> Response {
        let code = match self.0 {
            StatusCode::METHOD_NOT_ALLOWED => "request.method_not_allowed",
            StatusCode::UPGRADE_REQUIRED => "request.upgrade_required",
            _ => "request.bad_handshake",
        };
        let body = serde_json::json!({ "error": { "code": code, "message": self.1 } });
        (self.0, axum::Json(body)).into_response()
    }
}

fn header_has(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = NotAnUpgrade;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, NotAnUpgrade> {
        let bad = |what| Err(NotAnUpgrade(StatusCode::BAD_REQUEST, what));
        if parts.method != Method::GET {
            return Err(NotAnUpgrade(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ));
        }
        // Not a WebSocket request at all (a plain GET): 426, naming the protocol to use.
        let upgrade_required = |what| Err(NotAnUpgrade(StatusCode::UPGRADE_REQUIRED, what));
        if !header_has(&parts.headers, header::CONNECTION, "upgrade") {
            return upgrade_required(
                "this endpoint is a WebSocket: Connection header did not include 'upgrade'",
            );
        }
        if !header_has(&parts.headers, header::UPGRADE, "websocket") {
            return upgrade_required(
                "this endpoint is a WebSocket: `Upgrade` header did not include 'websocket'",
            );
        }
        if !header_has(&parts.headers, header::SEC_WEBSOCKET_VERSION, "13") {
            return bad("`Sec-WebSocket-Version` header did not include '13'");
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return bad("`Sec-WebSocket-Key` header missing");
        };
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or(NotAnUpgrade(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ))?;
        Ok(Upgrade {
            key,
            on_upgrade,
            config: WebSocketConfig::default(),
        })
    }
}

impl Upgrade {
    /// tungstenite's limits for this socket.
    pub fn config(mut self, f: impl FnOnce(WebSocketConfig) -> WebSocketConfig) -> Self {
        self.config = f(self.config);
        self
    }

    /// Answers `101` and runs `callback` with the connection once the client has switched.
    pub fn on_upgrade<F, Fut>(self, callback: F) -> Response
    where
        F: FnOnce(Switched, FragmentOpen) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let accept =
            tokio_tungstenite::tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let (on_upgrade, config) = (self.on_upgrade, self.config);
        tokio::spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let (open_tx, open_rx) = watch::channel(None);
            let io = Watched::new(TokioIo::new(upgraded), open_tx);
            callback(Switched { io, config }, open_rx).await;
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "upgrade")
            .header(header::UPGRADE, "websocket")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(axum::body::Body::empty())
            .expect("a 101 with valid headers builds")
    }
}

/// Where the frame reader is in the client's byte stream.
#[derive(Debug, Clone, Copy)]
enum At {
    /// Collecting a frame header: the bytes so far.
    Header([u8; 14], usize),
    /// Skipping this many payload bytes.
    Payload(u64),
}

/// The upgraded connection, reading client frame headers as they pass (payloads are skipped,
/// never copied) to publish when a fragmented data message opens and closes.
pub struct Watched<IO> {
    io: IO,
    at: At,
    open: watch::Sender<Option<Instant>>,
}

impl<IO> Watched<IO> {
    fn new(io: IO, open: watch::Sender<Option<Instant>>) -> Self {
        Self {
            io,
            at: At::Header([0; 14], 0),
            open,
        }
    }

    /// Advances over bytes read from the client.
    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.at {
                At::Payload(left) => {
                    let n = (*left).min(bytes.len() as u64);
                    *left -= n;
                    bytes = &bytes[n as usize..];
                    if *left == 0 {
                        self.at = At::Header([0; 14], 0);
                    }
                }
                At::Header(buf, have) => {
                    buf[*have] = bytes[0];
                    *have += 1;
                    bytes = &bytes[1..];
                    if let Some((len, fin, opcode)) = header_complete(&buf[..*have]) {
                        self.frame(fin, opcode);
                        self.at = if len == 0 {
                            At::Header([0; 14], 0)
                        } else {
                            At::Payload(len)
                        };
                    }
                }
            }
        }
    }

    /// A frame header: data frames open (FIN clear) or close (FIN set) a message; control
    /// frames, which may come between fragments, change nothing.
    fn frame(&self, fin: bool, opcode: u8) {
        let data = opcode < 0x8;
        if !data {
            return;
        }
        let open = *self.open.borrow();
        match (open, fin) {
            (None, false) => {
                let _ = self.open.send(Some(Instant::now()));
            }
            (Some(_), true) => {
                let _ = self.open.send(None);
            }
            _ => {}
        }
    }
}

/// `(payload length, FIN, opcode)` once `h` holds a whole frame header.
fn header_complete(h: &[u8]) -> Option<(u64, bool, u8)> {
    if h.len() < 2 {
        return None;
    }
    let masked = h[1] & 0x80 != 0;
    let (ext, len7) = match h[1] & 0x7f {
        126 => (2, None),
        127 => (8, None),
        n => (0, Some(u64::from(n))),
    };
    let need = 2 + ext + if masked { 4 } else { 0 };
    if h.len() < need {
        return None;
    }
    let len = len7.unwrap_or_else(|| {
        h[2..2 + ext]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    });
    Some((len, h[0] & 0x80 != 0, h[0] & 0x0f))
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.observe(&buf.filled()[before..]);
        }
        r
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched() -> (Watched<()>, FragmentOpen) {
        let (tx, rx) = watch::channel(None);
        (Watched::new((), tx), rx)
    }

    #[test]
    fn raw_text_frames_use_the_shortest_length_encoding() {
        assert_eq!(text_frame(b"hi"), [0x81, 2, b'h', b'i']);
        let f = text_frame(&[b'x'; 300]);
        assert_eq!(&f[..4], &[0x81, 126, 1, 44]);
        assert_eq!(f.len(), 304);
        let f = text_frame(&vec![b'y'; 70_000]);
        assert_eq!(&f[..10], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(f.len(), 70_010);
    }

    #[tokio::test]
    async fn a_client_reads_the_raw_first_frame_and_then_tungstenites_frames() {
        use futures::{SinkExt, StreamExt};
        use tokio_tungstenite::tungstenite::Message;
        let texts = ["hi".to_owned(), "é".repeat(150), "z".repeat(70_000)];
        for first in &texts {
            let (server, client) = tokio::io::duplex(1 << 20);
            // As `Switched::send_first` and `into_socket` do, on an in-memory pipe.
            let (tx, _open) = watch::channel(None);
            let mut io = Watched::new(server, tx);
            io.write_all(&text_frame(first.as_bytes())).await.unwrap();
            let mut socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
            socket.send(Message::text("after")).await.unwrap();
            let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
            let got = client.next().await.unwrap().unwrap();
            assert_eq!(got, Message::text(first.clone()));
            let got = client.next().await.unwrap().unwrap();
            assert_eq!(got, Message::text("after"));
        }
    }

    #[test]
    fn a_fragment_opens_until_its_final_continuation_even_across_pings_and_splits() {
        let (mut w, open) = watched();
        // Text, FIN clear, masked, 3 bytes; split inside the header and the payload.
        let first = [0x01, 0x83, 1, 2, 3, 4, b'a', b'b', b'c'];
        w.observe(&first[..3]);
        assert!(open.borrow().is_none(), "the header is not complete yet");
        w.observe(&first[3..7]);
        assert!(open.borrow().is_some());
        w.observe(&first[7..]);
        // A ping between fragments (with a 126-style length) changes nothing.
        let mut ping = vec![0x89, 0x80 | 126, 0, 2, 9, 9, 9, 9, 0, 0];
        w.observe(&ping);
        assert!(open.borrow().is_some());
        ping.clear();
        // The final continuation closes it.
        w.observe(&[0x80, 0x81, 1, 2, 3, 4, b'd']);
        assert!(open.borrow().is_none());
        // A whole message never opens one.
        w.observe(&[0x81, 0x81, 1, 2, 3, 4, b'x']);
        assert!(open.borrow().is_none());
    }
}
