//! Moves [`ChannelMessage`]s over one connection (any `AsyncRead + AsyncWrite`, normally a
//! `swarm::SecureStream`), with v8's liveness rules (wire spec §9): a keepalive after 10 s
//! without sending, and the peer is dropped after 20 s without receiving a byte.
//!
//! [`message_stream`] splits the connection: a [`MessageSender`] (cheap `Clone`; a writer
//! task owns the write half, batches queued frames into one write, and sends keepalives) and
//! a [`MessageReceiver`] (decodes frames, skips keepalives, enforces the receive timeout and
//! the frame cap). Channel bookkeeping stays with the caller ([`super::Channels`]).

use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::frame::{self, FrameDecoder, FrameError};
use super::message::{ChannelMessage, MessageError};

/// Liveness settings of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamOptions {
    /// Drop the peer after this long without receiving a byte (v8: 20 s).
    pub timeout: Duration,
    /// Send a keepalive after this long without sending (v8: `ceil(timeout / 2)` = 10 s).
    pub keepalive: Duration,
    /// Frames queued for the writer before `send` waits (back-pressure).
    pub queue: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(20), keepalive: Duration::from_secs(10), queue: 256 }
    }
}

/// The connection failed; it is to be dropped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// Nothing arrived within the timeout.
    #[error("peer sent nothing for {0:?}")]
    Timeout(Duration),
    /// Bad framing (e.g. a frame over 8 MiB).
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A malformed message.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// Reading or writing failed.
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The writer task has stopped (the connection is closed or failed).
    #[error("connection closed")]
    Closed,
    /// The peer closed the stream in the middle of a frame.
    #[error("peer closed the stream inside a frame")]
    TruncatedFrame,
}

/// What the writer task is handed: a frame encoded by the sender, or a message it encodes
/// itself straight into its write batch.
#[derive(Debug)]
enum Outgoing {
    Frame(Vec<u8>),
    Message(ChannelMessage),
}

/// Sends messages on a connection. Dropping every sender closes the write side.
#[derive(Debug, Clone)]
pub struct MessageSender {
    tx: mpsc::Sender<Outgoing>,
}

impl MessageSender {
    /// Queues `message` (encoded now, so an oversized message fails here, not later).
    pub async fn send(&self, message: &ChannelMessage) -> Result<(), StreamError> {
        let frame = message.to_frame()?;
        self.tx.send(Outgoing::Frame(frame)).await.map_err(|_| StreamError::Closed)
    }

    /// Queues `message` itself: the writer encodes it straight into its next write, with no
    /// buffer of its own, and sends a large Data value from where it is (for large messages,
    /// e.g. Data). Its size is checked now, so an oversized message fails here, not later.
    pub async fn send_owned(&self, message: ChannelMessage) -> Result<(), StreamError> {
        message.frame_len()?;
        self.tx.send(Outgoing::Message(message)).await.map_err(|_| StreamError::Closed)
    }
}

/// Block values at least this large are sent from where they are (a served block is a view
/// of the log) instead of being copied into the write batch.
const GATHER_MIN: usize = 4 * 1024;

/// A write batch: encoded frames end to end, cut where a large block value goes, the values
/// held by reference. It is written with vectored writes, which `swarm::SecureStream` gathers
/// straight into the records it seals: each block is copied once on the way out, not twice.
#[derive(Debug, Default)]
struct Batch {
    /// Whole parts, in order: encoded bytes and values.
    parts: std::collections::VecDeque<Bytes>,
    /// Encoded bytes after the last part.
    open: Vec<u8>,
    len: usize,
}

impl Batch {
    /// Appends what `item` stands for.
    fn push(&mut self, item: Outgoing) {
        let before = self.open.len();
        let value = match item {
            Outgoing::Frame(frame) => {
                self.open.extend_from_slice(&frame);
                None
            }
            // Checked by `send_owned`: encoding cannot fail here.
            Outgoing::Message(message) => {
                message.encode_around_value(GATHER_MIN, &mut self.open).unwrap_or_else(|e| {
                    self.open.truncate(before);
                    tracing::warn!(error = %e, "dropped a message that cannot be encoded");
                    None
                })
            }
        };
        self.len += self.open.len() - before;
        if let Some((at, value)) = value {
            // The bytes before the value become a part (never empty: they hold its frame
            // header); the ones after it stay open.
            self.len += value.len();
            let rest = self.open.split_off(at);
            self.parts.push_back(Bytes::from(std::mem::replace(&mut self.open, rest)));
            self.parts.push_back(value);
        }
    }

    /// Ends the batch: every byte is in `parts` (none of them empty).
    fn close(&mut self) {
        if !self.open.is_empty() {
            self.parts.push_back(Bytes::from(std::mem::take(&mut self.open)));
        }
    }
}

/// Reads a closed [`Batch`] (its `parts`) in order, for `write_all_buf`.
impl bytes::Buf for Batch {
    fn remaining(&self) -> usize {
        self.len
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |p| &p[..])
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(&self.parts) {
            *slot = std::io::IoSlice::new(part);
            n += 1;
        }
        n
    }

    fn advance(&mut self, mut cnt: usize) {
        self.len -= cnt.min(self.len);
        while cnt > 0 {
            let Some(front) = self.parts.front_mut() else { return };
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.parts.pop_front();
        }
    }
}

/// Receives messages from a connection.
#[derive(Debug)]
pub struct MessageReceiver<S> {
    reader: ReadHalf<S>,
    decoder: FrameDecoder,
    timeout: Duration,
}

/// Frames the writer task gathers into one write.
const WRITE_BATCH: usize = 256 * 1024;

/// Room made in the decoder's buffer before each read: sixteen 64 KiB blocks, so that a
/// burst of Data arrives in one read and is taken together ([`MessageReceiver::try_recv_buffered`];
/// the replication layer hashes the blocks of a burst four at a time). The buffer's memory is
/// only touched as far as reads fill it.
const READ_CHUNK: usize = 1024 * 1024;

impl<S: AsyncRead> MessageReceiver<S> {
    /// The next message; `Ok(None)` when the peer closed the stream between frames.
    /// Keepalives are consumed silently (they only refresh the timeout).
    pub async fn recv(&mut self) -> Result<Option<ChannelMessage>, StreamError> {
        loop {
            if let Some(message) = self.try_recv_buffered()? {
                return Ok(Some(message));
            }
            // Straight into the decoder's buffer: no copy.
            let buf = self.decoder.read_buffer(READ_CHUNK);
            let read = tokio::time::timeout(self.timeout, self.reader.read_buf(buf)).await;
            let n = read.map_err(|_| StreamError::Timeout(self.timeout))??;
            if n == 0 {
                return if self.decoder.buffered() == 0 {
                    Ok(None)
                } else {
                    Err(StreamError::TruncatedFrame)
                };
            }
        }
    }
}

impl<S> MessageReceiver<S> {
    /// The next message if the bytes already read hold it whole; never reads. After
    /// [`recv`](Self::recv), this takes the rest of a burst that arrived in the same read.
    pub fn try_recv_buffered(&mut self) -> Result<Option<ChannelMessage>, StreamError> {
        while let Some(frame) = self.decoder.next_frame()? {
            if let Some(message) = ChannelMessage::from_frame(frame)? {
                return Ok(Some(message));
            }
        }
        Ok(None)
    }
}

/// Splits `stream` into a sender and a receiver and starts the writer task (on the current
/// tokio runtime). The task ends when every sender is dropped (after flushing and shutting
/// down the write side) or when a write fails.
pub fn message_stream<S>(stream: S, options: StreamOptions) -> (MessageSender, MessageReceiver<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, writer) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel(options.queue.max(1));
    tokio::spawn(write_loop(writer, rx, options.keepalive));
    let receiver = MessageReceiver { reader, decoder: FrameDecoder::new(), timeout: options.timeout };
    (MessageSender { tx }, receiver)
}

async fn write_loop<W: AsyncWrite>(writer: W, mut rx: mpsc::Receiver<Outgoing>, keepalive: Duration) {
    tokio::pin!(writer);
    let mut batch = Batch::default();
    let mut idle_until = Instant::now() + keepalive;
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(item) = next else { break };
                batch.push(item);
                // Batch whatever else is queued into the same write.
                while batch.len < WRITE_BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
            }
            () = tokio::time::sleep_until(idle_until) => {
                let mut keepalive = Vec::new();
                frame::encode_keepalive(&mut keepalive);
                batch.push(Outgoing::Frame(keepalive));
            }
        }
        batch.close();
        if let Err(e) = async {
            writer.write_all_buf(&mut batch).await?;
            writer.flush().await
        }
        .await
        {
            tracing::debug!(error = %e, "protocol stream write failed");
            return;
        }
        idle_until = Instant::now() + keepalive;
    }
    let _ = writer.shutdown().await;
}

#[cfg(test)]
mod tests {
    use bytes::Buf;

    use super::{Batch, GATHER_MIN, Outgoing};
    use crate::protocol::{ChannelMessage, Data, Have, Message};

    /// A batch read out through `chunks_vectored` and `advance` in uneven steps, as partial
    /// vectored writes do, is the frames end to end; large values are parts of their own.
    #[test]
    fn a_batch_reads_out_as_its_frames_in_order() {
        let data = |i: u64, len: usize| {
            let value = (0..len).map(|j| (j as u64 * 7 + i) as u8).collect::<Vec<u8>>();
            ChannelMessage::new(
                1,
                Message::Data(Data { index: i, value: Some(value.into()), ..Default::default() }),
            )
        };
        let have = ChannelMessage::new(2, Message::Have(Have { start: 9, ..Default::default() }));
        let messages =
            [data(0, 70_000), have.clone(), data(1, GATHER_MIN - 1), data(2, GATHER_MIN), data(3, 65_536)];
        let want: Vec<u8> = messages.iter().flat_map(|m| m.to_frame().expect("frame")).collect();
        for step in [1usize, 1000, 65_537, usize::MAX] {
            let mut batch = Batch::default();
            for (k, m) in messages.iter().enumerate() {
                if k == 1 {
                    batch.push(Outgoing::Frame(m.to_frame().expect("frame")));
                } else {
                    batch.push(Outgoing::Message(m.clone()));
                }
            }
            batch.close();
            assert_eq!(batch.remaining(), want.len());
            // Three values kept apart: encoded, value, encoded, value, encoded, value (the last
            // Data has no proof after its value).
            assert_eq!(batch.parts.len(), 6);
            let mut got = Vec::new();
            while batch.has_remaining() {
                let mut slices = [std::io::IoSlice::new(&[]); 3];
                let n = batch.chunks_vectored(&mut slices);
                assert!(n > 0);
                let mut taken = 0;
                for s in &slices[..n] {
                    let k = s.len().min(step - taken);
                    got.extend_from_slice(&s[..k]);
                    taken += k;
                    if taken == step {
                        break;
                    }
                }
                batch.advance(taken);
            }
            assert_eq!(got, want, "step {step}");
            assert!(batch.parts.is_empty());
        }
    }
}
