//! Application extensions on a replication connection (wire spec §7.4: Options names them,
//! `Extension` messages carry them), for protocols that ride along with the feeds — ims uses
//! one to move tarballs between peers. `ims/prefetch` is built in ([`super::prefetch`]);
//! anything else is an [`ExtensionHandler`] given in [`super::ReplicateOptions::extensions`].
//!
//! A handler is told when a peer on a feed's channel speaks its extension
//! ([`ExtensionHandler::on_peer`], once the peer's Options names it), gets that peer's
//! messages ([`ExtensionHandler::on_message`]), and answers — at once or later, from a task
//! of its own — through the [`ExtensionPeer`] handle. The connection treats payloads as
//! opaque bytes: validating them is the handler's job, and nothing a handler receives is
//! trusted.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::crypto::DiscoveryKey;

/// Most extension messages queued towards the connection per connection; a handler's
/// [`ExtensionPeer::send`] waits while the queue is full, so a large answer streams at the
/// speed of the connection instead of piling up in memory.
pub(super) const OUTGOING_QUEUE: usize = 64;

/// Serves and uses one named extension on every channel of the connections it is given to.
/// Called from the connection's task: the methods must not block (spawn work that waits).
pub trait ExtensionHandler: Send + Sync + 'static {
    /// The extension's name, as both sides list it in Options (e.g. `ims/tarball`).
    fn name(&self) -> &str;

    /// The peer on `peer`'s channel speaks this extension (its Options named it). Called at
    /// most once per channel; the handle stays usable until the connection ends.
    fn on_peer(&self, peer: ExtensionPeer) {
        let _ = peer;
    }

    /// A message of this extension from `peer` (untrusted bytes).
    fn on_message(&self, peer: &ExtensionPeer, payload: Vec<u8>);

    /// `peer`'s connection ended: its handle no longer sends.
    fn on_close(&self, peer: &ExtensionPeer) {
        let _ = peer;
    }
}

/// One message a handler asked the connection to send.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub(super) channel: u64,
    pub(super) extension: usize,
    pub(super) payload: Vec<u8>,
}

/// A peer that speaks an extension, on one feed's channel of one connection: where the
/// extension's messages to it go.
#[derive(Debug, Clone)]
pub struct ExtensionPeer {
    id: u64,
    feed: DiscoveryKey,
    channel: u64,
    extension: usize,
    out: mpsc::Sender<Outgoing>,
}

/// The connection is gone: nothing more can be sent to this peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer's connection has ended")]
pub struct PeerGone;

impl ExtensionPeer {
    pub(super) fn new(
        id: u64,
        feed: DiscoveryKey,
        channel: u64,
        extension: usize,
        out: mpsc::Sender<Outgoing>,
    ) -> Self {
        ExtensionPeer { id, feed, channel, extension, out }
    }

    /// Identifies this peer's channel among all connections of the process (for a handler's
    /// per-peer state).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The feed whose channel carries the messages.
    pub fn feed(&self) -> DiscoveryKey {
        self.feed
    }

    /// Sends one message of the extension to the peer; waits while the connection's queue is
    /// full.
    pub async fn send(&self, payload: Vec<u8>) -> Result<(), PeerGone> {
        let msg = Outgoing { channel: self.channel, extension: self.extension, payload };
        self.out.send(msg).await.map_err(|_| PeerGone)
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.out.is_closed()
    }
}

/// The handlers of one connection, by position (their index travels with outgoing messages).
pub(super) type Handlers = Arc<[Arc<dyn ExtensionHandler>]>;
