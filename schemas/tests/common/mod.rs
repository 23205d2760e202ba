//! Proptest strategies producing valid messages (shared by the test binaries).

#![allow(dead_code, reason = "each test binary uses a subset")]

use std::net::{IpAddr, SocketAddr};

use proptest::option;
use proptest::prelude::*;
use schemas::*;

pub fn id() -> impl Strategy<Value = u64> {
    prop_oneof![1..=16u64, 1..=u64::MAX, Just(u64::MAX)]
}

pub fn lat() -> impl Strategy<Value = f64> {
    prop_oneof![
        -90.0..=90.0f64,
        Just(-90.0),
        Just(90.0),
        Just(0.0),
        Just(-0.0)
    ]
}

pub fn lng() -> impl Strategy<Value = f64> {
    prop_oneof![-180.0..=180.0f64, Just(-180.0), Just(180.0)]
}

fn non_negative_f32() -> impl Strategy<Value = f32> {
    prop_oneof![0.0..=1.0e6f32, Just(0.0), Just(f32::MAX)]
}

pub fn ping() -> BoxedStrategy<LocationPing> {
    (
        id(),
        lat(),
        lng(),
        0.0..=360.0f32,
        non_negative_f32(),
        non_negative_f32(),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(driver_id, lat, lng, heading_deg, speed_mps, accuracy_m, client_ts_ms, seq)| {
                LocationPing {
                    driver_id,
                    lat,
                    lng,
                    heading_deg,
                    speed_mps,
                    accuracy_m,
                    client_ts_ms,
                    seq,
                }
            },
        )
        .boxed()
}

pub fn hello() -> BoxedStrategy<Hello> {
    (
        any::<u16>(),
        prop_oneof!["[A-Za-z0-9._-]{1,64}", "[A-Za-z0-9._-]{4096}"],
        "\\PC{1,16}",
        option::of(id()),
        option::of(id()),
    )
        .prop_map(
            |(protocol_version, token, app_version, resume_session_id, last_offer_id)| Hello {
                protocol_version,
                token,
                app_version,
                resume_session_id,
                last_offer_id,
            },
        )
        .boxed()
}

pub fn driver_status() -> BoxedStrategy<DriverStatus> {
    prop_oneof![
        Just(DriverStatus::Online),
        Just(DriverStatus::Offline),
        id().prop_map(|delivery_id| DriverStatus::ArrivedAtRestaurant { delivery_id }),
        id().prop_map(|delivery_id| DriverStatus::PickedUp { delivery_id }),
        id().prop_map(|delivery_id| DriverStatus::Delivered { delivery_id }),
    ]
    .boxed()
}

pub fn status_change() -> BoxedStrategy<StatusChange> {
    (driver_status(), any::<u64>())
        .prop_map(|(status, client_ts_ms)| StatusChange {
            status,
            client_ts_ms,
        })
        .boxed()
}

pub fn offer_response() -> BoxedStrategy<OfferResponse> {
    (id(), id(), proptest::sample::select(OfferDecision::ALL))
        .prop_map(|(offer_id, delivery_id, decision)| OfferResponse {
            offer_id,
            delivery_id,
            decision,
        })
        .boxed()
}

pub fn ack() -> BoxedStrategy<Ack> {
    any::<u64>().prop_map(|ack_seq| Ack { ack_seq }).boxed()
}

pub fn driver_body() -> BoxedStrategy<DriverBody> {
    prop_oneof![
        hello().prop_map(DriverBody::Hello),
        ping().prop_map(DriverBody::LocationPing),
        status_change().prop_map(DriverBody::StatusChange),
        offer_response().prop_map(DriverBody::OfferResponse),
        ack().prop_map(DriverBody::Ack),
    ]
    .boxed()
}

pub fn driver_msg() -> BoxedStrategy<DriverMsg> {
    (any::<u64>(), driver_body())
        .prop_map(|(seq, body)| DriverMsg { seq, body })
        .boxed()
}

pub fn hello_ack() -> BoxedStrategy<HelloAck> {
    (
        id(),
        any::<u64>(),
        1..=u32::MAX,
        proptest::sample::select(PingTransport::ALL),
        any::<bool>(),
    )
        .prop_map(
            |(session_id, server_time_ms, ping_interval_ms, ping_transport, resumed)| HelloAck {
                session_id,
                server_time_ms,
                ping_interval_ms,
                ping_transport,
                resumed,
            },
        )
        .boxed()
}

pub fn place() -> BoxedStrategy<Place> {
    // `\PC{n}` is up to 4n bytes: 60 chars fit the 256-byte name, 120 the 512-byte address.
    (lat(), lng(), "\\PC{0,60}", "\\PC{1,120}")
        .prop_map(|(lat, lng, name, address)| Place {
            lat,
            lng,
            name,
            address,
        })
        .boxed()
}

pub fn offer() -> BoxedStrategy<Offer> {
    (
        id(),
        id(),
        id(),
        place(),
        place(),
        0..=i64::MAX,
        any::<u64>(),
    )
        .prop_map(
            |(offer_id, delivery_id, order_id, pickup, dropoff, payout_cents, expires_at_ms)| {
                Offer {
                    offer_id,
                    delivery_id,
                    order_id,
                    pickup,
                    dropoff,
                    payout_cents,
                    expires_at_ms,
                }
            },
        )
        .boxed()
}

pub fn assignment() -> BoxedStrategy<Assignment> {
    (id(), id(), id())
        .prop_map(|(offer_id, delivery_id, order_id)| Assignment {
            offer_id,
            delivery_id,
            order_id,
        })
        .boxed()
}

pub fn cancellation() -> BoxedStrategy<Cancellation> {
    let target = prop_oneof![
        (id(), id()).prop_map(|(offer_id, delivery_id)| CancelTarget::Offer {
            offer_id,
            delivery_id
        }),
        id().prop_map(|delivery_id| CancelTarget::Delivery { delivery_id }),
    ];
    (target, proptest::sample::select(CancelReason::ALL))
        .prop_map(|(target, reason)| Cancellation { target, reason })
        .boxed()
}

pub fn handover() -> BoxedStrategy<Handover> {
    (
        (any::<IpAddr>(), any::<u16>()).prop_map(SocketAddr::from),
        "[a-z0-9.-]{1,253}",
        proptest::sample::select(HandoverReason::ALL),
    )
        .prop_map(|(addr, server_name, reason)| Handover {
            addr,
            server_name,
            reason,
        })
        .boxed()
}

pub fn error_msg() -> BoxedStrategy<ErrorMsg> {
    (
        proptest::sample::select(CloseReason::ALL),
        option::of(any::<u64>()),
        "\\PC{0,120}",
    )
        .prop_map(|(code, ref_seq, message)| ErrorMsg {
            code,
            ref_seq,
            message,
        })
        .boxed()
}

pub fn cell_body() -> BoxedStrategy<CellBody> {
    prop_oneof![
        hello_ack().prop_map(CellBody::HelloAck),
        offer().prop_map(CellBody::Offer),
        assignment().prop_map(CellBody::Assignment),
        cancellation().prop_map(CellBody::Cancellation),
        handover().prop_map(CellBody::Handover),
        ack().prop_map(CellBody::Ack),
        error_msg().prop_map(CellBody::ErrorMsg),
        (1..=u64::MAX, 1..=u64::MAX).prop_map(|(delivery_id, order_id)| {
            CellBody::AddressRevoked(AddressRevoked {
                delivery_id,
                order_id,
            })
        }),
    ]
    .boxed()
}

pub fn cell_msg() -> BoxedStrategy<CellMsg> {
    (any::<u64>(), cell_body())
        .prop_map(|(seq, body)| CellMsg { seq, body })
        .boxed()
}

/// Any valid buffer of any kind, encoded.
pub fn valid_buffer() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        ping().prop_map(|m| m.to_vec()),
        driver_msg().prop_map(|m| m.to_vec()),
        cell_msg().prop_map(|m| m.to_vec()),
    ]
    .boxed()
}

/// Runs every decode path on `bytes`; each must return, never panic.
pub fn decode_all(bytes: &[u8]) -> [bool; 4] {
    [
        LocationPing::decode(bytes).is_ok(),
        DriverMsg::decode(bytes).is_ok(),
        CellMsg::decode(bytes).is_ok(),
        split_frame(bytes).is_ok(),
    ]
}
