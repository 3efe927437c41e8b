//! A bounded cache of decoded nodes, shared by a trie and its checkouts.
//!
//! Two generations: new entries go to `hot`; when `hot` has used half the byte budget it becomes
//! `cold` and the old `cold` is dropped. A hit in `cold` is promoted. O(1) per operation and close
//! to LRU, which is all a lookup cache needs (the top of the trie is read by every lookup and
//! stays hot).

use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::node::Node;

/// Decoded nodes by block seq, within a byte budget.
#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    // Keys are block seqs below the feed length; a fast non-keyed hash is fine (at worst a
    // hostile feed slows its own cache down).
    hot: FxHashMap<u64, Arc<Node>>,
    hot_bytes: usize,
    cold: FxHashMap<u64, Arc<Node>>,
    /// Bytes per generation; 0 disables the cache.
    generation: usize,
}

impl NodeCache {
    /// A cache holding about `budget` bytes of nodes.
    pub(crate) fn new(budget: usize) -> Self {
        Self { generation: budget / 2, ..Self::default() }
    }

    /// The node at `seq`, if cached.
    pub(crate) fn get(&mut self, seq: u64) -> Option<Arc<Node>> {
        if let Some(n) = self.hot.get(&seq) {
            return Some(n.clone());
        }
        let n = self.cold.remove(&seq)?;
        self.insert(seq, n.clone());
        Some(n)
    }

    /// Remember the node at `seq`.
    pub(crate) fn insert(&mut self, seq: u64, node: Arc<Node>) {
        if self.generation == 0 {
            return;
        }
        if self.hot_bytes >= self.generation {
            self.cold = std::mem::take(&mut self.hot);
            self.hot_bytes = 0;
        }
        self.hot_bytes += node.weight();
        if let Some(old) = self.hot.insert(seq, node) {
            self.hot_bytes = self.hot_bytes.saturating_sub(old.weight());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::KeyHash;

    fn node(seq: u64) -> Arc<Node> {
        let block = format!("\x0a\x01k\x12\x04{seq:04}").into_bytes();
        Arc::new(Node::decode(block, seq, &KeyHash::SipHash).unwrap())
    }

    #[test]
    fn stays_within_its_budget_and_keeps_recent_nodes() {
        let weight = node(1).weight();
        let mut cache = NodeCache::new(10 * weight);
        for seq in 1..=100 {
            cache.insert(seq, node(seq));
            assert!(cache.hot.len() + cache.cold.len() <= 10, "bounded at {seq}");
        }
        assert!(cache.get(100).is_some() && cache.get(99).is_some());
        assert!(cache.get(1).is_none());
        assert!(NodeCache::new(0).get(1).is_none());
    }
}
