//! One connection's protocol state above the frames (wire spec §7.1, §7.4, §7.5; JS
//! `hypercore-protocol` `Channelizer`): routes each received message to the channel it is
//! for, keeps each channel's and the stream's extension names, checks capabilities, and says
//! what the replication layer must do next as an [`Event`].
//!
//! Like JS, messages on a channel that is not open on both sides are dropped, and a bad
//! capability on a feed we opened is fatal for the whole connection.

use std::collections::HashMap;

use super::channel::{ChannelError, Channels, RemoteOpen, SessionKeys};
use super::extension::Extensions;
use super::message::{ChannelMessage, Message};
use crate::crypto::{DiscoveryKey, PublicKey};

/// What a received message means for the replication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The peer opened a feed we have not (JS `discovery-key`): [`Session::open`] it to
    /// replicate (its capability is checked then), or ignore it.
    DiscoveryKey(DiscoveryKey),
    /// Both sides have opened the feed on our channel `local_id`.
    Joined {
        /// Our channel id.
        local_id: u64,
        /// The feed.
        discovery_key: DiscoveryKey,
    },
    /// A replication message (Status, Have, Unhave, Want, Unwant, Request, Cancel, Data) or
    /// a peer's Options (its extension names are already recorded) for a joined channel.
    Message {
        /// Our channel id.
        local_id: u64,
        /// The message.
        message: Message,
    },
    /// A named extension message, on a joined channel or (`local_id: None`) on the stream.
    Extension {
        /// Our channel id; `None` for a stream extension (channel 0).
        local_id: Option<u64>,
        /// The extension's name (one we registered).
        name: String,
        /// Its payload.
        payload: Vec<u8>,
    },
    /// The peer closed its channel for a feed; send `reply` if present (our side was open,
    /// and is now closed too, as JS does).
    Closed {
        /// The feed.
        discovery_key: DiscoveryKey,
        /// Our `Close`, to send.
        reply: Option<ChannelMessage>,
    },
}

/// The protocol state of one connection.
#[derive(Debug)]
pub struct Session {
    channels: Channels,
    feed_extensions: Vec<String>,
    /// Per our channel id: its extension names (ours and the peer's).
    channel_extensions: HashMap<u64, Extensions>,
    stream_extensions: Extensions,
}

impl Session {
    /// A session with the connection's split keys, the extension names we register on every
    /// feed (e.g. `hypertrie`), and those we register on the stream.
    pub fn new(keys: SessionKeys, feed_extensions: &[&str], stream_extensions: &[&str]) -> Self {
        Self {
            channels: Channels::new(keys),
            feed_extensions: feed_extensions.iter().map(|s| (*s).to_owned()).collect(),
            channel_extensions: HashMap::new(),
            stream_extensions: Extensions::new(stream_extensions.iter().copied()),
        }
    }

    /// The channel tables.
    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Opens a feed: the messages to send (`Open`, then `Options` if we have feed
    /// extensions, as JS does) and our channel id.
    pub fn open(&mut self, key: &PublicKey) -> Result<(u64, Vec<ChannelMessage>), ChannelError> {
        let (local_id, open) = self.channels.open(key)?;
        let extensions = Extensions::new(self.feed_extensions.iter().cloned());
        let mut out = vec![open];
        if !self.feed_extensions.is_empty() {
            out.push(ChannelMessage::new(local_id, Message::Options(extensions.options(false))));
        }
        self.channel_extensions.insert(local_id, extensions);
        Ok((local_id, out))
    }

    /// Closes our channel `local_id`: the `Close` to send.
    pub fn close(&mut self, local_id: u64) -> Result<ChannelMessage, ChannelError> {
        self.channel_extensions.remove(&local_id);
        self.channels.close(local_id)
    }

    /// The stream-level `Options` advertising our stream extensions (send once, on
    /// channel 0, before the first stream extension message), if we have any.
    pub fn stream_options(&self) -> ChannelMessage {
        ChannelMessage::new(0, Message::Options(self.stream_extensions.options(false)))
    }

    /// An extension message for extension `name` on our channel `local_id` (`None` = the
    /// stream); `None` if that extension is not registered there.
    pub fn extension(&self, local_id: Option<u64>, name: &str, payload: Vec<u8>) -> Option<ChannelMessage> {
        let (channel, extensions) = match local_id {
            Some(id) => (id, self.channel_extensions.get(&id)?),
            None => (0, &self.stream_extensions),
        };
        extensions.message(name, payload).map(|m| ChannelMessage::new(channel, m))
    }

    /// Handles one received message. `Ok(None)`: nothing to do (dropped as JS drops it).
    /// `Err`: the connection must be destroyed.
    pub fn on_message(&mut self, msg: ChannelMessage) -> Result<Option<Event>, ChannelError> {
        let ChannelMessage { channel, message } = msg;
        if channel == 0 {
            // Stream-level traffic: Options and Extension only.
            return Ok(match message {
                Message::Options(options) => {
                    self.stream_extensions.on_options(&options);
                    None
                }
                Message::Extension { id, payload } => self
                    .stream_extensions
                    .name_of(id)
                    .map(|name| Event::Extension { local_id: None, name: name.to_owned(), payload }),
                _ => None,
            });
        }
        match message {
            Message::Open(open) => Ok(Some(match self.channels.on_open(channel, &open)? {
                RemoteOpen::Joined { local_id, .. } => {
                    let discovery_key = open.discovery_key().ok_or(ChannelError::BadOpen)?;
                    Event::Joined { local_id, discovery_key }
                }
                RemoteOpen::Unknown { discovery_key } => Event::DiscoveryKey(discovery_key),
            })),
            Message::Close(close) => Ok(self.channels.on_close(channel, &close).map(|closed| {
                let reply = closed.local_id.and_then(|id| self.close(id).ok());
                Event::Closed { discovery_key: closed.discovery_key, reply }
            })),
            other => {
                let Some(local_id) = self.channels.route(channel) else { return Ok(None) };
                Ok(match other {
                    Message::Extension { id, payload } => {
                        self.channel_extensions.get(&local_id).and_then(|e| e.name_of(id)).map(|name| {
                            Event::Extension { local_id: Some(local_id), name: name.to_owned(), payload }
                        })
                    }
                    Message::Options(options) => {
                        if let Some(e) = self.channel_extensions.get_mut(&local_id) {
                            e.on_options(&options);
                        }
                        Some(Event::Message { local_id, message: Message::Options(options) })
                    }
                    Message::Unknown { .. } => None,
                    message => Some(Event::Message { local_id, message }),
                })
            }
        }
    }
}
