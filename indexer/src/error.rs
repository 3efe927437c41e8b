//! The indexer's error types.

use crate::codec::CodecError;

/// An index read or write failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The trie could not be opened.
    #[error("opening the index trie")]
    Open(#[source] hypertrie::OpenError),
    /// Reading a key failed (missing block, storage, ...).
    #[error("reading {key} from the index")]
    Read {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: hypertrie::ReadError,
    },
    /// Writing a batch failed.
    #[error("writing {ops} operations to the index")]
    Write {
        /// How many operations the batch had.
        ops: usize,
        /// The cause.
        #[source]
        source: hypertrie::WriteError,
    },
    /// A stored value does not decode: the index is corrupt or from a newer format.
    #[error("the value of {key} does not decode")]
    Corrupt {
        /// The key.
        key: String,
        /// The cause.
        #[source]
        source: CodecError,
    },
}
