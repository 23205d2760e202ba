//! Round trips of random and realistic tracks within the format's resolution, the size of a
//! realistic track, and the decoder under mutated input.

use crate::fuzzing::{fuzz, realistic_track};
use crate::{DecodeError, Fix, PathBuffer, decode, encode};
use proptest::prelude::*;

/// The longitude difference in degrees, across the antimeridian.
fn lng_diff(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

fn heading_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// Every decoded fix is the original within the format's resolution.
fn assert_close(original: &[Fix], decoded: &[Fix]) {
    assert_eq!(original.len(), decoded.len());
    let first = original.first().map_or(0, |f| f.t_ms);
    for (i, (a, b)) in original.iter().zip(decoded).enumerate() {
        let dt = (a.t_ms - b.t_ms).abs();
        assert!(
            dt <= 50,
            "fix {i}: time off by {dt} ms ({} vs {})",
            a.t_ms,
            b.t_ms
        );
        if i == 0 {
            assert_eq!(a.t_ms, first, "the first time is exact");
        }
        let lat = a.lat.clamp(-90.0, 90.0);
        assert!(
            (lat - b.lat).abs() <= 0.5e-5 + 1e-9,
            "fix {i}: lat {lat} vs {}",
            b.lat
        );
        assert!(
            lng_diff(a.lng, b.lng) <= 0.5e-5 + 1e-9,
            "fix {i}: lng {} vs {}",
            a.lng,
            b.lng
        );
        assert!(heading_diff(a.heading_deg, b.heading_deg) <= 1.0 + 1e-3);
        assert!((a.speed_mps.max(0.0) - b.speed_mps).abs() <= 0.25 + 1e-3);
    }
}

fn fix_strategy() -> impl Strategy<Value = (i64, f64, f64, f32, f32)> {
    (
        -3_600_000i64..3_600_000,
        -90.0f64..=90.0,
        -180.0f64..=180.0,
        -720.0f32..720.0,
        -1.0f32..80.0,
    )
}

proptest! {
    #[test]
    fn random_tracks_round_trip(
        start in 0i64..2_000_000_000_000,
        steps in proptest::collection::vec(fix_strategy(), 0..200),
        delivery in any::<u64>(),
        seq in any::<u32>(),
    ) {
        let mut t = start;
        let fixes: Vec<Fix> = steps
            .iter()
            .map(|&(dt, lat, lng, heading_deg, speed_mps)| {
                t += dt;
                Fix { t_ms: t, lat, lng, heading_deg, speed_mps }
            })
            .collect();
        let block = decode(&encode(delivery, seq, &fixes)).expect("decodes");
        prop_assert_eq!((block.delivery, block.seq), (delivery, seq));
        assert_close(&fixes, &block.fixes);
    }

    #[test]
    fn realistic_tracks_round_trip_in_about_five_bytes_a_fix(seed in any::<u64>()) {
        let fixes = realistic_track(seed, 500, (52.52, 13.405));
        let bytes = encode(1 << 40, 0, &fixes);
        assert_close(&fixes, &decode(&bytes).unwrap().fixes);
        prop_assert!(bytes.len() <= 6 * fixes.len(), "{} bytes for {} fixes", bytes.len(), fixes.len());
    }
}

#[test]
fn the_antimeridian_costs_one_byte_per_coordinate() {
    let fixes: Vec<Fix> = (0..20)
        .map(|i| Fix {
            t_ms: 5_000 * i,
            lat: -16.5,
            // Fiji: across 180° every ping.
            lng: if i % 2 == 0 { 179.9998 } else { -179.9998 },
            heading_deg: 90.0,
            speed_mps: 10.0,
        })
        .collect();
    let bytes = encode(7, 0, &fixes);
    assert_close(&fixes, &decode(&bytes).unwrap().fixes);
    // 5 one-byte fields per record after the first, plus the header.
    assert!(bytes.len() <= 20 * 5 + 20, "{} bytes", bytes.len());
}

#[test]
fn a_buffer_seals_segments_that_each_decode() {
    let fixes = realistic_track(3, 100, (48.137, 11.575));
    let mut buf = PathBuffer::new(42, 0);
    let mut segments = Vec::new();
    for chunk in fixes.chunks(12) {
        for f in chunk {
            buf.push(f);
        }
        segments.push(buf.seal());
    }
    assert!(buf.is_empty());
    let mut joined = Vec::new();
    for (i, s) in segments.iter().enumerate() {
        let b = decode(s).unwrap();
        assert_eq!((b.delivery, b.seq), (42, i as u32));
        joined.extend(b.fixes);
    }
    assert_close(&fixes, &joined);
}

#[test]
fn an_empty_block_decodes_and_junk_is_refused() {
    assert_eq!(decode(&encode(1, 2, &[])).unwrap().fixes, vec![]);
    let mut b = encode(1, 2, &realistic_track(1, 10, (52.0, 13.0)));
    b.push(0);
    assert_eq!(decode(&b), Err(DecodeError::Trailing(1)));
    b.truncate(b.len() - 3);
    assert!(decode(&b).is_err());
    // A claimed count far beyond the bytes allocates nothing.
    assert!(matches!(
        decode(&[1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        Err(DecodeError::Count(_))
    ));
}

#[test]
fn the_decoder_survives_mutated_input() {
    let (ok, err) = fuzz(0x5eed, 200_000);
    assert_eq!(ok + err, 200_000);
    assert!(
        ok > 0 && err > 0,
        "both outcomes are reached: {ok} ok, {err} refused"
    );
}
