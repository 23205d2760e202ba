//! A cell whose data directory sits on a small filesystem that fills up: it never acknowledges
//! an order it could not make durable, answers 503 `store.unavailable` (with `Retry-After`),
//! reports not-ready with the reason, and takes orders again within 5 s of space returning;
//! every acknowledged order is there afterwards, and after a restart.
//!
//! Needs root (it mounts a tmpfs); elsewhere it prints why it did not run and returns.

use itest::fixtures::{PM_VISA, get_order, idem_key, place, simple_order};
use itest::smallfs::SmallFs;
use itest::{Cell, CellOpts};
use std::time::{Duration, Instant};

/// How long space may be back before the cell must take orders again.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

#[test]
fn a_full_disk_stops_acknowledging_orders_and_recovers_when_space_returns() {
    let fs = match SmallFs::mount(64) {
        Ok(fs) => fs,
        Err(why) => {
            println!("disk_full: NOT RUN: cannot mount a tmpfs ({why}); CI runs this as root");
            return;
        }
    };
    let mut cell = Cell::start(CellOpts {
        data_dir: Some(fs.path().join("data")),
        // Orders until the disk is full, from 16 customers: far past the hourly order limit.
        config_toml: Some("[demo]\nrestaurants = 300\n[limits]\norders_per_window = 0\n".into()),
        ..CellOpts::default()
    });
    let body = simple_order(&cell, 0, PM_VISA);
    let customers: Vec<String> = (0..16).map(|i| cell.token("customer", 7100 + i)).collect();
    let mut acked: Vec<(usize, String)> = Vec::new();
    let place_key = |cell: &Cell, n: usize, key: &str| {
        let r = place(cell, &customers[n % customers.len()], &body, key);
        (n % customers.len(), r)
    };
    let place_one = |cell: &Cell, n: usize| place_key(cell, n, &idem_key("full"));
    let (c, r) = place_one(&cell, 0);
    assert_eq!(r.status, 201, "before the disk is full: {}", r.text);
    acked.push((c, r.json["order_id"].as_str().expect("order_id").to_owned()));

    // A little room is left, so orders are acknowledged until the store runs out of it.
    let (ballast, size) = fs.fill("ballast", 512 << 10).expect("filling the tmpfs");
    println!(
        "disk_full: ballast of {} KiB fills the tmpfs but 512 KiB",
        size >> 10
    );

    // Orders until one is refused: redb may still have free pages inside its file.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut n = 1;
    let (refused, refused_n, refused_key) = loop {
        let key = idem_key("full");
        let (c, r) = place_key(&cell, n, &key);
        n += 1;
        match r.status {
            201 => acked.push((c, r.json["order_id"].as_str().expect("order_id").to_owned())),
            503 => break (r, n - 1, key),
            other => panic!("placing an order on a full disk: {other} {}", r.text),
        }
        assert!(
            Instant::now() < deadline,
            "{} orders acknowledged and the disk never refused one",
            acked.len()
        );
    };
    println!(
        "disk_full: {} orders acknowledged, then refused: {}",
        acked.len(),
        refused.text
    );
    assert_eq!(
        refused.error_code(),
        "store.unavailable",
        "{}",
        refused.text
    );
    assert!(
        refused.headers.contains_key("retry-after"),
        "503 without Retry-After: {:?}",
        refused.headers
    );

    // While full: not ready, with the reason; writes refused; reads are served or refused as
    // unavailable, never a 500.
    let ready = cell.get("/ready").send();
    assert_eq!(ready.status, 503, "/ready while full: {}", ready.text);
    assert_eq!(ready.json["ready"], false, "{}", ready.text);
    let reason = ready.json["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("store unavailable"),
        "reason: {}",
        ready.text
    );
    let (_, r) = place_one(&cell, n);
    n += 1;
    assert_eq!(
        (r.status, r.error_code()),
        (503, "store.unavailable"),
        "a write while full: {}",
        r.text
    );
    // Reads are served while full, once the store has reopened its file (milliseconds);
    // until then they are refused as unavailable, never answered with a 500.
    let (c, id) = &acked[0];
    let reopening = Instant::now();
    loop {
        let read = cell
            .get(&format!("/api/v1/orders/{id}"))
            .token(&customers[*c])
            .send();
        if read.status == 200 {
            break;
        }
        assert_eq!(
            (read.status, read.error_code()),
            (503, "store.unavailable"),
            "a read while full: {}",
            read.text
        );
        assert!(
            reopening.elapsed() < Duration::from_secs(2),
            "reads not served while the disk is full: {}",
            read.text
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "disk_full: reads served while full after {:?}",
        reopening.elapsed()
    );
    // Still not ready, still refusing writes: serving reads is not accepting writes.
    assert_eq!(cell.get("/ready").send().status, 503);
    let (_, r) = place_one(&cell, n);
    n += 1;
    assert_eq!(r.status, 503, "a write while full: {}", r.text);

    // Space returns: orders are taken again within the bound.
    std::fs::remove_file(&ballast).expect("removing the ballast");
    let freed = Instant::now();
    loop {
        let (c, r) = place_one(&cell, n);
        n += 1;
        if r.status == 201 {
            acked.push((c, r.json["order_id"].as_str().expect("order_id").to_owned()));
            break;
        }
        assert_eq!(
            (r.status, r.error_code()),
            (503, "store.unavailable"),
            "{}",
            r.text
        );
        assert!(
            freed.elapsed() < RECOVERY_BOUND,
            "no order taken within {RECOVERY_BOUND:?} of space returning; last answer {}",
            r.text
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    println!(
        "disk_full: orders taken again {:?} after space returned",
        freed.elapsed()
    );
    let ready = cell.get("/ready").send();
    assert_eq!(ready.status, 200, "/ready after recovery: {}", ready.text);
    // The refused request, retried with its key, is placed now (its id may have been reserved
    // before the failed commit).
    let (c, r) = place_key(&cell, refused_n, &refused_key);
    assert_eq!(r.status, 201, "the retry of the refused order: {}", r.text);
    acked.push((c, r.json["order_id"].as_str().expect("order_id").to_owned()));

    for (c, id) in &acked {
        get_order(&cell, &customers[*c], id);
    }
    cell.restart();
    for (c, id) in &acked {
        get_order(&cell, &customers[*c], id);
    }
    println!(
        "disk_full: all {} acknowledged orders readable after recovery and after a restart",
        acked.len()
    );
    drop(cell);
    drop(fs);
}
