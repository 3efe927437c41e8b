//! Discovery key (spec §1.4) and the wire capability (spec §1.5).

use std::fmt;

use super::keys::PublicKey;

/// `Hk(key = public key; "hypercore")`: the feed's public topic; it does not reveal the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiscoveryKey([u8; 32]);

impl DiscoveryKey {
    /// Wrap 32 raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for DiscoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DiscoveryKey({})", self.to_hex())
    }
}

impl fmt::Display for DiscoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Keyed BLAKE2b-256 of `parts` under `key` (libsodium `crypto_generichash` with a key).
fn keyed_hash(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    // A 32-byte key is always a valid BLAKE2b key (at most 64 bytes).
    let mut state = blake2b_simd::Params::new().hash_length(32).key(key).to_state();
    for part in parts {
        state.update(part);
    }
    super::hash::to_32(&state.finalize())
}

impl PublicKey {
    /// The feed's discovery key (spec §1.4).
    pub fn discovery_key(&self) -> DiscoveryKey {
        DiscoveryKey(keyed_hash(self.as_bytes(), &[b"hypercore"]))
    }
}

/// The capability proving knowledge of `feed_key` on one Noise session (spec §1.5):
/// `Hk(key = split_rx; "hypercore capability" · split_tx · feed_key)`.
///
/// The sender passes its own split (rx, tx); the receiver checks with rx and tx swapped.
pub fn capability(split_rx: &[u8; 32], split_tx: &[u8; 32], feed_key: &PublicKey) -> [u8; 32] {
    keyed_hash(split_rx, &[b"hypercore capability", split_tx, feed_key.as_bytes()])
}
