//! History: the nodes in feed order, up to the head, stopping at a reset node (spec §6.13; JS
//! `lib/history.js`).

use std::sync::Arc;

use crate::error::ReadError;
use crate::node::Node;
use crate::reader::Shared;

/// Options of [`Trie::history`](crate::Trie::history).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    /// The first seq (default 1, the first node).
    pub gte: u64,
    /// The last seq (default: the head's).
    pub lte: Option<u64>,
    /// Newest first.
    pub reverse: bool,
}

impl Default for HistoryOptions {
    fn default() -> Self {
        Self { gte: 1, lte: None, reverse: false }
    }
}

/// The nodes of a seq range, read one block at a time.
#[derive(Debug)]
pub struct History {
    shared: Arc<Shared>,
    /// The seqs still to read, `lo..=hi`; empty when `lo > hi`.
    lo: u64,
    hi: u64,
    reverse: bool,
}

impl History {
    pub(crate) async fn open(
        shared: Arc<Shared>,
        version: u64,
        options: HistoryOptions,
    ) -> Result<Self, ReadError> {
        let head = shared.head(version).await?;
        // No head (empty, or emptied by a reset node): nothing to walk.
        let (lo, hi) = match head {
            Some(h) => (options.gte.max(1), options.lte.map_or(h.seq(), |l| l.min(h.seq()))),
            None => (1, 0),
        };
        Ok(Self { shared, lo, hi, reverse: options.reverse })
    }

    /// The next node, or `None` at the end of the range or at a reset node.
    pub async fn next(&mut self) -> Result<Option<Arc<Node>>, ReadError> {
        if self.lo > self.hi {
            return Ok(None);
        }
        let seq = if self.reverse { self.hi } else { self.lo };
        if self.reverse {
            // lo >= 1 always, so hi >= 1 here.
            self.hi -= 1;
        } else {
            self.lo += 1;
        }
        let node = self.shared.node(seq).await?;
        if node.is_none() {
            // Like JS, the walk ends at the first reset node.
            self.lo = 1;
            self.hi = 0;
        }
        Ok(node)
    }

    /// Collect the remaining nodes.
    pub async fn collect(mut self) -> Result<Vec<Arc<Node>>, ReadError> {
        let mut out = Vec::new();
        while let Some(n) = self.next().await? {
            out.push(n);
        }
        Ok(out)
    }
}
