//! Proofs: which nodes and signature a sender sends for a remote digest, and how a receiver
//! verifies them against the feed's public key (spec §5.4, §5.5; JS `TreeIndex.proof`,
//! `Feed._putBuffer`, `_verifyAndWrite`, `_verifyRootsAndWrite`).

use crate::crypto::{Signable, Signature, Verifier, signable};
use crate::error::{ProofError, VerifyError};
use crate::flat_tree;
use crate::tree::{Node, Tree};

/// What a sender sends with block `index`: uncles bottom-up, then the other full roots in
/// ascending order, and the signature of the covering length when the proof reaches the roots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The block seq this proof is for.
    pub index: u64,
    /// Tree nodes, in the order the sender emits them.
    pub nodes: Vec<Node>,
    /// Signature over the roots of `verified_by / 2` blocks, when needed.
    pub signature: Option<Signature>,
}

/// Options of a proof request (the `Request` message's `nodes` and `hash` fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProofOptions {
    /// What the requester already holds (spec §5.4); 0 = nothing.
    pub digest: u64,
    /// Put the block's own leaf node first (hash-only requests).
    pub hash: bool,
}

/// Largest flat index accepted from a peer: keeps the index arithmetic far from overflow.
pub(crate) const MAX_INDEX: u64 = 1 << 62;
/// Largest number of nodes accepted in one proof: a tree of 2^62 nodes needs under 128.
pub(crate) const MAX_PROOF_NODES: usize = 256;
/// hypercore's block size limit (8 MiB).
pub(crate) const MAX_BLOCK_SIZE: u64 = 8 * 1024 * 1024;

/// The node list and `verified_by` (0 if no signature is needed) for block `seq`.
pub(crate) fn build(tree: &Tree, seq: u64, opts: ProofOptions) -> Result<(Vec<Node>, u64), ProofError> {
    let index = 2 * seq;
    let get = |i: u64| tree.get(i).ok_or(ProofError::MissingNode { seq, index: i });
    if !tree.has(index) {
        return Err(ProofError::MissingBlock { seq });
    }
    let mut nodes = Vec::new();
    if opts.hash {
        nodes.push(get(index)?);
    }
    let mut digest = opts.digest;
    if digest == 1 {
        return Ok((nodes, 0));
    }

    // What the remote holds, decoded from its digest (a handful of indexes).
    let mut remote: Vec<u64> = Vec::new();
    let has_root = digest & 1 == 1;
    digest >>= 1;
    let mut next = index;
    while digest != 0 {
        if digest == 1 && has_root {
            if tree.has(next) {
                remote.push(next);
            }
            // Having a root implies having the roots before it.
            let sib = flat_tree::sibling(next);
            if sib < next {
                next = sib;
            }
            for root in flat_tree::full_roots_iter(flat_tree::right_span(next) + 2) {
                if tree.has(root) {
                    remote.push(root);
                }
            }
            break;
        }
        if digest & 1 == 1 {
            let sib = flat_tree::sibling(next);
            if tree.has(sib) {
                remote.push(sib);
            }
        }
        next = flat_tree::parent(next);
        digest >>= 1;
    }

    let mut next = index;
    while !remote.contains(&next) {
        let sib = flat_tree::sibling(next);
        if !tree.has(sib) {
            // `next` is a local root: send the other roots of the signed length.
            let verified_by = tree.verified_by(next);
            for root in flat_tree::full_roots_iter(verified_by) {
                if root != next && !remote.contains(&root) {
                    nodes.push(get(root)?);
                }
            }
            return Ok((nodes, verified_by));
        }
        if !remote.contains(&sib) {
            nodes.push(get(sib)?);
        }
        next = flat_tree::parent(next);
    }
    Ok((nodes, 0))
}

/// What a verified put stores.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Proof nodes used and parents computed (to store and mark).
    pub(crate) nodes: Vec<Node>,
    /// The signature and its slot (`verified_by / 2 - 1`), if the proof reached the roots.
    pub(crate) signature: Option<(u64, Signature)>,
}

/// A proof whose nodes check out against the tree, with the signature still to check.
#[derive(Debug)]
pub(crate) struct Unsigned {
    verified: Verified,
    seq: u64,
    /// What must verify under the feed key, when the proof reached the roots.
    signed: Option<(Signable, Signature)>,
}

impl Unsigned {
    /// Check the signature (if one is needed) against the feed key. Done apart from
    /// [`verify_nodes`] so the Ed25519 work runs without holding the tree.
    pub(crate) fn check(self, verifier: &Verifier) -> Result<Verified, VerifyError> {
        match self.signed {
            Some((signable, sig)) if !verifier.verify(&signable, &sig) => {
                Err(VerifyError::BadSignature { seq: self.seq })
            }
            _ => Ok(self.verified),
        }
    }
}

/// Verify block `seq`, whose leaf node is `leaf` (hashed by the caller from the data),
/// against `proof` and the locally held `tree`; the signature is checked by
/// [`Unsigned::check`]. Proofs that reach the roots must carry a signature: hypercore 9 feeds
/// are live, and the legacy unsigned form (feed key = roots hash) is not supported.
///
/// By default (as JS) hashing stops at the first held node, and proof nodes above it are
/// ignored. With `every_node` the walk goes on through held nodes (each must match) while
/// the proof has nodes left, so every node of the proof is verified (up to the roots and the
/// signature if it carries them) and stored: a sender that shares nodes between the blocks of
/// one answer can rely on the reader holding them afterwards.
pub(crate) fn verify_nodes(
    tree: &Tree,
    seq: u64,
    leaf: Node,
    proof: &Proof,
    every_node: bool,
) -> Result<Unsigned, VerifyError> {
    let bad = |reason| VerifyError::BadProof { seq, reason };
    if leaf.size > MAX_BLOCK_SIZE {
        return Err(VerifyError::BlockTooLarge { seq, size: leaf.size });
    }
    if seq >= MAX_INDEX / 2 || proof.index != seq {
        return Err(bad("proof is for another block"));
    }
    if proof.nodes.len() > MAX_PROOF_NODES {
        return Err(bad("too many nodes"));
    }
    if proof.nodes.iter().any(|n| n.index >= MAX_INDEX) {
        return Err(bad("node index out of range"));
    }
    let remote = &proof.nodes;

    // Find a trusted node: the first held node walking up from the leaf, skipping siblings
    // the proof supplies and collecting held siblings (JS `_putBuffer`).
    let mut trusted: Option<u64> = None;
    let mut local: Vec<Node> = Vec::new();
    let mut next = 2 * seq;
    let mut i = 0;
    loop {
        if tree.has(next) {
            trusted = Some(next);
            break;
        }
        let sib = flat_tree::sibling(next);
        next = flat_tree::parent(next);
        if next >= MAX_INDEX {
            break;
        }
        if i < remote.len() && remote[i].index == sib {
            i += 1;
            continue;
        }
        match tree.get(sib) {
            Some(node) => local.push(node),
            None => break,
        }
    }
    if trusted.is_none() && tree.has(next) {
        trusted = Some(next);
    }
    let trusted = trusted.and_then(|t| tree.get(t));
    let is_trusted = |n: &Node| trusted.is_some_and(|t| t.index == n.index && t.hash == n.hash);

    // Hash upwards (JS `_verifyAndWrite`).
    let mut visited = Vec::new();
    let mut top = leaf;
    let mut r = 0;
    let mut l = 0;
    let trusted_here =
        |visited| Ok(Unsigned { verified: Verified { nodes: visited, signature: None }, seq, signed: None });
    // Past the first held node (only with `every_node`): siblings may also be held ones, and
    // every held node reached must match.
    let mut above_trusted = false;
    if is_trusted(&top) {
        if !every_node || remote.is_empty() {
            return trusted_here(visited);
        }
        above_trusted = true;
    }
    loop {
        let sib = flat_tree::sibling(top.index);
        let node = if r < remote.len() && remote[r].index == sib {
            r += 1;
            visited.push(remote[r - 1]);
            remote[r - 1]
        } else if l < local.len() && local[l].index == sib {
            l += 1;
            local[l - 1]
        } else if let Some(held) = tree.get(sib).filter(|_| above_trusted) {
            held
        } else {
            break;
        };
        visited.push(top);
        top = Node::parent_of(&top, &node);
        if top.index >= MAX_INDEX {
            return Err(bad("node index out of range"));
        }
        if above_trusted {
            if tree.get(top.index).is_some_and(|held| held.hash != top.hash) {
                return Err(bad("proof node does not match a held node"));
            }
            if r == remote.len() && tree.has(top.index) {
                return trusted_here(visited);
            }
        } else if is_trusted(&top) {
            if !every_node || r == remote.len() {
                return trusted_here(visited);
            }
            above_trusted = true;
        }
    }

    // The remaining proof nodes, top and held nodes must give the full roots that are signed.
    let rest = &remote[r..];
    let last = remote.last().map_or(top.index, |n| n.index);
    let verified_by = flat_tree::right_span(top.index).max(flat_tree::right_span(last)) + 2;
    let length = verified_by / 2;
    let mut roots = Vec::new();
    let mut extra = Vec::new();
    let mut k = 0;
    for index in flat_tree::full_roots_iter(verified_by) {
        let node = if index == top.index {
            extra.push(top);
            top
        } else if k < rest.len() && rest[k].index == index {
            k += 1;
            extra.push(rest[k - 1]);
            rest[k - 1]
        } else if let Some(node) = tree.get(index) {
            node
        } else {
            return Err(bad("missing tree roots needed for verify"));
        };
        roots.push(node);
    }
    let Some(signature) = proof.signature else {
        return Err(VerifyError::MissingSignature { seq });
    };
    visited.extend(extra);
    Ok(Unsigned {
        verified: Verified { nodes: visited, signature: Some((length - 1, signature)) },
        seq,
        signed: Some((signable(&roots, length), signature)),
    })
}
