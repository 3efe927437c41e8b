//! hypercore-protocol v8 (the wire of hypercore 9), layer by layer, as pure codecs
//! (wire spec `wire-protocol-spec.md`).
//!
//! ```text
//! swarm::SecureStream (Noise XX + XSalsa20 / AEAD, wire spec §2–4)   ← not here
//!   └── frame    varint(L) ‖ varint(channel << 4 | type) ‖ body; L = 0 is a keepalive;
//!                8 MiB cap; incomplete vs invalid                         (wire spec §6)
//!         └── message  Open … Close, Extension: proto2, JS field order  (wire spec §7.2–7.5)
//!               ├── channel    local/remote ids, capability check, Close (wire spec §5, §7.1, §7.4)
//!               ├── extension  names ↔ ids through Options               (wire spec §7.5)
//!               ├── rle        the Have.bitfield run-length encoding      (wire spec §8.3)
//!               └── session    routes messages to channels → Events     (JS Channelizer)
//! ```
//!
//! The codecs do no I/O: a driver reads bytes from the secure stream into a
//! [`FrameDecoder`], turns each [`Frame`] into a [`ChannelMessage`], and consults
//! [`Channels`] for ids and capabilities. [`stream`] is that driver's I/O half: it moves
//! messages over a connection with v8's keepalive and receive timeout (wire spec §9). The capability material (the Noise split) comes
//! from the stream as [`SessionKeys`]; [`Session`] combines channels and extensions into
//! [`Event`]s for the replication layer.
//!
//! ```
//! use hypercore::protocol::{ChannelMessage, FrameDecoder, Message, Want};
//! // Want{start:0, length:1048576} on channel 1, as JS writes it (wire spec §6).
//! let want = ChannelMessage::new(1, Message::Want(Want { start: 0, length: Some(1 << 20) }));
//! let bytes = want.to_frame()?;
//! assert_eq!(bytes, [0x07, 0x15, 0x08, 0x00, 0x10, 0x80, 0x80, 0x40]);
//! let mut decoder = FrameDecoder::new();
//! decoder.extend(&bytes[..3]); // frames may arrive in pieces
//! assert!(decoder.next_frame()?.is_none());
//! decoder.extend(&bytes[3..]);
//! let frame = decoder.next_frame()?.ok_or("a whole frame")?;
//! assert_eq!(ChannelMessage::from_frame(frame)?, Some(want));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod channel;
pub mod extension;
pub mod frame;
pub mod message;
pub mod rle;
pub mod session;
pub mod stream;
mod varint;

pub use channel::{ChannelError, Channels, RemoteClose, RemoteOpen, SessionKeys};
pub use extension::Extensions;
pub use frame::{Frame, FrameDecoder, FrameError, MAX_FRAME_LEN};
pub use message::{
    Cancel, ChannelMessage, Close, Data, DataNode, Have, Message, MessageError, MessageType, Open, Options,
    Request, Status, Unhave, Unwant, Want,
};
pub use session::{Event, Session};
pub use stream::{MessageReceiver, MessageSender, StreamError, StreamOptions, message_stream};
