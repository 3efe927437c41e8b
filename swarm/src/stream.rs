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
    Aead { cipher: RecordCipher, raw: Vec<u8>, plain: Vec<u8>, pos: usize, dead: bool },
}

enum Writer {
    XSalsa20(KeyStream),
    Aead(RecordCipher),
}

/// An encrypted stream to an authenticated peer.
///
/// Implements `AsyncRead` + `AsyncWrite` (`S: Unpin`). Writes are encrypted into an internal
/// buffer of at most one write (or one 64 KiB record) and pushed out eagerly; call `flush`
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
}

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
        let (mut reader, writer) = match outcome.transport {
            Transport::XSalsa20 => (
                Reader::XSalsa20(KeyStream::new(&split.rx, &outcome.remote_nonce)),
                Writer::XSalsa20(KeyStream::new(&split.tx, &outcome.local_nonce)),
            ),
            Transport::Aead => (
                Reader::Aead {
                    cipher: RecordCipher::new(&split.rx),
                    raw: Vec::new(),
                    plain: Vec::new(),
                    pos: 0,
                    dead: false,
                },
                Writer::Aead(RecordCipher::new(&split.tx)),
            ),
        };
        let mut early = Vec::new();
        match &mut reader {
            Reader::XSalsa20(ks) => {
                early = overflow;
                ks.apply(&mut early);
            }
            Reader::Aead { raw, .. } => *raw = overflow,
        }
        Self { inner, outcome, reader, writer, early, out: Vec::new(), out_pos: 0 }
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
        self.outcome.transport == Transport::Aead
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
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
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
            Reader::Aead { cipher, raw, plain, pos, dead } => loop {
                if *dead {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "secure stream failed earlier",
                    )));
                }
                if *pos < plain.len() {
                    let n = (plain.len() - *pos).min(buf.remaining());
                    buf.put_slice(&plain[*pos..*pos + n]);
                    *pos += n;
                    return Poll::Ready(Ok(()));
                }
                match RecordCipher::record_len(raw) {
                    Err(e) => {
                        *dead = true;
                        return Poll::Ready(Err(e.into()));
                    }
                    Ok(Some(len)) => {
                        let header = [raw[0], raw[1]];
                        // Reuse the plaintext buffer: no allocation per record.
                        plain.clear();
                        plain.extend_from_slice(&raw[HEADER_LEN..HEADER_LEN + len]);
                        raw.drain(..HEADER_LEN + len);
                        *pos = 0;
                        match cipher.open(header, plain) {
                            Ok(n) => plain.truncate(n),
                            Err(e) => {
                                *dead = true;
                                plain.clear();
                                return Poll::Ready(Err(e.into()));
                            }
                        }
                    }
                    Ok(None) => {
                        // Read what completes the pending record, at least 16 KiB: the buffer stays
                        // below one record (<= 64 KiB + 2 bytes) plus 16 KiB, whatever the peer sends.
                        let want = match RecordCipher::pending_len(raw) {
                            Some(total) => total - raw.len(),
                            None => HEADER_LEN - raw.len(),
                        }
                        .max(16 * 1024);
                        let start = raw.len();
                        raw.resize(start + want, 0);
                        let mut rb = ReadBuf::new(&mut raw[start..]);
                        let res = Pin::new(&mut this.inner).poll_read(cx, &mut rb);
                        let n = rb.filled().len();
                        raw.truncate(start + n);
                        ready!(res)?;
                        if n == 0 {
                            if raw.is_empty() {
                                return Poll::Ready(Ok(())); // clean EOF between records
                            }
                            *dead = true;
                            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
                        }
                    }
                }
            },
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SecureStream<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let taken = match &mut this.writer {
            Writer::XSalsa20(ks) => {
                this.out.extend_from_slice(data);
                ks.apply(&mut this.out);
                data.len()
            }
            Writer::Aead(cipher) => {
                let n = data.len().min(MAX_RECORD_PLAINTEXT);
                cipher.seal(&data[..n], &mut this.out)?;
                n
            }
        };
        // Push eagerly; what does not fit now goes out on the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(taken))
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
