//! The in-memory state of a feed, rebuilt from the log on open and shared by the facade
//! (`feed.rs`, which reads it) and the group commit (`commit.rs`, which applies written
//! records to it): the tree, the stored blocks and their log offsets, the signatures, the
//! readers waiting for blocks, and the writer's append roots. Module arrows run one way:
//! `feed` -> `commit` -> `state`.

use std::collections::{BTreeMap, HashMap};

use tokio::sync::oneshot;

use crate::bitfield::Bitfield;
use crate::crypto::{Signature, Verifier, signable};
use crate::pages::Pages;
use crate::proof;
use crate::storage::Meta;
use crate::tree::{Builder, Node, Tree};

const ABSENT: u64 = u64::MAX;
/// Block locations per page.
const POS_PAGE: usize = 1024;

/// Something that happened to a feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedEvent {
    /// The feed grew (by an append, or a verified proof of a longer length) to `len` blocks.
    Append {
        /// The new length.
        len: u64,
    },
    /// Block `seq` was received, verified and stored.
    Download {
        /// The block.
        seq: u64,
    },
}

/// The in-memory view of the feed, rebuilt from the log on open.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tree: Tree,
    pub(crate) data_bits: Bitfield,
    /// Log offset of each block's data, `ABSENT` if not stored.
    block_pos: Pages<[u64; POS_PAGE]>,
    /// Signature per slot (signed length - 1); one per append call.
    pub(crate) signatures: BTreeMap<u64, Signature>,
    pub(crate) length: u64,
    pub(crate) byte_length: u64,
    pub(crate) waiters: HashMap<u64, Vec<oneshot::Sender<()>>>,
}

impl State {
    pub(crate) fn new() -> Self {
        Self {
            tree: Tree::new(),
            data_bits: Bitfield::new(),
            block_pos: Pages::default(),
            signatures: BTreeMap::new(),
            length: 0,
            byte_length: 0,
            waiters: HashMap::new(),
        }
    }

    /// Apply one log record whose data starts at log offset `data_offset`.
    pub(crate) fn apply(&mut self, meta: &Meta, data_offset: u64) -> Result<(), String> {
        for node in &meta.nodes {
            if node.index >= proof::MAX_INDEX {
                return Err(format!("node index {} out of range", node.index));
            }
            self.tree.put_node(node);
        }
        for node in &meta.nodes {
            self.tree.mark(node.index);
        }
        let mut off = data_offset;
        for k in 0..u64::from(meta.block_count) {
            let seq = meta.first_seq.checked_add(k).filter(|s| *s < proof::MAX_INDEX / 2);
            let seq = seq.ok_or_else(|| format!("block {} + {k} out of range", meta.first_seq))?;
            let leaf = self.tree.get(2 * seq).ok_or_else(|| format!("block {seq} has no leaf node"))?;
            let page =
                self.block_pos.get_or_insert_with(seq / POS_PAGE as u64, || Box::new([ABSENT; POS_PAGE]));
            page[(seq % POS_PAGE as u64) as usize] = off;
            off += leaf.size;
            self.data_bits.set(seq, true);
        }
        if let Some((slot, sig)) = meta.signature {
            if slot >= proof::MAX_INDEX / 2 {
                return Err(format!("signature slot {slot} out of range"));
            }
            self.signatures.insert(slot, sig);
            let len = slot + 1;
            if len > self.length {
                let roots = self.tree.roots(len).ok_or_else(|| format!("roots of length {len} missing"))?;
                self.length = len;
                self.byte_length = roots.iter().map(|r| r.size).sum();
            }
        }
        Ok(())
    }

    /// The readers waiting for block `seq`.
    pub(crate) fn take_waiters(&mut self, seq: u64) -> Vec<oneshot::Sender<()>> {
        if self.waiters.is_empty() {
            return Vec::new();
        }
        self.waiters.remove(&seq).unwrap_or_default()
    }

    /// Log offset and leaf of block `seq`, if stored.
    // Inlined into Feed::get across the module boundary: the hot read path (get_random +30%,
    // par16 back to its level before the state moved out of feed.rs; `cargo bench --bench feed`).
    #[inline]
    pub(crate) fn location(&self, seq: u64) -> Option<(u64, Node)> {
        let pos = self.block_pos.get(seq / POS_PAGE as u64)?[(seq % POS_PAGE as u64) as usize];
        if pos == ABSENT {
            return None;
        }
        Some((pos, self.tree.get(2 * seq)?))
    }

    /// Check the stored signature of the current length against the roots (used on open).
    pub(crate) fn check_signature(&self, verifier: &Verifier) -> Result<(), String> {
        if self.length == 0 {
            return Ok(());
        }
        let sig = self.signatures.get(&(self.length - 1)).ok_or("no signature for the feed length")?;
        let roots = self.tree.roots(self.length).ok_or("roots missing")?;
        if !verifier.verify(&signable(&roots, self.length), sig) {
            return Err(format!("signature of length {} does not verify", self.length));
        }
        Ok(())
    }

    /// Whether blocks `0..length` are all stored (a complete writer feed).
    pub(crate) fn is_contiguous(&self) -> bool {
        (0..self.length).all(|s| self.data_bits.get(s))
    }
}

/// Append state, behind the async mutex: appends are hashed and signed in order.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    /// Merkle roots after every append prepared so far (committed or queued); `None` until
    /// needed, or after something other than an append changed the length.
    pub(crate) builder: Option<Builder>,
    /// The length after every append prepared so far.
    pub(crate) next_len: u64,
    /// The commit epoch `builder` was built in (a failed write voids it).
    pub(crate) epoch: u64,
}
