//! No input makes a decoder panic: random bytes, randomly mutated valid buffers, and every
//! single-bit flip, byte overwrite and truncation of one valid buffer per message kind.
//!
//! `fuzz/` holds the same property as a cargo-fuzz target for longer, coverage-guided runs.

mod common;

use std::net::SocketAddr;

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use schemas::*;

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    SetByte(Index, u8),
    /// Overwrite 4 bytes with an offset-like value: offsets and lengths are where a verifier
    /// is most likely to be wrong.
    SetU32(Index, u32),
    Truncate(Index),
    Append(Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let interesting_u32 = prop_oneof![
        0..=64u32,
        Just(u32::MAX),
        Just(u32::MAX - 3),
        Just(i32::MAX as u32),
        Just(0x8000_0000),
        any::<u32>(),
    ];
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::SetByte(i, v)),
        (any::<Index>(), interesting_u32).prop_map(|(i, v)| Mutation::SetU32(i, v)),
        any::<Index>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..16).prop_map(Mutation::Append),
    ]
}

fn apply(buf: &mut Vec<u8>, m: &Mutation) {
    let len = buf.len();
    if len == 0 {
        return;
    }
    match m {
        Mutation::FlipBit(i, bit) => buf[i.index(len)] ^= 1 << bit,
        Mutation::SetByte(i, v) => buf[i.index(len)] = *v,
        Mutation::SetU32(i, v) => {
            let at = i.index(len);
            for (dst, src) in buf[at..].iter_mut().zip(v.to_le_bytes()) {
                *dst = src;
            }
        }
        Mutation::Truncate(i) => buf.truncate(i.index(len)),
        Mutation::Append(bytes) => buf.extend_from_slice(bytes),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_buffers_never_panic(
        mut buf in valid_buffer(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        for m in &mutations {
            apply(&mut buf, m);
            decode_all(&buf);
        }
    }
}

/// One valid buffer per message kind (every union member of both envelopes).
fn samples() -> Vec<Vec<u8>> {
    let place = |name: &str| Place {
        lat: 52.5,
        lng: 13.4,
        name: name.into(),
        address: "Torstraße 1, Berlin".into(),
    };
    let ping = LocationPing {
        driver_id: 9,
        lat: 52.52,
        lng: 13.405,
        heading_deg: 180.0,
        speed_mps: 5.0,
        accuracy_m: 3.0,
        client_ts_ms: 1_790_000_000_000,
        seq: 3,
    };
    let driver = [
        DriverBody::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
            app_version: "ios/5.0".into(),
            resume_session_id: Some(4),
            last_offer_id: Some(5),
        }),
        DriverBody::LocationPing(ping),
        DriverBody::StatusChange(StatusChange {
            status: DriverStatus::PickedUp { delivery_id: 77 },
            client_ts_ms: 1,
        }),
        DriverBody::OfferResponse(OfferResponse {
            offer_id: 1,
            delivery_id: 2,
            decision: OfferDecision::Decline,
        }),
        DriverBody::Ack(Ack { ack_seq: 8 }),
    ];
    let cell = [
        CellBody::HelloAck(HelloAck {
            session_id: 1,
            server_time_ms: 2,
            ping_interval_ms: 1000,
            ping_transport: PingTransport::Stream,
            resumed: true,
        }),
        CellBody::Offer(Offer {
            offer_id: 1,
            delivery_id: 2,
            order_id: 3,
            pickup: place("Pizza Roma"),
            dropoff: place(""),
            payout_cents: 650,
            expires_at_ms: 1_790_000_030_000,
        }),
        CellBody::Assignment(Assignment {
            offer_id: 1,
            delivery_id: 2,
            order_id: 3,
        }),
        CellBody::Cancellation(Cancellation {
            target: CancelTarget::Offer {
                offer_id: 1,
                delivery_id: 2,
            },
            reason: CancelReason::AssignedToOther,
        }),
        CellBody::Handover(Handover {
            addr: SocketAddr::from(([10, 0, 0, 7], 4433)),
            server_name: "cell-berlin-2.example".into(),
            reason: HandoverReason::DriverMoved,
        }),
        CellBody::Ack(Ack { ack_seq: 8 }),
        CellBody::ErrorMsg(ErrorMsg {
            code: CloseReason::InvalidTransition,
            ref_seq: Some(12),
            message: "not picked up yet".into(),
        }),
        CellBody::AddressRevoked(AddressRevoked {
            delivery_id: 2,
            order_id: 3,
        }),
    ];
    let mut out = vec![ping.to_vec()];
    out.extend(driver.into_iter().map(|b| DriverMsg::new(1, b).to_vec()));
    out.extend(cell.into_iter().map(|b| CellMsg::new(1, b).to_vec()));
    out
}

/// Exhaustive small mutations of each sample. Also reports how many mutants still decode: a
/// flip in a value field yields another valid message, a flip in an offset must not crash.
#[test]
fn every_single_byte_mutation_and_truncation_is_handled() {
    let (mut mutants, mut accepted) = (0u64, 0u64);
    for sample in samples() {
        assert!(
            decode_all(&sample).iter().any(|ok| *ok),
            "sample must decode"
        );
        let mut run = |buf: &[u8]| {
            mutants += 1;
            accepted += u64::from(decode_all(buf).iter().take(3).any(|ok| *ok));
        };
        for at in 0..sample.len() {
            let mut buf = sample.clone();
            for bit in 0..8 {
                buf[at] ^= 1 << bit;
                run(&buf);
                buf[at] ^= 1 << bit;
            }
            for v in [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff] {
                buf[at] = v;
                run(&buf);
            }
            run(&sample[..at]);
        }
    }
    println!("{mutants} mutants decoded without panic; {accepted} still passed every check");
}

/// Writes the samples as the seed corpus of the cargo-fuzz target:
/// `cargo test -p schemas --test fuzz -- --ignored write_fuzz_seed_corpus`.
#[test]
#[ignore = "writes files; run by hand to refresh fuzz/corpus/decode"]
fn write_fuzz_seed_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    for (i, sample) in samples().into_iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), &sample).expect("write seed");
        // Control messages again as frames, for the split_frame path. Sample 0 is the ping,
        // 1..=5 driver messages, the rest cell messages (see `samples`).
        let mut framed = Vec::new();
        match i {
            0 => continue,
            1..=5 => DriverMsg::decode(&sample)
                .expect("driver sample")
                .encode_framed(&mut fbb, &mut framed),
            _ => CellMsg::decode(&sample)
                .expect("cell sample")
                .encode_framed(&mut fbb, &mut framed),
        }
        std::fs::write(dir.join(format!("seed-{i:02}-framed")), framed).expect("write seed");
    }
}
