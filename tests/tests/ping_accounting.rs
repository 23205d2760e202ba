//! Per-driver ping accounting (`GET /api/v1/admin/pings`) against a real cell: exact counts
//! for pings on the control stream (ordered, reliable), stale sequence numbers dropped,
//! counters kept across a reconnect, datagrams and REST pings counted too, the per-driver
//! rate limit visible in the counts, and the endpoint's filter and errors.

use itest::fixtures::CENTRE;
use itest::live::*;
use itest::{Cell, CellOpts};
use schemas::{CellBody, DriverBody, DriverStatus, StatusChange};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

fn counts(cell: &Cell, admin: &str, query: &str) -> Value {
    cell.get(&format!("/api/v1/admin/pings{query}"))
        .token(admin)
        .send()
        .expect_status(200)
        .json
}

/// The one driver's row of `?driver=id`.
fn row(cell: &Cell, admin: &str, id: u64) -> Value {
    let v = counts(cell, admin, &format!("?driver={id}"));
    let drivers = v["drivers"].as_array().expect("drivers");
    assert_eq!(drivers.len(), 1, "{v}");
    assert_eq!(drivers[0]["driver_id"], id.to_string());
    drivers[0].clone()
}

fn fields(r: &Value) -> [u64; 5] {
    assert_eq!(r["rate_limited"], 0, "{r}");
    ["received", "accepted", "rejected", "stale", "max_seq"].map(|k| r[k].as_u64().expect(k))
}

/// Sends `Online` and waits for its `Ack`: the cell answers control messages in order, so
/// every ping sent before on the stream has been processed.
fn barrier(rt: &Runtime, c: &driver_client::DriverClient) {
    rt.block_on(async {
        let seq = c
            .send(StatusChange {
                status: DriverStatus::Online,
                client_ts_ms: now_ms(),
            })
            .await
            .expect("send online");
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, c.next_message()).await {
                Ok(Some(m)) => match m.body {
                    CellBody::Ack(a) if a.ack_seq == seq => return,
                    CellBody::ErrorMsg(e) if e.ref_seq == Some(seq) => panic!("online: {e:?}"),
                    _ => {}
                },
                other => panic!("no ack for online: {other:?}"),
            }
        }
    });
}

#[test]
fn per_driver_ping_counts_survive_reconnects() {
    let cell = Cell::start(CellOpts {
        // 5 pings/s with a burst of 40: the first 30 pings below stay within it.
        config_toml: Some(
            "[demo]\nrestaurants = 50\n[dispatch.pings]\nmax_pings_per_s = 5.0\nping_burst = 40\n"
                .into(),
        ),
        ..CellOpts::default()
    });
    let rt = runtime();
    let admin = cell.token("admin", 0);
    let id = 8101;
    let at = CENTRE;

    let c = quic_client(&cell, &rt, id).expect("connect");
    let send = |c: &driver_client::DriverClient, p: schemas::LocationPing| {
        rt.block_on(c.send(DriverBody::LocationPing(p)))
            .expect("send ping");
    };
    for seq in [1, 2, 3, 5] {
        send(&c, ping(id, at, seq));
    }
    // Reordered and duplicated: dropped as stale.
    send(&c, ping(id, at, 4));
    send(&c, ping(id, at, 5));
    // From a minute in the future: rejected by the checks.
    let mut future = ping(id, at, 6);
    future.client_ts_ms += 60_000;
    send(&c, future);
    send(&c, ping(id, at, 7));
    barrier(&rt, &c);
    // received, accepted, rejected, stale, max_seq
    assert_eq!(fields(&row(&cell, &admin, id)), [8, 5, 1, 2, 7]);

    // A new session may number from 1 again; the driver's counters carry on.
    rt.block_on(c.close());
    drop(c);
    let c = quic_client(&cell, &rt, id).expect("reconnect");
    send(&c, ping(id, at, 1));
    send(&c, ping(id, at, 2));
    barrier(&rt, &c);
    assert_eq!(fields(&row(&cell, &admin, id)), [10, 7, 1, 2, 7]);

    // Datagrams are counted the same way.
    for seq in 3..=22 {
        c.send_ping(&ping(id, at, seq)).expect("datagram");
    }
    let deadline = Instant::now() + WAIT;
    let got = loop {
        let r = fields(&row(&cell, &admin, id));
        if r[0] >= 30 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(got, [30, 27, 1, 2, 22], "20 datagrams on loopback");

    // A flood over the rate limit: the excess is dropped and counted per driver.
    for seq in 23..=122 {
        send(&c, ping(id, at, seq));
    }
    barrier(&rt, &c);
    let r = row(&cell, &admin, id);
    let n = |k: &str| r[k].as_u64().expect(k);
    assert_eq!(n("received"), 130, "{r}");
    assert!(
        n("rate_limited") >= 50,
        "at most ~10 left of the burst: {r}"
    );
    assert_eq!(
        n("accepted") + n("rejected") + n("stale") + n("rate_limited"),
        n("received"),
        "{r}"
    );
    assert_eq!(n("max_seq"), 122);

    // REST pings carry no sequence number.
    let rest_driver = 8102;
    cell.post("/api/v1/drivers/location")
        .token(&cell.token("driver", rest_driver))
        .json(&json!({"lat": at.0, "lng": at.1}))
        .send()
        .expect_status(200);
    assert_eq!(fields(&row(&cell, &admin, rest_driver)), [1, 1, 0, 0, 0]);

    // Everyone, with totals over the rows.
    let all = counts(&cell, &admin, "");
    let drivers = all["drivers"].as_array().expect("drivers");
    let ids: Vec<&str> = drivers
        .iter()
        .filter_map(|d| d["driver_id"].as_str())
        .collect();
    assert!(ids.contains(&"8101") && ids.contains(&"8102"), "{all}");
    for k in ["received", "accepted", "rejected", "stale", "rate_limited"] {
        let sum: u64 = drivers.iter().map(|d| d[k].as_u64().unwrap_or(0)).sum();
        assert_eq!(all["totals"][k].as_u64(), Some(sum), "totals.{k}: {all}");
    }

    // A driver never seen: no rows, zero totals.
    let none = counts(&cell, &admin, "?driver=999999");
    assert_eq!(none["drivers"], json!([]));
    assert_eq!(none["totals"]["received"], 0);
    // Bad input and the wrong party.
    cell.get("/api/v1/admin/pings?driver=abc")
        .token(&admin)
        .send()
        .expect_error(400, "request.invalid_id");
    cell.get("/api/v1/admin/pings")
        .token(&cell.token("driver", id))
        .send()
        .expect_error(403, "auth.forbidden");
    rt.block_on(c.close());
}
