//! The messages of `ims/tarball`, one per extension payload: a kind byte, a big-endian `u32`
//! request id chosen by the reader, then the kind's body.
//!
//! | kind | message | body |
//! |---|---|---|
//! | 1 | `Request` | JSON `{"name", "version", "integrity"}` (at most [`MAX_REQUEST_BYTES`]) |
//! | 2 | `Chunk`   | the next tarball bytes (at most [`MAX_CHUNK_BYTES`]) |
//! | 3 | `End`     | `u64` BE: the tarball's length, for a cross-check |
//! | 4 | `Missing` | UTF-8 reason (at most [`MAX_REASON_BYTES`]) |
//! | 5 | `Cancel`  | empty |
//!
//! Hand-written rather than protobuf: five fixed shapes, and a chunk's bytes go out without
//! a copy into a message struct.

use serde::{Deserialize, Serialize};

/// Largest request body.
pub const MAX_REQUEST_BYTES: usize = 4096;
/// Largest chunk a sender may put in one message (the seeder sends 64 KiB).
pub const MAX_CHUNK_BYTES: usize = 256 * 1024;
/// Largest `Missing` reason.
pub const MAX_REASON_BYTES: usize = 1024;
/// The chunk size the seeder sends.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// What a reader asks for: the version its resolution picked and the integrity it expects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TarballRequest {
    /// The registry name (`@scope/name` for scoped packages).
    pub name: String,
    /// The exact version.
    pub version: String,
    /// The SRI string the tarball must match (`sha512-…`).
    pub integrity: String,
}

/// One `ims/tarball` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Reader → seeder: send this tarball.
    Request {
        /// Request id.
        id: u32,
        /// What is asked for.
        request: TarballRequest,
    },
    /// Seeder → reader: the next bytes.
    Chunk {
        /// Request id.
        id: u32,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Seeder → reader: that was all; `total` bytes were sent.
    End {
        /// Request id.
        id: u32,
        /// The tarball's length.
        total: u64,
    },
    /// Seeder → reader: it cannot send this one.
    Missing {
        /// Request id.
        id: u32,
        /// Why (shown in logs).
        reason: String,
    },
    /// Reader → seeder: stop sending this one.
    Cancel {
        /// Request id.
        id: u32,
    },
}

/// A payload that is not an `ims/tarball` message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ims/tarball message: {0}")]
pub struct WireError(pub String);

impl Message {
    /// The request id.
    pub fn id(&self) -> u32 {
        match self {
            Message::Request { id, .. }
            | Message::Chunk { id, .. }
            | Message::End { id, .. }
            | Message::Missing { id, .. }
            | Message::Cancel { id } => *id,
        }
    }

    /// The payload bytes.
    pub fn encode(&self) -> Vec<u8> {
        let (kind, body): (u8, Vec<u8>) = match self {
            Message::Request { request, .. } => {
                (1, serde_json::to_vec(request).expect("a request serialises"))
            }
            Message::Chunk { bytes, .. } => return chunk(self.id(), bytes),
            Message::End { total, .. } => (3, total.to_be_bytes().to_vec()),
            Message::Missing { reason, .. } => {
                let mut end = reason.len().min(MAX_REASON_BYTES);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                (4, reason.as_bytes()[..end].to_vec())
            }
            Message::Cancel { .. } => (5, Vec::new()),
        };
        let mut out = Vec::with_capacity(5 + body.len());
        out.push(kind);
        out.extend_from_slice(&self.id().to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Parses a payload, checking every bound.
    pub fn decode(payload: &[u8]) -> Result<Message, WireError> {
        let bad = |why: &str| WireError(why.to_owned());
        let (&kind, rest) = payload.split_first().ok_or_else(|| bad("empty"))?;
        let (id, body) = rest.split_at_checked(4).ok_or_else(|| bad("no request id"))?;
        let id = u32::from_be_bytes(id.try_into().map_err(|_| bad("no request id"))?);
        match kind {
            1 => {
                if body.len() > MAX_REQUEST_BYTES {
                    return Err(bad("request too large"));
                }
                let request: TarballRequest =
                    serde_json::from_slice(body).map_err(|e| WireError(format!("request: {e}")))?;
                Ok(Message::Request { id, request })
            }
            2 if body.len() > MAX_CHUNK_BYTES => Err(bad("chunk too large")),
            2 => Ok(Message::Chunk { id, bytes: body.to_vec() }),
            3 => {
                let total = u64::from_be_bytes(body.try_into().map_err(|_| bad("end without a length"))?);
                Ok(Message::End { id, total })
            }
            4 if body.len() > MAX_REASON_BYTES => Err(bad("reason too long")),
            4 => Ok(Message::Missing { id, reason: String::from_utf8_lossy(body).into_owned() }),
            5 if body.is_empty() => Ok(Message::Cancel { id }),
            5 => Err(bad("cancel with a body")),
            k => Err(WireError(format!("unknown kind {k}"))),
        }
    }
}

/// A `Chunk` payload built straight from the bytes read (no intermediate message).
pub fn chunk(id: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + bytes.len());
    out.push(2);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> TarballRequest {
        TarballRequest { name: "@s/a".into(), version: "1.0.0".into(), integrity: "sha512-AA==".into() }
    }

    #[test]
    fn every_message_round_trips() {
        let messages = [
            Message::Request { id: 7, request: request() },
            Message::Chunk { id: 7, bytes: vec![1, 2, 3] },
            Message::Chunk { id: 8, bytes: Vec::new() },
            Message::End { id: u32::MAX, total: 1 << 40 },
            Message::Missing { id: 0, reason: "not here".into() },
            Message::Cancel { id: 3 },
        ];
        for m in messages {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        assert_eq!(chunk(5, b"xy"), Message::Chunk { id: 5, bytes: b"xy".to_vec() }.encode());
    }

    #[test]
    fn malformed_payloads_are_errors() {
        let oversized_chunk = [&[2u8, 0, 0, 0, 1][..], &vec![0; MAX_CHUNK_BYTES + 1]].concat();
        let oversized_request = [&[1u8, 0, 0, 0, 1][..], &vec![b' '; MAX_REQUEST_BYTES + 1]].concat();
        for bad in [
            &[][..],
            &[1, 0, 0],
            &[9, 0, 0, 0, 1],
            &[1, 0, 0, 0, 1, b'{'],
            &[1, 0, 0, 0, 1, b'{', b'}'],
            &[3, 0, 0, 0, 1, 0, 0],
            &[5, 0, 0, 0, 1, 0],
            &oversized_chunk,
            &oversized_request,
        ] {
            assert!(Message::decode(bad).is_err(), "{bad:?} decoded");
        }
    }

    #[test]
    fn a_long_reason_is_cut_on_a_character_boundary() {
        let reason = "é".repeat(MAX_REASON_BYTES);
        let bytes = Message::Missing { id: 1, reason }.encode();
        let Message::Missing { reason, .. } = Message::decode(&bytes).unwrap() else { panic!() };
        assert!(reason.len() <= MAX_REASON_BYTES && reason.chars().all(|c| c == 'é'));
    }
}
