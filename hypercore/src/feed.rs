//! The `Feed` facade: append, read, prove and verify blocks of one hypercore (spec §5).
//!
//! A `Feed` is a cheap `Clone` handle. In-memory state (tree, bitfield, signatures, block
//! locations; `state.rs`) sits behind a `std` mutex that is never held across an `.await`.
//! Appends are prepared (hashed, signed) in order under an async mutex and handed to the
//! group commit queue (`commit.rs`), which writes and syncs concurrent calls together; puts
//! (`feed/put.rs`, [`Feed::put_blocks`]) are verified without that mutex (the Ed25519 check
//! outside every lock) and queued the same way. Module arrows: `feed` -> `commit` ->
//! `state`; the commit queue reaches the feed's shared [`Inner`] only through
//! `commit::Target`.

mod put;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use crate::bitfield::Bitfield;
use crate::block_source::BlockSource;
use crate::commit::{self, Committer, Kind};
use crate::crypto::{DiscoveryKey, PublicKey, Signature, Signer, Verifier, leaf_hash, leaf_hashes, signable};
use crate::error::{AppendError, GetError, ProofError, StorageError};
use crate::proof::{self, MAX_BLOCK_SIZE, Proof, ProofOptions};
use crate::state::{FeedEvent, State, Writer};
use crate::storage::{Meta, Store};
use crate::tree::{Builder, Node, Tree};
pub(crate) use put::Prehashed;
pub use put::{PendingPut, PutBlocks, PutOptions};

/// Most blocks one `append_batch` call may add (keeps one log record's metadata bounded).
pub const MAX_BATCH: usize = 1 << 20;

/// What every handle of one feed shares: its keys, log, in-memory state, commit queue and
/// event channel, and how it fetches missing blocks.
pub(crate) struct Inner {
    pub(crate) public: PublicKey,
    pub(crate) discovery: DiscoveryKey,
    pub(crate) verifier: Verifier,
    pub(crate) signer: Option<Signer>,
    pub(crate) store: Arc<Store>,
    pub(crate) state: Mutex<State>,
    pub(crate) writer: tokio::sync::Mutex<Writer>,
    pub(crate) committer: Committer,
    pub(crate) events: broadcast::Sender<FeedEvent>,
    pub(crate) source: Option<Arc<dyn BlockSource>>,
    pub(crate) get_timeout: Duration,
}

impl Inner {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than losing the feed, so recover the guard instead of propagating.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl commit::Target for Inner {
    fn committer(&self) -> &Committer {
        &self.committer
    }

    fn store(&self) -> &Store {
        &self.store
    }

    fn state(&self) -> MutexGuard<'_, State> {
        Inner::state(self)
    }

    fn events(&self) -> &broadcast::Sender<FeedEvent> {
        &self.events
    }
}

/// A handle to one hypercore: a signed append-only log of blocks. Clone it freely.
#[derive(Clone)]
pub struct Feed {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("key", &self.inner.public)
            .field("len", &self.len())
            .field("writable", &self.writable())
            .field("store", &self.inner.store.path())
            .finish()
    }
}

impl Feed {
    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.state()
    }

    /// The feed's public key (its identity).
    pub fn public_key(&self) -> PublicKey {
        self.inner.public
    }

    /// The discovery key peers use to find this feed.
    pub fn discovery_key(&self) -> DiscoveryKey {
        self.inner.discovery
    }

    /// Whether this handle holds the secret key.
    pub fn writable(&self) -> bool {
        self.inner.signer.is_some()
    }

    /// Number of blocks (the highest verified length for a replica).
    pub fn len(&self) -> u64 {
        self.state().length
    }

    /// Total bytes of all blocks.
    pub fn byte_len(&self) -> u64 {
        self.state().byte_length
    }

    /// True if the feed has no blocks.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether block `seq` is stored locally.
    pub fn has(&self, seq: u64) -> bool {
        self.state().data_bits.get(seq)
    }

    /// A copy of the bitfield of locally stored blocks (bit `seq`, MSB-first bytes).
    pub fn bitfield(&self) -> Bitfield {
        self.state().data_bits.clone()
    }

    /// Subscribe to appends and downloads.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.inner.events.subscribe()
    }

    /// Append one block; returns its seq. Durable when this returns.
    pub async fn append(&self, data: &[u8]) -> Result<u64, AppendError> {
        self.append_batch(&[data]).await
    }

    /// Append blocks with one signature; returns the seq of the first. Durable when this
    /// returns. An empty batch appends nothing and returns the length.
    pub async fn append_batch<B: AsRef<[u8]>>(&self, blocks: &[B]) -> Result<u64, AppendError> {
        let key = || self.inner.public.to_hex();
        let Some(signer) = &self.inner.signer else {
            return Err(AppendError::NotWritable { key: key() });
        };
        if blocks.len() > MAX_BATCH {
            return Err(AppendError::BatchTooLarge { count: blocks.len(), max: MAX_BATCH });
        }
        let mut w = self.inner.writer.lock().await;
        let epoch = self.inner.committer.epoch();
        if w.builder.is_none() || w.epoch != epoch {
            // Start from the committed roots once everything queued before is applied.
            commit::barrier(self.inner.as_ref()).await?;
            let st = self.state();
            if blocks.is_empty() {
                return Ok(st.length);
            }
            let roots = st.tree.roots(st.length).filter(|_| st.is_contiguous());
            w.builder =
                Some(Builder::from_roots(roots.ok_or_else(|| AppendError::NotContiguous { key: key() })?));
            w.next_len = st.length;
            w.epoch = epoch;
        }
        let first = w.next_len;
        if blocks.is_empty() {
            return Ok(first);
        }
        for (k, b) in blocks.iter().enumerate() {
            let size = b.as_ref().len() as u64;
            if size > MAX_BLOCK_SIZE {
                return Err(AppendError::BlockTooLarge { seq: first + k as u64, size });
            }
        }
        let Some(builder) = w.builder.as_mut() else {
            return Err(AppendError::NotContiguous { key: key() });
        };
        let mut nodes = Vec::with_capacity(2 * blocks.len() + 1);
        for (k, (b, hash)) in blocks.iter().zip(leaf_hashes(blocks)).enumerate() {
            builder.push(Node::leaf_hashed(first + k as u64, hash, b.as_ref().len()), &mut nodes);
        }
        let length = first + blocks.len() as u64;
        let sig = signer.sign(&signable(builder.roots(), length));
        let meta = Meta {
            first_seq: first,
            block_count: blocks.len() as u32,
            signature: Some((length - 1, sig)),
            nodes,
        };
        // The builder already holds this append: if it cannot be queued, forget the builder.
        let submitted =
            commit::submit(&self.inner, Some(w.epoch), [(Kind::Append { len: length }, meta, blocks)]);
        let done = match submitted {
            Ok(mut done) => done.pop(),
            Err(e) => {
                w.builder = None;
                return Err(e.into());
            }
        };
        w.next_len = length;
        drop(w);
        if let Some(done) = done {
            commit::wait(self.inner.as_ref(), done).await?;
        }
        Ok(first)
    }

    fn read_block(&self, seq: u64, pos: u64, leaf: &Node) -> Result<Vec<u8>, GetError> {
        let buf = self.inner.store.read_vec(pos, leaf.size as usize)?;
        self.check_read(seq, pos, leaf, &buf)?;
        Ok(buf)
    }

    /// Where storage can rot (disk), a block read back must still match its tree hash.
    fn check_read(&self, seq: u64, pos: u64, leaf: &Node, block: &[u8]) -> Result<(), StorageError> {
        let store = &self.inner.store;
        if store.checks_reads() && leaf_hash(block) != leaf.hash {
            return Err(StorageError::Corrupt {
                path: store.path().into(),
                offset: pos,
                reason: format!("block {seq} does not match its tree hash"),
            });
        }
        Ok(())
    }

    /// [`Feed::get_local`] as shared bytes: from memory, a view of the log without a copy
    /// (what replication serves).
    pub(crate) fn get_local_shared(&self, seq: u64) -> Result<Option<bytes::Bytes>, GetError> {
        let Some((pos, leaf)) = self.state().location(seq) else { return Ok(None) };
        let buf = self.inner.store.read_shared(pos, leaf.size as usize)?;
        self.check_read(seq, pos, &leaf, &buf)?;
        Ok(Some(buf))
    }

    /// Block `seq` if stored locally; never waits.
    pub fn get_local(&self, seq: u64) -> Result<Option<Vec<u8>>, GetError> {
        let loc = self.state().location(seq);
        match loc {
            Some((pos, leaf)) => self.read_block(seq, pos, &leaf).map(Some),
            None => Ok(None),
        }
    }

    /// Block `seq`. On a sparse replica a missing block is requested from the block source
    /// and awaited (until the get timeout) for [`Feed::put_blocks`] to deliver it.
    pub async fn get(&self, seq: u64) -> Result<Vec<u8>, GetError> {
        loop {
            let (rx, source) = {
                let mut st = self.state();
                if let Some((pos, leaf)) = st.location(seq) {
                    drop(st);
                    return self.read_block(seq, pos, &leaf);
                }
                let len = st.length;
                let Some(source) = self.inner.source.clone().filter(|_| !self.writable()) else {
                    return Err(if seq >= len {
                        GetError::OutOfBounds { seq, len }
                    } else {
                        GetError::Missing { seq }
                    });
                };
                let (tx, rx) = oneshot::channel();
                st.waiters.entry(seq).or_default().push(tx);
                (rx, source)
            };
            source.request(&self.inner.discovery, &[seq]);
            match tokio::time::timeout(self.inner.get_timeout, rx).await {
                Ok(_) => continue,
                Err(_) => {
                    let mut st = self.state();
                    if let Some(list) = st.waiters.get_mut(&seq) {
                        list.retain(|tx| !tx.is_closed());
                        if list.is_empty() {
                            st.waiters.remove(&seq);
                        }
                    }
                    // It may have landed right at the deadline.
                    if let Some((pos, leaf)) = st.location(seq) {
                        drop(st);
                        return self.read_block(seq, pos, &leaf);
                    }
                    return Err(GetError::Timeout { seq });
                }
            }
        }
    }

    /// Byte offset of block `seq` in the feed (the sum of the sizes of `fullRoots(2*seq)`).
    pub async fn byte_offset(&self, seq: u64) -> Result<u64, GetError> {
        let st = self.state();
        if seq > st.length {
            return Err(GetError::OutOfBounds { seq, len: st.length });
        }
        st.tree.byte_offset(seq).ok_or(GetError::Missing { seq })
    }

    /// The block holding byte `byte` and the offset inside it; `(len, 0)` at the end.
    pub fn seek(&self, byte: u64) -> Result<(u64, u64), GetError> {
        let st = self.state();
        st.tree.seek(st.length, byte).ok_or(GetError::OutOfBounds { seq: st.length, len: st.length })
    }

    /// The `Request.nodes` digest for block `seq`: what this feed already holds (spec §5.4).
    pub fn digest(&self, seq: u64) -> u64 {
        self.state().tree.digest(2 * seq)
    }

    /// The proof for block `seq` given what the remote holds (`remote_digest`, spec §5.5).
    pub async fn proof(&self, seq: u64, remote_digest: u64) -> Result<Proof, ProofError> {
        self.proof_with(seq, ProofOptions { digest: remote_digest, hash: false }).map(|(p, _)| p)
    }

    /// The proof for block `seq` with full request options, and its `verified_by` (0 when no
    /// signature is needed).
    pub fn proof_with(&self, seq: u64, opts: ProofOptions) -> Result<(Proof, u64), ProofError> {
        let st = self.state();
        let (nodes, verified_by) = proof::build(&st.tree, seq, opts)?;
        let signature = if verified_by > 0 {
            let slot = verified_by / 2 - 1;
            let sig = st.signatures.get(&slot).copied();
            Some(sig.ok_or(ProofError::MissingSignature { seq, length: slot + 1 })?)
        } else {
            None
        };
        Ok((Proof { index: seq, nodes, signature }, verified_by))
    }

    /// Proofs for the blocks `seqs` (ascending) as one answer to a reader that verifies them
    /// in order with [`Feed::put_blocks`] with [`PutOptions::every_node`]; each leaves out the nodes (and the
    /// signature) the reader holds by then, that is the leaves of the blocks `have` marks
    /// (an MSB-first bitfield) and their full parents, the roots of `reader_len` blocks, and
    /// every node of the proofs before it. Stops at the first block this feed cannot prove.
    pub(crate) fn shared_proofs(&self, seqs: &[u64], have: &[u8], reader_len: Option<u64>) -> Vec<Proof> {
        let st = self.state();
        // What the reader holds, as tree bits only (the hashes come from our own tree).
        let mut reader = Tree::new();
        for (i, &byte) in have.iter().enumerate().filter(|(_, b)| **b != 0) {
            for k in 0..8u64 {
                let seq = 8 * i as u64 + k;
                if byte & (0x80 >> k) != 0 && st.tree.has(2 * seq) {
                    reader.mark_bits(2 * seq);
                }
            }
        }
        // A replica of length L holds the roots of L (State::apply requires them).
        if let Some(len) = reader_len.filter(|&l| l > 0 && l <= st.length) {
            for root in crate::flat_tree::full_roots_iter(2 * len) {
                reader.mark_bits(root);
            }
        }
        let mut out = Vec::with_capacity(seqs.len());
        for &seq in seqs {
            let opts = ProofOptions { digest: reader.digest(2 * seq), hash: false };
            let Ok((nodes, verified_by)) = proof::build(&st.tree, seq, opts) else { break };
            let signature = match verified_by {
                0 => None,
                v => match st.signatures.get(&(v / 2 - 1)) {
                    Some(sig) => Some(*sig),
                    None => break,
                },
            };
            reader.mark_bits(2 * seq);
            for n in &nodes {
                reader.mark_bits(n.index);
            }
            out.push(Proof { index: seq, nodes, signature });
        }
        out
    }

    /// The first signature at a slot `>= seq` (batch appends leave slots in between blank).
    pub async fn signature(&self, seq: u64) -> Result<Option<Signature>, GetError> {
        Ok(self.signature_at(seq).map(|(_, s)| s))
    }

    /// Like [`Feed::signature`], with the slot it was found at (signed length - 1).
    pub fn signature_at(&self, seq: u64) -> Option<(u64, Signature)> {
        self.state().signatures.range(seq..).next().map(|(k, v)| (*k, *v))
    }

    /// Tree node `index` if held (flat-tree index).
    pub fn tree_node(&self, index: u64) -> Option<Node> {
        self.state().tree.get(index)
    }

    /// Every flat index whose tree bit is set, ascending (for inspection and tests).
    pub fn tree_indexes(&self) -> Vec<u64> {
        let st = self.state();
        (0..st.tree.bit_len()).filter(|&i| st.tree.has(i)).collect()
    }
}
