//! swarm: node identity and Noise-secured byte streams between public keys (DESIGN.md "Wire").
//!
//! `swarm` knows nothing about hypercore. It runs the one Noise XX handshake of a connection,
//! exactly as hypercore-protocol v8 does it (wire spec §3), and yields a [`SecureStream`]:
//! an encrypted byte stream that also exposes the remote node's static key and the raw
//! split keys, from which hypercore derives its per-feed capabilities (wire spec §5).
//!
//! ```text
//!  TCP / any AsyncRead+AsyncWrite
//!     └── noise::handshake  (Noise_XX_25519_ChaChaPoly_BLAKE2b, v8 payload, raw split)
//!            └── SecureStream  — XSalsa20 with JS peers (v8), AES-256-GCM or
//!                               ChaCha20-Poly1305 records between two ims nodes
//!                               (negotiated inside the handshake)
//! ```
//!
//! ```no_run
//! # async fn demo(socket: tokio::net::TcpStream) -> Result<(), swarm::HandshakeError> {
//! use swarm::{Identity, HandshakeConfig, Role};
//! let me = Identity::generate();
//! let stream = swarm::handshake(socket, Role::Initiator, &me, &HandshakeConfig::default()).await?;
//! let (_peer, _aead) = (stream.remote_static_key(), stream.is_authenticated());
//! # Ok(()) }
//! ```
//!
//! Modules: [`identity`] (the node key pair and its file, [`IdentityError`]), [`noise`] (the handshake state machine and its
//! payload), [`cipher`] (the two transports), [`stream`] (the async driver and
//! [`SecureStream`]), [`dial`](mod@dial) (TCP dial/accept with the handshake), [`error`].
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod cipher;
pub mod dial;
pub mod error;
pub mod identity;
pub mod noise;
pub mod stream;
mod varint;

pub use cipher::{AeadSuite, Transport};
pub use dial::{accept, dial};
pub use error::{AcceptError, DialError, HandshakeError, RecordError};
pub use identity::{Identity, IdentityError, NodeId};
pub use noise::{Handshake, HandshakeConfig, HandshakeOutcome, Role, Split};
pub use stream::{SecureStream, handshake};
