//! [`DriverClient`]: one driver's connection to a cell.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use flatbuffers::FlatBufferBuilder;
use quinn::{Connection, ConnectionError, Endpoint, VarInt};
use schemas::{
    CellBody, CellMsg, CloseReason, DriverBody, DriverMsg, FRAME_HEADER_BYTES, Hello, HelloAck,
    LocationPing, MAX_CONTROL_MESSAGE_BYTES, PROTOCOL_VERSION, frame_len,
};
use tokio::sync::Mutex;

use crate::Trust;

/// Client keep-alive: well inside the cell's default 30 s idle timeout, and what keeps NAT
/// mappings open while the driver is offline and not pinging.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Client-side idle timeout.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Bad trust material or TLS settings.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// Binding the local UDP socket.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The connection could not be started (bad server name, endpoint closed, ...).
    #[error("connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// The cell closed the connection with an application code.
    #[error("closed by the cell: {reason:?} (code {code}) {message:?}")]
    Closed {
        /// The known reason for `code`, if any.
        reason: Option<CloseReason>,
        /// The QUIC application error code.
        code: u64,
        /// The reason phrase.
        message: String,
    },
    /// The connection failed otherwise (handshake, timeout, reset, closed locally).
    #[error("connection: {0}")]
    Connection(ConnectionError),
    /// The cell sent something this client cannot accept, or the control stream broke.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A datagram could not be sent (unsupported by the peer, too large, connection gone).
    #[error("datagram: {0}")]
    Datagram(#[from] quinn::SendDatagramError),
    /// No `HelloAck` before the deadline.
    #[error("timed out waiting for the cell")]
    Timeout,
}

impl ClientError {
    /// The cell's close reason, when this error is the cell closing the connection.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self {
            Self::Closed { reason, .. } => *reason,
            _ => None,
        }
    }
}

fn conn_err(e: ConnectionError) -> ClientError {
    match e {
        ConnectionError::ApplicationClosed(c) => ClientError::Closed {
            reason: CloseReason::from_code(c.error_code.into_inner()),
            code: c.error_code.into_inner(),
            message: String::from_utf8_lossy(&c.reason).into_owned(),
        },
        e => ClientError::Connection(e),
    }
}

/// Everything about one connection attempt.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The cell's QUIC address.
    pub addr: SocketAddr,
    /// TLS server name (the cell's `server_name`).
    pub server_name: String,
    /// The driver's JWT.
    pub token: String,
    /// Session to resume (`HelloAck.session_id` of an earlier connection).
    pub resume: Option<u64>,
    /// Highest offer id seen, so a resumed session can replay what was missed.
    pub last_offer_id: Option<u64>,
    /// Sent in `Hello.app_version`.
    pub app_version: String,
    /// Sent in `Hello.protocol_version` ([`PROTOCOL_VERSION`] unless testing the refusal).
    pub protocol_version: u16,
    /// Deadline for the handshake plus the `HelloAck`.
    pub hello_timeout: Duration,
}

impl ConnectOptions {
    /// Defaults for everything but the address, name and token.
    pub fn new(addr: SocketAddr, server_name: &str, token: &str) -> Self {
        Self {
            addr,
            server_name: server_name.to_owned(),
            token: token.to_owned(),
            resume: None,
            last_offer_id: None,
            app_version: concat!("driver-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            protocol_version: PROTOCOL_VERSION,
            hello_timeout: Duration::from_secs(10),
        }
    }
}

/// A client endpoint (one UDP socket) that many [`DriverClient`]s can share via
/// [`DriverClient::connect_on`]; `bind` is usually `0.0.0.0:0`.
pub fn client_endpoint(trust: &Trust, bind: SocketAddr) -> Result<Endpoint, ClientError> {
    let mut endpoint = Endpoint::client(bind)?;
    endpoint.set_default_client_config(crate::client_config(trust, KEEP_ALIVE, IDLE_TIMEOUT)?);
    Ok(endpoint)
}

struct Tx {
    send: quinn::SendStream,
    fbb: FlatBufferBuilder<'static>,
    buf: Vec<u8>,
    seq: u64,
}

struct Rx {
    recv: quinn::RecvStream,
    buf: Vec<u8>,
}

/// One driver's session with a cell. Every method takes `&self`, so one task can wait on
/// [`DriverClient::next_message`] while another (or a `select!` arm) sends.
pub struct DriverClient {
    conn: Connection,
    /// Set when [`DriverClient::connect`] made the endpoint: it must outlive the connection.
    own_endpoint: Option<Endpoint>,
    ack: HelloAck,
    tx: Mutex<Tx>,
    rx: Mutex<Rx>,
}

impl DriverClient {
    /// Connects on a fresh endpoint, says `Hello` and waits for the `HelloAck`.
    /// A refusal by the cell is [`ClientError::Closed`] with its reason.
    pub async fn connect(
        addr: SocketAddr,
        server_name: &str,
        trust: Trust,
        token: &str,
        resume: Option<u64>,
    ) -> Result<Self, ClientError> {
        let bind: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = client_endpoint(&trust, bind)?;
        let mut opts = ConnectOptions::new(addr, server_name, token);
        opts.resume = resume;
        let mut client = Self::connect_on(&endpoint, &opts).await?;
        client.own_endpoint = Some(endpoint);
        Ok(client)
    }

    /// Connects through a shared endpoint (see [`client_endpoint`]).
    pub async fn connect_on(
        endpoint: &Endpoint,
        opts: &ConnectOptions,
    ) -> Result<Self, ClientError> {
        let attempt = async {
            let conn = endpoint
                .connect(opts.addr, &opts.server_name)?
                .await
                .map_err(conn_err)?;
            let (send, recv) = conn.open_bi().await.map_err(conn_err)?;
            let mut tx = Tx {
                send,
                fbb: FlatBufferBuilder::with_capacity(1024),
                buf: Vec::with_capacity(1024),
                seq: 0,
            };
            let hello = Hello {
                protocol_version: opts.protocol_version,
                token: opts.token.clone(),
                app_version: opts.app_version.clone(),
                resume_session_id: opts.resume,
                last_offer_id: opts.last_offer_id,
            };
            write_msg(&conn, &mut tx, hello.into()).await?;
            let mut rx = Rx {
                recv,
                buf: Vec::new(),
            };
            match read_msg(&conn, &mut rx).await? {
                CellMsg {
                    body: CellBody::HelloAck(ack),
                    ..
                } => Ok(Self {
                    conn,
                    own_endpoint: None,
                    ack,
                    tx: Mutex::new(tx),
                    rx: Mutex::new(rx),
                }),
                other => Err(ClientError::Protocol(format!(
                    "expected HelloAck, got {other:?}"
                ))),
            }
        };
        tokio::time::timeout(opts.hello_timeout, attempt)
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    /// The cell's `HelloAck`: session id, ping interval and transport, resumed or not.
    pub fn hello_ack(&self) -> &HelloAck {
        &self.ack
    }

    /// The underlying QUIC connection (stats, RTT, raw datagrams in tests).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Sends one ping as a QUIC datagram (unreliable: a lost ping is superseded by the next).
    pub fn send_ping(&self, ping: &LocationPing) -> Result<(), ClientError> {
        self.conn.send_datagram(Bytes::from(ping.to_vec()))?;
        Ok(())
    }

    /// Sends one message on the control stream; returns its `seq` (echoed by the cell's `Ack`
    /// or `ErrorMsg.ref_seq`).
    pub async fn send(&self, body: impl Into<DriverBody>) -> Result<u64, ClientError> {
        let mut tx = self.tx.lock().await;
        write_msg(&self.conn, &mut tx, body.into()).await
    }

    /// Writes raw bytes on the control stream: for tests of the cell's protocol checks.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        let mut tx = self.tx.lock().await;
        tx.send.write_all(bytes).await.map_err(write_err)
    }

    /// The next message from the cell; `None` once the connection or stream has ended (see
    /// [`DriverClient::close_reason`] / [`DriverClient::closed`]). An undecodable message
    /// closes the connection with `protocol_violation`. Cancel-safe.
    pub async fn next_message(&self) -> Option<CellMsg> {
        let mut rx = self.rx.lock().await;
        match read_msg(&self.conn, &mut rx).await {
            Ok(m) => Some(m),
            Err(ClientError::Protocol(e)) => {
                tracing::warn!(error = %e, "undecodable message from the cell");
                let r = CloseReason::ProtocolViolation;
                self.conn
                    .close(VarInt::from(r.code()), r.as_str().as_bytes());
                None
            }
            Err(_) => None,
        }
    }

    /// Why the cell closed the connection, once it has (`None` while open, or when it ended
    /// another way: see [`DriverClient::closed`]).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.conn.close_reason().map(conn_err)?.close_reason()
    }

    /// Waits until the connection is closed, and says how.
    pub async fn closed(&self) -> ClientError {
        conn_err(self.conn.closed().await)
    }

    /// Closes with code 0 (`normal`) and, if this client owns its endpoint, waits briefly so
    /// the close reaches the cell.
    pub async fn close(&self) {
        let r = CloseReason::Normal;
        self.conn
            .close(VarInt::from(r.code()), r.as_str().as_bytes());
        if let Some(endpoint) = &self.own_endpoint {
            let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
        }
    }
}

fn write_err(e: quinn::WriteError) -> ClientError {
    match e {
        quinn::WriteError::ConnectionLost(e) => conn_err(e),
        e => ClientError::Protocol(format!("control stream: {e}")),
    }
}

async fn write_msg(conn: &Connection, tx: &mut Tx, body: DriverBody) -> Result<u64, ClientError> {
    tx.seq += 1;
    let msg = DriverMsg::new(tx.seq, body);
    tx.buf.clear();
    msg.encode_framed(&mut tx.fbb, &mut tx.buf);
    match tx.send.write_all(&tx.buf).await {
        Ok(()) => Ok(tx.seq),
        // A write can fail as "stopped" while the real cause is the connection's close.
        Err(e) => Err(conn.close_reason().map_or_else(|| write_err(e), conn_err)),
    }
}

async fn read_msg(conn: &Connection, rx: &mut Rx) -> Result<CellMsg, ClientError> {
    loop {
        if let Some(header) = rx.buf.first_chunk::<FRAME_HEADER_BYTES>() {
            let len = frame_len(*header).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let end = FRAME_HEADER_BYTES + len;
            if rx.buf.len() >= end {
                let msg = CellMsg::decode(&rx.buf[FRAME_HEADER_BYTES..end]);
                rx.buf.drain(..end);
                return msg.map_err(|e| ClientError::Protocol(e.to_string()));
            }
        }
        let chunk = rx
            .recv
            .read_chunk(FRAME_HEADER_BYTES + MAX_CONTROL_MESSAGE_BYTES, true)
            .await;
        match chunk {
            Ok(Some(chunk)) => rx.buf.extend_from_slice(&chunk.bytes),
            Ok(None) => {
                // The cell finished the stream; it closes the connection right after.
                return Err(conn_err(conn.closed().await));
            }
            Err(quinn::ReadError::ConnectionLost(e)) => return Err(conn_err(e)),
            Err(e) => return Err(ClientError::Protocol(format!("control stream: {e}"))),
        }
    }
}
