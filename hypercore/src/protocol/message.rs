//! The v8 messages (wire spec §7.2–7.3, `simple-hypercore-protocol/schema.proto`): proto2
//! bodies through `prost`, written in ascending field order with exactly the fields JS
//! writes, so encodings are byte-identical to JS's.
//!
//! Presence matters in proto2: optional fields are `Option`s, and each has an accessor that
//! applies JS's decode default (`Have::length()` is 1 when absent, `Status` flags are false).
//! The constructors fill in the "default" fields JS always writes (`Request`: all four;
//! `Status`: both; `Options`: `ack`).

use prost::Message as _;

use super::frame::{self, Frame, FrameError};
use super::varint::{self, Varint};
use crate::crypto::DiscoveryKey;

/// Message type numbers (the low 4 bits of a frame header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    /// Start a channel for a feed.
    Open = 0,
    /// Extension names, ack mode.
    Options = 1,
    /// Uploading / downloading flags.
    Status = 2,
    /// "I have these blocks".
    Have = 3,
    /// "I no longer have these blocks".
    Unhave = 4,
    /// "Tell me what you have in this range".
    Want = 5,
    /// Never acted on by JS.
    Unwant = 6,
    /// "Send block i (+ proof)".
    Request = 7,
    /// Never acted on by JS.
    Cancel = 8,
    /// A block and its Merkle proof.
    Data = 9,
    /// End a channel.
    Close = 10,
    /// `varint(extension id) ‖ payload`.
    Extension = 15,
}

/// `Open { required bytes discoveryKey = 1; optional bytes capability = 2; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Open {
    /// The feed's discovery key (32 bytes; checked on decode).
    #[prost(bytes = "vec", required, tag = "1")]
    pub discovery_key: Vec<u8>,
    /// The session-bound capability (32 bytes; absent only when Noise is off).
    #[prost(bytes = "vec", optional, tag = "2")]
    pub capability: Option<Vec<u8>>,
}

impl Open {
    /// The discovery key as a typed key (always 32 bytes after [`Message::decode`]).
    pub fn discovery_key(&self) -> Option<DiscoveryKey> {
        <[u8; 32]>::try_from(self.discovery_key.as_slice()).ok().map(DiscoveryKey::from_bytes)
    }
}

/// `Options { repeated string extensions = 1; optional bool ack = 2; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Options {
    /// Extension names, sorted lexicographically by the sender.
    #[prost(string, repeated, tag = "1")]
    pub extensions: Vec<String>,
    /// Ask for an ack `Have` for every `Data`.
    #[prost(bool, optional, tag = "2")]
    pub ack: Option<bool>,
}

impl Options {
    /// Options as JS sends them: names sorted, `ack` always written.
    pub fn new(mut extensions: Vec<String>, ack: bool) -> Self {
        extensions.sort();
        Self { extensions, ack: Some(ack) }
    }
}

/// `Status { optional bool uploading = 1; optional bool downloading = 2; }` (absent = false).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Status {
    /// Whether the sender uploads.
    #[prost(bool, optional, tag = "1")]
    pub uploading: Option<bool>,
    /// Whether the sender downloads.
    #[prost(bool, optional, tag = "2")]
    pub downloading: Option<bool>,
}

impl Status {
    /// Both flags written, as JS does.
    pub fn new(uploading: bool, downloading: bool) -> Self {
        Self { uploading: Some(uploading), downloading: Some(downloading) }
    }
}

/// `Have { required uint64 start = 1; optional uint64 length = 2 [default 1];
/// optional bytes bitfield = 3; optional bool ack = 4; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Have {
    /// First block.
    #[prost(uint64, required, tag = "1")]
    pub start: u64,
    /// Number of blocks (default 1).
    #[prost(uint64, optional, tag = "2", default = "1")]
    pub length: Option<u64>,
    /// RLE bitfield of the range (wire spec §8.3).
    #[prost(bytes = "vec", optional, tag = "3")]
    pub bitfield: Option<Vec<u8>>,
    /// This Have acknowledges a Data.
    #[prost(bool, optional, tag = "4")]
    pub ack: Option<bool>,
}

/// `Unhave { required uint64 start = 1; optional uint64 length = 2 [default 1]; }`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Unhave {
    /// First block.
    #[prost(uint64, required, tag = "1")]
    pub start: u64,
    /// Number of blocks (default 1).
    #[prost(uint64, optional, tag = "2", default = "1")]
    pub length: Option<u64>,
}

/// `Want { required uint64 start = 1; optional uint64 length = 2; }` (absent length = 0).
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Want {
    /// First block.
    #[prost(uint64, required, tag = "1")]
    pub start: u64,
    /// Number of blocks (default 0).
    #[prost(uint64, optional, tag = "2")]
    pub length: Option<u64>,
}

/// `Unwant`: same shape as [`Want`].
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Unwant {
    /// First block.
    #[prost(uint64, required, tag = "1")]
    pub start: u64,
    /// Number of blocks (default 0).
    #[prost(uint64, optional, tag = "2")]
    pub length: Option<u64>,
}

/// `Request { required uint64 index = 1; optional uint64 bytes = 2; optional bool hash = 3;
/// optional uint64 nodes = 4; }`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Request {
    /// Block index.
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    /// Byte offset to seek to (0 = use `index`).
    #[prost(uint64, optional, tag = "2")]
    pub bytes: Option<u64>,
    /// Only the proof, no value.
    #[prost(bool, optional, tag = "3")]
    pub hash: Option<bool>,
    /// The digest of the nodes the requester has (wire spec §8.5).
    #[prost(uint64, optional, tag = "4")]
    pub nodes: Option<u64>,
}

impl Request {
    /// A request as JS writes it (all four fields).
    pub fn new(index: u64, hash: bool, nodes: u64) -> Self {
        Self { index, bytes: Some(0), hash: Some(hash), nodes: Some(nodes) }
    }
}

/// `Cancel { required uint64 index = 1; optional uint64 bytes = 2; optional bool hash = 3; }`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Cancel {
    /// Block index.
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    /// Byte offset.
    #[prost(uint64, optional, tag = "2")]
    pub bytes: Option<u64>,
    /// Hash-only.
    #[prost(bool, optional, tag = "3")]
    pub hash: Option<bool>,
}

/// `Data.Node { required uint64 index = 1; required bytes hash = 2; required uint64 size = 3; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct DataNode {
    /// Flat-tree index.
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    /// BLAKE2b-256 hash (32 bytes; checked on decode).
    #[prost(bytes = "vec", required, tag = "2")]
    pub hash: Vec<u8>,
    /// Byte size of the subtree.
    #[prost(uint64, required, tag = "3")]
    pub size: u64,
}

/// `Data { required uint64 index = 1; optional bytes value = 2; repeated Node nodes = 3;
/// optional bytes signature = 4; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Data {
    /// Block index.
    #[prost(uint64, required, tag = "1")]
    pub index: u64,
    /// The block (absent for hash-only replies). Shared bytes: a served block is a view of
    /// the log, not a copy.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub value: Option<bytes::Bytes>,
    /// Proof nodes (wire spec §8.6 order).
    #[prost(message, repeated, tag = "3")]
    pub nodes: Vec<DataNode>,
    /// Ed25519 signature (64 bytes; checked on decode), when the proof reaches the roots.
    #[prost(bytes = "vec", optional, tag = "4")]
    pub signature: Option<Vec<u8>>,
}

/// `Close { optional bytes discoveryKey = 1; }`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Close {
    /// Only when closing a channel the sender never opened.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub discovery_key: Option<Vec<u8>>,
}

/// A message body the peer sent was malformed: the connection must be dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The protobuf body does not parse.
    #[error("malformed {kind:?} message: {reason}")]
    Malformed {
        /// The message type.
        kind: MessageType,
        /// What prost reported.
        reason: String,
    },
    /// A fixed-size field has the wrong length.
    #[error("{kind:?}.{field} must be {expected} bytes, got {actual}")]
    BadFieldLength {
        /// The message type.
        kind: MessageType,
        /// The field.
        field: &'static str,
        /// Its required length.
        expected: usize,
        /// Its actual length.
        actual: usize,
    },
    /// An Extension message without a valid id varint.
    #[error("extension message without a valid id")]
    BadExtensionId,
    /// Encoding produced a frame over the limit, or an invalid channel id.
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// One v8 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Type 0.
    Open(Open),
    /// Type 1.
    Options(Options),
    /// Type 2.
    Status(Status),
    /// Type 3.
    Have(Have),
    /// Type 4.
    Unhave(Unhave),
    /// Type 5.
    Want(Want),
    /// Type 6.
    Unwant(Unwant),
    /// Type 7.
    Request(Request),
    /// Type 8.
    Cancel(Cancel),
    /// Type 9.
    Data(Data),
    /// Type 10.
    Close(Close),
    /// Type 15: `id` indexes the *sender's* sorted extension list (wire spec §7.5).
    Extension {
        /// Index into the sender's `Options.extensions`.
        id: u64,
        /// Opaque extension payload.
        payload: Vec<u8>,
    },
    /// Types 11–14: passed through raw; JS ignores them.
    Unknown {
        /// The type number.
        kind: u8,
        /// The raw body.
        body: Vec<u8>,
    },
}

fn check_len(
    kind: MessageType,
    field: &'static str,
    value: &[u8],
    expected: usize,
) -> Result<(), MessageError> {
    if value.len() == expected {
        Ok(())
    } else {
        Err(MessageError::BadFieldLength { kind, field, expected, actual: value.len() })
    }
}

fn parse<M: prost::Message + Default>(kind: MessageType, body: &[u8]) -> Result<M, MessageError> {
    M::decode(body).map_err(|e| MessageError::Malformed { kind, reason: e.to_string() })
}

impl Message {
    /// The type number of this message.
    pub fn kind(&self) -> u8 {
        match self {
            Self::Open(_) => MessageType::Open as u8,
            Self::Options(_) => MessageType::Options as u8,
            Self::Status(_) => MessageType::Status as u8,
            Self::Have(_) => MessageType::Have as u8,
            Self::Unhave(_) => MessageType::Unhave as u8,
            Self::Want(_) => MessageType::Want as u8,
            Self::Unwant(_) => MessageType::Unwant as u8,
            Self::Request(_) => MessageType::Request as u8,
            Self::Cancel(_) => MessageType::Cancel as u8,
            Self::Data(_) => MessageType::Data as u8,
            Self::Close(_) => MessageType::Close as u8,
            Self::Extension { .. } => MessageType::Extension as u8,
            Self::Unknown { kind, .. } => *kind,
        }
    }

    /// Decodes the body of a message of type `kind` (0..=15). Unknown protobuf fields are
    /// skipped; fixed-size fields (keys, hashes, signatures) are length-checked.
    pub fn decode(kind: u8, body: &[u8]) -> Result<Self, MessageError> {
        use MessageType as T;
        Ok(match kind {
            0 => {
                let open: Open = parse(T::Open, body)?;
                check_len(T::Open, "discoveryKey", &open.discovery_key, 32)?;
                if let Some(cap) = &open.capability {
                    check_len(T::Open, "capability", cap, 32)?;
                }
                Self::Open(open)
            }
            1 => Self::Options(parse(T::Options, body)?),
            2 => Self::Status(parse(T::Status, body)?),
            3 => Self::Have(parse(T::Have, body)?),
            4 => Self::Unhave(parse(T::Unhave, body)?),
            5 => Self::Want(parse(T::Want, body)?),
            6 => Self::Unwant(parse(T::Unwant, body)?),
            7 => Self::Request(parse(T::Request, body)?),
            8 => Self::Cancel(parse(T::Cancel, body)?),
            9 => {
                let data: Data = parse(T::Data, body)?;
                for node in &data.nodes {
                    check_len(T::Data, "nodes.hash", &node.hash, 32)?;
                }
                if let Some(sig) = &data.signature {
                    check_len(T::Data, "signature", sig, 64)?;
                }
                Self::Data(data)
            }
            10 => {
                let close: Close = parse(T::Close, body)?;
                if let Some(dk) = &close.discovery_key {
                    check_len(T::Close, "discoveryKey", dk, 32)?;
                }
                Self::Close(close)
            }
            15 => match varint::decode(body) {
                Varint::Value(id, n) => Self::Extension { id, payload: body[n..].to_vec() },
                _ => return Err(MessageError::BadExtensionId),
            },
            other => Self::Unknown { kind: other & 0x0f, body: body.to_vec() },
        })
    }

    /// The size of the body [`Message::encode_body`] writes.
    pub fn body_len(&self) -> usize {
        match self {
            Self::Open(m) => m.encoded_len(),
            Self::Options(m) => m.encoded_len(),
            Self::Status(m) => m.encoded_len(),
            Self::Have(m) => m.encoded_len(),
            Self::Unhave(m) => m.encoded_len(),
            Self::Want(m) => m.encoded_len(),
            Self::Unwant(m) => m.encoded_len(),
            Self::Request(m) => m.encoded_len(),
            Self::Cancel(m) => m.encoded_len(),
            Self::Data(m) => m.encoded_len(),
            Self::Close(m) => m.encoded_len(),
            Self::Extension { id, payload } => varint::encoded_len(*id) + payload.len(),
            Self::Unknown { body, .. } => body.len(),
        }
    }

    /// Appends the body (without frame or header) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        // prost writes fields in declaration (= ascending tag) order; `Vec<u8>` grows as
        // needed, so encoding cannot fail.
        let _ = match self {
            Self::Open(m) => m.encode(out),
            Self::Options(m) => m.encode(out),
            Self::Status(m) => m.encode(out),
            Self::Have(m) => m.encode(out),
            Self::Unhave(m) => m.encode(out),
            Self::Want(m) => m.encode(out),
            Self::Unwant(m) => m.encode(out),
            Self::Request(m) => m.encode(out),
            Self::Cancel(m) => m.encode(out),
            Self::Data(m) => m.encode(out),
            Self::Close(m) => m.encode(out),
            Self::Extension { id, payload } => {
                varint::encode(*id, out);
                out.extend_from_slice(payload);
                Ok(())
            }
            Self::Unknown { body, .. } => {
                out.extend_from_slice(body);
                Ok(())
            }
        };
    }
}

/// A message on a channel: what one frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelMessage {
    /// The *sender's* local channel id (0 = stream-level).
    pub channel: u64,
    /// The message.
    pub message: Message,
}

impl ChannelMessage {
    /// A message on `channel`.
    pub fn new(channel: u64, message: Message) -> Self {
        Self { channel, message }
    }

    /// Decodes a frame; `None` for a keepalive.
    pub fn from_frame(frame: Frame<'_>) -> Result<Option<Self>, MessageError> {
        match frame {
            Frame::Keepalive => Ok(None),
            Frame::Message { channel, kind, body } => {
                Ok(Some(Self { channel, message: Message::decode(kind, body)? }))
            }
        }
    }

    /// Appends the whole frame (length, header, body) to `out`; the body is encoded in place,
    /// without an intermediate buffer.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), MessageError> {
        frame::encode_header(self.channel, self.message.kind(), self.message.body_len(), out)?;
        self.message.encode_body(out);
        Ok(())
    }

    /// The size of the whole frame [`ChannelMessage::encode`] writes, or why it cannot be sent
    /// (over the frame cap, or a channel id too large).
    pub fn frame_len(&self) -> Result<usize, MessageError> {
        Ok(frame::frame_len(self.channel, self.message.kind(), self.message.body_len())?)
    }

    /// [`encode`](Self::encode), except that a Data value of at least `min` bytes is left
    /// out: the frame is `out[..at]`, the value, then the rest of `out` (returned as `(at,
    /// value)`). The writer sends the value from where it is instead of copying it in.
    pub(crate) fn encode_around_value(
        &self,
        min: usize,
        out: &mut Vec<u8>,
    ) -> Result<Option<(usize, bytes::Bytes)>, MessageError> {
        let Message::Data(data) = &self.message else { return self.encode(out).map(|()| None) };
        let Some(value) = data.value.as_ref().filter(|v| v.len() >= min) else {
            return self.encode(out).map(|()| None);
        };
        use prost::encoding::{WireType, bytes as pbytes, encode_key, encode_varint, message, uint64};
        frame::encode_header(self.channel, self.message.kind(), self.message.body_len(), out)?;
        // Field by field as prost's derived encoding of `Data` writes them (tag order).
        uint64::encode(1, &data.index, out);
        encode_key(2, WireType::LengthDelimited, out);
        encode_varint(value.len() as u64, out);
        let at = out.len();
        for node in &data.nodes {
            message::encode(3, node, out);
        }
        if let Some(signature) = &data.signature {
            pbytes::encode(4, signature, out);
        }
        Ok(Some((at, value.clone())))
    }

    /// The whole frame as a new buffer.
    pub fn to_frame(&self) -> Result<Vec<u8>, MessageError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_encoded_around_its_value_is_the_whole_frame() {
        let node = |i: u64| DataNode { index: i, hash: vec![i as u8; 32], size: i * 1000 };
        let datas = [
            Data { index: 7, value: Some(vec![1u8; 70_000].into()), nodes: vec![], signature: None },
            Data {
                index: 0,
                value: Some(vec![2u8; 5].into()),
                nodes: vec![node(1), node(300)],
                signature: Some(vec![9; 64]),
            },
            Data { index: u64::MAX, value: Some(bytes::Bytes::new()), nodes: vec![node(2)], signature: None },
            Data { index: 3, value: None, nodes: vec![node(5)], signature: Some(vec![4; 64]) },
        ];
        for (k, data) in datas.into_iter().enumerate() {
            let msg = ChannelMessage::new(300, Message::Data(data));
            let whole = msg.to_frame().expect("frame");
            for min in [0, 5, 6, 100_000] {
                let mut out = Vec::new();
                let joined = match msg.encode_around_value(min, &mut out).expect("encode") {
                    Some((at, value)) => [&out[..at], &value[..], &out[at..]].concat(),
                    None => out,
                };
                assert_eq!(joined, whole, "data {k}, min {min}");
            }
        }
        let have = ChannelMessage::new(1, Message::Have(Have { start: 4, ..Default::default() }));
        let mut out = Vec::new();
        assert_eq!(have.encode_around_value(0, &mut out).expect("encode"), None);
        assert_eq!(out, have.to_frame().expect("frame"));
    }

    #[test]
    fn js_defaults_and_encodings() {
        let have = Have { start: 4, ..Default::default() };
        assert_eq!(have.length(), 1);
        assert!(!have.ack());
        let frame = ChannelMessage::new(1, Message::Have(have)).to_frame().expect("encode");
        assert_eq!(frame, [0x03, 0x13, 0x08, 0x04]);
        let status =
            ChannelMessage::new(1, Message::Status(Status::new(true, false))).to_frame().expect("encode");
        assert_eq!(status, [0x05, 0x12, 0x08, 0x01, 0x10, 0x00]);
        let req =
            ChannelMessage::new(1, Message::Request(Request::new(3, false, 0))).to_frame().expect("encode");
        assert_eq!(req, [0x09, 0x17, 0x08, 0x03, 0x10, 0x00, 0x18, 0x00, 0x20, 0x00]);
        let close = ChannelMessage::new(1, Message::Close(Close::default())).to_frame().expect("encode");
        assert_eq!(close, [0x01, 0x1a]);
        assert!(!Status::default().downloading());
        assert_eq!(Want::default().length(), 0);
    }

    #[test]
    fn fixed_size_fields_are_checked() {
        let open = Open { discovery_key: vec![1; 31], capability: None };
        let mut body = Vec::new();
        Message::Open(open).encode_body(&mut body);
        assert!(matches!(
            Message::decode(0, &body),
            Err(MessageError::BadFieldLength { field: "discoveryKey", .. })
        ));
        assert_eq!(Message::decode(15, &[]), Err(MessageError::BadExtensionId));
        assert_eq!(Message::decode(12, &[1, 2]), Ok(Message::Unknown { kind: 12, body: vec![1, 2] }));
    }
}
