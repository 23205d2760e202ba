//! Prints encode and verified-decode time per message and encoded sizes.
//!
//! `cargo run --release -p schemas --example codec_timing`

use std::hint::black_box;
use std::time::Instant;

use flatbuffers::FlatBufferBuilder;
use schemas::*;

const ITERATIONS: u32 = 1_000_000;

fn time(label: &str, mut f: impl FnMut()) {
    for _ in 0..ITERATIONS / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..ITERATIONS {
        f();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(ITERATIONS);
    println!("{label:<28} {ns:>8.1} ns");
}

fn main() {
    let ping = LocationPing {
        driver_id: 123_456_789,
        lat: 52.520_008,
        lng: 13.404_954,
        heading_deg: 271.5,
        speed_mps: 9.7,
        accuracy_m: 4.5,
        client_ts_ms: 1_790_000_000_000,
        seq: 4711,
    };
    let place = |name: &str, address: &str| Place {
        lat: 52.5,
        lng: 13.4,
        name: name.into(),
        address: address.into(),
    };
    let offer = CellMsg::new(
        9,
        Offer {
            offer_id: 17,
            delivery_id: 99_000_001,
            order_id: 88_000_001,
            pickup: place("Pizza Roma", "Torstraße 1, 10119 Berlin"),
            dropoff: place("", "Kastanienallee 77, 10435 Berlin, 3rd floor, ring twice"),
            payout_cents: 650,
            expires_at_ms: 1_790_000_030_000,
        },
    );
    let hello = DriverMsg::new(
        1,
        Hello {
            protocol_version: PROTOCOL_VERSION,
            token: "x".repeat(600),
            app_version: "android/5.2.0".into(),
            resume_session_id: Some(5),
            last_offer_id: Some(16),
        },
    );

    let mut fbb = FlatBufferBuilder::with_capacity(1024);
    let ping_bytes = ping.to_vec();
    let offer_bytes = offer.to_vec();
    let hello_bytes = hello.to_vec();
    println!(
        "sizes: ping {} B, offer {} B, hello (600 B token) {} B",
        ping_bytes.len(),
        offer_bytes.len(),
        hello_bytes.len()
    );
    time("LocationPing encode", || {
        black_box(black_box(&ping).encode(&mut fbb));
    });
    time("LocationPing decode", || {
        black_box(LocationPing::decode(black_box(&ping_bytes))).unwrap();
    });
    time("Offer (CellMsg) encode", || {
        black_box(black_box(&offer).encode(&mut fbb));
    });
    time("Offer (CellMsg) decode", || {
        black_box(CellMsg::decode(black_box(&offer_bytes))).unwrap();
    });
    time("Hello (DriverMsg) decode", || {
        black_box(DriverMsg::decode(black_box(&hello_bytes))).unwrap();
    });
}
