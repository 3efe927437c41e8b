//! The crate's error types; each names the block (seq) or key it is about.

/// A block that is not a valid hypertrie header or node (spec §6.2, §6.3, §6.6).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end in the middle of a field.
    #[error("truncated")]
    Truncated,
    /// A varint is longer than 64 bits.
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    /// A known field has the wrong protobuf wire type, or a wire type is unknown.
    #[error("field {field} has wire type {wire_type}")]
    WireType {
        /// The field number.
        field: u64,
        /// The wire type found.
        wire_type: u8,
    },
    /// A required field is absent.
    #[error("required field `{0}` is missing")]
    MissingField(&'static str),
    /// A string field is not UTF-8.
    #[error("field `{0}` is not UTF-8")]
    Utf8(&'static str),
    /// Bucket positions in the trie field are not strictly ascending.
    #[error("trie bucket at position {position} is out of order")]
    BucketOrder {
        /// The offending position.
        position: u64,
    },
    /// A bucket position or slot mask is too large to be real.
    #[error("trie bucket at position {position} has an impossible position or slot mask")]
    BucketTooLarge {
        /// The offending position.
        position: u64,
    },
    /// A trie pointer is not an earlier block: past the end, into the future, or a cycle.
    #[error("trie pointer to block {pointer} is not an earlier block")]
    PointerNotBefore {
        /// The seq the pointer names.
        pointer: u64,
    },
}

/// Reading the trie failed: a block could not be fetched or is malformed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The hypercore could not give us the block (missing, timed out, storage error).
    #[error("reading trie block {seq}")]
    Block {
        /// The block index.
        seq: u64,
        /// Why.
        #[source]
        source: hypercore::GetError,
    },
    /// The block is not a valid hypertrie node or header.
    #[error("trie block {seq} is malformed")]
    Decode {
        /// The block index.
        seq: u64,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A walk went on longer than the key's path allows: the trie is malformed.
    #[error("walk through the trie at block {seq} did not end: the trie is malformed")]
    Runaway {
        /// The block where the walk was stopped.
        seq: u64,
    },
}

/// A put, delete or batch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// This handle cannot write: the feed has no secret key, or the handle is a checkout.
    #[error("this trie is read-only (a checkout, or a feed without its secret key)")]
    ReadOnly,
    /// User flags must fit in 23 bits (JS shifts them left by 8 with 32-bit arithmetic).
    #[error("user flags {flags} of key {key:?} do not fit in 23 bits")]
    FlagsTooLarge {
        /// The key being written.
        key: String,
        /// The flags given.
        flags: u32,
    },
    /// More colliding keys share one trie bucket than the format can address (31 slots).
    #[error("too many keys collide with {key:?} at trie position {position}")]
    TooManyCollisions {
        /// The key being written.
        key: String,
        /// The path position of the full bucket.
        position: usize,
    },
    /// Reading the existing trie failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Appending the new blocks failed.
    #[error("appending {count} trie block(s)")]
    Append {
        /// How many blocks were to be appended.
        count: usize,
        /// Why.
        #[source]
        source: hypercore::AppendError,
    },
}

/// Opening a trie over a feed failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The feed was empty and writable, and appending the header block failed.
    #[error("writing the hypertrie header block")]
    WriteHeader(#[source] hypercore::AppendError),
}
