//! The location ping: the one message that also travels on its own, as a QUIC datagram.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::check;
use crate::codec::verified_root;
use crate::error::Result;
use crate::fb;
use crate::limits::{MAX_PING_BYTES, ping_verifier_options};

/// A driver's position report. On the wire: a `LocationPing` table holding one 56-byte
/// `LocationFix` struct, [`crate::LOCATION_PING_BYTES`] bytes in all.
///
/// Decoding checks: `driver_id != 0`, `lat` in [-90, 90], `lng` in [-180, 180],
/// `heading_deg` in [0, 360], `speed_mps` and `accuracy_m` finite and `>= 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocationPing {
    /// The sending driver (must match the authenticated driver; the gateway checks that).
    pub driver_id: u64,
    /// Latitude, degrees (WGS 84).
    pub lat: f64,
    /// Longitude, degrees (WGS 84).
    pub lng: f64,
    /// Degrees clockwise from true north.
    pub heading_deg: f32,
    /// Ground speed, metres per second.
    pub speed_mps: f32,
    /// Horizontal accuracy radius, metres.
    pub accuracy_m: f32,
    /// Client clock when the fix was taken, Unix milliseconds.
    pub client_ts_ms: u64,
    /// Per-session increasing sequence number.
    pub seq: u64,
}

impl LocationPing {
    /// Encodes the ping as a standalone buffer (a datagram payload). Resets `fbb` first; the
    /// returned slice borrows it. Does not validate: see [`LocationPing::validate`].
    pub fn encode<'b>(&self, fbb: &'b mut FlatBufferBuilder<'_>) -> &'b [u8] {
        fbb.reset();
        let root = self.write(fbb);
        fbb.finish(root, None);
        fbb.finished_data()
    }

    /// Encodes into a fresh `Vec` (convenient, allocates a builder).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::with_capacity(MAX_PING_BYTES);
        self.encode(&mut fbb).to_vec()
    }

    /// Decodes a datagram payload: at most [`crate::MAX_PING_BYTES`], verified with
    /// [`crate::ping_verifier_options`], then validated. Allocation-free.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let opts = ping_verifier_options();
        let t = verified_root::<fb::LocationPing>(bytes, MAX_PING_BYTES, &opts)?;
        Self::read(t)
    }

    /// The checks [`LocationPing::decode`] applies after verification.
    pub fn validate(&self) -> Result<()> {
        check::id("LocationFix.driver_id", self.driver_id)?;
        check::lat("LocationFix.lat", self.lat)?;
        check::lng("LocationFix.lng", self.lng)?;
        check::heading("LocationFix.heading_deg", self.heading_deg)?;
        check::non_negative("LocationFix.speed_mps", self.speed_mps)?;
        check::non_negative("LocationFix.accuracy_m", self.accuracy_m)
    }

    pub(crate) fn write<'f>(
        &self,
        fbb: &mut FlatBufferBuilder<'f>,
    ) -> WIPOffset<fb::LocationPing<'f>> {
        let fix = fb::LocationFix::new(
            self.driver_id,
            self.lat,
            self.lng,
            self.client_ts_ms,
            self.seq,
            self.heading_deg,
            self.speed_mps,
            self.accuracy_m,
        );
        fb::LocationPing::create(fbb, &fb::LocationPingArgs { fix: Some(&fix) })
    }

    pub(crate) fn read(t: fb::LocationPing<'_>) -> Result<Self> {
        let fix = t.fix();
        let ping = Self {
            driver_id: fix.driver_id(),
            lat: fix.lat(),
            lng: fix.lng(),
            heading_deg: fix.heading_deg(),
            speed_mps: fix.speed_mps(),
            accuracy_m: fix.accuracy_m(),
            client_ts_ms: fix.client_ts_ms(),
            seq: fix.seq(),
        };
        ping.validate()?;
        Ok(ping)
    }
}
