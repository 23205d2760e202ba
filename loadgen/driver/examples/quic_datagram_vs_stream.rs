//! Datagrams or a uni stream for location pings? Same server settings as the cell's gateway
//! (SO_RCVBUF 4 MiB, 32 KiB per-connection datagram buffer, verified `LocationPing::decode` per
//! ping), one process: the server on its own single-threaded runtime pinned to CPU 0 (its
//! thread's CPU time is the cost), the clients on CPU 1.
//!
//! ```sh
//! cargo run --release -p driver-client --example quic_datagram_vs_stream -- [conns] [rate] [secs] [burst]
//! ```
//! Defaults: 500 connections, 50,000 pings/s for 3 s, then a burst of 200 pings per connection,
//! then the paced run again with 2% of client packets dropped (a mobile network: the client
//! socket drops them, so the server sees what a lossy radio link delivers).
//! Reports, per transport: pings received, loss, server CPU per ping, and latency (client send
//! to server decode) p50/p99.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use driver_client::Trust;
use schemas::{FRAME_HEADER_BYTES, LocationPing, frame_len};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Datagram,
    UniStream,
}

/// What the server counted.
#[derive(Default)]
struct Counts {
    received: AtomicU64,
    /// Latency samples in µs: every 16th ping, to keep the vector small.
    lat: std::sync::Mutex<Vec<u32>>,
}

/// A client socket that drops a fraction of outgoing packets (one per transmit: segmentation
/// offload is turned off so a transmit is one packet).
#[derive(Debug)]
struct Lossy {
    inner: Arc<dyn quinn::AsyncUdpSocket>,
    /// Drop probability in 1/1,000,000.
    loss_ppm: u64,
    state: AtomicU64,
}

impl quinn::AsyncUdpSocket for Lossy {
    fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
        Arc::clone(&self.inner).create_io_poller()
    }
    fn try_send(&self, t: &quinn::udp::Transmit) -> std::io::Result<()> {
        // xorshift: deterministic, cheap, good enough for a drop decision.
        let mut x = self.state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state.store(x, Ordering::Relaxed);
        if x % 1_000_000 < self.loss_ppm {
            return Ok(());
        }
        self.inner.try_send(t)
    }
    fn poll_recv(
        &self,
        cx: &mut std::task::Context,
        bufs: &mut [std::io::IoSliceMut<'_>],
        meta: &mut [quinn::udp::RecvMeta],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }
    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
    fn max_transmit_segments(&self) -> usize {
        1
    }
    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }
    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer for clock_gettime.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity on it are sound.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn micros_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_micros() as u64
}

fn record(counts: &Counts, ping: &LocationPing, epoch: Instant) {
    let n = counts.received.fetch_add(1, Ordering::Relaxed);
    if n.is_multiple_of(16) {
        let lat = micros_since(epoch).saturating_sub(ping.client_ts_ms);
        counts
            .lat
            .lock()
            .unwrap()
            .push(lat.min(u64::from(u32::MAX)) as u32);
    }
}

fn server_config(cert: &rcgen::CertifiedKey) -> quinn::ServerConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into()),
        )
        .unwrap();
    tls.alpn_protocols = vec![driver_client::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut t = quinn::TransportConfig::default();
    // As the gateway: small datagram buffer, bounded stream windows.
    t.datagram_receive_buffer_size(Some(32 * 1024))
        .stream_receive_window(quinn::VarInt::from_u32(64 * 1024))
        .receive_window(quinn::VarInt::from_u32(64 * 1024))
        .max_concurrent_uni_streams(quinn::VarInt::from_u32(1));
    cfg.transport_config(Arc::new(t));
    cfg
}

fn udp_socket() -> std::net::UdpSocket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    s.set_recv_buffer_size(4 * 1024 * 1024).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    s.into()
}

async fn serve_conn(conn: quinn::Connection, counts: Arc<Counts>, epoch: Instant) {
    let dg = async {
        while let Ok(b) = conn.read_datagram().await {
            if let Ok(p) = LocationPing::decode(&b) {
                record(&counts, &p, epoch);
            }
        }
    };
    let uni = async {
        while let Ok(mut recv) = conn.accept_uni().await {
            let mut buf = Vec::new();
            while let Ok(Some(chunk)) = recv.read_chunk(64 * 1024, true).await {
                buf.extend_from_slice(&chunk.bytes);
                let mut at = 0;
                while let Some(h) = buf[at..].first_chunk::<FRAME_HEADER_BYTES>() {
                    let len = frame_len(*h).unwrap();
                    let end = at + FRAME_HEADER_BYTES + len;
                    if buf.len() < end {
                        break;
                    }
                    if let Ok(p) = LocationPing::decode(&buf[at + FRAME_HEADER_BYTES..end]) {
                        record(&counts, &p, epoch);
                    }
                    at = end;
                }
                buf.drain(..at);
            }
        }
    };
    tokio::join!(dg, uni);
}

struct Run {
    sent: u64,
    received: u64,
    cpu: Duration,
    wall: Duration,
    lat: Vec<u32>,
}

/// One measurement: `conns` connections send `per_conn` pings each, paced to `rate` pings/s
/// in total (0 = as fast as possible), over `mode`.
fn run(mode: Mode, conns: usize, rate: u64, per_conn: u64, loss_ppm: u64) -> Run {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let ca = cert.cert.pem().into_bytes();
    let counts = Arc::new(Counts::default());
    let epoch = Instant::now();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_counts = Arc::clone(&counts);
    let server = std::thread::spawn(move || {
        pin_to_cpu(0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let ep = quinn::Endpoint::new(
                quinn::EndpointConfig::default(),
                Some(server_config(&cert)),
                udp_socket(),
                Arc::new(quinn::TokioRuntime),
            )
            .unwrap();
            addr_tx.send(ep.local_addr().unwrap()).unwrap();
            let accept = async {
                while let Some(inc) = ep.accept().await {
                    let counts = Arc::clone(&server_counts);
                    tokio::spawn(async move {
                        if let Ok(c) = inc.await {
                            serve_conn(c, counts, epoch).await;
                        }
                    });
                }
            };
            let cpu0 = thread_cpu();
            tokio::select! { _ = accept => {}, _ = stop_rx => {} }
            thread_cpu() - cpu0
        })
    });
    let addr = addr_rx.recv().unwrap();

    pin_to_cpu(1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (sent, wall) = rt.block_on(async {
        let trust = Trust::CaPem(ca);
        let cfg =
            driver_client::client_config(&trust, Duration::from_secs(5), Duration::from_secs(30))
                .unwrap();
        let mut conns_v = Vec::new();
        // A few client sockets, as many phones would have one each; enough to spread load.
        let eps: Vec<_> = (0..8)
            .map(|i| {
                let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                let inner = quinn::Runtime::wrap_udp_socket(&quinn::TokioRuntime, sock).unwrap();
                let lossy = Lossy {
                    inner,
                    loss_ppm,
                    state: AtomicU64::new(0x9E37_79B9_7F4A_7C15 ^ i),
                };
                let mut ep = quinn::Endpoint::new_with_abstract_socket(
                    quinn::EndpointConfig::default(),
                    None,
                    Arc::new(lossy),
                    Arc::new(quinn::TokioRuntime),
                )
                .unwrap();
                ep.set_default_client_config(cfg.clone());
                ep
            })
            .collect();
        for i in 0..conns {
            let c = eps[i % eps.len()]
                .connect(addr, "localhost")
                .unwrap()
                .await
                .unwrap();
            let uni = match mode {
                Mode::UniStream => Some(c.open_uni().await.unwrap()),
                Mode::Datagram => None,
            };
            conns_v.push((c, uni));
        }
        let start = Instant::now();
        let mut sent = 0u64;
        let total = per_conn * conns as u64;
        let mut buf = Vec::with_capacity(128);
        // Round-robin over connections, paced against the wall clock.
        while sent < total {
            let i = (sent % conns as u64) as usize;
            if rate > 0 {
                let due = start + Duration::from_secs_f64(sent as f64 / rate as f64);
                if due > Instant::now() {
                    tokio::time::sleep_until(due.into()).await;
                }
            }
            let ping = LocationPing {
                driver_id: i as u64 + 1,
                lat: 52.52,
                lng: 13.405,
                heading_deg: 90.0,
                speed_mps: 8.0,
                accuracy_m: 5.0,
                client_ts_ms: micros_since(epoch),
                seq: sent + 1,
            };
            let (c, uni) = &mut conns_v[i];
            match uni {
                None => {
                    // Never wait: a ping that cannot go now is stale anyway.
                    let _ = c.send_datagram(Bytes::from(ping.to_vec()));
                }
                Some(s) => {
                    buf.clear();
                    let body = ping.to_vec();
                    buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
                    buf.extend_from_slice(&body);
                    s.write_all(&buf).await.unwrap();
                }
            }
            sent += 1;
            if rate == 0 && sent.is_multiple_of(256) {
                tokio::task::yield_now().await;
            }
        }
        let wall = start.elapsed();
        // Let the tail arrive: stop when nothing new came in for 300 ms (max 10 s).
        let mut last = 0;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = counts.received.load(Ordering::Relaxed);
            if now == last || now == total {
                break;
            }
            last = now;
        }
        for (c, _) in &conns_v {
            c.close(0u32.into(), b"done");
        }
        (sent, wall)
    });
    let _ = stop_tx.send(());
    let cpu = server.join().unwrap();
    let mut lat = std::mem::take(&mut *counts.lat.lock().unwrap());
    lat.sort_unstable();
    Run {
        sent,
        received: counts.received.load(Ordering::Relaxed),
        cpu,
        wall,
        lat,
    }
}

fn pct(v: &[u32], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p) as usize] as f64 / 1000.0
}

fn report(label: &str, mode: Mode, r: &Run) {
    println!(
        "| {label} | {mode:?} | {} | {} | {:.2}% | {:.0} | {:.2} | {:.2} | {:.2} |",
        r.sent,
        r.received,
        100.0 * (r.sent - r.received) as f64 / r.sent as f64,
        r.received as f64 / r.wall.as_secs_f64(),
        r.cpu.as_secs_f64() * 1e6 / r.received.max(1) as f64,
        pct(&r.lat, 0.5),
        pct(&r.lat, 0.99),
    );
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let conns = *args.first().unwrap_or(&500) as usize;
    let rate = *args.get(1).unwrap_or(&50_000);
    let secs = *args.get(2).unwrap_or(&3);
    let burst = *args.get(3).unwrap_or(&200);
    let per_conn = rate * secs / conns as u64;
    println!(
        "{conns} connections; paced: {rate} pings/s for {secs} s; burst: {burst} per connection, unpaced"
    );
    println!(
        "| run | transport | sent | received | loss | received/s | server CPU µs/ping | p50 ms | p99 ms |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for mode in [Mode::Datagram, Mode::UniStream] {
        report("paced", mode, &run(mode, conns, rate, per_conn, 0));
    }
    for mode in [Mode::Datagram, Mode::UniStream] {
        report("burst", mode, &run(mode, conns, 0, burst, 0));
    }
    for mode in [Mode::Datagram, Mode::UniStream] {
        report(
            "paced, 2% loss",
            mode,
            &run(mode, conns, rate, per_conn, 20_000),
        );
    }
}
