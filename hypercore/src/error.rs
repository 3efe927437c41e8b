//! The crate's error enums; each variant names the file, block or key it is about.

use std::path::PathBuf;

use crate::crypto::KeyError;

/// A storage failure: I/O or a file whose content is not what this crate wrote.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An I/O call failed on `path`.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (open, read, write, sync, ...).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `path` holds bytes this crate did not write (bit rot, foreign file, bad edit).
    #[error("corrupt storage file {path} at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the bad record or field.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
}

/// Opening a feed failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The storage could not be read or is corrupt.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A key is malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The storage holds another feed than the key given to the builder.
    #[error("storage {path} holds feed {stored}, not {given}")]
    KeyMismatch {
        /// Where the feed lives.
        path: PathBuf,
        /// The public key in storage.
        stored: String,
        /// The public key given.
        given: String,
    },
    /// New storage needs a key pair or a public key.
    #[error("storage {path} is empty and no key was given")]
    NoKey {
        /// Where the feed would live.
        path: PathBuf,
    },
    /// The stored feed does not verify against its public key.
    #[error("feed {key} in {path}: stored state fails verification: {reason}")]
    Verify {
        /// Public key (hex).
        key: String,
        /// Where the feed lives.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// An append failed; the feed is unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppendError {
    /// The feed was opened without a secret key.
    #[error("feed {key} is not writable (no secret key)")]
    NotWritable {
        /// Public key (hex).
        key: String,
    },
    /// The feed is a sparse replica whose blocks are not contiguous; only writers append.
    #[error("feed {key} is not a complete writer feed")]
    NotContiguous {
        /// Public key (hex).
        key: String,
    },
    /// A block is larger than hypercore's 8 MiB limit.
    #[error("block {seq} is {size} bytes, more than the 8 MiB limit")]
    BlockTooLarge {
        /// The seq the block would have had.
        seq: u64,
        /// Its size.
        size: u64,
    },
    /// One call appended more than [`crate::feed::MAX_BATCH`] blocks.
    #[error("batch of {count} blocks is larger than the limit of {max}")]
    BatchTooLarge {
        /// Blocks in the call.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Writing or syncing failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reading a block failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The block is not stored locally and no block source is configured.
    #[error("block {seq} is not stored locally")]
    Missing {
        /// The block.
        seq: u64,
    },
    /// The block source did not deliver the block in time.
    #[error("timed out waiting for block {seq}")]
    Timeout {
        /// The block.
        seq: u64,
    },
    /// `seq` is at or past the feed length.
    #[error("block {seq} is out of bounds (feed length {len})")]
    OutOfBounds {
        /// The block.
        seq: u64,
        /// The feed length.
        len: u64,
    },
    /// Reading storage failed, or the stored block does not match its hash.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A proof could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The block's leaf node is not held locally.
    #[error("no tree node for block {seq}")]
    MissingBlock {
        /// The block.
        seq: u64,
    },
    /// A node the proof needs is not held locally.
    #[error("proof for block {seq} needs tree node {index}, which is not held")]
    MissingNode {
        /// The block.
        seq: u64,
        /// The flat index of the missing node.
        index: u64,
    },
    /// The signature over the roots covering the block is not held.
    #[error("proof for block {seq} needs the signature of length {length}, which is not held")]
    MissingSignature {
        /// The block.
        seq: u64,
        /// The signed length.
        length: u64,
    },
}

/// A received block or proof was rejected; nothing was stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The signature does not verify over the roots the proof yields.
    #[error("block {seq}: remote signature could not be verified")]
    BadSignature {
        /// The block.
        seq: u64,
    },
    /// The proof is malformed or does not connect the block to trusted or signed roots.
    #[error("block {seq}: bad proof: {reason}")]
    BadProof {
        /// The block.
        seq: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The proof carries no signature although one is required.
    #[error("block {seq}: remote did not include a signature")]
    MissingSignature {
        /// The block.
        seq: u64,
    },
    /// A block is larger than hypercore's 8 MiB limit.
    #[error("block {seq} is {size} bytes, more than the 8 MiB limit")]
    BlockTooLarge {
        /// The block.
        seq: u64,
        /// Its size.
        size: u64,
    },
    /// The feed's public key is not a valid Ed25519 point, so nothing can verify.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Storing the verified block failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
