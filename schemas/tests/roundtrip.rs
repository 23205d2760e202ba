//! Every message survives encode -> decode exactly, and framing splits what it joins.

mod common;

use common::*;
use flatbuffers::FlatBufferBuilder;
use proptest::prelude::*;
use schemas::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn location_ping_round_trips(ping in ping()) {
        prop_assert!(ping.validate().is_ok());
        let bytes = ping.to_vec();
        prop_assert_eq!(bytes.len(), LOCATION_PING_BYTES);
        prop_assert_eq!(LocationPing::decode(&bytes), Ok(ping));
    }

    #[test]
    fn driver_msg_round_trips(msg in driver_msg()) {
        prop_assert!(msg.validate().is_ok());
        let bytes = msg.to_vec();
        prop_assert!(bytes.len() <= MAX_CONTROL_MESSAGE_BYTES);
        prop_assert_eq!(DriverMsg::decode(&bytes), Ok(msg));
    }

    #[test]
    fn cell_msg_round_trips(msg in cell_msg()) {
        prop_assert!(msg.validate().is_ok());
        let bytes = msg.to_vec();
        prop_assert!(bytes.len() <= MAX_CONTROL_MESSAGE_BYTES);
        prop_assert_eq!(CellMsg::decode(&bytes), Ok(msg));
    }

    /// Several frames in one buffer, split back one by one, each needing its whole length.
    #[test]
    fn frames_round_trip(driver in proptest::collection::vec(driver_msg(), 1..4),
                         cell in proptest::collection::vec(cell_msg(), 1..4)) {
        let mut fbb = FlatBufferBuilder::new();
        let mut stream = Vec::new();
        for m in &driver {
            m.encode_framed(&mut fbb, &mut stream);
        }
        let mut rest = &stream[..];
        for m in &driver {
            // Every strict prefix of a frame asks for more bytes.
            let (body, used) = split_frame(rest).unwrap().unwrap();
            prop_assert_eq!(split_frame(&rest[..used - 1]), Ok(None));
            prop_assert_eq!(&DriverMsg::decode(body).unwrap(), m);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());

        stream.clear();
        for m in &cell {
            m.encode_framed(&mut fbb, &mut stream);
        }
        let mut rest = &stream[..];
        for m in &cell {
            let (body, used) = split_frame(rest).unwrap().unwrap();
            prop_assert_eq!(&CellMsg::decode(body).unwrap(), m);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    /// One builder reused across messages of different sizes gives the same bytes as a
    /// fresh one.
    #[test]
    fn builder_reuse_is_clean(a in cell_msg(), b in cell_msg()) {
        let mut fbb = FlatBufferBuilder::new();
        a.encode(&mut fbb);
        let reused = b.encode(&mut fbb).to_vec();
        prop_assert_eq!(reused, b.to_vec());
    }
}

#[test]
fn close_codes_are_stable() {
    let expected = [
        (CloseReason::Normal, 0, "normal"),
        (CloseReason::BadToken, 1, "bad_token"),
        (CloseReason::HelloTimeout, 2, "hello_timeout"),
        (CloseReason::ProtocolViolation, 3, "protocol_violation"),
        (CloseReason::TooManyConnections, 4, "too_many_connections"),
        (CloseReason::ServerShutdown, 5, "server_shutdown"),
        (CloseReason::Handover, 6, "handover"),
        (CloseReason::RateLimited, 7, "rate_limited"),
        (CloseReason::VersionUnsupported, 8, "version_unsupported"),
        (CloseReason::Superseded, 9, "superseded"),
        (CloseReason::Internal, 10, "internal"),
        (CloseReason::SlowReader, 11, "slow_reader"),
        (CloseReason::TokenExpired, 12, "token_expired"),
        (CloseReason::UnknownDelivery, 100, "unknown_delivery"),
        (CloseReason::InvalidTransition, 101, "invalid_transition"),
        (CloseReason::OfferExpired, 102, "offer_expired"),
    ];
    assert_eq!(expected.len(), CloseReason::ALL.len());
    for (reason, code, name) in expected {
        assert_eq!(reason.code(), code, "{reason:?}");
        assert_eq!(reason.as_str(), name);
        assert_eq!(CloseReason::from_code(u64::from(code)), Some(reason));
        assert_eq!(reason.closes_connection(), code < 100);
    }
    assert_eq!(CloseReason::from_code(13), None);
    assert_eq!(CloseReason::from_code(1 << 20), None);
}

#[test]
fn a_ping_is_small() {
    let ping = LocationPing {
        driver_id: 7,
        lat: 52.52,
        lng: 13.405,
        heading_deg: 90.0,
        speed_mps: 8.5,
        accuracy_m: 4.0,
        client_ts_ms: 1_790_000_000_000,
        seq: 42,
    };
    let bytes = ping.to_vec();
    assert_eq!(bytes.len(), LOCATION_PING_BYTES);
    // The same ping on the control stream (datagrams unavailable).
    let on_stream = DriverMsg::new(1, ping).to_vec();
    assert!(on_stream.len() < 128, "{} bytes", on_stream.len());
}
