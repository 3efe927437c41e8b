//! Channels of one connection (wire spec §7.1, §7.4): local ids (lowest free from 1; 0 is
//! the stream channel), the separate table of the peer's ids, and the capability check that
//! proves the peer knows a feed's public key (wire spec §5).

use std::collections::{BTreeMap, HashMap};

use super::message::{ChannelMessage, Close, Message, Open};
use crate::crypto::{DiscoveryKey, PublicKey, capability};

/// At most this many channels per side of one connection; more is a misbehaving peer.
pub const MAX_CHANNELS: usize = 1024;

/// The Noise split of the connection, from our side (`swarm::Split` carries the same keys).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// Our sending key.
    pub tx: [u8; 32],
    /// Our receiving key.
    pub rx: [u8; 32],
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys { .. }")
    }
}

impl SessionKeys {
    /// Keys from the split (`tx`, `rx` as the handshake gave them to us).
    pub fn new(tx: [u8; 32], rx: [u8; 32]) -> Self {
        Self { tx, rx }
    }

    /// The capability we send in our `Open` for `key`: `BLAKE2b-256(key = rx,
    /// "hypercore capability" ‖ tx ‖ feed key)`.
    pub fn capability(&self, key: &PublicKey) -> [u8; 32] {
        capability(&self.rx, &self.tx, key)
    }

    /// Whether `remote` is the capability the peer must send for `key` (our keys swapped:
    /// the peer's rx is our tx). Compared in constant time: a capability is a MAC, and an
    /// early-exit comparison would let a peer guess one byte at a time.
    pub fn verify_remote_capability(&self, key: &PublicKey, remote: &[u8]) -> bool {
        let expected = capability(&self.tx, &self.rx, key);
        remote.len() == expected.len()
            && remote.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// A channel misuse or a failed proof: the whole stream must be destroyed (as JS does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The peer's capability for this feed is missing or wrong.
    #[error("peer sent a wrong or missing capability for discovery key {discovery_key}")]
    BadCapability {
        /// The feed's discovery key.
        discovery_key: DiscoveryKey,
    },
    /// The peer opened a channel id it already uses.
    #[error("peer reopened its channel {remote_id}")]
    DuplicateRemoteChannel {
        /// The peer's channel id.
        remote_id: u64,
    },
    /// The peer opened a feed twice on one connection.
    #[error("peer opened discovery key {discovery_key} twice")]
    DuplicateRemoteFeed {
        /// The feed's discovery key.
        discovery_key: DiscoveryKey,
    },
    /// We already opened a channel for this feed.
    #[error("feed with discovery key {discovery_key} is already open on this connection")]
    AlreadyOpen {
        /// The feed's discovery key.
        discovery_key: DiscoveryKey,
    },
    /// More than [`MAX_CHANNELS`] channels on one side.
    #[error("more than {MAX_CHANNELS} channels on one connection")]
    TooManyChannels,
    /// No such local channel.
    #[error("no local channel {0}")]
    UnknownLocalChannel(u64),
    /// The peer's `Open` has no valid discovery key.
    #[error("Open without a 32-byte discovery key")]
    BadOpen,
}

#[derive(Debug, Clone)]
struct LocalChannel {
    key: PublicKey,
    discovery_key: DiscoveryKey,
}

#[derive(Debug, Clone)]
struct RemoteChannel {
    discovery_key: DiscoveryKey,
    capability: Option<Vec<u8>>,
}

/// What a peer's `Open` means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteOpen {
    /// We had opened this feed; the capability checked out and the channel is live.
    Joined {
        /// Our id for the feed.
        local_id: u64,
        /// The peer's id for it.
        remote_id: u64,
    },
    /// We have not opened this feed (JS's `discovery-key` event): open it with
    /// [`Channels::open`] to answer (the stored capability is checked then), or ignore it.
    Unknown {
        /// The discovery key the peer asked for.
        discovery_key: DiscoveryKey,
    },
}

/// What a peer's `Close` means for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteClose {
    /// The feed whose channel the peer closed.
    pub discovery_key: DiscoveryKey,
    /// Our channel for it, still open: answer with [`Channels::close`] (JS does).
    pub local_id: Option<u64>,
}

/// The channel tables of one connection.
#[derive(Debug)]
pub struct Channels {
    keys: SessionKeys,
    local: BTreeMap<u64, LocalChannel>,
    local_by_dk: HashMap<DiscoveryKey, u64>,
    remote: HashMap<u64, RemoteChannel>,
    remote_by_dk: HashMap<DiscoveryKey, u64>,
}

impl Channels {
    /// Empty tables for a connection with these split keys.
    pub fn new(keys: SessionKeys) -> Self {
        Self {
            keys,
            local: BTreeMap::new(),
            local_by_dk: HashMap::new(),
            remote: HashMap::new(),
            remote_by_dk: HashMap::new(),
        }
    }

    /// The connection's split keys.
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    fn lowest_free_id(&self) -> Result<u64, ChannelError> {
        if self.local.len() >= MAX_CHANNELS {
            return Err(ChannelError::TooManyChannels);
        }
        let mut id = 1;
        for &used in self.local.keys() {
            if used != id {
                break;
            }
            id += 1;
        }
        Ok(id)
    }

    /// Opens a channel for the feed `key`: returns our id and the `Open` to send.
    ///
    /// If the peer opened the feed first, its stored capability is checked now; a mismatch
    /// is [`ChannelError::BadCapability`] and the caller answers with
    /// [`close_unopened`](Self::close_unopened) (JS sends `Close{discoveryKey}`).
    pub fn open(&mut self, key: &PublicKey) -> Result<(u64, ChannelMessage), ChannelError> {
        let discovery_key = key.discovery_key();
        if self.local_by_dk.contains_key(&discovery_key) {
            return Err(ChannelError::AlreadyOpen { discovery_key });
        }
        if let Some(remote) = self.remote_by_dk.get(&discovery_key).and_then(|id| self.remote.get(id)) {
            let ok =
                remote.capability.as_deref().is_some_and(|cap| self.keys.verify_remote_capability(key, cap));
            if !ok {
                return Err(ChannelError::BadCapability { discovery_key });
            }
        }
        let id = self.lowest_free_id()?;
        self.local.insert(id, LocalChannel { key: *key, discovery_key });
        self.local_by_dk.insert(discovery_key, id);
        let open = Open {
            discovery_key: discovery_key.as_bytes().to_vec(),
            capability: Some(self.keys.capability(key).to_vec()),
        };
        Ok((id, ChannelMessage::new(id, Message::Open(open))))
    }

    /// The `Close{discoveryKey}` that refuses a feed we never opened, on the lowest free id
    /// (which stays free).
    pub fn close_unopened(&self, discovery_key: &DiscoveryKey) -> Result<ChannelMessage, ChannelError> {
        let close = Close { discovery_key: Some(discovery_key.as_bytes().to_vec()) };
        Ok(ChannelMessage::new(self.lowest_free_id()?, Message::Close(close)))
    }

    /// Handles the peer's `Open` on its channel `remote_id`.
    pub fn on_open(&mut self, remote_id: u64, open: &Open) -> Result<RemoteOpen, ChannelError> {
        let discovery_key = open.discovery_key().ok_or(ChannelError::BadOpen)?;
        if self.remote.contains_key(&remote_id) {
            return Err(ChannelError::DuplicateRemoteChannel { remote_id });
        }
        if self.remote_by_dk.contains_key(&discovery_key) {
            return Err(ChannelError::DuplicateRemoteFeed { discovery_key });
        }
        if self.remote.len() >= MAX_CHANNELS {
            return Err(ChannelError::TooManyChannels);
        }
        let joined = match self.local_by_dk.get(&discovery_key) {
            Some(&local_id) => {
                let key = self
                    .local
                    .get(&local_id)
                    .map(|c| c.key)
                    .ok_or(ChannelError::UnknownLocalChannel(local_id))?;
                let ok = open
                    .capability
                    .as_deref()
                    .is_some_and(|cap| self.keys.verify_remote_capability(&key, cap));
                if !ok {
                    return Err(ChannelError::BadCapability { discovery_key });
                }
                Some(local_id)
            }
            None => None,
        };
        self.remote.insert(remote_id, RemoteChannel { discovery_key, capability: open.capability.clone() });
        self.remote_by_dk.insert(discovery_key, remote_id);
        Ok(match joined {
            Some(local_id) => RemoteOpen::Joined { local_id, remote_id },
            None => RemoteOpen::Unknown { discovery_key },
        })
    }

    /// Handles the peer's `Close` on its channel `remote_id`; `None` if it names nothing we
    /// know (ignored, as in JS).
    pub fn on_close(&mut self, remote_id: u64, close: &Close) -> Option<RemoteClose> {
        let discovery_key = match self.remote.remove(&remote_id) {
            Some(remote) => {
                self.remote_by_dk.remove(&remote.discovery_key);
                remote.discovery_key
            }
            // A refusal: the peer never opened this feed and names it in the body.
            None => DiscoveryKey::from_bytes(close.discovery_key.as_deref()?.try_into().ok()?),
        };
        Some(RemoteClose { discovery_key, local_id: self.local_by_dk.get(&discovery_key).copied() })
    }

    /// Closes our channel `local_id`: frees the id and returns the `Close` to send.
    pub fn close(&mut self, local_id: u64) -> Result<ChannelMessage, ChannelError> {
        let channel = self.local.remove(&local_id).ok_or(ChannelError::UnknownLocalChannel(local_id))?;
        self.local_by_dk.remove(&channel.discovery_key);
        Ok(ChannelMessage::new(local_id, Message::Close(Close::default())))
    }

    /// Our channel id for a feed.
    pub fn local_id(&self, discovery_key: &DiscoveryKey) -> Option<u64> {
        self.local_by_dk.get(discovery_key).copied()
    }

    /// The peer's channel id for a feed.
    pub fn remote_id(&self, discovery_key: &DiscoveryKey) -> Option<u64> {
        self.remote_by_dk.get(discovery_key).copied()
    }

    /// The feed the peer's channel `remote_id` is about.
    pub fn remote_discovery_key(&self, remote_id: u64) -> Option<DiscoveryKey> {
        self.remote.get(&remote_id).map(|c| c.discovery_key)
    }

    /// Our channel for the peer's channel `remote_id`, if both sides opened the feed: where
    /// to route the peer's messages.
    pub fn route(&self, remote_id: u64) -> Option<u64> {
        self.remote_discovery_key(remote_id).and_then(|dk| self.local_id(&dk))
    }

    /// The feed key of our channel `local_id`.
    pub fn feed_key(&self, local_id: u64) -> Option<&PublicKey> {
        self.local.get(&local_id).map(|c| &c.key)
    }

    /// Whether no channel is open on our side (a non-live v8 stream then ends).
    pub fn is_empty(&self) -> bool {
        self.local.is_empty()
    }
}
