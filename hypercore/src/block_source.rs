//! The pluggable source a sparse replica asks for missing blocks (the replication layer).

use crate::crypto::DiscoveryKey;

/// Something that can fetch missing blocks of a feed, e.g. the replication protocol.
///
/// Blocks arrive later through [`crate::Feed::put_blocks`], which verifies them and wakes readers.
pub trait BlockSource: Send + Sync + 'static {
    /// Ask for missing blocks of `feed`. Must not block.
    fn request(&self, feed: &DiscoveryKey, seqs: &[u64]);
}
