//! Tools for the edge-limit attack tests (`tests/edge_limits.rs`): raw HTTP over TCP, raw
//! WebSocket frames after a real upgrade, QUIC Initial packets that never complete a
//! handshake, and a process's resident memory.

use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit; children inherit it.
/// Returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct we own and have no other effect.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut lim) != 0 {
            return 1024;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &raw const lim);
    }
    lim.rlim_cur
}

/// Resident set size of process `pid`, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Sends `request` on a new connection and reads the response until the server closes or
/// `timeout` passes; the bytes read so far.
pub fn raw_http(addr: SocketAddr, request: &str, timeout: Duration) -> anyhow::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(request.as_bytes())?;
    Ok(read_until_closed(&mut s, timeout))
}

/// Reads until EOF, an error or `timeout`.
pub fn read_until_closed(s: &mut TcpStream, timeout: Duration) -> String {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        let _ = s.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ));
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `GET path` with a `Host` header that keeps the connection open.
pub fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: cell\r\n\r\n")
}

/// A WebSocket client speaking raw frames, after a real upgrade handshake.
pub struct RawWs {
    s: TcpStream,
    /// Bytes read past the handshake's head, not yet parsed as frames.
    pending: Vec<u8>,
}

/// One frame from the server.
#[derive(Debug)]
pub struct ServerFrame {
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawWs {
    /// Upgrades `GET path` (which carries its `?token=`); `Err` holds the refusal's head.
    pub fn connect(addr: SocketAddr, path: &str) -> anyhow::Result<RawWs> {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.set_nodelay(true)?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: cell\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.write_all(req.as_bytes())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            let n = s.read(&mut buf).context("reading the upgrade response")?;
            if n == 0 {
                bail!(
                    "closed during the upgrade: {}",
                    String::from_utf8_lossy(&got)
                );
            }
            got.extend_from_slice(&buf[..n]);
            if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&got[..head_end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            bail!("upgrade refused: {head}");
        }
        Ok(RawWs {
            s,
            pending: got[head_end..].to_vec(),
        })
    }

    /// Writes raw bytes (a frame, or part of one).
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes)
    }

    /// The next frame, or `None` once the connection ends (or in 5 s).
    pub fn next_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.pending) {
                self.pending.drain(..used);
                return Some(frame);
            }
            let mut buf = [0u8; 4096];
            match self.s.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.pending.extend_from_slice(&buf[..n]),
            }
        }
    }

    /// Skips data frames until a close frame: its code (`Some(None)` for a close without
    /// one), or `None` if the connection ended without a close frame.
    pub fn close_code(&mut self) -> Option<Option<u16>> {
        while let Some(f) = self.next_frame() {
            if f.opcode == 0x8 {
                return Some(
                    (f.payload.len() >= 2)
                        .then(|| u16::from_be_bytes([f.payload[0], f.payload[1]])),
                );
            }
        }
        None
    }
}

/// A client frame: `fin`, `opcode`, `payload`, masked unless `masked` is false.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => f.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

/// Only the head of a masked client frame announcing `len` payload bytes.
pub fn client_frame_head(opcode: u8, len: u64) -> Vec<u8> {
    let mut f = vec![0x80 | opcode, 0x80 | 127];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    f
}

fn parse_server_frame(b: &[u8]) -> Option<(ServerFrame, usize)> {
    if b.len() < 2 {
        return None;
    }
    let opcode = b[0] & 0x0f;
    let (len, mut at) = match b[1] & 0x7f {
        126 => (
            usize::from(u16::from_be_bytes(b.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (
            usize::try_from(u64::from_be_bytes(b.get(2..10)?.try_into().ok()?)).ok()?,
            10,
        ),
        n => (usize::from(n), 2),
    };
    if b[1] & 0x80 != 0 {
        at += 4; // a masked server frame is itself a violation; read past it anyway
    }
    let payload = b.get(at..at + len)?.to_vec();
    Some((ServerFrame { opcode, payload }, at + len))
}

/// Sends `count` QUIC Initial packets to `server`, each opening a new connection (a fresh
/// connection id) that never goes further: the client state is thrown away after its first
/// datagram, so nothing answers the server's handshake or a Retry. Spread evenly over
/// `over`. Returns how many were sent.
pub fn initial_flood(
    server: SocketAddr,
    server_name: &str,
    client: quinn_proto::ClientConfig,
    count: usize,
    over: Duration,
) -> anyhow::Result<usize> {
    let sock = UdpSocket::bind("127.0.0.1:0")?;
    let mut endpoint = quinn_proto::Endpoint::new(
        std::sync::Arc::new(quinn_proto::EndpointConfig::default()),
        None,
        false,
        None,
    );
    let started = Instant::now();
    let mut buf = Vec::with_capacity(1500);
    let mut sent = 0;
    for i in 0..count {
        // Pace: packet i goes out at i/count of the way through `over`.
        let due = started + over.mul_f64(i as f64 / count as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let now = Instant::now();
        let (_, mut conn) = endpoint
            .connect(now, client.clone(), server, server_name)
            .map_err(|e| anyhow::anyhow!("connect: {e}"))?;
        buf.clear();
        if let Some(t) = conn.poll_transmit(now, 1, &mut buf) {
            // A full socket buffer drops the packet, as a real network would.
            if sock.send_to(&buf[..t.size], server).is_ok() {
                sent += 1;
            }
        }
    }
    Ok(sent)
}
