//! Attack tests of the edge limits (issue 14 part 4), against real cell processes on
//! loopback, each bounded in time:
//! - `slow_headers_do_not_stop_a_normal_client`: 2,000 connections trickling a request head;
//!   a normal client's p99 stays ≤ 50 ms and the slow ones are closed at the header timeout.
//! - `connections_past_the_cap_get_503_within_a_memory_bound`: `503 server.busy` with
//!   `Retry-After` past `max_connections`, RSS bounded, service back once connections close.
//! - `websocket_violations_get_their_close_codes`: 1002, 1007, 1009 for raw bad frames, 1008
//!   for a fragmented message left unfinished past its deadline.
//! - `tracking_subscriptions_are_capped_per_token`: 429 past the cap, a place freed when a
//!   socket closes.
//! - `incomplete_quic_handshakes_do_not_lock_out_a_driver`: 20,000 Initials that never
//!   complete in 10 s while a real driver connects within 1 s and streams pings; RSS growth
//!   ≤ 64 MiB.

use itest::attack::*;
use itest::fixtures::*;
use itest::live::*;
use itest::{Cell, CellOpts};
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Fewer demo restaurants than the default 3,000: seeding dominates a debug cell's start.
const SMALL_CITY: &str = "[demo]\nrestaurants = 500\n";

fn start(extra_toml: &str) -> Cell {
    raise_nofile();
    Cell::start(CellOpts {
        config_toml: Some(format!("{SMALL_CITY}{extra_toml}")),
        ..CellOpts::default()
    })
}

fn p99(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[(v.len() * 99).div_ceil(100) - 1]
}

#[test]
fn slow_headers_do_not_stop_a_normal_client() {
    const SLOW: usize = 2_000;
    let header_timeout = Duration::from_millis(3_000);
    let cell = start(&format!(
        "[http.edge]\nheader_read_timeout_ms = {}\n",
        header_timeout.as_millis()
    ));
    let addr = cell.addr();
    let opened = Instant::now();
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("slow {i}: {e}"));
            s.write_all(b"GET /live HTTP/1.1\r\nHost: ").unwrap();
            s
        })
        .collect();
    let all_open = opened.elapsed();
    assert!(all_open < header_timeout / 2, "opening took {all_open:?}");

    // A normal client, a new connection per request, while the slow ones trickle bytes.
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let url = format!("http://{addr}/live");
    let mut took = Vec::new();
    let mut next_trickle = 0;
    while opened.elapsed() < header_timeout - Duration::from_millis(700) {
        // One byte to a slice of the slow connections between requests: they keep sending.
        for s in slow.iter_mut().skip(next_trickle).take(100) {
            let _ = s.write_all(b"x");
        }
        next_trickle = (next_trickle + 100) % SLOW;
        let t = Instant::now();
        let r = client.get(&url).send().expect("normal request");
        assert_eq!(r.status(), 200);
        took.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(5));
    }
    let p = p99(took.clone());
    eprintln!(
        "normal client: {} requests beside {SLOW} slow connections, p99 {p:?}",
        took.len()
    );
    assert!(took.len() >= 50, "only {} requests", took.len());
    assert!(p <= Duration::from_millis(50), "p99 {p:?}");

    // Every slow connection is closed by the server soon after the header timeout.
    let deadline = opened + header_timeout + Duration::from_millis(2_500);
    let mut closed = 0;
    for s in &mut slow {
        let left = deadline.saturating_duration_since(Instant::now());
        let body = read_until_closed(s, left.max(Duration::from_millis(1)));
        // Closed: EOF (the read ended early) with nothing answered.
        if Instant::now() < deadline && body.is_empty() {
            closed += 1;
        }
    }
    assert_eq!(closed, SLOW, "slow connections closed by {deadline:?}");
    let closed_at = opened.elapsed();
    eprintln!("all {SLOW} slow connections closed {closed_at:?} after opening");
    assert!(
        closed_at >= header_timeout - Duration::from_millis(100),
        "{closed_at:?}"
    );
}

#[test]
fn connections_past_the_cap_get_503_within_a_memory_bound() {
    const CAP: usize = 100;
    const OVER: usize = 3_000;
    let cell = start(&format!("[http.edge]\nmax_connections = {CAP}\n"));
    let addr = cell.addr();
    let pid = cell.pid().expect("cell pid");
    // Fill the cap with keep-alive connections that have each had an answer, so all are
    // accepted and counted.
    let mut held: Vec<TcpStream> = (0..CAP)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(get_request("/live").as_bytes()).unwrap();
            let mut buf = [0u8; 512];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let n = std::io::Read::read(&mut s, &mut buf).unwrap();
            assert!(
                buf[..n].starts_with(b"HTTP/1.1 200"),
                "{:?}",
                String::from_utf8_lossy(&buf[..n])
            );
            s
        })
        .collect();
    let rss_before = rss_bytes(pid);
    let started = Instant::now();
    let mut busy = 0;
    let mut unanswered = 0;
    for _ in 0..OVER {
        let r = raw_http(addr, &get_request("/live"), Duration::from_secs(3)).unwrap_or_default();
        if r.starts_with("HTTP/1.1 503") {
            assert!(r.to_ascii_lowercase().contains("retry-after: 1"), "{r}");
            assert!(r.contains("\"code\":\"server.busy\""), "{r}");
            busy += 1;
        } else {
            assert!(r.is_empty(), "past the cap: {r}");
            unanswered += 1;
        }
    }
    let rss_after = rss_bytes(pid);
    let growth = rss_after.saturating_sub(rss_before);
    eprintln!(
        "{OVER} connections past the cap in {:?}: {busy} answered 503, {unanswered} closed \
         unanswered; RSS {} -> {} KiB",
        started.elapsed(),
        rss_before / 1024,
        rss_after / 1024
    );
    // One at a time, each is answered: the refusal budget is never the limit here.
    assert_eq!(busy, OVER);
    assert!(growth <= 16 << 20, "RSS grew by {} KiB", growth / 1024);
    // The held connections still work, and once they close new ones are served again.
    let s = &mut held[0];
    s.write_all(get_request("/live").as_bytes()).unwrap();
    let mut buf = [0u8; 512];
    let n = std::io::Read::read(s, &mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = raw_http(
            addr,
            "GET /live HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n",
            Duration::from_secs(3),
        )
        .unwrap_or_default();
        if r.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not served after the held connections closed: {r}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One order of customer 9100 and its tracking path with `?token=`.
fn tracked_order(cell: &Cell) -> (String, String) {
    let cust = cell.token("customer", 9100);
    let order = place_new(cell, &cust, &simple_order(cell, 0, PM_VISA));
    (format!("/ws/orders/{order}/track?token={cust}"), cust)
}

#[test]
fn websocket_violations_get_their_close_codes() {
    let cell = start("[tracking]\nws_fragment_timeout_ms = 1000\n");
    let (path, _) = tracked_order(&cell);
    let too_big = {
        let mut f = client_frame_head(0x1, 4096);
        f.extend_from_slice(&[b'a'; 16]);
        f
    };
    let cases: [(&str, Vec<u8>, u16); 7] = [
        (
            "unmasked client frame",
            client_frame(true, 0x1, b"hi", false),
            1002,
        ),
        (
            "reserved data opcode",
            client_frame(true, 0x3, b"x", true),
            1002,
        ),
        (
            "reserved control opcode",
            client_frame(true, 0xB, b"", true),
            1002,
        ),
        (
            "control frame of 126 bytes",
            client_frame(true, 0x9, &[0u8; 126], true),
            1002,
        ),
        (
            "fragmented ping",
            client_frame(false, 0x9, b"p", true),
            1002,
        ),
        (
            "text that is not UTF-8",
            client_frame(true, 0x1, &[0xC3, 0x28, 0xFF], true),
            1007,
        ),
        ("message over 1 KiB", too_big, 1009),
    ];
    for (what, frame, want) in cases {
        let mut ws = RawWs::connect(cell.addr(), &path).expect(what);
        let snapshot = ws.next_frame().expect("snapshot");
        assert_eq!(snapshot.opcode, 0x1, "{what}: the snapshot comes first");
        ws.send_raw(&frame).expect(what);
        let code = ws.close_code();
        assert_eq!(code, Some(Some(want)), "{what}");
        // The server ends the connection after its close frame.
        assert!(ws.next_frame().is_none(), "{what}: still open");
    }
    // A fragmented message spread over several frames that stays within 1 KiB is fine.
    let mut ws = RawWs::connect(cell.addr(), &path).unwrap();
    ws.next_frame().unwrap();
    ws.send_raw(&client_frame(false, 0x1, &[b'a'; 600], true))
        .unwrap();
    ws.send_raw(&client_frame(true, 0x0, &[b'b'; 600], true))
        .unwrap();
    assert_eq!(
        ws.close_code(),
        Some(Some(1009)),
        "1,200 bytes in two fragments"
    );
}

#[test]
fn tracking_subscriptions_are_capped_per_token() {
    let cell = start("[tracking]\nmax_subscriptions_per_token = 2\n");
    let (path, cust) = tracked_order(&cell);
    let a = RawWs::connect(cell.addr(), &path).unwrap();
    let _b = RawWs::connect(cell.addr(), &path).unwrap();
    let third = raw_http(
        cell.addr(),
        &format!(
            "GET {path} HTTP/1.1\r\nHost: c\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ),
        Duration::from_secs(3),
    )
    .unwrap();
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");
    assert!(third.contains("tracking.too_many_subscriptions"), "{third}");
    // The cap is per token: the restaurant's token still watches the same order.
    let rt = runtime();
    let order = path.split('/').nth(3).unwrap();
    let rest = cell.token("restaurant", &restaurant(&cell, 0).id);
    assert_ne!(rest, cust);
    assert!(Tracker::connect(&cell, &rt, order, &rest).is_ok());
    // Closing one socket frees its place (the socket task ends on the close).
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(3);
    while RawWs::connect(cell.addr(), &path).is_err() {
        assert!(
            Instant::now() < deadline,
            "the closed socket's place was not freed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `outcome="ok"` sample of `cell_quic_datagrams_total`: pings the cell took.
fn pings_taken(cell: &Cell) -> f64 {
    let text = cell.get("/metrics").send().expect_status(200).text;
    text.lines()
        .find_map(|l| l.strip_prefix("cell_quic_datagrams_total{outcome=\"ok\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn incomplete_quic_handshakes_do_not_lock_out_a_driver() {
    const INITIALS: usize = 20_000;
    let flood_for = Duration::from_secs(10);
    let cell = start("");
    let pid = cell.pid().expect("cell pid");
    let ready = cell.ready().clone();
    let quic = ready.quic.expect("the cell runs a QUIC gateway");
    let trust = driver_client::Trust::ca_pem_file(ready.quic_ca.as_ref().expect("dev CA")).unwrap();
    let client =
        driver_client::client_config(&trust, Duration::from_secs(5), Duration::from_secs(30))
            .unwrap();
    let name = ready
        .quic_server_name
        .clone()
        .unwrap_or_else(|| "localhost".into());
    let rss_before = rss_bytes(pid);
    let started = Instant::now();
    let flood = std::thread::spawn(move || initial_flood(quic, &name, client, INITIALS, flood_for));

    // Well into the flood, a real driver connects and streams pings.
    std::thread::sleep(Duration::from_secs(3));
    let rt = runtime();
    let t = Instant::now();
    let driver = LiveDriver::try_connect(&cell, &rt, 8801, CENTRE, Duration::from_millis(100))
        .expect("a driver connects during the flood");
    let connect_took = t.elapsed();
    let taken_before = pings_taken(&cell);
    let mut rss_peak = rss_bytes(pid);
    while started.elapsed() < flood_for {
        rss_peak = rss_peak.max(rss_bytes(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = flood.join().expect("flood thread").expect("flood");
    rss_peak = rss_peak.max(rss_bytes(pid));
    let taken = pings_taken(&cell) - taken_before;
    let retried = metric(&cell, "cell_quic_handshakes_deferred_total");
    let growth = rss_peak.saturating_sub(rss_before);
    eprintln!(
        "{sent} Initials in {:?}; driver connected in {connect_took:?}, {taken} pings taken \
         during the flood; {retried} answered without state; RSS {} -> peak {} KiB",
        started.elapsed(),
        rss_before / 1024,
        rss_peak / 1024
    );
    assert!(sent >= INITIALS * 9 / 10, "only {sent} Initials sent");
    assert!(
        connect_took <= Duration::from_secs(1),
        "driver took {connect_took:?}"
    );
    assert!(
        driver.client().close_reason().is_none(),
        "the driver stays connected"
    );
    // 100 ms pings over the rest of the flood (several seconds).
    assert!(taken >= 20.0, "only {taken} pings taken");
    assert!(retried > 0.0, "no Initial got a Retry");
    assert!(growth <= 64 << 20, "RSS grew by {} KiB", growth / 1024);
}
