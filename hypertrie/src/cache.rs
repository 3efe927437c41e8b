//! A small bounded cache of decoded nodes, shared by a trie and its checkouts.
//!
//! Two generations: new entries go to `hot`; when `hot` is full it becomes `cold` and the old
//! `cold` is dropped. A hit in `cold` is promoted. O(1) per operation and close to LRU, which is
//! all a lookup cache needs (the top of the trie is read by every lookup and stays hot).

use std::collections::HashMap;
use std::sync::Arc;

use crate::node::Node;

/// Decoded nodes by block seq.
#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    hot: HashMap<u64, Arc<Node>>,
    cold: HashMap<u64, Arc<Node>>,
    /// Entries per generation; 0 disables the cache.
    generation: usize,
}

impl NodeCache {
    /// A cache holding at most about `capacity` nodes.
    pub(crate) fn new(capacity: usize) -> Self {
        Self { hot: HashMap::new(), cold: HashMap::new(), generation: capacity / 2 }
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
        if self.hot.len() >= self.generation {
            self.cold = std::mem::take(&mut self.hot);
        }
        self.hot.insert(seq, node);
    }
}
