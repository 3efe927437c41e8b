//! The `Feed` facade: append, read, prove and verify blocks of one hypercore (spec §5).
//!
//! A `Feed` is a cheap `Clone` handle. In-memory state (tree, bitfield, signatures, block
//! locations) sits behind a `std` mutex that is never held across an `.await`. Appends are
//! prepared (hashed, signed) in order under an async mutex and handed to the group commit
//! queue (`commit.rs`), which writes and syncs concurrent calls together; puts are verified
//! without that mutex (the Ed25519 check outside every lock) and queued the same way.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, oneshot};

use crate::bitfield::Bitfield;
use crate::block_source::BlockSource;
use crate::commit::{self, Committer, Kind};
use crate::crypto::{DiscoveryKey, PublicKey, Signature, Signer, Verifier, leaf_hash, leaf_hashes, signable};
use crate::error::{AppendError, GetError, ProofError, StorageError, VerifyError};
use crate::pages::Pages;
use crate::proof::{self, MAX_BLOCK_SIZE, Proof, ProofOptions};
use crate::storage::{Meta, Store};
use crate::tree::{Builder, Node, Tree};

/// Most blocks one `append_batch` call may add (keeps one log record's metadata bounded).
pub const MAX_BATCH: usize = 1 << 20;

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
    signatures: BTreeMap<u64, Signature>,
    pub(crate) length: u64,
    pub(crate) byte_length: u64,
    waiters: HashMap<u64, Vec<oneshot::Sender<()>>>,
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
    fn location(&self, seq: u64) -> Option<(u64, Node)> {
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

/// Verified blocks queued for storage by [`Feed::start_put`] or [`Feed::start_put_batch`].
#[derive(Debug)]
#[must_use = "the blocks are stored anyway; await `durable()` to know when"]
pub struct PendingPut {
    feed: Feed,
    done: Vec<commit::Done>,
}

impl PendingPut {
    /// Wait until the blocks are durable and readable; an error if storing them failed.
    pub async fn durable(self) -> Result<(), StorageError> {
        for done in self.done {
            commit::wait(&self.feed.inner, done).await?;
        }
        Ok(())
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
            commit::barrier(&self.inner).await?;
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
            commit::wait(&self.inner, done).await?;
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
    /// and awaited (until the get timeout) for [`Feed::put`] to deliver it.
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
    /// in order with [`Feed::start_put_every_node`]; each leaves out the nodes (and the
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

    /// Verify block `seq` with `proof` against the public key and what the feed holds, exactly
    /// as [`Feed::put`] does, but store nothing (e.g. to tell a valid unrequested block from a
    /// forged one before dropping it). A block already held with this data is valid.
    pub fn verify(&self, seq: u64, data: &[u8], proof: &Proof) -> Result<(), VerifyError> {
        if data.len() as u64 > MAX_BLOCK_SIZE {
            return Err(VerifyError::BlockTooLarge { seq, size: data.len() as u64 });
        }
        let leaf = Node::leaf(seq, data);
        let unsigned = {
            let st = self.state();
            if st.data_bits.get(seq) && st.tree.get(2 * seq).is_some_and(|l| l.hash == leaf.hash) {
                return Ok(());
            }
            proof::verify_nodes(&st.tree, seq, leaf, proof, false)?
        };
        unsigned.check(&self.inner.verifier)?;
        Ok(())
    }

    /// Verify block `seq` with `proof` against the public key, then store it durably and wake
    /// readers waiting for it. Nothing is stored if verification fails. Concurrent puts (and
    /// appends) share one write and one sync; each returns once its own block is durable.
    pub async fn put(&self, seq: u64, data: &[u8], proof: &Proof) -> Result<(), VerifyError> {
        self.put_batch(&[(seq, data, proof)]).await
    }

    /// Verify block `seq` and queue it for storage without waiting for the sync: a caller that
    /// handles blocks one after another (a replication loop) can verify the next block while
    /// earlier ones are written, and their syncs are shared. The block becomes readable (and
    /// [`FeedEvent::Download`] is sent) once it is durable; await [`PendingPut::durable`] to
    /// know when. Dropping the handle does not cancel the write.
    pub async fn start_put(&self, seq: u64, data: &[u8], proof: &Proof) -> Result<PendingPut, VerifyError> {
        self.start_put_batch(&[(seq, data, proof)]).await
    }

    /// Verify every `(seq, data, proof)` against the public key (each on its own, against what
    /// the feed held when the call started, as concurrent [`Feed::put`]s are), then store them
    /// all with one write and one sync. If any fails verification, the first failure is
    /// returned and none is stored. Blocks already held are skipped.
    pub async fn put_batch<B, P>(&self, blocks: &[(u64, B, P)]) -> Result<(), VerifyError>
    where
        B: AsRef<[u8]>,
        P: Borrow<Proof>,
    {
        Ok(self.start_put_batch(blocks).await?.durable().await?)
    }

    /// [`Feed::put_batch`] without waiting for the sync (see [`Feed::start_put`]).
    pub async fn start_put_batch<B, P>(&self, blocks: &[(u64, B, P)]) -> Result<PendingPut, VerifyError>
    where
        B: AsRef<[u8]>,
        P: Borrow<Proof>,
    {
        self.start_put_checked(blocks, None, false).await
    }

    /// [`Feed::start_put`] that verifies (and stores) every node of the proof, also those
    /// above a node already held (JS stops at the first held node and ignores the rest): for
    /// answers whose later proofs rely on the nodes of earlier ones (the `ims/prefetch`
    /// answer, see [`crate::replicate::prefetch::answer`]). As strict as `start_put`: nothing
    /// is stored unless every node it stores verified.
    pub async fn start_put_every_node(
        &self,
        seq: u64,
        data: &[u8],
        proof: &Proof,
    ) -> Result<PendingPut, VerifyError> {
        self.start_put_checked(&[(seq, data, proof)], None, true).await
    }

    /// [`Feed::start_put_every_node`] of a block whose [`leaf_hash`] the caller already
    /// computed (replication hashes the blocks of a burst together, four at a time). `leaf`
    /// must be `leaf_hash(data)` of these very bytes: the proof and the signature are checked
    /// against it, not against `data`.
    pub(crate) async fn start_put_every_node_prehashed(
        &self,
        seq: u64,
        data: &[u8],
        leaf: [u8; 32],
        proof: &Proof,
    ) -> Result<PendingPut, VerifyError> {
        self.start_put_checked(&[(seq, data, proof)], Some(&[leaf]), true).await
    }

    async fn start_put_checked<B, P>(
        &self,
        blocks: &[(u64, B, P)],
        leaves: Option<&[[u8; 32]]>,
        every_node: bool,
    ) -> Result<PendingPut, VerifyError>
    where
        B: AsRef<[u8]>,
        P: Borrow<Proof>,
    {
        for (seq, block, _) in blocks {
            let size = block.as_ref().len() as u64;
            if size > MAX_BLOCK_SIZE {
                return Err(VerifyError::BlockTooLarge { seq: *seq, size });
            }
        }
        // Hash outside the lock (blocks may be large), all blocks at once.
        let computed;
        let leaves = match leaves.filter(|l| l.len() == blocks.len()) {
            Some(given) => given,
            None => {
                computed = leaf_hashes(&blocks.iter().map(|(_, b, _)| b.as_ref()).collect::<Vec<_>>());
                &computed
            }
        };
        let mut records = Vec::with_capacity(blocks.len());
        let mut grows_to = 0;
        for ((seq, block, proof), hash) in blocks.iter().zip(leaves) {
            let Some((meta, grows)) =
                self.check_put(*seq, block.as_ref(), *hash, proof.borrow(), every_node)?
            else {
                continue;
            };
            grows_to = grows_to.max(grows);
            records.push((Kind::Put { seq: *seq }, meta, std::slice::from_ref(block)));
        }
        self.submit_puts(records, grows_to).await
    }

    /// [`Feed::start_put`] of a block the caller hands over, whose [`leaf_hash`] it already
    /// computed (see [`Feed::start_put_every_node_prehashed`]): in memory the buffer is
    /// stored as it is, without a copy.
    pub(crate) async fn start_put_owned(
        &self,
        seq: u64,
        data: Vec<u8>,
        leaf: [u8; 32],
        proof: &Proof,
    ) -> Result<PendingPut, VerifyError> {
        if data.len() as u64 > MAX_BLOCK_SIZE {
            return Err(VerifyError::BlockTooLarge { seq, size: data.len() as u64 });
        }
        let Some((meta, grows_to)) = self.check_put(seq, &data, leaf, proof, false)? else {
            return Ok(PendingPut { feed: self.clone(), done: Vec::new() });
        };
        self.submit_puts(vec![(Kind::Put { seq }, meta, commit::Owned(data))], grows_to).await
    }

    /// Verifies block `seq` (`data`, whose leaf hash is `hash`) against the feed: the record
    /// meta to store and the length its signature proves (0 without one), or `None` if the
    /// block is already held.
    fn check_put(
        &self,
        seq: u64,
        data: &[u8],
        hash: [u8; 32],
        proof: &Proof,
        every_node: bool,
    ) -> Result<Option<(Meta, u64)>, VerifyError> {
        let leaf = Node::leaf_hashed(seq, hash, data.len());
        let unsigned = {
            let st = self.state();
            if st.data_bits.get(seq) && st.tree.get(2 * seq).is_some_and(|l| l.hash == leaf.hash) {
                return Ok(None);
            }
            proof::verify_nodes(&st.tree, seq, leaf, proof, every_node)?
        };
        // The Ed25519 check runs outside the state lock, so readers are not held up.
        let verified = unsigned.check(&self.inner.verifier)?;
        let mut nodes = verified.nodes;
        if !nodes.iter().any(|n| n.index == 2 * seq) {
            nodes.push(leaf);
        }
        let grows_to = verified.signature.map_or(0, |(slot, _)| slot + 1);
        Ok(Some((Meta { first_seq: seq, block_count: 1, signature: verified.signature, nodes }, grows_to)))
    }

    /// Queues verified puts for the log.
    async fn submit_puts<D: commit::BlockData>(
        &self,
        records: Vec<(Kind, Meta, D)>,
        grows_to: u64,
    ) -> Result<PendingPut, VerifyError> {
        if records.is_empty() {
            return Ok(PendingPut { feed: self.clone(), done: Vec::new() });
        }
        // A writer's appends are signed on top of the ones before: a put that changes the
        // length (another writer with this key) voids the append roots, in append order.
        let _writer = if self.writable() {
            let mut w = self.inner.writer.lock().await;
            if grows_to > w.next_len {
                w.builder = None;
            }
            Some(w)
        } else {
            None
        };
        let done = commit::submit(&self.inner, None, records)?;
        Ok(PendingPut { feed: self.clone(), done })
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
