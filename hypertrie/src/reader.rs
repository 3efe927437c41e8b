//! Reading nodes by seq: the cache, the feed (which awaits blocks a sparse replica lacks), the
//! nodes of a batch not yet appended, and the record of which blocks a walk touched.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use hypercore::Feed;

use crate::cache::NodeCache;
use crate::error::ReadError;
use crate::node::Node;
use crate::path::KeyHash;

/// What a trie and all its checkouts share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) feed: Feed,
    pub(crate) hasher: KeyHash,
    cache: Mutex<NodeCache>,
    /// Held while a put/del/batch computes and appends its nodes (JS `mutexify`).
    pub(crate) write_lock: tokio::sync::Mutex<()>,
}

impl Shared {
    pub(crate) fn new(feed: Feed, hasher: KeyHash, cache_bytes: usize) -> Self {
        Self {
            feed,
            hasher,
            cache: Mutex::new(NodeCache::new(cache_bytes)),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The node stored at `seq` exactly as decoded (a reset node included); seq 0 is the header.
    pub(crate) async fn raw_node(&self, seq: u64) -> Result<Arc<Node>, ReadError> {
        if let Some(n) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(seq) {
            return Ok(n);
        }
        let block = self.feed.get(seq).await.map_err(|source| ReadError::Block { seq, source })?;
        let node =
            Node::decode(block, seq, &self.hasher).map_err(|source| ReadError::Decode { seq, source })?;
        let node = Arc::new(node);
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).insert(seq, node.clone());
        Ok(node)
    }

    /// Put nodes just appended into the cache: the next write reads them first.
    pub(crate) fn remember(&self, nodes: &[Arc<Node>]) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        for n in nodes {
            cache.insert(n.seq(), n.clone());
        }
    }

    /// JS `getBySeq`: the node at `seq`, or `None` for the header and for reset nodes.
    pub(crate) async fn node(&self, seq: u64) -> Result<Option<Arc<Node>>, ReadError> {
        if seq < 1 {
            return Ok(None);
        }
        let node = self.raw_node(seq).await?;
        Ok((!node.is_reset()).then_some(node))
    }

    /// The head of the trie at `version` (a feed length): the node at `version - 1`, if any.
    pub(crate) async fn head(&self, version: u64) -> Result<Option<Arc<Node>>, ReadError> {
        if version < 2 { Ok(None) } else { self.node(version - 1).await }
    }
}

/// How a walk reads nodes: through [`Shared`], first looking at the nodes of the batch being built,
/// and optionally recording every seq it reads.
#[derive(Debug)]
pub(crate) struct Source<'a> {
    shared: &'a Shared,
    /// Nodes of the batch being built, the first at seq `offset`.
    pending: &'a [Arc<Node>],
    offset: u64,
    touched: Option<&'a mut BTreeSet<u64>>,
}

impl<'a> Source<'a> {
    /// Read committed nodes only.
    pub(crate) fn new(shared: &'a Shared) -> Self {
        Self { shared, pending: &[], offset: u64::MAX, touched: None }
    }

    /// Also see the batch's nodes, the first of which has seq `offset`.
    pub(crate) fn with_pending(shared: &'a Shared, pending: &'a [Arc<Node>], offset: u64) -> Self {
        Self { shared, pending, offset, touched: None }
    }

    /// Record every seq read into `touched`.
    pub(crate) fn recording(shared: &'a Shared, touched: &'a mut BTreeSet<u64>) -> Self {
        Self { shared, pending: &[], offset: u64::MAX, touched: Some(touched) }
    }

    /// The node at `seq` (JS `Put._get`): a batch node as it is, else [`Shared::node`].
    pub(crate) async fn node(&mut self, seq: u64) -> Result<Option<Arc<Node>>, ReadError> {
        if seq >= self.offset
            && let Some(n) = usize::try_from(seq - self.offset).ok().and_then(|i| self.pending.get(i))
        {
            return Ok(Some(n.clone()));
        }
        if let Some(t) = self.touched.as_deref_mut()
            && seq >= 1
        {
            t.insert(seq);
        }
        self.shared.node(seq).await
    }

    /// The trie's head at `version`, recorded like any other read.
    pub(crate) async fn head(&mut self, version: u64) -> Result<Option<Arc<Node>>, ReadError> {
        if version < 2 { Ok(None) } else { self.node(version - 1).await }
    }
}
