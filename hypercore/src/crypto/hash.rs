//! Leaf, parent and roots hashes and the 40-byte signable (spec §1.2, §1.3).

use blake2b_simd::many::update_many;
use blake2b_simd::{Hash, Params, State};

use crate::tree::Node;

const LEAF_TYPE: u8 = 0x00;
const PARENT_TYPE: u8 = 0x01;
const ROOT_TYPE: u8 = 0x02;

/// A fresh BLAKE2b-256 state (unkeyed; libsodium `crypto_generichash` with 32-byte output).
pub(crate) fn state_256() -> State {
    Params::new().hash_length(32).to_state()
}

/// The 32 bytes of a BLAKE2b-256 hash.
pub(crate) fn to_32(hash: &Hash) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&hash.as_bytes()[..32]);
    out
}

/// BLAKE2b-256 of `bytes`.
pub(crate) fn blake2b_256(bytes: &[u8]) -> [u8; 32] {
    to_32(&Params::new().hash_length(32).hash(bytes))
}

fn leaf_state(len: usize) -> State {
    let mut h = state_256();
    h.update(&[LEAF_TYPE]);
    h.update(&(len as u64).to_be_bytes());
    h
}

/// `H(0x00 · u64be(len) · data)`: the hash of a block (spec §1.2).
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = leaf_state(data.len());
    h.update(data);
    to_32(&h.finalize())
}

/// [`leaf_hash`] of each block, computed together: with AVX2, four blocks are hashed at
/// once in the time of about one and a half.
pub fn leaf_hashes<B: AsRef<[u8]>>(blocks: &[B]) -> Vec<[u8; 32]> {
    let mut states: Vec<State> = blocks.iter().map(|b| leaf_state(b.as_ref().len())).collect();
    update_many(states.iter_mut().zip(blocks.iter().map(AsRef::as_ref)));
    states.iter().map(|s| to_32(&s.finalize())).collect()
}

/// `H(0x01 · u64be(left.size + right.size) · left.hash · right.hash)`; the caller passes the
/// children in flat-index order (spec §1.2, trap 3).
pub fn parent_hash(left: &Node, right: &Node) -> [u8; 32] {
    let mut buf = [0u8; 1 + 8 + 64];
    buf[0] = PARENT_TYPE;
    buf[1..9].copy_from_slice(&(left.size.wrapping_add(right.size)).to_be_bytes());
    buf[9..41].copy_from_slice(&left.hash);
    buf[41..73].copy_from_slice(&right.hash);
    blake2b_256(&buf)
}

/// `H(0x02 · for each root: hash · u64be(index) · u64be(size))`, roots in ascending index
/// order (spec §1.2, trap 4).
pub fn roots_hash<'a>(roots: impl IntoIterator<Item = &'a Node>) -> [u8; 32] {
    let mut h = state_256();
    h.update(&[ROOT_TYPE]);
    for root in roots {
        h.update(&root.hash);
        h.update(&root.index.to_be_bytes());
        h.update(&root.size.to_be_bytes());
    }
    to_32(&h.finalize())
}

/// The 40 bytes that are signed: `roots_hash · u64be(length)` (spec §1.3).
pub type Signable = [u8; 40];

/// Build the [`Signable`] for a feed of `length` blocks whose full roots are `roots`.
pub fn signable<'a>(roots: impl IntoIterator<Item = &'a Node>, length: u64) -> Signable {
    let mut out = [0u8; 40];
    out[..32].copy_from_slice(&roots_hash(roots));
    out[32..].copy_from_slice(&length.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_hashes_equal_one_at_a_time() {
        // Lengths around BLAKE2b's 128-byte block and the 9-byte leaf prefix, and large ones.
        let lens = [0usize, 1, 118, 119, 120, 127, 128, 129, 247, 256, 4096, 65_536, 65_537, 3, 700];
        let blocks: Vec<Vec<u8>> =
            lens.iter().enumerate().map(|(k, &n)| (0..n).map(|i| (i * 31 + k) as u8).collect()).collect();
        let together = leaf_hashes(&blocks);
        for (block, hash) in blocks.iter().zip(&together) {
            assert_eq!(*hash, leaf_hash(block), "length {}", block.len());
        }
        assert!(leaf_hashes::<&[u8]>(&[]).is_empty());
    }
}
