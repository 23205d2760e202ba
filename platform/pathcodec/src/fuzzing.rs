//! Inputs for tests and for `pathfuzz`: realistic tracks and a mutation fuzzer over the
//! decoder, both deterministic from a seed.

use crate::{Fix, decode, encode};

/// A driver's path: 5 s pings (with jitter and gaps), city speeds, stops, U-turns, and GPS
/// noise, from `seed`.
pub fn realistic_track(seed: u64, n: usize, start: (f64, f64)) -> Vec<Fix> {
    let mut rng = SplitMix(seed);
    let (mut lat, mut lng) = start;
    let mut heading: f32 = (rng.draw() % 360) as f32;
    let mut t = 1_765_000_000_000i64 + (rng.draw() % 1_000_000) as i64;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let stopped = i % 40 >= 36; // a red light or a wait at the restaurant
        let speed: f32 = if stopped {
            0.0
        } else {
            6.0 + (rng.draw() % 900) as f32 / 100.0
        };
        if rng.draw().is_multiple_of(50) {
            heading = (heading + 180.0) % 360.0; // a U-turn
        } else {
            heading = (heading + (rng.draw() % 31) as f32 - 15.0).rem_euclid(360.0);
        }
        let gap = if rng.draw().is_multiple_of(100) {
            40_000
        } else {
            5_000
        };
        t += gap + (rng.draw() % 400) as i64 - 200;
        let metres = f64::from(speed) * gap as f64 / 1000.0;
        let rad = f64::from(heading).to_radians();
        lat += metres * rad.cos() / 111_320.0;
        lng += metres * rad.sin() / (111_320.0 * lat.to_radians().cos());
        lng = (lng + 180.0).rem_euclid(360.0) - 180.0;
        // ±10 m of noise.
        let noise = |r: u64| ((r % 2001) as f64 - 1000.0) / 1000.0 * 10.0 / 111_320.0;
        out.push(Fix {
            t_ms: t,
            lat: lat + noise(rng.draw()),
            lng: lng + noise(rng.draw()),
            heading_deg: heading,
            speed_mps: speed,
        });
    }
    out
}

/// A small deterministic generator (SplitMix64), for tracks and fuzzing without a dependency.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn draw(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Decodes `inputs` mutated valid blocks and random byte strings; returns (decoded, refused).
/// A panic is the failure this looks for.
pub fn fuzz(seed: u64, inputs: u64) -> (u64, u64) {
    let mut rng = SplitMix(seed);
    let seeds: Vec<Vec<u8>> = (0..16)
        .map(|i| {
            encode(
                i,
                i as u32,
                &realistic_track(i, 1 + (i as usize * 7) % 60, (52.5, 13.4)),
            )
        })
        .collect();
    let (mut ok, mut err) = (0, 0);
    let mut buf = Vec::new();
    for _ in 0..inputs {
        buf.clear();
        match rng.draw() % 4 {
            0 => buf.extend((0..rng.draw() % 64).map(|_| rng.draw() as u8)),
            _ => {
                buf.extend_from_slice(&seeds[(rng.draw() % 16) as usize]);
                for _ in 0..1 + rng.draw() % 4 {
                    if buf.is_empty() {
                        break;
                    }
                    let at = (rng.draw() % buf.len() as u64) as usize;
                    match rng.draw() % 4 {
                        0 => buf[at] ^= 1 << (rng.draw() % 8),
                        1 => buf[at] = rng.draw() as u8,
                        2 => buf.truncate(at),
                        _ => buf.insert(at, rng.draw() as u8),
                    }
                }
            }
        }
        match decode(&buf) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    (ok, err)
}
