//! A trie node: one block `≥ 1` of the feed, holding a key, its value and the trie field
//! (spec §6.3; JS `lib/node.js`).

use std::fmt;

use crate::buckets::Buckets;
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
    value: Option<Box<[u8]>>,
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
        self.value.as_deref()
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
    pub(crate) fn decode(block: &[u8], seq: u64, hasher: &KeyHash) -> Result<Self, DecodeError> {
        let (mut key, mut value, mut trie, mut flags) = (None, None, None, 0);
        for field in protobuf::fields(block) {
            let (number, v) = field?;
            match number {
                1 => key = Some(protobuf::bytes(1, v)?),
                2 => value = Some(protobuf::bytes(2, v)?),
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
        Ok(Self {
            seq,
            path: KeyPath::new(key, flags & HIDDEN != 0, hasher),
            value: value.map(Box::from),
            flags,
            trie,
        })
    }

    /// A node about to be appended at `seq`, from its encoded trie field.
    pub(crate) fn written(
        path: KeyPath,
        value: Option<Box<[u8]>>,
        flags: u64,
        seq: u64,
        trie_field: &[u8],
    ) -> Result<Self, DecodeError> {
        Ok(Self { seq, path, value, flags, trie: Buckets::decode(trie_field, seq)? })
    }

    /// The block JS writes for this node: key, value (if any), trie field, seq, flags — in that
    /// order, `seq` and `flags` even when 0.
    pub(crate) fn encode(&self, trie_field: &[u8]) -> Vec<u8> {
        let value_len = self.value.as_ref().map_or(0, |v| v.len() + 10);
        let mut out = Vec::with_capacity(self.key().len() + value_len + trie_field.len() + 32);
        put_bytes(1, self.key().as_bytes(), &mut out);
        if let Some(v) = &self.value {
            put_bytes(2, v, &mut out);
        }
        put_bytes(3, trie_field, &mut out);
        put_uint(4, self.seq, &mut out);
        put_uint(5, self.flags, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_example_round_trips() {
        // seq 2, put('a', 'A')
        let block = [0x0a, 0x01, 0x61, 0x12, 0x01, 0x41, 0x1a, 0x04, 0x04, 0x03, 0x08, 0x01, 0x20, 0x02, 0x28, 0x00];
        let node = Node::decode(&block, 2, &KeyHash::SipHash).unwrap();
        assert_eq!((node.key(), node.value(), node.flags(), node.hidden()), ("a", Some(&b"A"[..]), 0, false));
        assert_eq!(node.trie.bucket(3), &[0, 0, 0, 1]);
        assert_eq!(node.encode(&block[8..12]), block);
    }

    #[test]
    fn malformed_nodes_are_errors() {
        let h = KeyHash::SipHash;
        assert_eq!(Node::decode(b"", 1, &h), Err(DecodeError::MissingField("key")));
        assert_eq!(Node::decode(b"\x0a\x05ab", 1, &h), Err(DecodeError::Truncated));
        assert_eq!(Node::decode(b"\x08\x01", 1, &h), Err(DecodeError::WireType { field: 1, wire_type: 0 }));
        assert_eq!(Node::decode(b"\x0a\x01\xff", 1, &h), Err(DecodeError::Utf8("key")));
        assert_eq!(Node::decode(b"\x0b", 1, &h), Err(DecodeError::WireType { field: 1, wire_type: 3 }));
        // a pointer to itself
        assert_eq!(
            Node::decode(b"\x0a\x01a\x1a\x04\x04\x03\x08\x01", 1, &h),
            Err(DecodeError::PointerNotBefore { pointer: 1 })
        );
    }
}
