//! Connection-level behaviour: hello, refusals, pings, control messages, limits, shutdown.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use driver_client::{City, ClientError, DriverClient, Route, Trust};
use metrics_exporter_prometheus::PrometheusBuilder;
use quinn::ConnectionError;
use schemas::{
    CellBody, CellMsg, CloseReason, DriverStatus, FRAME_HEADER_BYTES, Hello, OfferDecision,
    OfferResponse, PingTransport, StatusChange,
};

use super::port::{UNKNOWN_DELIVERY, now_ms};
use super::{eventually, start};

fn closed_with(err: &ClientError) -> Option<CloseReason> {
    err.close_reason()
}

async fn next(client: &DriverClient) -> CellMsg {
    tokio::time::timeout(Duration::from_secs(5), client.next_message())
        .await
        .expect("a message within 5 s")
        .expect("connection open")
}

/// The code the cell closed a raw connection with.
fn app_code(e: &ConnectionError) -> Option<u64> {
    match e {
        ConnectionError::ApplicationClosed(c) => Some(c.error_code.into_inner()),
        _ => None,
    }
}

#[tokio::test]
async fn hello_gets_hello_ack_with_ca_and_with_fingerprint() {
    let cell = start(|_| {}).await;
    let a = cell.connect(1).await;
    let ack = *a.hello_ack();
    assert_ne!(ack.session_id, 0);
    assert_eq!(ack.ping_transport, PingTransport::Datagram);
    assert!(!ack.resumed);
    assert_eq!(ack.ping_interval_ms, 1_000);
    assert!(ack.server_time_ms.abs_diff(now_ms()) < 5_000);

    // Pinning the printed fingerprint works too, and resuming is the port's decision.
    let pinned = Trust::fingerprint(&cell.fingerprint).unwrap();
    let mut opts = cell.opts("driver-2");
    opts.resume = Some(12345);
    let ep = driver_client::client_endpoint(&pinned, "127.0.0.1:0".parse().unwrap()).unwrap();
    let b = DriverClient::connect_on(&ep, &opts).await.unwrap();
    assert!(!b.hello_ack().resumed);
    assert_ne!(b.hello_ack().session_id, ack.session_id);

    // A reconnect of driver 1 quoting its session resumes it; the old connection is superseded.
    let mut opts = cell.opts("driver-1");
    opts.resume = Some(ack.session_id);
    let a2 = DriverClient::connect_on(&ep, &opts).await.unwrap();
    assert!(a2.hello_ack().resumed);
    assert_eq!(a2.hello_ack().session_id, ack.session_id);
    assert_eq!(
        closed_with(&a.closed().await),
        Some(CloseReason::Superseded)
    );

    // A wrong fingerprint fails the handshake.
    let wrong = Trust::Fingerprint([7; 32]);
    let ep = driver_client::client_endpoint(&wrong, "127.0.0.1:0".parse().unwrap()).unwrap();
    assert!(
        DriverClient::connect_on(&ep, &cell.opts("driver-3"))
            .await
            .is_err()
    );
    cell.stop().await;
}

#[tokio::test]
async fn bad_or_unsupported_hello_is_refused_with_its_code() {
    let cell = start(|_| {}).await;
    for token in ["nonsense", "driver-0", "driver-x"] {
        let err = cell.opts(token);
        let err = DriverClient::connect_on(
            &driver_client::client_endpoint(&cell.trust, "127.0.0.1:0".parse().unwrap()).unwrap(),
            &err,
        )
        .await
        .err()
        .expect("refused");
        assert_eq!(
            closed_with(&err),
            Some(CloseReason::BadToken),
            "{token}: {err}"
        );
    }
    let mut opts = cell.opts("driver-1");
    opts.protocol_version = schemas::PROTOCOL_VERSION + 1;
    let ep = driver_client::client_endpoint(&cell.trust, "127.0.0.1:0".parse().unwrap()).unwrap();
    let err = DriverClient::connect_on(&ep, &opts).await.err().unwrap();
    assert_eq!(closed_with(&err), Some(CloseReason::VersionUnsupported));
    assert_eq!(
        cell.port.connected_drivers(),
        0,
        "no session for refused drivers"
    );
    cell.stop().await;
}

#[tokio::test]
async fn no_hello_before_the_deadline_closes_with_hello_timeout() {
    let cell = start(|c| c.hello_timeout_ms = 200).await;
    let ep = driver_client::client_endpoint(&cell.trust, "127.0.0.1:0".parse().unwrap()).unwrap();

    // Silent connection.
    let conn = ep
        .connect(cell.addr, &cell.server_name)
        .unwrap()
        .await
        .unwrap();
    let t = Instant::now();
    let e = conn.closed().await;
    assert_eq!(
        app_code(&e),
        Some(u64::from(CloseReason::HelloTimeout.code()))
    );
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );

    // Trickling: a frame header and part of a Hello, never the rest.
    let conn = ep
        .connect(cell.addr, &cell.server_name)
        .unwrap()
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    send.write_all(&200u32.to_le_bytes()).await.unwrap();
    send.write_all(&[0; 10]).await.unwrap();
    let e = conn.closed().await;
    assert_eq!(
        app_code(&e),
        Some(u64::from(CloseReason::HelloTimeout.code()))
    );
    cell.stop().await;
}

#[tokio::test]
async fn pings_reach_the_port_and_a_burst_is_counted() {
    let cell = start(|_| {}).await;
    let client = cell.connect(42).await;
    let mut route = Route::new(City::default(), 42);
    // Client time in the past, one second apart: plausible speed, never "from the future".
    let start_ms = now_ms() - 10_000_000;
    let pings: Vec<_> = route.pings(42, start_ms, 1_000).take(5_050).collect();

    for p in &pings[..50] {
        client.send_ping(p).unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let port = &cell.port;
    eventually("50 paced pings", || {
        port.pings.ok.load(Ordering::Relaxed) == 50
    })
    .await;
    let stored = port.pings.geo.get(geostore::DriverId(42)).unwrap();
    let last = pings[49];
    assert!(geostore::haversine_m(stored.lat, stored.lng, last.lat, last.lng) < 0.1);
    assert_eq!(stored.ts_ms, last.client_ts_ms);

    // A burst of 5,000 as fast as the client can queue them.
    let t = Instant::now();
    for p in &pings[50..] {
        client.send_ping(p).unwrap();
    }
    let queued = t.elapsed();
    let settle = Instant::now();
    let mut seen = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = port.pings.ok.load(Ordering::Relaxed);
        if now == seen || now == 5_050 || settle.elapsed() > Duration::from_secs(5) {
            break;
        }
        seen = now;
    }
    let arrived = port.pings.ok.load(Ordering::Relaxed) - 50;
    let stats = client.connection().stats();
    println!(
        "burst: 5000 datagram pings queued in {queued:?}, {arrived} reached the port \
         ({:.1}%); client datagrams sent {}, udp datagrams sent {}, lost packets {}",
        arrived as f64 / 50.0,
        stats.frame_tx.datagram,
        stats.udp_tx.datagrams,
        stats.path.lost_packets
    );
    assert!(arrived > 0);
    assert_eq!(port.pings.rejected.load(Ordering::Relaxed), 0);
    assert!(client.close_reason().is_none());
    cell.stop().await;
}

#[tokio::test]
async fn garbage_datagram_is_dropped_and_counted_connection_survives() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let cell = start(|_| {}).await;
    let client = cell.connect(5).await;
    client
        .connection()
        .send_datagram(bytes::Bytes::from_static(
            b"\x01\x02garbage, not a flatbuffer",
        ))
        .unwrap();
    client
        .connection()
        .send_datagram(bytes::Bytes::from(vec![0xff; 300]))
        .unwrap();
    let mut route = Route::new(City::default(), 5);
    let ping = route.ping(5, now_ms());
    client.send_ping(&ping).unwrap();
    let port = &cell.port;
    eventually("the valid ping", || {
        port.pings.ok.load(Ordering::Relaxed) == 1
    })
    .await;
    // A ping that fails the port's checks is counted by kind, not answered.
    let mut future = route.ping(5, now_ms() + 60_000);
    future.lat += 0.0001;
    client.send_ping(&future).unwrap();
    eventually("the rejected ping", || {
        port.pings.rejected.load(Ordering::Relaxed) == 1
    })
    .await;

    // Still usable: a request is answered.
    let seq = client
        .send(StatusChange {
            status: DriverStatus::Offline,
            client_ts_ms: now_ms(),
        })
        .await
        .unwrap();
    assert_eq!(
        next(&client).await.body,
        CellBody::Ack(schemas::Ack { ack_seq: seq })
    );
    assert!(client.close_reason().is_none());
    let text = metrics.render();
    for line in [
        "cell_quic_datagrams_total{outcome=\"undecodable\"} 2",
        "cell_quic_datagrams_total{outcome=\"ok\"} 1",
        "cell_quic_datagrams_total{outcome=\"from_future\"} 1",
        "cell_quic_frames_total{kind=\"hello\"} 1",
        "cell_quic_frames_total{kind=\"status_change\"} 1",
        "cell_quic_connections 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    client.close().await;
    eventually("disconnect", || port.disconnects.lock().unwrap().len() == 1).await;
    assert!(
        metrics
            .render()
            .contains("cell_quic_close_total{reason=\"peer_closed\"} 1")
    );
    assert!(metrics.render().contains("cell_quic_connections 0"));
    cell.stop().await;
}

#[tokio::test]
async fn protocol_violations_close_the_connection() {
    let cell = start(|_| {}).await;

    // An undecodable control frame.
    let c = cell.connect(1).await;
    let mut frame = 12u32.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0xAB; 12]);
    c.send_raw(&frame).await.unwrap();
    assert_eq!(
        closed_with(&c.closed().await),
        Some(CloseReason::ProtocolViolation)
    );

    // A frame header announcing more than the limit.
    let c = cell.connect(2).await;
    c.send_raw(&(1u32 << 20).to_le_bytes()).await.unwrap();
    assert_eq!(
        closed_with(&c.closed().await),
        Some(CloseReason::ProtocolViolation)
    );

    // A second Hello.
    let c = cell.connect(3).await;
    let hello = Hello {
        protocol_version: schemas::PROTOCOL_VERSION,
        token: "driver-3".into(),
        app_version: "test/1".into(),
        resume_session_id: None,
        last_offer_id: None,
    };
    c.send(hello).await.unwrap();
    assert_eq!(
        closed_with(&c.closed().await),
        Some(CloseReason::ProtocolViolation)
    );

    // A ping for another driver, as a datagram and on the stream.
    let c = cell.connect(4).await;
    let mut route = Route::new(City::default(), 1);
    c.send_ping(&route.ping(99, now_ms())).unwrap();
    assert_eq!(
        closed_with(&c.closed().await),
        Some(CloseReason::ProtocolViolation)
    );
    let c = cell.connect(5).await;
    c.send(route.ping(98, now_ms())).await.unwrap();
    assert_eq!(
        closed_with(&c.closed().await),
        Some(CloseReason::ProtocolViolation)
    );

    // Something other than Hello first.
    let ep = driver_client::client_endpoint(&cell.trust, "127.0.0.1:0".parse().unwrap()).unwrap();
    let conn = ep
        .connect(cell.addr, &cell.server_name)
        .unwrap()
        .await
        .unwrap();
    let (mut send, _recv) = conn.open_bi().await.unwrap();
    let msg = schemas::DriverMsg::new(1, schemas::Ack { ack_seq: 1 });
    let mut buf = Vec::new();
    msg.encode_framed(&mut flatbuffers::FlatBufferBuilder::new(), &mut buf);
    assert!(buf.len() > FRAME_HEADER_BYTES);
    send.write_all(&buf).await.unwrap();
    let code = app_code(&conn.closed().await);
    assert_eq!(code, Some(u64::from(CloseReason::ProtocolViolation.code())));

    let port = &cell.port;
    eventually("every session ended", || {
        port.disconnects.lock().unwrap().len() == 5
    })
    .await;
    assert_eq!(port.pings.ok.load(Ordering::Relaxed), 0);
    cell.stop().await;
}

#[tokio::test]
async fn outbox_and_requests_round_trip_as_cell_messages() {
    let cell = start(|_| {}).await;
    let c = cell.connect(8).await;
    // Online: the port answers Ack and pushes an Offer through the session outbox.
    let online = c
        .send(StatusChange {
            status: DriverStatus::Online,
            client_ts_ms: now_ms(),
        })
        .await
        .unwrap();
    let mut got = [next(&c).await, next(&c).await];
    got.sort_by_key(|m| matches!(m.body, CellBody::Offer(_)));
    assert_eq!(got[0].body, CellBody::Ack(schemas::Ack { ack_seq: online }));
    let CellBody::Offer(offer) = got[1].body.clone() else {
        panic!("expected an offer, got {:?}", got[1]);
    };
    // Cell seqs: HelloAck was 1, then increasing.
    let mut seqs: Vec<_> = got.iter().map(|m| m.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, vec![2, 3]);

    // Accept: Ack, then the Assignment from the outbox.
    let accept = c
        .send(OfferResponse {
            offer_id: offer.offer_id,
            delivery_id: offer.delivery_id,
            decision: OfferDecision::Accept,
        })
        .await
        .unwrap();
    let (m1, m2) = (next(&c).await, next(&c).await);
    let bodies = [m1.body, m2.body];
    assert!(bodies.contains(&CellBody::Ack(schemas::Ack { ack_seq: accept })));
    assert!(bodies.iter().any(|b| matches!(b,
        CellBody::Assignment(a) if a.delivery_id == offer.delivery_id)));

    // Per-request errors are ErrorMsg answers; the connection stays.
    let again = c
        .send(OfferResponse {
            offer_id: offer.offer_id,
            delivery_id: offer.delivery_id,
            decision: OfferDecision::Accept,
        })
        .await
        .unwrap();
    let CellBody::ErrorMsg(e) = next(&c).await.body else {
        panic!("expected an error")
    };
    assert_eq!(
        (e.code, e.ref_seq),
        (CloseReason::OfferExpired, Some(again))
    );
    let unknown = c
        .send(StatusChange {
            status: DriverStatus::PickedUp {
                delivery_id: UNKNOWN_DELIVERY,
            },
            client_ts_ms: now_ms(),
        })
        .await
        .unwrap();
    let CellBody::ErrorMsg(e) = next(&c).await.body else {
        panic!("expected an error")
    };
    assert_eq!(
        (e.code, e.ref_seq),
        (CloseReason::UnknownDelivery, Some(unknown))
    );

    // A Handover from the dispatch is delivered, then the connection closes with code 6.
    let handover = schemas::Handover {
        addr: "127.0.0.1:4444".parse().unwrap(),
        server_name: "cell-2.local".into(),
        reason: schemas::HandoverReason::RegionMoved,
    };
    assert!(
        cell.port
            .push(8, CellBody::Handover(handover.clone()))
            .await
    );
    assert_eq!(next(&c).await.body, CellBody::Handover(handover));
    assert_eq!(closed_with(&c.closed().await), Some(CloseReason::Handover));
    cell.stop().await;
}

#[tokio::test]
async fn connection_cap_is_enforced() {
    let cell = start(|c| c.max_connections = 2).await;
    let a = cell.connect(1).await;
    let _b = cell.connect(2).await;
    let err = cell.try_connect(3).await.err().expect("over the cap");
    assert_eq!(
        closed_with(&err),
        Some(CloseReason::TooManyConnections),
        "{err}"
    );
    // A slot frees when a driver leaves.
    a.close().await;
    let port = &cell.port;
    eventually("a's session ended", || {
        port.disconnects.lock().unwrap().len() == 1
    })
    .await;
    let c = cell.connect(3).await;
    assert_ne!(c.hello_ack().session_id, 0);
    cell.stop().await;
}

#[tokio::test]
async fn shutdown_closes_sessions_with_server_shutdown() {
    let cell = start(|_| {}).await;
    let a = cell.connect(1).await;
    let b = cell.connect(2).await;
    let port = std::sync::Arc::clone(&cell.port);
    cell.stop().await;
    assert_eq!(
        closed_with(&a.closed().await),
        Some(CloseReason::ServerShutdown)
    );
    assert_eq!(
        closed_with(&b.closed().await),
        Some(CloseReason::ServerShutdown)
    );
    let mut d = port.disconnects.lock().unwrap().clone();
    d.sort_unstable();
    assert_eq!(d.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2]);
}

#[tokio::test]
async fn a_driver_that_does_not_read_is_closed_as_slow_reader() {
    let cell = start(|c| c.control_write_timeout_ms = 200).await;
    let c = cell.connect(9).await;
    // The driver never reads: once its stream window is full, a write stalls and the
    // gateway gives up after the timeout. Offers of ~200 bytes; the window is ~1.25 MB.
    let offer = |i: u64| {
        CellBody::Offer(schemas::Offer {
            offer_id: i,
            delivery_id: i,
            order_id: i,
            pickup: schemas::Place {
                lat: 52.52,
                lng: 13.40,
                name: "Pizzeria".into(),
                address: "Pizzeria street 1".into(),
            },
            dropoff: schemas::Place {
                lat: 52.53,
                lng: 13.41,
                name: "Customer".into(),
                address: "Customer street 1".into(),
            },
            payout_cents: 650,
            expires_at_ms: now_ms() + 30_000,
        })
    };
    let started = tokio::time::Instant::now();
    let mut pushed = 0;
    // `push` fails once the session is gone (its outbox dropped).
    while pushed < 100_000 && cell.port.push(9, offer(pushed + 1)).await {
        pushed += 1;
    }
    assert!(pushed < 100_000, "the session never ended");
    let end = tokio::time::timeout(Duration::from_secs(10), c.closed())
        .await
        .expect("closed");
    assert_eq!(closed_with(&end), Some(CloseReason::SlowReader), "{end}");
    assert!(pushed > 1_000, "only {pushed} messages before the close");
    assert!(started.elapsed() >= Duration::from_millis(200));
    cell.stop().await;
}

#[tokio::test]
async fn a_session_ends_with_token_expired_when_its_token_does() {
    let cell = start(|_| {}).await;
    let started = tokio::time::Instant::now();
    let c = DriverClient::connect(
        cell.addr,
        &cell.server_name,
        cell.trust.clone(),
        "driver-4@300",
        None,
    )
    .await
    .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), c.closed())
        .await
        .expect("closed");
    assert_eq!(closed_with(&end), Some(CloseReason::TokenExpired), "{end}");
    assert!(end.to_string().contains("token_expired"), "{end}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1300),
        "{took:?}"
    );
    // A fresh token opens a new session.
    assert_ne!(cell.connect(4).await.hello_ack().session_id, 0);
    cell.stop().await;
}
