//! Varint framing inside the decrypted stream (wire spec §6): `varint(L) ‖ varint(header) ‖
//! body`, `header = channel << 4 | type`, `L = 0` a keepalive, `L ≤ 8 MiB`.
//!
//! The decoder tells *incomplete* (wait for more bytes) apart from *invalid* (drop the peer),
//! and checks a declared length against the cap before it waits for or buffers any of it:
//! a peer announcing a 1 GB frame is rejected after at most 8 bytes.

use super::varint::{self, Varint};

/// The largest frame length (`L`) v8 accepts ("Incoming message is larger than max size").
pub const MAX_FRAME_LEN: u64 = 8 * 1024 * 1024;

/// One decoded frame, borrowing its body from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `L = 0`: a keepalive (one 0x00 byte); ignored by receivers.
    Keepalive,
    /// A message on a channel.
    Message {
        /// The *sender's* local channel id.
        channel: u64,
        /// The message type (0..=15), see [`super::MessageType`].
        kind: u8,
        /// The protobuf (or extension) body.
        body: &'a [u8],
    },
}

/// Frame-level garbage: the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame declared (or would need) a length above [`MAX_FRAME_LEN`].
    #[error("frame of {len} bytes exceeds the 8 MiB limit")]
    TooLarge {
        /// The declared length (or a lower bound of it).
        len: u64,
    },
    /// The length varint is longer than 8 bytes.
    #[error("frame length varint is longer than 8 bytes")]
    BadLength,
    /// The header varint is malformed or does not fit inside the frame.
    #[error("frame header is malformed")]
    BadHeader,
    /// The channel id is too large to encode in a header.
    #[error("channel id {0} is too large")]
    ChannelTooLarge(u64),
}

/// Decodes one frame from the start of `buf`.
///
/// `Ok(None)`: incomplete, read more. `Ok(Some((frame, used)))`: a frame and the number of
/// bytes it took. `Err`: invalid input.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, FrameError> {
    let (len, prefix) = match varint::decode(buf) {
        Varint::Value(len, n) => (len, n),
        // Even an unfinished varint can already prove the frame is too large.
        Varint::Incomplete { partial } if partial > MAX_FRAME_LEN => {
            return Err(FrameError::TooLarge { len: partial });
        }
        Varint::Incomplete { .. } => return Ok(None),
        Varint::TooLong => return Err(FrameError::BadLength),
    };
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len });
    }
    if len == 0 {
        return Ok(Some((Frame::Keepalive, prefix)));
    }
    // len <= 8 MiB, so this fits in usize everywhere we run.
    let end = prefix + len as usize;
    let Some(frame) = buf.get(prefix..end) else { return Ok(None) };
    let Varint::Value(header, n) = varint::decode(frame) else { return Err(FrameError::BadHeader) };
    let kind = (header & 0x0f) as u8;
    Ok(Some((Frame::Message { channel: header >> 4, kind, body: &frame[n..] }, end)))
}

/// Appends the frame for (`channel`, `kind`, `body`).
pub fn encode(channel: u64, kind: u8, body: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    encode_header(channel, kind, body.len(), out)?;
    out.extend_from_slice(body);
    Ok(())
}

/// The frame's length prefix and header for (`channel`, `kind`) and a body of `body_len`
/// bytes, checked against the cap: the frame is `prefix ‖ body`. Returns the whole frame's size.
fn header(channel: u64, kind: u8, body_len: usize) -> Result<(u64, u64, usize), FrameError> {
    let header =
        channel.checked_mul(16).filter(|h| *h < 1 << 56).ok_or(FrameError::ChannelTooLarge(channel))?
            | u64::from(kind & 0x0f);
    let len = (varint::encoded_len(header) + body_len) as u64;
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len });
    }
    Ok((len, header, varint::encoded_len(len) + len as usize))
}

/// The size of the frame for (`channel`, `kind`) with a body of `body_len` bytes, or why it
/// cannot be sent.
pub fn frame_len(channel: u64, kind: u8, body_len: usize) -> Result<usize, FrameError> {
    header(channel, kind, body_len).map(|(_, _, total)| total)
}

/// Appends the length prefix and header of the frame for (`channel`, `kind`) with a body of
/// `body_len` bytes, reserving room for the body, which the caller appends next (so a body
/// can be encoded straight into `out`).
pub fn encode_header(channel: u64, kind: u8, body_len: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let (len, header, total) = header(channel, kind, body_len)?;
    out.reserve(total);
    varint::encode(len, out);
    varint::encode(header, out);
    Ok(())
}

/// Appends a keepalive (a single 0x00 byte).
pub fn encode_keepalive(out: &mut Vec<u8>) {
    out.push(0);
}

/// Accumulates stream bytes and yields whole frames; frames may be split or merged across
/// reads arbitrarily (wire spec §6).
///
/// Memory: besides what the caller pushes in one [`extend`](Self::extend), the decoder keeps
/// at most one unfinished frame, which the cap bounds to 8 MiB. After an error the decoder
/// must be dropped with the connection.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream (dropping what earlier frames used).
    pub fn extend(&mut self, bytes: &[u8]) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read more stream bytes into, with room for at least `min` more (bytes
    /// earlier frames used are dropped first): reading straight into it saves the copy
    /// [`extend`](Self::extend) makes. Append only; what is appended is decoded next.
    pub fn read_buffer(&mut self, min: usize) -> &mut Vec<u8> {
        if self.buf.capacity() - self.buf.len() < min {
            if self.start > 0 {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(min);
        }
        &mut self.buf
    }

    /// The next whole frame, if the buffered bytes hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FrameError> {
        match decode(&self.buf[self.start..])? {
            None => Ok(None),
            Some((frame, used)) => {
                let at = self.start;
                self.start += used;
                // Re-slice from the stored buffer so the frame borrows `self`, not a temporary.
                Ok(Some(match frame {
                    Frame::Keepalive => Frame::Keepalive,
                    Frame::Message { channel, kind, body } => {
                        let body_start = at + used - body.len();
                        Frame::Message { channel, kind, body: &self.buf[body_start..at + used] }
                    }
                }))
            }
        }
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn want_example_from_the_spec() {
        // Want{start:0,length:1048576} on channel 1 (wire spec §6).
        let mut out = Vec::new();
        encode(1, 5, &[0x08, 0x00, 0x10, 0x80, 0x80, 0x40], &mut out).expect("encode");
        assert_eq!(out, [0x07, 0x15, 0x08, 0x00, 0x10, 0x80, 0x80, 0x40]);
        let (frame, used) = decode(&out).expect("valid").expect("whole");
        assert_eq!(used, 8);
        assert_eq!(frame, Frame::Message { channel: 1, kind: 5, body: &out[2..] });
    }

    #[test]
    fn incomplete_invalid_and_keepalive() {
        assert_eq!(decode(&[]), Ok(None));
        assert_eq!(decode(&[0x00, 0xff]), Ok(Some((Frame::Keepalive, 1))));
        assert_eq!(decode(&[0x03, 0x13, 0x08]), Ok(None));
        assert_eq!(decode(&[0x02, 0x80, 0x80]), Err(FrameError::BadHeader));
        assert_eq!(decode(&[0xff; 9]), Err(FrameError::BadLength));
        // 8 MiB + 1 declared: rejected before a single body byte arrives.
        assert_eq!(decode(&[0x81, 0x80, 0x80, 0x04]), Err(FrameError::TooLarge { len: MAX_FRAME_LEN + 1 }));
        // Exactly 8 MiB is allowed (and incomplete here).
        assert_eq!(decode(&[0x80, 0x80, 0x80, 0x04]), Ok(None));
    }
}
