//! hypercore: a signed append-only Merkle log, byte-compatible with JS hypercore 9
//! (spec: `hypercore-hypertrie-spec.md` §1–5).
//!
//! ```text
//! Feed ──append──▶ Merkle tree (BLAKE2b, flat-tree) ──roots──▶ Ed25519 signature
//!   │                                   │
//!   ├─proof(seq, digest)──▶ Proof { nodes, signature } ──put(seq, data, proof)──▶ replica Feed
//!   └─ Storage: memory, or a crash-safe log directory (see [`storage`](Storage))
//! ```
//!
//! The facade is [`Feed`], built by [`FeedBuilder`]: a writer holds a [`KeyPair`]; a sparse
//! read-only replica holds only the [`PublicKey`], stores the blocks that arrive through
//! [`Feed::put`] after verifying them, and waits on a [`BlockSource`] for missing ones.
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
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bitfield;
mod block_source;
mod builder;
mod crypto;
mod error;
mod feed;
mod pages;
pub mod flat_tree;
mod proof;
pub mod protocol;
mod storage;
mod tree;

#[cfg(feature = "test-utils")]
pub mod testing;

pub use bitfield::Bitfield;
pub use block_source::BlockSource;
pub use builder::{DEFAULT_GET_TIMEOUT, FeedBuilder};
pub use crypto::{
    DiscoveryKey, KeyError, KeyPair, PublicKey, SecretKey, Signable, Signature, Signer, Verifier, capability,
    leaf_hash, parent_hash, roots_hash, signable,
};
pub use error::{AppendError, GetError, OpenError, ProofError, StorageError, VerifyError};
pub use feed::{Feed, FeedEvent, MAX_BATCH};
pub use proof::{Proof, ProofOptions};
pub use storage::Storage;
pub use tree::Node;
