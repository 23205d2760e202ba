//! Messages both sides send.

use flatbuffers::{FlatBufferBuilder, WIPOffset};

use crate::error::Result;
use crate::fb;

/// Acknowledges the peer's message whose envelope `seq` is `ack_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ack {
    /// `seq` of the acknowledged envelope.
    pub ack_seq: u64,
}

impl Ack {
    pub(crate) fn write<'f>(&self, fbb: &mut FlatBufferBuilder<'f>) -> WIPOffset<fb::Ack<'f>> {
        fb::Ack::create(
            fbb,
            &fb::AckArgs {
                ack_seq: self.ack_seq,
            },
        )
    }

    /// Any sequence number can be acknowledged: nothing to check. Here so that every envelope
    /// member validates alike.
    pub(crate) fn validate(&self) -> Result<()> {
        Ok(())
    }

    pub(crate) fn read(t: fb::Ack<'_>) -> Result<Self> {
        Ok(Self {
            ack_seq: t.ack_seq(),
        })
    }
}
