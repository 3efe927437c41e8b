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
//! from the stream as [`SessionKeys`].

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
pub use session::{Event, Session};
pub use stream::{MessageReceiver, MessageSender, StreamError, StreamOptions, message_stream};
pub use message::{
    Cancel, ChannelMessage, Close, Data, DataNode, Have, Message, MessageError, MessageType, Open, Options, Request,
    Status, Unhave, Unwant, Want,
};
