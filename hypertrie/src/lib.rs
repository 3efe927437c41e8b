//! hypertrie: a hash array mapped trie over one hypercore, byte-compatible with JS hypertrie 5
//! (spec: `hypercore-hypertrie-spec.md` §6 and §8).
//!
//! ```text
//! Trie ── put / del / batch ──▶ new Node blocks (key, value, buckets) ──append_batch──▶ Feed
//!   └──── get / list / diff ──▶ walk buckets from the head node, Feed::get per block
//! ```
//!
//! Block 0 of the feed is a [`Header`]; each later block is a [`Node`] whose buckets point at
//! earlier nodes, so the newest node describes the whole trie. A key's path is the SipHash-2-4 of
//! each `/`-separated component read as base-4 digits ([`key`], spec §6.4–6.5). Every block this
//! crate writes is byte-identical to what JS hypertrie 5.1.3 writes for the same operations.
//!
//! The facade is [`Trie`]; see its example.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod batch;
mod buckets;
mod cache;
#[cfg(test)]
mod codec_vectors;
mod del;
mod diff;
mod error;
mod get;
mod header;
mod history;
mod iterator;
pub mod key;
mod node;
mod path;
mod protobuf;
mod put;
mod reader;
mod trie;
mod varint;

pub use batch::{BatchOp, PutOptions};
pub use diff::{Diff, DiffEntry, DiffOptions};
pub use error::{DecodeError, OpenError, ReadError, WriteError};
pub use header::{HYPERTRIE_TYPE, Header};
pub use history::{History, HistoryOptions};
pub use iterator::{Iter, ListOptions};
pub use node::Node;
pub use path::{CustomHash, KeyHash, siphash24};
pub use trie::{DEFAULT_CACHE_BYTES, GetOptions, Trie, TrieOptions};
