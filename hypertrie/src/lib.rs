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
//!
//! # Sparse replicas
//!
//! Every read goes through [`hypercore::Feed::get`], which on a sparse replica asks the feed's
//! block source for a missing block and waits for it. A lookup reads the head and one node per
//! step along the key's path — about `log4(n)` blocks — and [`Trie::touched`] /
//! [`Trie::touched_many`] name those blocks in advance, so a peer can send everything a set of
//! lookups needs in one round trip.
//!
//! # Where this differs from JS hypertrie 5.1.3
//!
//! Only where JS fails; every block written and every result otherwise match (the vector and
//! differential tests check both):
//! * Decoding is strict: malformed protobuf, bucket positions out of order, or a pointer that is
//!   not an earlier block (which rules out cycles) is a [`DecodeError`] naming the block, where
//!   JS may loop or read garbage.
//! * A list that reaches a pointer to a reset node skips it (JS throws; a batch can write such a
//!   pointer because its running head may be a reset node).
//! * A diff whose frames hold several fully colliding keys re-pairs them by key (JS can loop
//!   forever there; it needs 64-bit hash collisions).
//!
//! And one place where the spec's wording differs from JS, and we follow JS: every stored node
//! with key `""` reads as "no node", with or without a value (spec §6.1 names only the
//! value-less reset node).

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod batch;
mod buckets;
mod cache;
#[cfg(test)]
mod codec_vectors;
mod del;
mod diff;
mod error;
pub mod extension;
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
