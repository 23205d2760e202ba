//! The gateway on two threads ([`spawn`] with `gateway_threads = 2`): many drivers from
//! distinct client sockets spread over both, every ping arrives, the connection cap counts
//! across threads, and a driver reconnecting onto the other thread supersedes its session.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use driver_client::{City, DriverClient, Route};
use futures::future::join_all;
use schemas::CloseReason;
use tokio::sync::oneshot;

use super::port::{TestPort, now_ms};
use super::{eventually, test_config};
use crate::gateway::{QuicConfig, bind, spawn};

const DRIVERS: u64 = 64;
const PINGS: usize = 10;

/// The gateway thread driver `id`'s latest session was set up on.
fn thread_of(port: &TestPort, id: u64) -> Option<String> {
    let log = port.connected_on.lock().unwrap();
    log.iter()
        .rev()
        .find(|e| e.0 == id)
        .and_then(|e| e.1.clone())
}

#[tokio::test]
async fn two_threads_share_caps_and_sessions_and_deliver_every_ping() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = QuicConfig {
        gateway_threads: 2,
        max_connections: DRIVERS as usize,
        ..test_config(dir.path())
    };
    let gw = bind(&cfg).await.unwrap();
    assert_eq!(gw.threads(), 2);
    let (addr, name) = (gw.local_addr(), gw.server_name().to_owned());
    let trust = driver_client::Trust::CaPem(std::fs::read(gw.ca_pem_path().unwrap()).unwrap());
    let port = Arc::new(TestPort::default());
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let stopped = spawn(gw, Arc::clone(&port) as _, async move {
        let _ = stop_rx.await;
    })
    .await
    .unwrap();
    // Each client has an endpoint, so a UDP socket, of its own: distinct source ports that
    // the kernel hashes over the two gateway sockets.
    let connect = |id: u64| {
        let trust = trust.clone();
        let name = name.clone();
        async move { DriverClient::connect(addr, &name, trust, &format!("driver-{id}"), None).await }
    };
    let clients: Vec<DriverClient> = join_all((1..=DRIVERS).map(connect))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let threads: BTreeSet<Option<String>> = port
        .connected_on
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.1.clone())
        .collect();
    let both = BTreeSet::from(["quic-gateway-0", "quic-gateway-1"].map(|t| Some(t.to_owned())));
    assert_eq!(threads, both, "64 client sockets landed on both threads");

    // The cap is the gateway's, not a thread's: the 65th is refused whichever socket it hits.
    let over = connect(DRIVERS + 1).await.err().expect("over the cap");
    assert_eq!(over.close_reason(), Some(CloseReason::TooManyConnections));

    // Every driver's pings arrive, and the last one is the stored position.
    let start_ms = now_ms() - 1_000_000;
    let mut last = HashMap::new();
    let routes: Vec<Vec<_>> = (1..=DRIVERS)
        .map(|id| {
            Route::new(City::default(), id)
                .pings(id, start_ms, 1_000)
                .take(PINGS)
                .collect()
        })
        .collect();
    for i in 0..PINGS {
        for (client, pings) in clients.iter().zip(&routes) {
            client.send_ping(&pings[i]).unwrap();
            last.insert(pings[i].driver_id, pings[i].client_ts_ms);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let want = DRIVERS * PINGS as u64;
    eventually("every ping reached the port", || {
        port.pings.ok.load(Ordering::Relaxed) == want
    })
    .await;
    for (id, ts) in &last {
        let stored = port.pings.geo.get(geostore::DriverId(*id)).unwrap();
        assert_eq!(stored.ts_ms, *ts, "driver {id}");
    }

    // Free a slot, then reconnect driver 1 until the new session lands on the other thread
    // than the old one: the old session is superseded all the same.
    let mut clients = clients;
    clients.pop().unwrap().close().await;
    eventually("a slot is free", || {
        port.disconnects.lock().unwrap().len() == 1
    })
    .await;
    let mut old = clients.swap_remove(0);
    let mut crossed = false;
    for attempt in 0..64 {
        let before = thread_of(&port, 1);
        let new = connect(1).await.unwrap();
        assert_eq!(
            old.closed().await.close_reason(),
            Some(CloseReason::Superseded),
            "attempt {attempt}"
        );
        let gone = attempt + 2;
        eventually("the old session ended", || {
            port.disconnects.lock().unwrap().len() == gone
        })
        .await;
        old = new;
        if thread_of(&port, 1) != before {
            crossed = true;
            break;
        }
    }
    assert!(crossed, "a reconnect landed on the other thread");
    assert!(old.close_reason().is_none());

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), stopped)
        .await
        .expect("the gateway threads stop after shutdown");
    assert_eq!(
        old.closed().await.close_reason(),
        Some(CloseReason::ServerShutdown)
    );
}
