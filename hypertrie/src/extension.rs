//! The hypertrie half of hypercore's `ims/prefetch` replication extension (wire spec §7.5;
//! DESIGN.md "The index"): which feed blocks a list of lookups reads, so a serving peer can
//! send them all in one round trip.
//!
//! hypercore stays ignorant of tries: it asks a [`BlockPlanner`]; [`TriePlanner`] answers
//! with [`Trie::touched_many`] over the serving peer's own copy (head, and every node on each
//! key's path at the current version).

use std::collections::BTreeSet;

use hypercore::Feed;
use hypercore::replicate::{BlockPlanner, PlanFuture};

use crate::trie::Trie;

/// Plans prefetches for one trie: the blocks `get(key)` reads, for every key asked.
#[derive(Debug, Clone)]
pub struct TriePlanner {
    trie: Trie,
}

impl TriePlanner {
    /// A planner over `trie` (normally the seeder's local index).
    pub fn new(trie: Trie) -> Self {
        Self { trie }
    }
}

impl BlockPlanner for TriePlanner {
    fn blocks<'a>(&'a self, feed: &'a Feed, keys: &'a [String]) -> PlanFuture<'a> {
        Box::pin(async move {
            if feed.discovery_key() != self.trie.feed().discovery_key() {
                return Ok(BTreeSet::new());
            }
            // The seeder's own copy is complete, so these lookups never wait on the network.
            self.trie
                .snapshot()
                .touched_many(keys.iter().map(String::as_str))
                .await
                .map_err(|e| e.to_string())
        })
    }
}
