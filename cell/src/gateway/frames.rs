//! Control-stream framing over quinn streams: `u32` LE length + one buffer
//! ([`schemas::frame`]). The reader checks the announced length before waiting for the body,
//! so a peer cannot make the gateway buffer more than one maximum frame.

use std::time::Duration;

use flatbuffers::FlatBufferBuilder;
use schemas::{CellBody, CellMsg, DecodeError, DriverMsg, FRAME_HEADER_BYTES, frame_len};

#[derive(Debug, thiserror::Error)]
pub(super) enum FrameError {
    #[error("undecodable frame: {0}")]
    Decode(#[from] DecodeError),
    #[error("frame of {0} bytes over the configured limit")]
    TooLarge(usize),
    #[error("stream ended inside a frame")]
    Truncated,
    #[error("reading the control stream: {0}")]
    Read(#[from] quinn::ReadError),
}

pub(super) struct FrameReader {
    recv: quinn::RecvStream,
    buf: Vec<u8>,
    max: usize,
}

impl FrameReader {
    pub fn new(recv: quinn::RecvStream, max_frame_bytes: usize) -> Self {
        Self {
            recv,
            buf: Vec::new(),
            max: max_frame_bytes,
        }
    }

    /// The next message; `Ok(None)` when the driver finished its side cleanly. Cancel-safe:
    /// quinn's `read_chunk` is, and bytes already read stay in `buf`.
    pub async fn next(&mut self) -> Result<Option<DriverMsg>, FrameError> {
        loop {
            if let Some(header) = self.buf.first_chunk::<FRAME_HEADER_BYTES>() {
                let len = frame_len(*header)?;
                if len > self.max {
                    return Err(FrameError::TooLarge(len));
                }
                let end = FRAME_HEADER_BYTES + len;
                if self.buf.len() >= end {
                    let msg = DriverMsg::decode(&self.buf[FRAME_HEADER_BYTES..end]);
                    self.buf.drain(..end);
                    return Ok(Some(msg?));
                }
            }
            match self
                .recv
                .read_chunk(FRAME_HEADER_BYTES + self.max, true)
                .await?
            {
                Some(chunk) => self.buf.extend_from_slice(&chunk.bytes),
                None if self.buf.is_empty() => return Ok(None),
                None => return Err(FrameError::Truncated),
            }
        }
    }
}

pub(super) struct FrameWriter {
    send: quinn::SendStream,
    fbb: FlatBufferBuilder<'static>,
    buf: Vec<u8>,
    seq: u64,
}

impl FrameWriter {
    pub fn new(send: quinn::SendStream) -> Self {
        Self {
            send,
            fbb: FlatBufferBuilder::with_capacity(1024),
            buf: Vec::with_capacity(1024),
            seq: 0,
        }
    }

    /// Writes `body` as the next `CellMsg`. A body that fails its own validation is not sent
    /// (the driver would have to treat it as a protocol violation): logged and skipped.
    pub async fn write(&mut self, body: CellBody) -> Result<(), quinn::WriteError> {
        let msg = CellMsg::new(self.seq + 1, body);
        if let Err(e) = msg.validate() {
            tracing::error!(error = %e, ?msg, "dropping an invalid outgoing cell message");
            return Ok(());
        }
        self.seq += 1;
        self.buf.clear();
        msg.encode_framed(&mut self.fbb, &mut self.buf);
        self.send.write_all(&self.buf).await
    }

    /// Finishes the stream and waits (bounded) until the driver has acknowledged everything
    /// written, so a closing message is not discarded by the close that follows it.
    pub async fn flush(&mut self, within: Duration) {
        if self.send.finish().is_ok() {
            let _ = tokio::time::timeout(within, self.send.stopped()).await;
        }
    }
}
