//! hypercore: a signed append-only Merkle log, byte-compatible with JS hypercore 9
//! (spec: `hypercore-hypertrie-spec.md` §1–5).
//!
//! ```text
//! Feed ──append──▶ Merkle tree (BLAKE2b, flat-tree) ──roots──▶ Ed25519 signature
//!   │                                   │
//!   ├─proof(seq, digest)──▶ Proof { nodes, signature } ──put(seq, data, proof)──▶ replica Feed
//!   └─ Storage: memory, or a crash-safe log directory (see [`Storage`])
//! ```
//!
//! The facade is [`Feed`], built by [`FeedBuilder`]: a writer holds a [`KeyPair`]; a sparse
//! read-only replica holds only the [`PublicKey`], stores the blocks that arrive through
//! [`Feed::put_blocks`] after verifying them, and waits on a [`BlockSource`] for missing ones.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use hypercore::{FeedBuilder, KeyPair, Storage};
//! let writer = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await?;
//! writer.append_batch(&[b"a".as_slice(), b"bb"]).await?;
//!
//! let replica = FeedBuilder::new(Storage::memory()).public_key(writer.public_key()).open().await?;
//! let proof = writer.proof(1, replica.digest(1)).await?;
//! replica.put(1, &writer.get(1).await?, &proof).await?;
//! assert_eq!(replica.get_local(1)?, Some(b"bb".to_vec()));
//! # Ok(()) }
//! ```
//!
//! Modules: `feed` (the facade; `feed/put` stores verified blocks), `state` (the in-memory
//! state every handle shares), `commit` (group commit of log records), `storage` (the log:
//! memory and disk backends, crash replay, the record codec), `tree`, `pages`, `bitfield`
//! and [`flat_tree`] (the Merkle tree), `proof`, `crypto`, `builder`, [`protocol`] (the wire
//! protocol) and [`replicate`] (replication; one connection is `replicate/conn`, with its
//! upload and download halves). Arrows run one way: `feed` -> `commit` -> `state`.
//!
//! # Compatibility, guarantees and limits
//!
//! * Hashes, roots, signatures (the 40-byte signable), discovery keys, request digests and
//!   proof node lists are byte-identical to JS hypercore 9 (`tests/vectors.rs` replays the JS
//!   vectors). The on-disk layout is this crate's own (see the `storage` module docs), not
//!   JS's SLEEP files.
//! * One signature per append call, as in JS; [`Feed::signature`] returns the next non-blank
//!   one. Verification accepts the 40-byte signable or the legacy 32-byte roots hash, and
//!   rejects unsigned ("non-live") proofs that reach the roots.
//! * Disk: an append or put that returned is synced; a crash at any point leaves a log that
//!   opens and verifies (the torn tail record is cut). Concurrent appends and puts (and
//!   [`Feed::put_blocks`]) share one write and one sync (group commit), so replication should
//!   keep several puts in flight or batch them: one sync costs milliseconds on real disks.
//!   Damage elsewhere is an error naming the file; blocks are re-hashed on read.
//! * Opening replays the log headers, so it costs O(records); the tree is held in memory
//!   (about 80 bytes per block), in pages, so sparse replicas pay only for what they hold.
//! * Proof building needs the signature of the prover's `verified_by` length; a replica holds
//!   only the signatures that came with its proofs (the JS behaves the same).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bitfield;
mod block_source;
mod builder;
mod commit;
mod crypto;
mod error;
mod feed;
pub mod flat_tree;
mod pages;
mod proof;
pub mod protocol;
pub mod replicate;
mod state;
mod storage;
mod tree;

#[cfg(feature = "test-utils")]
pub mod testing;

pub use bitfield::Bitfield;
pub use block_source::BlockSource;
pub use builder::{DEFAULT_GET_TIMEOUT, FeedBuilder};
pub use crypto::{
    DiscoveryKey, KeyError, KeyPair, PublicKey, SecretKey, Signable, Signature, Signer, Verifier, capability,
    leaf_hash, leaf_hashes, parent_hash, roots_hash, signable,
};
pub use error::{AppendError, GetError, OpenError, ProofError, StorageError, VerifyError};
pub use feed::{Feed, MAX_BATCH, PendingPut, PutBlocks, PutOptions};
pub use proof::{Proof, ProofOptions};
pub use state::FeedEvent;
pub use storage::Storage;
pub use tree::Node;
