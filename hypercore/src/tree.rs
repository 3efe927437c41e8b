//! The Merkle tree held in memory: nodes by flat index, the tree bitfield with JS parent
//! propagation, append building, `verifiedBy` and the request digest (spec §2.2, §3, §4.4, §5.4).
//!
//! Mirrors hypercore 9's `lib/tree-index.js` and `merkle-tree-stream`.

use crate::bitfield::Bitfield;
use crate::crypto::{leaf_hash, parent_hash};
use crate::flat_tree;
use crate::pages::Pages;

/// A Merkle tree node: flat-tree `index`, BLAKE2b `hash`, and `size` = data bytes under it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Node {
    /// Flat-tree index (block `i` is node `2i`).
    pub index: u64,
    /// Leaf or parent hash (spec §1.2).
    pub hash: [u8; 32],
    /// Number of data bytes under this node.
    pub size: u64,
}

impl Node {
    /// The leaf node of block `seq` holding `data`.
    pub fn leaf(seq: u64, data: &[u8]) -> Self {
        Self::leaf_hashed(seq, leaf_hash(data), data.len())
    }

    /// The leaf node of block `seq`, `len` bytes whose [`leaf_hash`] is `hash`.
    pub fn leaf_hashed(seq: u64, hash: [u8; 32], len: usize) -> Self {
        // Wrapping: a hostile seq must not panic a debug build (peers' are bounded first).
        Self { index: seq.wrapping_mul(2), hash, size: len as u64 }
    }

    /// The parent of two siblings (given in either order).
    pub fn parent_of(a: &Node, b: &Node) -> Self {
        let (left, right) = if a.index < b.index { (a, b) } else { (b, a) };
        Self {
            index: flat_tree::parent(left.index),
            hash: parent_hash(left, right),
            size: left.size.wrapping_add(right.size),
        }
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node({}, {}.., {})", self.index, hex::encode(&self.hash[..4]), self.size)
    }
}

/// Nodes per page of the node store.
const PAGE_BITS: u32 = 12;
const PAGE_SLOTS: usize = 1 << PAGE_BITS;

/// One page of node slots; allocated when the first node in it arrives, so a sparse replica of
/// a huge feed does not pay for the nodes it never sees.
#[derive(Debug, Clone)]
struct Page {
    hashes: [[u8; 32]; PAGE_SLOTS],
    sizes: [u64; PAGE_SLOTS],
}

/// The tree: node hashes and sizes, plus the tree bitfield that says which nodes are held.
pub(crate) struct Tree {
    pages: Pages<Page>,
    bits: Bitfield,
}

impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tree").field("bit_len", &self.bits.bit_len()).finish_non_exhaustive()
    }
}

impl Tree {
    pub(crate) fn new() -> Self {
        Self { pages: Pages::default(), bits: Bitfield::new() }
    }

    /// Whether node `index` is held.
    #[inline]
    pub(crate) fn has(&self, index: u64) -> bool {
        self.bits.get(index)
    }

    /// Node `index`, if held.
    #[inline]
    pub(crate) fn get(&self, index: u64) -> Option<Node> {
        if !self.bits.get(index) {
            return None;
        }
        self.raw(index)
    }

    fn raw(&self, index: u64) -> Option<Node> {
        let page = self.pages.get(index >> PAGE_BITS)?;
        let slot = (index as usize) & (PAGE_SLOTS - 1);
        Some(Node { index, hash: page.hashes[slot], size: page.sizes[slot] })
    }

    fn store(&mut self, node: &Node) {
        let page = self.pages.get_or_insert_with(node.index >> PAGE_BITS, || {
            Box::new(Page { hashes: [[0u8; 32]; PAGE_SLOTS], sizes: [0u64; PAGE_SLOTS] })
        });
        let slot = (node.index as usize) & (PAGE_SLOTS - 1);
        page.hashes[slot] = node.hash;
        page.sizes[slot] = node.size;
    }

    /// Store a node without touching the bits (the bits follow with [`Tree::mark`]).
    pub(crate) fn put_node(&mut self, node: &Node) {
        self.store(node);
    }

    /// Set the tree bit of `index` and propagate to parents while siblings are held, as the
    /// JS `TreeIndex.set` does. A parent whose hash was not stored is computed from its
    /// children, so every set bit has a node behind it.
    pub(crate) fn mark(&mut self, mut index: u64) {
        if !self.bits.set(index, true) {
            return;
        }
        while self.bits.get(flat_tree::sibling(index)) {
            let sibling = flat_tree::sibling(index);
            let parent = flat_tree::parent(index);
            // Keep a stored parent (it was verified, or just built by an append); hash the
            // children only to fill a missing slot.
            let stored = self.raw(parent).is_some_and(|p| p.hash != [0u8; 32]);
            if !stored
                && !self.bits.get(parent)
                && let (Some(a), Some(b)) = (self.raw(index), self.raw(sibling))
            {
                self.store(&Node::parent_of(&a, &b));
            }
            index = parent;
            if !self.bits.set(index, true) {
                break;
            }
        }
    }

    /// Set the bit of `index` and of its parents while siblings are set, without storing or
    /// hashing anything: a model of which nodes a peer holds (its hashes are ours).
    pub(crate) fn mark_bits(&mut self, mut index: u64) {
        if !self.bits.set(index, true) {
            return;
        }
        while self.bits.get(flat_tree::sibling(index)) {
            index = flat_tree::parent(index);
            if !self.bits.set(index, true) {
                break;
            }
        }
    }

    /// The tree bitfield length in bits (bounds the digest walk, spec §5.4).
    pub(crate) fn bit_len(&self) -> u64 {
        self.bits.bit_len()
    }

    /// `verifiedBy(index)` of spec §2.2: the leaf index just past the signed range that proves
    /// `index`, given the held nodes; 0 if `index` is not held.
    pub(crate) fn verified_by(&self, index: u64) -> u64 {
        if !self.has(index) {
            return 0;
        }
        let mut depth = flat_tree::depth(index);
        let mut top = index;
        let mut parent = flat_tree::parent(top);
        while self.has(parent) && self.has(flat_tree::sibling(top)) {
            top = parent;
            parent = flat_tree::parent(top);
            depth += 1;
        }
        // Expand right and down.
        while depth > 0 {
            let right = flat_tree::index(depth, flat_tree::offset(top) + 1);
            top = flat_tree::index(depth - 1, flat_tree::offset(right) << 1);
            depth -= 1;
            while !self.has(top) && depth > 0 {
                top = flat_tree::index(depth - 1, flat_tree::offset(top) << 1);
                depth -= 1;
            }
        }
        if self.has(top) { top + 2 } else { top }
    }

    /// The `Request.nodes` digest for flat index `index` (spec §5.4, JS `TreeIndex.digest`).
    pub(crate) fn digest(&self, index: u64) -> u64 {
        if self.has(index) {
            return 1;
        }
        let mut digest: u64 = 0;
        let mut next = flat_tree::sibling(index);
        let max = (next + 2).max(self.bit_len());
        let mut bit: u64 = 2;
        let mut parent = flat_tree::parent(next);
        // Stop before the digest would overflow 64 bits; a JS digest is a double anyway.
        while bit < (1u64 << 61) && (flat_tree::right_span(next) < max || flat_tree::left_span(parent) > 0) {
            if self.has(next) {
                digest += bit;
            }
            if self.has(parent) {
                digest += 2 * bit;
                if digest & 1 == 0 {
                    digest += 1;
                }
                if digest + 1 == 4 * bit {
                    return 1;
                }
                return digest;
            }
            next = flat_tree::sibling(parent);
            parent = flat_tree::parent(next);
            bit *= 2;
        }
        digest
    }

    /// Sum of the sizes of `full_roots(2 * seq)`: the byte offset of block `seq`, if the roots
    /// are held.
    pub(crate) fn byte_offset(&self, seq: u64) -> Option<u64> {
        let mut sum = 0u64;
        for root in flat_tree::full_roots_iter(2 * seq) {
            sum = sum.checked_add(self.get(root)?.size)?;
        }
        Some(sum)
    }

    /// The full roots of a feed of `length` blocks, if all held.
    pub(crate) fn roots(&self, length: u64) -> Option<Vec<Node>> {
        flat_tree::full_roots_iter(2 * length).map(|r| self.get(r)).collect()
    }

    /// `seek(byte)` for a feed of `length` blocks: the block holding byte `byte` and the offset
    /// inside it; `(length, 0)` at the end; `None` past the end or if a needed node is missing.
    pub(crate) fn seek(&self, length: u64, byte: u64) -> Option<(u64, u64)> {
        let mut rem = byte;
        for root in flat_tree::full_roots_iter(2 * length) {
            let node = self.get(root)?;
            if rem < node.size {
                // Descend: go left while the byte falls into the left child.
                let mut cur = node;
                while let Some((l, r)) = flat_tree::children(cur.index) {
                    let left = self.get(l)?;
                    if rem < left.size {
                        cur = left;
                    } else {
                        rem -= left.size;
                        cur = self.get(r)?;
                    }
                }
                return Some((cur.index / 2, rem));
            }
            rem -= node.size;
        }
        (rem == 0).then_some((length, 0))
    }
}

/// Incremental Merkle builder for a writer (spec §3): the current roots of the contiguous feed.
#[derive(Debug, Clone, Default)]
pub(crate) struct Builder {
    roots: Vec<Node>,
}

impl Builder {
    /// Start from the full roots of the existing feed (ascending index).
    pub(crate) fn from_roots(roots: Vec<Node>) -> Self {
        Self { roots }
    }

    /// Add the block whose leaf node is `leaf`; pushes every new node (leaf first, then
    /// parents) to `out`.
    pub(crate) fn push(&mut self, leaf: Node, out: &mut Vec<Node>) {
        out.push(leaf);
        self.roots.push(leaf);
        while self.roots.len() >= 2 {
            let n = self.roots.len();
            let (a, b) = (self.roots[n - 2], self.roots[n - 1]);
            if flat_tree::parent(a.index) != flat_tree::parent(b.index) {
                break;
            }
            let p = Node::parent_of(&a, &b);
            self.roots.truncate(n - 2);
            self.roots.push(p);
            out.push(p);
        }
    }

    /// The current roots, ascending by index.
    pub(crate) fn roots(&self) -> &[Node] {
        &self.roots
    }
}

#[cfg(test)]
mod tests {
    use super::Tree;

    /// `digest_examples` of `hypercore.json`: bits set directly, without parent propagation.
    #[test]
    fn digest_examples_match_js() {
        let text = include_str!("../../fixtures/vectors/hypercore.json");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        let examples = v["digest_examples"].as_array().unwrap();
        assert!(!examples.is_empty());
        for ex in examples {
            let mut tree = Tree::new();
            for bit in ex["remote_has"].as_array().unwrap() {
                tree.bits.set(bit.as_u64().unwrap(), true);
            }
            let index = ex["index"].as_u64().unwrap();
            assert_eq!(tree.digest(index), ex["digest"].as_u64().unwrap(), "{ex}");
        }
    }
}
