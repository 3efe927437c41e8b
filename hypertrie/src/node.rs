//! A trie node: one block `≥ 1` of the feed, holding a key, its value and the trie field
//! (spec §6.3; JS `lib/node.js`).

use std::fmt;

use std::ops::Range;

use crate::buckets::{Buckets, BucketsBuilder};
use crate::error::DecodeError;
use crate::path::{KeyHash, KeyPath};
use crate::protobuf::{self, put_bytes, put_uint};

/// The hidden bit of the raw `flags` field.
pub(crate) const HIDDEN: u64 = 1;

/// One decoded node: a key, its value, and the pointers that describe the whole trie as it was when
/// the node was written.
#[derive(Clone, PartialEq, Eq)]
pub struct Node {
    seq: u64,
    path: KeyPath,
    /// The block as stored; the value is a range of it, not a copy.
    block: Box<[u8]>,
    value: Option<Range<usize>>,
    flags: u64,
    pub(crate) trie: Buckets,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("seq", &self.seq)
            .field("key", &self.key())
            .field("value_len", &self.value.as_ref().map(|v| v.len()))
            .field("flags", &self.flags)
            .finish()
    }
}

impl Node {
    /// The block index this node is stored at.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The normalised key (one leading `/` dropped).
    pub fn key(&self) -> &str {
        self.path.key()
    }

    /// The value; `None` when the node was written without one.
    pub fn value(&self) -> Option<&[u8]> {
        self.value.clone().and_then(|r| self.block.get(r))
    }

    /// The block this node is stored as.
    pub(crate) fn block(&self) -> &[u8] {
        &self.block
    }

    /// Roughly how many bytes of memory the node holds (for the cache's budget).
    pub(crate) fn weight(&self) -> usize {
        // the block, key and hash copies, the bucket index, and the Arc, box and map entry
        self.block.len() + self.path.key().len() + self.path.len() / 4 + self.trie.weight() + 120
    }

    /// The user flags given to `put` (the raw field shifted right by 8).
    pub fn flags(&self) -> u32 {
        // The field is a JS 32-bit value, so the user part is at most 24 bits.
        (self.flags >> 8) as u32
    }

    /// Whether the key lives in the hidden sub-tree.
    pub fn hidden(&self) -> bool {
        self.flags & HIDDEN != 0
    }

    /// The key's path through the trie.
    pub(crate) fn path(&self) -> &KeyPath {
        &self.path
    }

    /// Whether reads treat this stored node as "no node": a reset node (key `""`, no value)
    /// marks an emptied trie.
    ///
    /// JS `getBySeq` tests `node.value === null && node.key === ''`, but a node decoded from a
    /// block always has `value === null` there (the bytes are in `valueBuffer`), so in fact
    /// *every* stored node with key `""` reads as none, with or without a value. We follow the
    /// JS behaviour, not the spec's wording (§6.1, §6.8), which only names the value-less node.
    pub(crate) fn is_reset(&self) -> bool {
        self.path.key().is_empty()
    }

    /// Decode the node stored at block `seq`, hashing its key with `hasher`. The stored `seq`
    /// field is ignored (the block index is what counts); unknown fields are skipped.
    pub(crate) fn decode(block: Vec<u8>, seq: u64, hasher: &KeyHash) -> Result<Self, DecodeError> {
        let (mut key, mut value, mut trie, mut flags) = (None, None, None, 0);
        let base = block.as_ptr() as usize;
        for field in protobuf::fields(&block) {
            let (number, v) = field?;
            match number {
                1 => key = Some(protobuf::bytes(1, v)?),
                2 => {
                    let bytes = protobuf::bytes(2, v)?;
                    let start = bytes.as_ptr() as usize - base;
                    value = Some(start..start + bytes.len());
                }
                3 => trie = Some(protobuf::bytes(3, v)?),
                4 => {
                    protobuf::uint(4, v)?;
                }
                5 => flags = protobuf::uint(5, v)?,
                _ => {}
            }
        }
        let key = key.ok_or(DecodeError::MissingField("key"))?;
        let key = std::str::from_utf8(key).map_err(|_| DecodeError::Utf8("key"))?;
        let trie = trie.map(|t| Buckets::decode(t, seq)).transpose()?.unwrap_or_default();
        let path = KeyPath::new(key, flags & HIDDEN != 0, hasher);
        Ok(Self { seq, path, block: block.into_boxed_slice(), value, flags, trie })
    }

    /// The node a put writes at `seq`, encoded as JS does: key, value (if any), trie field, seq,
    /// flags — in that order, `seq` and `flags` even when 0.
    pub(crate) fn written(
        path: KeyPath,
        value: Option<&[u8]>,
        flags: u64,
        seq: u64,
        trie: BucketsBuilder,
    ) -> Self {
        let value_len = value.map_or(0, |v| v.len() + 10);
        let mut out = Vec::with_capacity(path.key().len() + value_len + 16 * path.len() + 32);
        put_bytes(1, path.key().as_bytes(), &mut out);
        let value = value.map(|v| {
            put_bytes(2, v, &mut out);
            out.len() - v.len()..out.len()
        });
        let mut field = Vec::with_capacity(64);
        trie.encode(&mut field);
        put_bytes(3, &field, &mut out);
        put_uint(4, seq, &mut out);
        put_uint(5, flags, &mut out);
        Self { seq, path, block: out.into_boxed_slice(), value, flags, trie: trie.into_buckets() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // 256 cases in the suite; PROPTEST_CASES=N for a long run by hand.
        #![proptest_config(proptest::prelude::ProptestConfig { failure_persistence: None, ..Default::default() })]

        /// Arbitrary blocks (a peer's, or a damaged disk's) decode or fail, never panic.
        #[test]
        fn node_decoder_never_panics(block in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), seq in 0u64..1 << 53) {
            let _ = Node::decode(block, seq, &KeyHash::SipHash);
        }

        /// A valid node with bytes flipped, cut or spliced: an error or a node, never a panic;
        /// the untouched node round-trips.
        #[test]
        fn mutated_nodes_never_panic(
            key in "[a-z]{1,6}(/[a-z]{1,6}){0,2}",
            value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            buckets in proptest::collection::vec((0usize..32, 0usize..5, 1u64..1000), 0..6),
            flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
            cut in proptest::prelude::any::<usize>(),
        ) {
            let h = KeyHash::SipHash;
            let mut trie = BucketsBuilder::new();
            for (i, v, seq) in buckets {
                trie.push(i, v, seq);
            }
            let written = Node::written(KeyPath::new(&key, false, &h), Some(&value), 0, 1000, trie);
            let block = written.block().to_vec();
            let decoded = Node::decode(block.clone(), 1000, &h).expect("a written node decodes");
            proptest::prop_assert_eq!(&decoded, &written);
            let mut bad = block.clone();
            for (at, x) in flips {
                if !bad.is_empty() {
                    let n = bad.len();
                    bad[at % n] ^= x;
                }
            }
            let _ = Node::decode(bad.clone(), 1000, &h);
            bad.truncate(cut % (block.len() + 1));
            let _ = Node::decode(bad, 1000, &h);
        }
    }

    #[test]
    fn spec_example_round_trips() {
        // seq 2, put('a', 'A')
        let block =
            [0x0a, 0x01, 0x61, 0x12, 0x01, 0x41, 0x1a, 0x04, 0x04, 0x03, 0x08, 0x01, 0x20, 0x02, 0x28, 0x00];
        let node = Node::decode(block.to_vec(), 2, &KeyHash::SipHash).unwrap();
        assert_eq!((node.key(), node.value(), node.flags(), node.hidden()), ("a", Some(&b"A"[..]), 0, false));
        assert_eq!(node.trie.bucket(3), &[0, 0, 0, 1]);
        let mut trie = BucketsBuilder::new();
        trie.push(3, 3, 1);
        let written = Node::written(node.path().clone(), Some(b"A"), 0, 2, trie);
        assert_eq!(written.block(), block);
        assert_eq!(written, node);
    }

    #[test]
    fn malformed_nodes_are_errors() {
        let h = KeyHash::SipHash;
        assert_eq!(Node::decode(b"".to_vec(), 1, &h), Err(DecodeError::MissingField("key")));
        assert_eq!(Node::decode(b"\x0a\x05ab".to_vec(), 1, &h), Err(DecodeError::Truncated));
        assert_eq!(
            Node::decode(b"\x08\x01".to_vec(), 1, &h),
            Err(DecodeError::WireType { field: 1, wire_type: 0 })
        );
        assert_eq!(Node::decode(b"\x0a\x01\xff".to_vec(), 1, &h), Err(DecodeError::Utf8("key")));
        assert_eq!(
            Node::decode(b"\x0b".to_vec(), 1, &h),
            Err(DecodeError::WireType { field: 1, wire_type: 3 })
        );
        // a pointer to itself
        assert_eq!(
            Node::decode(b"\x0a\x01a\x1a\x04\x04\x03\x08\x01".to_vec(), 1, &h),
            Err(DecodeError::PointerNotBefore { pointer: 1 })
        );
    }
}
