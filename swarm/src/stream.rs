//! [`SecureStream`]: the encrypted byte stream a handshake yields, and [`handshake`], the async
//! driver that runs [`crate::noise::Handshake`] over any `AsyncRead + AsyncWrite`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::cipher::{HEADER_LEN, KeyStream, MAX_RECORD_PLAINTEXT, RecordCipher, Transport};
use crate::error::HandshakeError;
use crate::identity::{Identity, NodeId};
use crate::noise::{Handshake, HandshakeConfig, HandshakeOutcome, Role, Split, decode_length_prefix};

/// Runs the v8 Noise handshake over `stream` and wraps it in a [`SecureStream`].
///
/// Bytes the peer sent right after its last handshake message (the "overflow", wire spec §2)
/// are kept and delivered as the first transport bytes. The whole handshake is bounded by
/// the configured timeout.
pub async fn handshake<S>(
    stream: S,
    role: Role,
    identity: &Identity,
    config: &HandshakeConfig,
) -> Result<SecureStream<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let run = run_handshake(stream, role, identity, config);
    match config.time_limit() {
        Some(limit) => tokio::time::timeout(limit, run).await.map_err(|_| HandshakeError::Timeout)?,
        None => run.await,
    }
}

async fn run_handshake<S>(
    mut stream: S,
    role: Role,
    identity: &Identity,
    config: &HandshakeConfig,
) -> Result<SecureStream<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut hs = Handshake::new(role, identity, config)?;
    let mut buf: Vec<u8> = Vec::new();
    while !hs.is_finished() {
        if hs.is_my_turn() {
            let msg = hs.write_message()?;
            stream.write_all(&msg).await?;
            stream.flush().await?;
            continue;
        }
        loop {
            if let Some((msg, used)) = decode_length_prefix(&buf)? {
                hs.read_message(msg)?;
                buf.drain(..used);
                break;
            }
            // Bounded: decode_length_prefix rejects lengths above 65535 before we read them.
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(HandshakeError::Eof);
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    let outcome = hs.finish()?;
    tracing::debug!(peer = %outcome.remote_static_key, transport = ?outcome.transport, "noise handshake done");
    Ok(SecureStream::new(stream, outcome, buf))
}

enum Reader {
    XSalsa20(KeyStream),
    Aead(Box<AeadReader>),
}

/// Size of the AEAD receive buffer at first: four of the largest records, so that after
/// compaction a pending record always fits and one read can take several records.
const RECV_BUF: usize = 4 * (HEADER_LEN + u16::MAX as usize);
/// What it grows to once a read fills it (the peer sends faster than we take): sixteen
/// records, so that one read returns at least four 64 KiB blocks (hashed together, four at a
/// time, by the replication layer). Quiet connections keep the small buffer.
const RECV_BUF_BULK: usize = 16 * (HEADER_LEN + u16::MAX as usize);
/// The free tail below which the receive buffer is compacted before a read.
const MIN_READ: usize = 16 * 1024;
/// Plaintext sealed into records per `poll_write` before they are written out: one write
/// (one syscall) for several records.
const WRITE_BATCH: usize = 512 * 1024;

/// The receive side of the record transport: one fixed buffer (allocated and zeroed once)
/// that the socket is read into and records are opened in place in.
struct AeadReader {
    cipher: RecordCipher,
    /// `buf[plain.0..plain.1]`: opened plaintext not yet returned; `buf[start..end]`: raw
    /// bytes after it, not yet opened.
    buf: Vec<u8>,
    plain: (usize, usize),
    start: usize,
    end: usize,
    dead: bool,
}

impl AeadReader {
    fn new(cipher: RecordCipher, overflow: Vec<u8>) -> Self {
        let end = overflow.len();
        let mut buf = overflow;
        buf.resize(end.max(RECV_BUF), 0);
        Self { cipher, buf, plain: (0, 0), start: 0, end, dead: false }
    }

    fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        inner: &mut S,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.dead {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "secure stream failed earlier",
                )));
            }
            let (from, to) = self.plain;
            if from < to {
                let n = (to - from).min(out.remaining());
                out.put_slice(&self.buf[from..from + n]);
                self.plain.0 += n;
                // Go on with the next record if it is already here (no socket read): one
                // read can return several records.
                let next_whole =
                    matches!(RecordCipher::record_len(&self.buf[self.start..self.end]), Ok(Some(_)));
                if out.remaining() == 0 || self.plain.0 < self.plain.1 || !next_whole {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            match RecordCipher::record_len(&self.buf[self.start..self.end]) {
                Err(e) => {
                    self.dead = true;
                    return Poll::Ready(Err(e.into()));
                }
                Ok(Some(len)) => {
                    let at = self.start;
                    let header = [self.buf[at], self.buf[at + 1]];
                    let sealed = &mut self.buf[at + HEADER_LEN..at + HEADER_LEN + len];
                    match self.cipher.open(header, sealed) {
                        Ok(n) => self.plain = (at + HEADER_LEN, at + HEADER_LEN + n),
                        Err(e) => {
                            self.dead = true;
                            return Poll::Ready(Err(e.into()));
                        }
                    }
                    self.start += HEADER_LEN + len;
                }
                Ok(None) => {
                    // Every opened byte was returned: the buffer before `start` is free.
                    if self.start == self.end {
                        (self.start, self.end) = (0, 0);
                    }
                    let need =
                        RecordCipher::pending_len(&self.buf[self.start..self.end]).unwrap_or(HEADER_LEN);
                    if self.start + need > self.buf.len() || self.buf.len() - self.end < MIN_READ {
                        self.buf.copy_within(self.start..self.end, 0);
                        (self.start, self.end) = (0, self.end - self.start);
                    }
                    // The buffer holds at most one unfinished record (<= 64 KiB + 2 bytes) plus
                    // whole ones waiting to be returned, whatever the peer sends; it is never
                    // larger than RECV_BUF_BULK.
                    let mut rb = ReadBuf::new(&mut self.buf[self.end..]);
                    ready!(Pin::new(&mut *inner).poll_read(cx, &mut rb))?;
                    let (n, filled_up) = (rb.filled().len(), rb.remaining() == 0);
                    if filled_up && self.buf.len() < RECV_BUF_BULK {
                        self.buf.resize(RECV_BUF_BULK, 0);
                    }
                    if n == 0 {
                        if self.start == self.end {
                            return Poll::Ready(Ok(())); // clean EOF between records
                        }
                        self.dead = true;
                        return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                    }
                    self.end += n;
                }
            }
        }
    }
}

enum Writer {
    XSalsa20(KeyStream),
    Aead(Box<RecordCipher>),
}

/// An encrypted stream to an authenticated peer.
///
/// Implements `AsyncRead` + `AsyncWrite` (`S: Unpin`). Writes are encrypted into an internal
/// buffer of at most one write (or 512 KiB of records) and pushed out eagerly; call `flush`
/// to be sure they left. Over [`Transport::XSalsa20`] nothing is authenticated after the
/// handshake (v8 compatibility); over [`Transport::Aead`] a tampered byte makes `read` fail
/// with `InvalidData` and the stream stays failed.
pub struct SecureStream<S> {
    inner: S,
    outcome: HandshakeOutcome,
    reader: Reader,
    writer: Writer,
    /// XSalsa20: already-decrypted overflow bytes from the handshake.
    early: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// How long a write may make no progress (the peer reads nothing) before it fails.
    write_timeout: Option<std::time::Duration>,
    /// Armed while a write is blocked.
    write_stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// How long a write may make no progress before it fails with `TimedOut` (v8's stream
/// timeout, wire spec §9): a peer that stops reading cannot hold a writer forever.
pub const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

impl<S> std::fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureStream")
            .field("remote", &self.outcome.remote_static_key)
            .field("transport", &self.outcome.transport)
            .finish_non_exhaustive()
    }
}

impl<S> SecureStream<S> {
    /// Wraps `inner` after a finished handshake; `overflow` are raw bytes already read past
    /// the last handshake message.
    pub fn new(inner: S, outcome: HandshakeOutcome, overflow: Vec<u8>) -> Self {
        let split = &outcome.split;
        let (reader, writer, early) = match outcome.transport {
            Transport::XSalsa20 => {
                let mut rx = KeyStream::new(&split.rx, &outcome.remote_nonce);
                let mut early = overflow;
                rx.apply(&mut early);
                (
                    Reader::XSalsa20(rx),
                    Writer::XSalsa20(KeyStream::new(&split.tx, &outcome.local_nonce)),
                    early,
                )
            }
            Transport::Aead(suite) => (
                Reader::Aead(Box::new(AeadReader::new(RecordCipher::new(suite, &split.rx), overflow))),
                Writer::Aead(Box::new(RecordCipher::new(suite, &split.tx))),
                Vec::new(),
            ),
        };
        Self {
            inner,
            outcome,
            reader,
            writer,
            early,
            out: Vec::new(),
            out_pos: 0,
            write_timeout: Some(WRITE_TIMEOUT),
            write_stall: None,
        }
    }

    /// How long a write may make no progress before it fails with `TimedOut` (default
    /// [`WRITE_TIMEOUT`]; `None` waits forever).
    pub fn set_write_timeout(&mut self, limit: Option<std::time::Duration>) {
        self.write_timeout = limit;
        self.write_stall = None;
    }

    /// The peer's static key, proven by the handshake: its node id.
    pub fn remote_static_key(&self) -> NodeId {
        self.outcome.remote_static_key
    }

    /// The raw split keys (hypercore derives capabilities from them, wire spec §5).
    pub fn split(&self) -> &Split {
        &self.outcome.split
    }

    /// Whether every transport byte is authenticated (both sides are ims nodes).
    pub fn is_authenticated(&self) -> bool {
        self.outcome.transport.is_authenticated()
    }

    /// The negotiated transport.
    pub fn transport(&self) -> Transport {
        self.outcome.transport
    }

    /// Everything the handshake produced (role, nonces, handshake hash, ...).
    pub fn outcome(&self) -> &HandshakeOutcome {
        &self.outcome
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Writes out the encrypted buffer; Ready(Ok) once it is empty.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.out_pos += n;
                    self.write_stall = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if let Some(limit) = self.write_timeout {
                        let stall =
                            self.write_stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                        if stall.as_mut().poll(cx).is_ready() {
                            self.write_stall = None;
                            let msg = format!("the peer read nothing for {limit:?}");
                            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, msg)));
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
        self.write_stall = None;
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SecureStream<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.reader {
            Reader::XSalsa20(ks) => {
                if !this.early.is_empty() {
                    let n = this.early.len().min(buf.remaining());
                    buf.put_slice(&this.early[..n]);
                    this.early.drain(..n);
                    return Poll::Ready(Ok(()));
                }
                let start = buf.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                ks.apply(&mut buf.filled_mut()[start..]);
                Poll::Ready(Ok(()))
            }
            Reader::Aead(r) => r.poll_read(&mut this.inner, cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> SecureStream<S> {
    /// Encrypts (a prefix of) the concatenation of `bufs` into the buffer and pushes it out
    /// eagerly; what does not fit now goes out on the next write or flush.
    fn poll_write_parts(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Poll::Ready(Ok(0));
        }
        let taken = match &mut self.writer {
            Writer::XSalsa20(ks) => {
                // The buffer is empty (drained above): all of it is new bytes.
                for b in bufs {
                    self.out.extend_from_slice(b);
                }
                ks.apply(&mut self.out);
                total
            }
            Writer::Aead(cipher) => {
                // Several records per write (one syscall for up to WRITE_BATCH bytes), each
                // gathered from as many of the slices as it spans.
                let mut parts: Vec<&[u8]> = Vec::new();
                let (mut slices, mut rest): (&[io::IoSlice<'_>], &[u8]) = (bufs, &[]);
                let mut taken = 0;
                while taken < total && taken < WRITE_BATCH {
                    let n = (total - taken).min(MAX_RECORD_PLAINTEXT);
                    let mut need = n;
                    parts.clear();
                    while need > 0 {
                        if rest.is_empty() {
                            let Some((first, more)) = slices.split_first() else { break };
                            (rest, slices) = (&first[..], more);
                            continue;
                        }
                        let k = need.min(rest.len());
                        parts.push(&rest[..k]);
                        rest = &rest[k..];
                        need -= k;
                    }
                    cipher.seal_parts(&parts, &mut self.out)?;
                    taken += n;
                }
                taken
            }
        };
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_parts(cx, &[io::IoSlice::new(data)])
    }

    /// Gathers the slices into the records it seals: a caller with its data in pieces (frame
    /// headers around block values) needs no buffer of its own to join them.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_write_parts(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
