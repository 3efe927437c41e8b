//! Test helpers for this and other crates (feature `test-utils`): fixed key pairs and feeds.

use crate::{Feed, FeedBuilder, KeyPair, OpenError, Storage};

/// A fixed key pair from the seed `[n; 32]`: the same in every run.
pub fn key_pair(n: u8) -> KeyPair {
    KeyPair::from_seed(&[n; 32])
}

/// The key pair of `hypercore.json` (seed bytes `00..1f`).
pub fn vector_key_pair() -> KeyPair {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        *b = i as u8;
    }
    KeyPair::from_seed(&seed)
}

/// An empty in-memory writer feed with [`key_pair`]`(n)`.
pub async fn memory_feed(n: u8) -> Result<Feed, OpenError> {
    FeedBuilder::new(Storage::memory()).key_pair(key_pair(n)).open().await
}

/// An empty in-memory read-only replica of `writer`.
pub async fn memory_replica(writer: &Feed) -> Result<Feed, OpenError> {
    FeedBuilder::new(Storage::memory()).public_key(writer.public_key()).open().await
}
