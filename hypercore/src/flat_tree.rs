//! Flat-tree index arithmetic: a binary tree laid out in one array (spec §2, JS `flat-tree` 1.13).
//!
//! Leaves (blocks) have even indexes: block `i` is node `2i`; parents have odd indexes.
//!
//! ```text
//! depth 2:              3
//! depth 1:      1               5
//! depth 0:  0       2       4       6
//! ```
//!
//! Hand-written because the arithmetic is a dozen one-liners and must match the JS exactly,
//! including its edge cases (e.g. `full_roots`).
//!
//! The arithmetic wraps instead of panicking: indexes that come from a peer are bounded
//! (`replicate::MAX_BLOCK_INDEX`) before they reach the tree, and the JS results hold for
//! every index below 2^53; past that a wrong (wrapped) index is harmless, a debug-build
//! overflow panic on hostile input is not.

/// Number of trailing 1-bits of `index`: 0 for leaves.
#[inline]
pub fn depth(index: u64) -> u32 {
    (!index).trailing_zeros()
}

/// Position of `index` among the nodes of its depth, counting from 0.
#[inline]
pub fn offset(index: u64) -> u64 {
    let d = depth(index);
    if d >= 63 {
        return 0;
    }
    (index.wrapping_add(1) >> d) >> 1
}

/// The flat index of the node at `depth` and `offset`: `(2*offset + 1) * 2^depth - 1`.
#[inline]
pub fn index(depth: u32, offset: u64) -> u64 {
    (offset.wrapping_mul(2).wrapping_add(1).wrapping_shl(depth)).wrapping_sub(1)
}

/// The parent of `index`.
#[inline]
pub fn parent(index: u64) -> u64 {
    let d = depth(index);
    crate::flat_tree::index(d.saturating_add(1), offset(index) >> 1)
}

/// The other child of `index`'s parent.
#[inline]
pub fn sibling(index: u64) -> u64 {
    let d = depth(index);
    crate::flat_tree::index(d, offset(index) ^ 1)
}

/// The sibling of the parent of `index`.
#[inline]
pub fn uncle(index: u64) -> u64 {
    sibling(parent(index))
}

/// The left child of `index`, or `None` for a leaf.
#[inline]
pub fn left_child(index: u64) -> Option<u64> {
    let d = depth(index);
    (d > 0).then(|| crate::flat_tree::index(d - 1, offset(index) << 1))
}

/// The right child of `index`, or `None` for a leaf.
#[inline]
pub fn right_child(index: u64) -> Option<u64> {
    let d = depth(index);
    (d > 0).then(|| crate::flat_tree::index(d - 1, (offset(index) << 1).wrapping_add(1)))
}

/// Both children of `index`, or `None` for a leaf.
#[inline]
pub fn children(index: u64) -> Option<(u64, u64)> {
    Some((left_child(index)?, right_child(index)?))
}

/// The leftmost leaf under `index` (itself for a leaf).
#[inline]
pub fn left_span(index: u64) -> u64 {
    let d = depth(index);
    if d == 0 { index } else { offset(index).wrapping_mul(2u64.wrapping_shl(d)) }
}

/// The rightmost leaf under `index` (itself for a leaf).
#[inline]
pub fn right_span(index: u64) -> u64 {
    let d = depth(index);
    if d == 0 {
        index
    } else {
        offset(index).wrapping_add(1).wrapping_mul(2u64.wrapping_shl(d)).wrapping_sub(2)
    }
}

/// `[left_span, right_span]` of `index`.
#[inline]
pub fn spans(index: u64) -> (u64, u64) {
    (left_span(index), right_span(index))
}

/// Number of nodes in the subtree rooted at `index`: `2^(depth+1) - 1`.
#[inline]
pub fn count(index: u64) -> u64 {
    2u64.wrapping_shl(depth(index)).wrapping_sub(1)
}

/// The roots of the perfect subtrees covering the leaves left of `index` (`index` is a leaf
/// index, i.e. `2 * number_of_blocks`), left to right, without allocating.
///
/// An odd `index` is rounded down to the leaf before it (the JS throws; every caller in this
/// crate passes an even index).
#[inline]
pub fn full_roots_iter(index: u64) -> FullRoots {
    FullRoots { remaining: index >> 1, offset: 0 }
}

/// [`full_roots_iter`] collected into a `Vec`.
pub fn full_roots(index: u64) -> Vec<u64> {
    full_roots_iter(index).collect()
}

/// Iterator returned by [`full_roots_iter`].
#[derive(Debug, Clone)]
pub struct FullRoots {
    remaining: u64,
    offset: u64,
}

impl Iterator for FullRoots {
    type Item = u64;

    #[inline]
    fn next(&mut self) -> Option<u64> {
        if self.remaining == 0 {
            return None;
        }
        // The largest power of two <= remaining.
        let f = 1u64 << (63 - self.remaining.leading_zeros());
        let root = self.offset + f - 1;
        self.offset += 2 * f;
        self.remaining -= f;
        Some(root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_examples() {
        assert_eq!(full_roots(2), vec![0]);
        assert_eq!(full_roots(4), vec![1]);
        assert_eq!(full_roots(6), vec![1, 4]);
        assert_eq!(full_roots(14), vec![3, 9, 12]);
        assert_eq!(full_roots(22), vec![7, 17, 20]);
        assert_eq!(full_roots(28), vec![7, 19, 25]);
        assert_eq!(full_roots(0), Vec::<u64>::new());
        assert_eq!(parent(0), 1);
        assert_eq!(parent(1), 3);
        assert_eq!(sibling(5), 1);
        assert_eq!(children(3), Some((1, 5)));
        assert_eq!(children(4), None);
        assert_eq!(spans(3), (0, 6));
        assert_eq!(spans(8), (8, 8));
        assert_eq!(count(7), 15);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Hostile indexes (a peer's) never panic, in debug builds too.
        #[test]
        fn no_index_panics(index: u64) {
            let _ = (depth(index), offset(index), parent(index), sibling(index), uncle(index));
            let _ = (children(index), spans(index), count(index), full_roots_iter(index).count());
        }
    }
}
