//! Leaf, parent and roots hashes and the 40-byte signable (spec §1.2, §1.3).

use blake2::Blake2b;
use blake2::digest::Digest;
use blake2::digest::consts::U32;

use crate::tree::Node;

type Blake2b256 = Blake2b<U32>;

const LEAF_TYPE: u8 = 0x00;
const PARENT_TYPE: u8 = 0x01;
const ROOT_TYPE: u8 = 0x02;

/// `H(0x00 · u64be(len) · data)`: the hash of a block (spec §1.2).
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update([LEAF_TYPE]);
    h.update((data.len() as u64).to_be_bytes());
    h.update(data);
    h.finalize().into()
}

/// `H(0x01 · u64be(left.size + right.size) · left.hash · right.hash)`; the caller passes the
/// children in flat-index order (spec §1.2, trap 3).
pub fn parent_hash(left: &Node, right: &Node) -> [u8; 32] {
    let mut buf = [0u8; 1 + 8 + 64];
    buf[0] = PARENT_TYPE;
    buf[1..9].copy_from_slice(&(left.size.wrapping_add(right.size)).to_be_bytes());
    buf[9..41].copy_from_slice(&left.hash);
    buf[41..73].copy_from_slice(&right.hash);
    Blake2b256::digest(buf).into()
}

/// `H(0x02 · for each root: hash · u64be(index) · u64be(size))`, roots in ascending index
/// order (spec §1.2, trap 4).
pub fn roots_hash<'a>(roots: impl IntoIterator<Item = &'a Node>) -> [u8; 32] {
    let mut h = Blake2b256::new();
    h.update([ROOT_TYPE]);
    for root in roots {
        h.update(root.hash);
        h.update(root.index.to_be_bytes());
        h.update(root.size.to_be_bytes());
    }
    h.finalize().into()
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
