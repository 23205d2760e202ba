//! Inputs that pass (or bypass) the verifier but break a protocol rule are rejected with the
//! right error; the largest legitimate messages fit the limits.

mod common;

use flatbuffers::FlatBufferBuilder;
use schemas::{fb, *};

fn ping() -> LocationPing {
    LocationPing {
        driver_id: 1,
        lat: 10.0,
        lng: 20.0,
        heading_deg: 0.0,
        speed_mps: 0.0,
        accuracy_m: 0.0,
        client_ts_ms: 0,
        seq: 0,
    }
}

fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        token: "t".into(),
        app_version: "v".into(),
        resume_session_id: None,
        last_offer_id: None,
    }
}

fn place() -> Place {
    Place {
        lat: 0.0,
        lng: 0.0,
        name: String::new(),
        address: "a".into(),
    }
}

fn offer() -> Offer {
    Offer {
        offer_id: 1,
        delivery_id: 2,
        order_id: 3,
        pickup: place(),
        dropoff: place(),
        payout_cents: 0,
        expires_at_ms: 0,
    }
}

fn invalid(field: &'static str) -> impl Fn(&DecodeError) -> bool {
    move |e| matches!(e, DecodeError::InvalidValue { field: f, .. } if *f == field)
}

fn bad_length(field: &'static str) -> impl Fn(&DecodeError) -> bool {
    move |e| matches!(e, DecodeError::BadLength { field: f, .. } if *f == field)
}

#[track_caller]
fn rejects_driver(body: impl Into<DriverBody>, expect: impl Fn(&DecodeError) -> bool) {
    let msg = DriverMsg::new(1, body);
    let err = DriverMsg::decode(&msg.to_vec()).expect_err("must be rejected");
    assert!(expect(&err), "unexpected error {err:?}");
    assert_eq!(
        msg.validate(),
        Err(err),
        "validate() and decode() must agree"
    );
}

#[track_caller]
fn rejects_cell(body: impl Into<CellBody>, expect: impl Fn(&DecodeError) -> bool) {
    let msg = CellMsg::new(1, body);
    let err = CellMsg::decode(&msg.to_vec()).expect_err("must be rejected");
    assert!(expect(&err), "unexpected error {err:?}");
    assert_eq!(
        msg.validate(),
        Err(err),
        "validate() and decode() must agree"
    );
}

type Mutate = fn(&mut LocationPing);

#[test]
fn ping_values_out_of_range() {
    let cases: [(Mutate, &str); 8] = [
        (|p| p.driver_id = 0, "LocationFix.driver_id"),
        (|p| p.lat = f64::NAN, "LocationFix.lat"),
        (|p| p.lat = 90.000_001, "LocationFix.lat"),
        (|p| p.lng = -180.5, "LocationFix.lng"),
        (|p| p.lng = f64::INFINITY, "LocationFix.lng"),
        (|p| p.heading_deg = 360.5, "LocationFix.heading_deg"),
        (|p| p.speed_mps = -1.0, "LocationFix.speed_mps"),
        (|p| p.accuracy_m = f32::NAN, "LocationFix.accuracy_m"),
    ];
    for (mutate, field) in cases {
        let mut p = ping();
        mutate(&mut p);
        let err = LocationPing::decode(&p.to_vec()).unwrap_err();
        assert!(invalid(field)(&err), "{field}: {err:?}");
        // The same rule applies to a ping on the control stream.
        rejects_driver(p, invalid(field));
    }
}

#[test]
fn sizes_are_checked_before_verification() {
    let mut big = ping().to_vec();
    big.resize(MAX_PING_BYTES + 1, 0);
    assert_eq!(
        LocationPing::decode(&big),
        Err(DecodeError::TooLarge {
            len: MAX_PING_BYTES + 1,
            max: MAX_PING_BYTES
        })
    );
    let huge = vec![0u8; MAX_CONTROL_MESSAGE_BYTES + 1];
    assert!(matches!(
        DriverMsg::decode(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        CellMsg::decode(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    for empty in [&[][..], &[0, 0, 0, 0]] {
        assert!(matches!(
            LocationPing::decode(empty),
            Err(DecodeError::Verify(_))
        ));
        assert!(DriverMsg::decode(empty).is_err());
    }
}

#[test]
fn frame_headers() {
    assert_eq!(frame_len(5u32.to_le_bytes()), Ok(5));
    assert!(matches!(
        frame_len(0u32.to_le_bytes()),
        Err(DecodeError::InvalidValue { .. })
    ));
    let over = u32::try_from(MAX_CONTROL_MESSAGE_BYTES + 1).unwrap();
    assert!(matches!(
        frame_len(over.to_le_bytes()),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(split_frame(&over.to_le_bytes()).is_err());
    assert_eq!(split_frame(&[1, 0, 0]), Ok(None));
    assert_eq!(split_frame(&[2, 0, 0, 0, 9]), Ok(None));
    assert_eq!(split_frame(&[1, 0, 0, 0, 9, 8]), Ok(Some((&[9u8][..], 5))));
}

#[test]
fn hello_strings_are_bounded() {
    rejects_driver(
        Hello {
            token: String::new(),
            ..hello()
        },
        bad_length("Hello.token"),
    );
    rejects_driver(
        Hello {
            token: "x".repeat(limits::MAX_TOKEN_BYTES + 1),
            ..hello()
        },
        bad_length("Hello.token"),
    );
    rejects_driver(
        Hello {
            app_version: String::new(),
            ..hello()
        },
        bad_length("Hello.app_version"),
    );
    rejects_driver(
        Hello {
            resume_session_id: Some(0),
            ..hello()
        },
        invalid("Hello.resume_session_id"),
    );
}

#[test]
fn other_driver_messages() {
    rejects_driver(
        StatusChange {
            status: DriverStatus::Delivered { delivery_id: 0 },
            client_ts_ms: 0,
        },
        invalid("StatusChange.delivery_id"),
    );
    rejects_driver(
        OfferResponse {
            offer_id: 0,
            delivery_id: 1,
            decision: OfferDecision::Accept,
        },
        invalid("OfferResponse.offer_id"),
    );
}

#[test]
fn cell_messages() {
    rejects_cell(
        HelloAck {
            session_id: 1,
            server_time_ms: 0,
            ping_interval_ms: 0,
            ping_transport: PingTransport::Datagram,
            resumed: false,
        },
        invalid("HelloAck.ping_interval_ms"),
    );
    rejects_cell(
        Offer {
            payout_cents: -1,
            ..offer()
        },
        invalid("Offer.payout_cents"),
    );
    rejects_cell(
        Offer {
            dropoff: Place {
                address: String::new(),
                ..place()
            },
            ..offer()
        },
        bad_length("Place.address"),
    );
    rejects_cell(
        Offer {
            pickup: Place {
                lat: -91.0,
                ..place()
            },
            ..offer()
        },
        invalid("Place.lat"),
    );
    rejects_cell(
        Offer {
            pickup: Place {
                name: "n".repeat(limits::MAX_PLACE_NAME_BYTES + 1),
                ..place()
            },
            ..offer()
        },
        bad_length("Place.name"),
    );
    rejects_cell(
        Cancellation {
            target: CancelTarget::Delivery { delivery_id: 0 },
            reason: CancelReason::Unspecified,
        },
        invalid("Cancellation.delivery_id"),
    );
    rejects_cell(
        Handover {
            addr: "10.0.0.1:1".parse().unwrap(),
            server_name: String::new(),
            reason: HandoverReason::CellDraining,
        },
        bad_length("Handover.server_name"),
    );
    rejects_cell(
        ErrorMsg {
            code: CloseReason::Internal,
            ref_seq: None,
            message: "m".repeat(limits::MAX_ERROR_MESSAGE_BYTES + 1),
        },
        bad_length("Error.message"),
    );
}

/// Builds a `DriverMessage` by hand, for shapes the typed API cannot produce.
fn raw_driver(
    build: impl FnOnce(
        &mut FlatBufferBuilder<'static>,
    ) -> (
        fb::DriverBody,
        flatbuffers::WIPOffset<flatbuffers::UnionWIPOffset>,
    ),
) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let (body_type, body) = build(&mut fbb);
    let root = fb::DriverMessage::create(
        &mut fbb,
        &fb::DriverMessageArgs {
            seq: 1,
            body_type,
            body: Some(body),
        },
    );
    fbb.finish(root, None);
    fbb.finished_data().to_vec()
}

fn raw_status(status: fb::DriverStatus, delivery_id: Option<u64>) -> Vec<u8> {
    raw_driver(|fbb| {
        let t = fb::StatusChange::create(
            fbb,
            &fb::StatusChangeArgs {
                status,
                delivery_id,
                client_ts_ms: 0,
            },
        );
        (fb::DriverBody::StatusChange, t.as_union_value())
    })
}

#[test]
fn inconsistent_and_unknown_values() {
    let err = DriverMsg::decode(&raw_status(fb::DriverStatus::Online, Some(5))).unwrap_err();
    assert!(invalid("StatusChange.delivery_id")(&err), "{err:?}");
    let err = DriverMsg::decode(&raw_status(fb::DriverStatus::PickedUp, None)).unwrap_err();
    assert!(invalid("StatusChange.delivery_id")(&err), "{err:?}");
    let err = DriverMsg::decode(&raw_status(fb::DriverStatus(42), None)).unwrap_err();
    assert_eq!(
        err,
        DecodeError::UnknownVariant {
            field: "DriverStatus",
            value: 42
        }
    );

    // A union member from the future: a well-formed table under an unknown discriminant.
    let future = raw_driver(|fbb| {
        let t = fb::Ack::create(fbb, &fb::AckArgs { ack_seq: 1 });
        (fb::DriverBody(77), t.as_union_value())
    });
    assert_eq!(
        DriverMsg::decode(&future),
        Err(DecodeError::UnknownVariant {
            field: "DriverBody",
            value: 77
        })
    );
    // Buffers carry no type tag (no file identifier, to keep pings small): the transport says
    // what a buffer is. Reading one kind as another must still fail cleanly or yield a value
    // that passed every check, never panic.
    let hello = DriverMsg::new(1, hello()).to_vec();
    assert!(CellMsg::decode(&hello).is_err());
    let _ = LocationPing::decode(&hello);

    // A Cancellation of an offer without the offer id.
    let mut fbb = FlatBufferBuilder::new();
    let t = fb::Cancellation::create(
        &mut fbb,
        &fb::CancellationArgs {
            scope: fb::CancelScope::Offer,
            delivery_id: 1,
            offer_id: None,
            reason: fb::CancelReason::Unspecified,
        },
    );
    let root = fb::CellMessage::create(
        &mut fbb,
        &fb::CellMessageArgs {
            seq: 1,
            body_type: fb::CellBody::Cancellation,
            body: Some(t.as_union_value()),
        },
    );
    fbb.finish(root, None);
    let err = CellMsg::decode(fbb.finished_data()).unwrap_err();
    assert!(invalid("Cancellation.offer_id")(&err), "{err:?}");
}

#[test]
fn handover_addr_must_parse() {
    let mut fbb = FlatBufferBuilder::new();
    let addr = fbb.create_string("cell-2:4433");
    let server_name = fbb.create_string("cell-2");
    let t = fb::Handover::create(
        &mut fbb,
        &fb::HandoverArgs {
            addr: Some(addr),
            server_name: Some(server_name),
            reason: fb::HandoverReason::RegionMoved,
        },
    );
    let root = fb::CellMessage::create(
        &mut fbb,
        &fb::CellMessageArgs {
            seq: 1,
            body_type: fb::CellBody::Handover,
            body: Some(t.as_union_value()),
        },
    );
    fbb.finish(root, None);
    let err = CellMsg::decode(fbb.finished_data()).unwrap_err();
    assert!(invalid("Handover.addr")(&err), "{err:?}");
}

/// The limits are tight but not too tight: the largest legitimate messages decode.
#[test]
fn largest_messages_fit_the_limits() {
    let hello = DriverMsg::new(
        u64::MAX,
        Hello {
            protocol_version: u16::MAX,
            token: "t".repeat(limits::MAX_TOKEN_BYTES),
            app_version: "v".repeat(limits::MAX_APP_VERSION_BYTES),
            resume_session_id: Some(u64::MAX),
            last_offer_id: Some(u64::MAX),
        },
    );
    let bytes = hello.to_vec();
    assert_eq!(DriverMsg::decode(&bytes), Ok(hello));

    let big_place = Place {
        lat: 90.0,
        lng: -180.0,
        name: "n".repeat(limits::MAX_PLACE_NAME_BYTES),
        address: "a".repeat(limits::MAX_ADDRESS_BYTES),
    };
    let offer = CellMsg::new(
        u64::MAX,
        Offer {
            pickup: big_place.clone(),
            dropoff: big_place,
            ..offer()
        },
    );
    let bytes = offer.to_vec();
    assert!(
        bytes.len() < MAX_CONTROL_MESSAGE_BYTES / 2,
        "{}",
        bytes.len()
    );
    assert_eq!(CellMsg::decode(&bytes), Ok(offer));

    let error = CellMsg::new(
        1,
        ErrorMsg {
            code: CloseReason::ProtocolViolation,
            ref_seq: Some(1),
            message: "m".repeat(limits::MAX_ERROR_MESSAGE_BYTES),
        },
    );
    assert_eq!(CellMsg::decode(&error.to_vec()), Ok(error));
    let v6 = CellMsg::new(
        1,
        Handover {
            addr: "[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535"
                .parse()
                .unwrap(),
            server_name: "s".repeat(limits::MAX_SERVER_NAME_BYTES),
            reason: HandoverReason::DriverMoved,
        },
    );
    assert_eq!(CellMsg::decode(&v6.to_vec()), Ok(v6));
}
