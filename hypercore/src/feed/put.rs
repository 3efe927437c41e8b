//! Storing verified blocks on a replica: [`Feed::put_blocks`], the one entry every put takes
//! (with [`Feed::put`] for one block, waiting), its [`PutOptions`], and [`Feed::verify`],
//! which checks a block as a put does but stores nothing. Proofs are checked as spec §5.5
//! describes; verified blocks are queued for the group commit (`commit.rs`).

use std::borrow::Borrow;

use super::Feed;
use crate::commit::{self, BlockData, Copied, Kind, Owned};
use crate::crypto::leaf_hashes;
use crate::error::{StorageError, VerifyError};
use crate::proof::{self, MAX_BLOCK_SIZE, Proof};
use crate::storage::Meta;
use crate::tree::Node;

/// How [`Feed::put_blocks`] verifies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Verify (and store) every node of each proof, also those above a node already held (JS
    /// stops at the first held node and ignores the rest): for answers whose later proofs
    /// rely on the nodes of earlier ones (the `ims/prefetch` answer, see
    /// [`crate::replicate::prefetch::answer`]). As strict as without: nothing is stored
    /// unless every node it stores verified.
    pub every_node: bool,
}

/// The blocks [`Feed::put_blocks`] takes: `(seq, data, proof)` triples, by reference, as a
/// slice, an array or a `Vec` (`data: AsRef<[u8]>`, `proof: Borrow<Proof>`). Sealed: inside
/// this crate, replication also hands over one received block with its leaf hash.
pub trait PutBlocks: sealed::Blocks {}

impl<T: sealed::Blocks> PutBlocks for T {}

mod sealed {
    use super::*;

    /// What [`Feed::put_blocks`] reads from its blocks.
    pub trait Blocks {
        /// Block bytes as the log takes them.
        type Data: BlockData;
        /// How many blocks.
        fn count(&self) -> usize;
        /// Block `i`: its seq, bytes and proof.
        fn block(&self, i: usize) -> (u64, &[u8], &Proof);
        /// The leaf hash of block `i` if the caller already computed it.
        fn leaf(&self, i: usize) -> Option<[u8; 32]>;
        /// Block `i`'s bytes for the log, once it verified (asked once per block).
        fn data(&mut self, i: usize) -> Self::Data;
    }

    /// Slices, arrays and `Vec`s of triples, by reference.
    macro_rules! triples {
        ($($ty:ty, [$($param:tt)*];)*) => {$(
            impl<'a, $($param)*> Blocks for &'a $ty
            where
                B: AsRef<[u8]>,
                P: Borrow<Proof>,
            {
                type Data = Copied<'a>;

                fn count(&self) -> usize {
                    self.len()
                }

                fn block(&self, i: usize) -> (u64, &[u8], &Proof) {
                    let (seq, data, proof) = &self[i];
                    (*seq, data.as_ref(), proof.borrow())
                }

                fn leaf(&self, _: usize) -> Option<[u8; 32]> {
                    None
                }

                fn data(&mut self, i: usize) -> Copied<'a> {
                    let blocks: &'a $ty = *self;
                    Copied(blocks[i].1.as_ref())
                }
            }
        )*};
    }

    triples! {
        [(u64, B, P)], [B, P];
        Vec<(u64, B, P)>, [B, P];
        [(u64, B, P); N], [B, P, const N: usize];
    }

    impl<'b> Blocks for Prehashed<'_, &'b [u8]> {
        type Data = Copied<'b>;

        fn count(&self) -> usize {
            1
        }

        fn block(&self, _: usize) -> (u64, &[u8], &Proof) {
            (self.seq, self.data, self.proof)
        }

        fn leaf(&self, _: usize) -> Option<[u8; 32]> {
            Some(self.leaf)
        }

        fn data(&mut self, _: usize) -> Copied<'b> {
            Copied(self.data)
        }
    }

    impl Blocks for Prehashed<'_, Vec<u8>> {
        type Data = Owned;

        fn count(&self) -> usize {
            1
        }

        fn block(&self, _: usize) -> (u64, &[u8], &Proof) {
            (self.seq, &self.data, self.proof)
        }

        fn leaf(&self, _: usize) -> Option<[u8; 32]> {
            Some(self.leaf)
        }

        fn data(&mut self, _: usize) -> Owned {
            Owned(std::mem::take(&mut self.data))
        }
    }
}

/// One received block whose [`leaf_hash`](crate::leaf_hash) the caller already computed
/// (replication hashes the blocks of a burst together, four at a time), for
/// [`Feed::put_blocks`]. `leaf` must be `leaf_hash(data)` of these very bytes: the proof and
/// the signature are checked against it, not against `data`. `data` is `&[u8]`, or a
/// `Vec<u8>` handed over: in memory that buffer is then stored as it is, without a copy.
#[derive(Debug)]
pub(crate) struct Prehashed<'a, D> {
    pub(crate) seq: u64,
    pub(crate) data: D,
    pub(crate) leaf: [u8; 32],
    pub(crate) proof: &'a Proof,
}

/// Verified blocks queued for storage by [`Feed::put_blocks`].
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
            commit::wait(self.feed.inner.as_ref(), done).await?;
        }
        Ok(())
    }
}

impl Feed {
    /// Verify block `seq` with `proof` against the public key, then store it durably and wake
    /// readers waiting for it: [`Feed::put_blocks`] of one block, waiting until it is durable.
    /// Nothing is stored if verification fails. Concurrent puts (and appends) share one write
    /// and one sync; each returns once its own block is durable.
    pub async fn put(&self, seq: u64, data: &[u8], proof: &Proof) -> Result<(), VerifyError> {
        Ok(self.put_blocks(&[(seq, data, proof)], PutOptions::default()).await?.durable().await?)
    }

    /// Verify every `(seq, data, proof)` against the public key (each on its own, against what
    /// the feed held when the call started, as concurrent puts are), then queue them all for
    /// storage as one write and one sync, without waiting for it. If any fails verification,
    /// the first failure is returned and none is stored. Blocks already held are skipped.
    ///
    /// The blocks become readable (and [`FeedEvent::Download`](crate::FeedEvent::Download) is
    /// sent for each) once they are durable; await [`PendingPut::durable`] to know when.
    /// Dropping the handle does not cancel the write. So a caller that handles blocks one
    /// after another (a replication loop) can verify the next block while earlier ones are
    /// written, and their syncs are shared.
    pub async fn put_blocks<Bs: PutBlocks>(
        &self,
        mut blocks: Bs,
        opts: PutOptions,
    ) -> Result<PendingPut, VerifyError> {
        let count = blocks.count();
        for i in 0..count {
            let (seq, data, _) = blocks.block(i);
            let size = data.len() as u64;
            if size > MAX_BLOCK_SIZE {
                return Err(VerifyError::BlockTooLarge { seq, size });
            }
        }
        // Hash outside the lock (blocks may be large), all blocks at once, unless the caller
        // did.
        let prehashed = count > 0 && (0..count).all(|i| blocks.leaf(i).is_some());
        let computed = if prehashed {
            Vec::new()
        } else {
            leaf_hashes(&(0..count).map(|i| blocks.block(i).1).collect::<Vec<_>>())
        };
        let mut records = Vec::with_capacity(count);
        let mut grows_to = 0;
        #[allow(clippy::needless_range_loop)] // `blocks` is read by index, too
        for i in 0..count {
            let hash = match blocks.leaf(i) {
                Some(hash) => hash,
                None => computed[i],
            };
            let (seq, data, proof) = blocks.block(i);
            let Some((meta, grows)) = self.check_put(seq, data, hash, proof, opts.every_node)? else {
                continue;
            };
            grows_to = grows_to.max(grows);
            records.push((Kind::Put { seq }, meta, blocks.data(i)));
        }
        self.submit_puts(records, grows_to).await
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
    async fn submit_puts<D: BlockData>(
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
}
