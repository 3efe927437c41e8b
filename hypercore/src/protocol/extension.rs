//! Extensions by name (wire spec §7.5): each side advertises its sorted extension names in
//! `Options`, and an `Extension` message's id indexes the *sender's* list. A message whose
//! name we did not register is dropped, as in JS.

use super::message::{Message, Options};

/// At most this many names are kept from a peer's `Options` (more is ignored).
pub const MAX_REMOTE_EXTENSIONS: usize = 64;
/// Names longer than this are ignored.
pub const MAX_EXTENSION_NAME: usize = 256;

/// The extension names of one channel (or of the stream, on channel 0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    local: Vec<String>,
    remote: Vec<String>,
}

impl Extensions {
    /// Our extensions (sorted and deduplicated, as JS sends them).
    pub fn new<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut local: Vec<String> = names.into_iter().map(Into::into).collect();
        local.sort();
        local.dedup();
        Self { local, remote: Vec::new() }
    }

    /// The `Options` that advertise our names (`ack` as given; JS always writes it).
    pub fn options(&self, ack: bool) -> Options {
        Options::new(self.local.clone(), ack)
    }

    /// Remembers the peer's names from its `Options` (bounded; later Options replace it).
    pub fn on_options(&mut self, options: &Options) {
        self.remote = options
            .extensions
            .iter()
            .take(MAX_REMOTE_EXTENSIONS)
            .map(|n| if n.len() <= MAX_EXTENSION_NAME { n.clone() } else { String::new() })
            .collect();
    }

    /// The `Extension` message carrying `payload` for our extension `name`; `None` if we did
    /// not register it.
    pub fn message(&self, name: &str, payload: Vec<u8>) -> Option<Message> {
        let id = self.local.binary_search_by(|n| n.as_str().cmp(name)).ok()?;
        Some(Message::Extension { id: id as u64, payload })
    }

    /// The name of a received extension id, if the peer advertised it and we registered it
    /// too; otherwise the message is to be dropped.
    pub fn name_of(&self, remote_id: u64) -> Option<&str> {
        let name = self.remote.get(usize::try_from(remote_id).ok()?)?;
        self.local.binary_search(name).ok().map(|_| name.as_str())
    }

    /// Whether the peer advertised `name`.
    pub fn remote_has(&self, name: &str) -> bool {
        self.remote.iter().any(|n| n == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_index_the_senders_sorted_list() {
        let mut ours = Extensions::new(["zeta", "hypertrie", "alpha", "alpha"]);
        assert_eq!(ours.options(false).extensions, ["alpha", "hypertrie", "zeta"]);
        assert_eq!(ours.message("hypertrie", vec![1]), Some(Message::Extension { id: 1, payload: vec![1] }));
        assert_eq!(ours.message("nope", vec![]), None);
        // The peer knows only "hypertrie" and "other": its id 0 is hypertrie.
        ours.on_options(&Options::new(vec!["other".into(), "hypertrie".into()], false));
        assert_eq!(ours.name_of(0), Some("hypertrie"));
        assert_eq!(ours.name_of(1), None, "not registered locally: dropped");
        assert_eq!(ours.name_of(u64::MAX), None);
        assert!(ours.remote_has("other"));
    }

    #[test]
    fn transcript_options_bytes() {
        // `0e 11 0a09"hypertrie" 1000` (wire spec §10).
        let msg = super::super::ChannelMessage::new(
            1,
            Message::Options(Extensions::new(["hypertrie"]).options(false)),
        );
        let mut expected = vec![0x0e, 0x11, 0x0a, 0x09];
        expected.extend_from_slice(b"hypertrie");
        expected.extend_from_slice(&[0x10, 0x00]);
        assert_eq!(msg.to_frame().expect("encode"), expected);
    }
}
