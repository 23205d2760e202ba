//! The WebSocket splice: bytes both ways between the client's upgraded connection and the
//! cell's, like `tokio::io::copy_bidirectional` but with no buffer per connection while it is
//! idle. `copy_bidirectional` keeps two 8 KiB buffers for the life of every connection, 16 KiB
//! per tracker that mostly waits; here each read goes into a scratch buffer on the polling
//! thread's stack and is written on at once, and only bytes the writer could not take yet
//! are kept on the heap until it drains. The semantics are `copy_bidirectional`'s: an EOF on
//! one side shuts down the other side's write half, the splice ends once both directions
//! have, and the first error ends it.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read per poll of one direction: the most a message of ours (a tracking snapshot)
/// needs in one go; larger ones take several reads.
const SCRATCH: usize = 8 * 1024;

/// One direction's state; empty (no allocation) while nothing is waiting for the writer.
#[derive(Default)]
struct Half {
    /// Read but not yet written.
    pending: Vec<u8>,
    written: usize,
    /// Written since the last flush (TLS writers buffer).
    unflushed: bool,
    read_done: bool,
    done: bool,
}

impl Half {
    fn poll<R, W>(&mut self, cx: &mut Context<'_>, r: &mut R, w: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin + ?Sized,
        W: AsyncWrite + Unpin + ?Sized,
    {
        if self.done {
            return Poll::Ready(Ok(()));
        }
        loop {
            while self.written < self.pending.len() {
                let n = ready!(Pin::new(&mut *w).poll_write(cx, &self.pending[self.written..]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
                self.unflushed = true;
            }
            if !self.pending.is_empty() {
                // Drained: give the memory back, an idle connection keeps none.
                self.pending = Vec::new();
                self.written = 0;
            }
            if self.read_done {
                ready!(Pin::new(&mut *w).poll_shutdown(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [MaybeUninit::<u8>::uninit(); SCRATCH];
            let mut buf = ReadBuf::uninit(&mut scratch);
            match Pin::new(&mut *r).poll_read(cx, &mut buf) {
                Poll::Pending => {
                    if self.unflushed {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if buf.filled().is_empty() => self.read_done = true,
                Poll::Ready(Ok(())) => {
                    let mut data = buf.filled();
                    while !data.is_empty() {
                        match Pin::new(&mut *w).poll_write(cx, data) {
                            Poll::Ready(Ok(0)) => {
                                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                            }
                            Poll::Ready(Ok(n)) => {
                                data = &data[n..];
                                self.unflushed = true;
                            }
                            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                            Poll::Pending => {
                                // The writer is full: keep the rest until it drains.
                                self.pending = data.to_vec();
                                self.written = 0;
                                return Poll::Pending;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies `a` → `b` and `b` → `a` until both directions reached EOF (and shut down the
/// other side's writer) or one fails.
///
/// # Errors
/// The first read, write, flush or shutdown error of either side.
pub async fn splice<A, B>(a: &mut A, b: &mut B) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let (mut a_to_b, mut b_to_a) = (Half::default(), Half::default());
    std::future::poll_fn(|cx| {
        let ab = a_to_b.poll(cx, a, b)?;
        let ba = b_to_a.poll(cx, b, a)?;
        match (ab, ba) {
            (Poll::Ready(()), Poll::Ready(())) => Poll::Ready(Ok(())),
            _ => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes `data` into `io` and shuts its write side, while reading `io` to its end.
    async fn exchange(io: tokio::io::DuplexStream, data: Vec<u8>) -> Vec<u8> {
        let (mut r, mut w) = tokio::io::split(io);
        let writer = async move {
            w.write_all(&data).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut got = Vec::new();
        let reader = r.read_to_end(&mut got);
        let ((), n) = tokio::join!(writer, reader);
        n.unwrap();
        got
    }

    #[tokio::test]
    async fn both_directions_arrive_whole_through_small_pipes_and_eof_ends_the_splice() {
        // 64-byte pipes: writes are partial and pend, so the pending path runs.
        let (client, mut proxy_a) = tokio::io::duplex(64);
        let (mut proxy_b, cell) = tokio::io::duplex(64);
        let spliced = tokio::spawn(async move { splice(&mut proxy_a, &mut proxy_b).await });
        let up: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let client_side = tokio::spawn(exchange(client, up2));
        let cell_side = tokio::spawn(exchange(cell, down2));
        assert_eq!(client_side.await.unwrap(), down);
        assert_eq!(cell_side.await.unwrap(), up);
        spliced.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_half_closed_side_keeps_the_other_direction_open() {
        let (client, mut proxy_a) = tokio::io::duplex(1024);
        let (mut proxy_b, cell) = tokio::io::duplex(1024);
        let spliced = tokio::spawn(async move { splice(&mut proxy_a, &mut proxy_b).await });
        let (mut cr, mut cw) = tokio::io::split(client);
        let (mut sr, mut sw) = tokio::io::split(cell);
        cw.shutdown().await.unwrap();
        let mut none = Vec::new();
        sr.read_to_end(&mut none).await.unwrap();
        assert!(none.is_empty(), "the cell saw the client's EOF");
        sw.write_all(b"still here").await.unwrap();
        let mut got = [0u8; 10];
        cr.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"still here");
        assert!(!spliced.is_finished(), "one direction is still open");
        sw.shutdown().await.unwrap();
        spliced.await.unwrap().unwrap();
    }
}
