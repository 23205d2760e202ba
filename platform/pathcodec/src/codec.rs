//! The block format (see the crate documentation): [`PathBuffer`] appends fixes as they arrive
//! and seals a block; [`decode`] reads one back.

use crate::varint::{Reader, put_i64, put_u64};
use crate::{COORD_SCALE, DecodeError, Fix, HEADING_STEP, SPEED_STEP, TICK_MS};

/// Longitude units in a full turn, and half of it.
const LNG_TURN: i64 = 360 * 100_000;
const LNG_HALF: i64 = LNG_TURN / 2;
const LAT_MAX: i64 = 90 * 100_000;
/// Heading steps in a full turn.
const HEADING_TURN: i64 = (360.0 / HEADING_STEP) as i64;
/// The fewest bytes a record takes (five one-byte varints): bounds a claimed count.
const MIN_RECORD: usize = 5;

/// What the encoder and decoder carry from one fix to the next.
#[derive(Debug, Clone, Copy, Default)]
struct State {
    tick: i64,
    dtick: i64,
    lat: i64,
    lng: i64,
    heading: i64,
    speed: i64,
}

/// `v` wrapped into `[-half, half)` of a turn of `turn` units.
fn wrap(v: i64, turn: i64) -> i64 {
    (v + turn / 2).rem_euclid(turn) - turn / 2
}

fn quantize_coord(deg: f64) -> i64 {
    (deg * COORD_SCALE).round() as i64
}

fn quantize_heading(deg: f32) -> i64 {
    ((deg / HEADING_STEP).round() as i64).rem_euclid(HEADING_TURN)
}

fn quantize_speed(mps: f32) -> i64 {
    // NaN and negative (unknown) speeds are stored as 0; u16 steps cap it at 32 km/s.
    ((mps.max(0.0) / SPEED_STEP).round() as i64).min(i64::from(u16::MAX))
}

/// One delivery's fixes since the last seal, encoded as they arrive (a few varint pushes per
/// fix, no allocation once the body has grown).
#[derive(Debug, Clone)]
pub struct PathBuffer {
    delivery: u64,
    seq: u32,
    first: Option<(i64, i64, i64)>,
    count: u32,
    prev: State,
    body: Vec<u8>,
}

impl PathBuffer {
    /// An empty buffer for segment `seq` of `delivery`'s path.
    pub fn new(delivery: u64, seq: u32) -> Self {
        Self {
            delivery,
            seq,
            first: None,
            count: 0,
            prev: State::default(),
            body: Vec::new(),
        }
    }

    pub fn len(&self) -> u32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Bytes of the records so far (the header adds ~15).
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// Appends `fix`. Latitudes beyond ±90° are clamped; longitudes wrap.
    pub fn push(&mut self, fix: &Fix) {
        let lat = quantize_coord(fix.lat).clamp(-LAT_MAX, LAT_MAX);
        let lng = wrap(quantize_coord(fix.lng), LNG_TURN);
        let (t0, lat0, lng0) = *self.first.get_or_insert((fix.t_ms, lat, lng));
        if self.count == 0 {
            self.prev.lat = lat0;
            self.prev.lng = lng0;
        }
        // Ticks from the first fix, rounded: within ±50 ms of the phone's time.
        let tick = (fix.t_ms.saturating_sub(t0) as f64 / TICK_MS as f64).round() as i64;
        let dtick = tick - self.prev.tick;
        let state = State {
            tick,
            dtick,
            lat,
            lng,
            heading: quantize_heading(fix.heading_deg),
            speed: quantize_speed(fix.speed_mps),
        };
        let p = self.prev;
        put_i64(&mut self.body, dtick - p.dtick);
        put_i64(&mut self.body, state.lat - p.lat);
        put_i64(&mut self.body, wrap(state.lng - p.lng, LNG_TURN));
        put_i64(
            &mut self.body,
            wrap(state.heading - p.heading, HEADING_TURN),
        );
        put_i64(&mut self.body, state.speed - p.speed);
        self.prev = state;
        self.count += 1;
    }

    /// The block: header and records. The buffer is left empty, ready for segment `seq + 1`.
    pub fn seal(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 24);
        let (t0, lat0, lng0) = self.first.unwrap_or_default();
        put_u64(&mut out, self.delivery);
        put_u64(&mut out, u64::from(self.seq));
        put_i64(&mut out, t0);
        put_i64(&mut out, lat0);
        put_i64(&mut out, lng0);
        put_u64(&mut out, u64::from(self.count));
        out.extend_from_slice(&self.body);
        *self = Self::new(self.delivery, self.seq.saturating_add(1));
        out
    }
}

/// `fixes` as one block.
pub fn encode(delivery: u64, seq: u32, fixes: &[Fix]) -> Vec<u8> {
    let mut b = PathBuffer::new(delivery, seq);
    for f in fixes {
        b.push(f);
    }
    b.seal()
}

/// A decoded block. Times are the phone's to the nearest 100 ms after the first fix;
/// coordinates to 1e-5°; longitudes in [-180, 180).
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    pub delivery: u64,
    pub seq: u32,
    pub fixes: Vec<Fix>,
}

/// Reads one block from untrusted bytes.
pub fn decode(bytes: &[u8]) -> Result<Block, DecodeError> {
    let mut r = Reader::new(bytes);
    let delivery = r.u64()?;
    let seq = u32::try_from(r.u64()?).map_err(|_| DecodeError::Range)?;
    let t0 = r.i64()?;
    let lat0 = r.i64()?;
    let lng0 = r.i64()?;
    if lat0.abs() > LAT_MAX || !(-LNG_HALF..LNG_HALF).contains(&lng0) {
        return Err(DecodeError::Range);
    }
    let count = r.u64()?;
    if count > (r.remaining() / MIN_RECORD) as u64 {
        return Err(DecodeError::Count(count));
    }
    let mut fixes = Vec::with_capacity(count as usize);
    let mut s = State {
        lat: lat0,
        lng: lng0,
        ..State::default()
    };
    for _ in 0..count {
        let dtick = s.dtick.checked_add(r.i64()?).ok_or(DecodeError::Range)?;
        let tick = s.tick.checked_add(dtick).ok_or(DecodeError::Range)?;
        let lat = s.lat.checked_add(r.i64()?).ok_or(DecodeError::Range)?;
        if lat.abs() > LAT_MAX {
            return Err(DecodeError::Range);
        }
        let dlng = r.i64()?;
        if !(-LNG_HALF..LNG_HALF).contains(&dlng) {
            return Err(DecodeError::Range);
        }
        let lng = wrap(s.lng + dlng, LNG_TURN);
        let heading =
            (s.heading.checked_add(r.i64()?).ok_or(DecodeError::Range)?).rem_euclid(HEADING_TURN);
        let speed = s.speed.checked_add(r.i64()?).ok_or(DecodeError::Range)?;
        if !(0..=i64::from(u16::MAX)).contains(&speed) {
            return Err(DecodeError::Range);
        }
        let t_ms = tick
            .checked_mul(TICK_MS)
            .and_then(|d| t0.checked_add(d))
            .ok_or(DecodeError::Range)?;
        fixes.push(Fix {
            t_ms,
            lat: lat as f64 / COORD_SCALE,
            lng: lng as f64 / COORD_SCALE,
            heading_deg: heading as f32 * HEADING_STEP,
            speed_mps: speed as f32 * SPEED_STEP,
        });
        s = State {
            tick,
            dtick,
            lat,
            lng,
            heading,
            speed,
        };
    }
    if r.remaining() > 0 {
        return Err(DecodeError::Trailing(r.remaining()));
    }
    Ok(Block {
        delivery,
        seq,
        fixes,
    })
}
