//! The error types of `swarm`: the Noise handshake, secure records, dialling and accepting.
//! ([`IdentityError`], for identity files, lives with [`crate::identity`] and is re-exported
//! here.)

use std::net::SocketAddr;

pub use crate::identity::IdentityError;
use crate::identity::NodeId;

/// The Noise handshake failed; the connection must be dropped (wire spec §3.4: no error is sent).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Reading or writing the underlying stream failed.
    #[error("handshake I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the stream before the handshake finished.
    #[error("peer closed the stream during the handshake")]
    Eof,
    /// The handshake did not finish within the configured time.
    #[error("handshake timed out")]
    Timeout,
    /// snow rejected a message: a bad MAC (tampering, or a transcript mismatch such as a
    /// stripped or altered payload), a bad key, or a message out of turn.
    #[error("noise: {0}")]
    Noise(#[from] snow::Error),
    /// A handshake message's varint length prefix is malformed or above 65535.
    #[error("handshake message length {0} is invalid (max 65535)")]
    BadLength(u64),
    /// The peer's handshake payload is missing or is not a valid NoisePayload.
    #[error("invalid handshake payload: {0}")]
    BadPayload(&'static str),
    /// The peer's static key is not the one we dialled.
    #[error("peer authenticated as {actual}, expected {expected}")]
    UnexpectedPeer {
        /// The key we dialled.
        expected: NodeId,
        /// The key the peer proved it holds.
        actual: NodeId,
    },
    /// The peer offers only v8's unauthenticated XSalsa20 transport (a JS peer, or an ims
    /// node posing as one) and this side does not allow it.
    #[error("the peer offers only the unauthenticated XSalsa20 transport of JS peers, which is not allowed")]
    Unauthenticated,
    /// The handshake state machine was used out of order (a bug in the caller).
    #[error("handshake used out of order: {0}")]
    OutOfOrder(&'static str),
}

/// A record of the authenticated (ims-to-ims) transport was rejected; the stream is dead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// The record failed authentication (tampered, reordered, truncated or replayed).
    #[error("record {counter} failed authentication")]
    BadTag {
        /// The record's position in its direction.
        counter: u64,
    },
    /// The record's declared length is below the tag size.
    #[error("record length {0} is shorter than the 16-byte tag")]
    TooShort(usize),
    /// A plaintext above the record limit was given to `seal` (callers chunk).
    #[error("record plaintext of {0} bytes exceeds the 65519-byte limit")]
    TooLong(usize),
    /// 2^64 records were sent in one direction.
    #[error("record counter exhausted")]
    CounterExhausted,
}

impl From<RecordError> for std::io::Error {
    fn from(err: RecordError) -> Self {
        std::io::Error::new(std::io::ErrorKind::InvalidData, err)
    }
}

/// Dialling a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The host name did not resolve.
    #[error("cannot resolve {target}: {source}")]
    Resolve {
        /// What we tried to dial.
        target: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// No address accepted a TCP connection.
    #[error("cannot connect to {target} (tried: {})", tried.join("; "))]
    Unreachable {
        /// What we tried to dial.
        target: String,
        /// Each address tried, with its error.
        tried: Vec<String>,
    },
    /// TCP connected but the handshake failed (including a peer with the wrong key).
    #[error("handshake with {addr} failed: {source}")]
    Handshake {
        /// The address that answered.
        addr: SocketAddr,
        /// Why the handshake failed.
        #[source]
        source: HandshakeError,
    },
}

/// Accepting a peer failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The listener failed.
    #[error("accept: {0}")]
    Accept(#[source] std::io::Error),
    /// The peer connected but the handshake failed.
    #[error("handshake with {addr} failed: {source}")]
    Handshake {
        /// The peer's address.
        addr: SocketAddr,
        /// Why the handshake failed.
        #[source]
        source: HandshakeError,
    },
}
