//! Insert: build a new node's buckets by walking from the head along its path, copying the head's
//! other branches and pointing at the head where the paths part (spec §6.7; JS `lib/put.js`).

use std::sync::Arc;

use crate::buckets::BucketsBuilder;
use crate::error::{ReadError, WriteError};
use crate::node::{HIDDEN, Node};
use crate::path::{KeyPath, is_terminator};
use crate::reader::{Shared, Source};

/// The largest user flags value: JS computes `flags << 8` in 32-bit signed arithmetic.
pub(crate) const MAX_USER_FLAGS: u32 = (1 << 23) - 1;

/// The nodes a put, delete or batch produces, before they are appended in one call.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The seq the first pending node gets (the feed length when the write started).
    pub(crate) offset: u64,
    pub(crate) nodes: Vec<Arc<Node>>,
}

impl Pending {
    pub(crate) fn new(offset: u64) -> Self {
        Self { offset, nodes: Vec::new() }
    }
}

/// What to write: a key's path, its value and its raw flags (`user << 8 | hidden`).
#[derive(Debug)]
pub(crate) struct NewNode<'a> {
    pub(crate) path: KeyPath,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) flags: u64,
}

impl NewNode<'_> {
    /// Raw flags for user flags and the hidden bit, checking the user flags fit.
    pub(crate) fn flags(key: &str, user: u32, hidden: bool) -> Result<u64, WriteError> {
        if user > MAX_USER_FLAGS {
            return Err(WriteError::FlagsTooLarge { key: key.to_owned(), flags: user });
        }
        Ok(u64::from(user) << 8 | if hidden { HIDDEN } else { 0 })
    }
}

/// Compute the node for `new` against `head` and add it to `pending`. Pointers to `del` (the
/// node a delete removes; 0 for a plain put) are left out everywhere.
pub(crate) async fn put(
    shared: &Shared,
    pending: &mut Pending,
    head: Option<Arc<Node>>,
    new: NewNode<'_>,
    del: u64,
) -> Result<Arc<Node>, WriteError> {
    let trie = build(&mut Source::with_pending(shared, &pending.nodes, pending.offset), head, &new.path, del)
        .await?;
    if let Some(position) = trie.overfull() {
        return Err(WriteError::TooManyCollisions { key: new.path.key().to_owned(), position });
    }
    let seq = pending.offset + pending.nodes.len() as u64;
    let node = Arc::new(Node::written(new.path, new.value, new.flags, seq, trie));
    pending.nodes.push(node.clone());
    Ok(node)
}

/// The walk of JS `Put._update`, with the asynchronous collision pushes made in the order the
/// spec fixes: at a terminator position the head pointer first, then the colliding pointers in
/// ascending slot order.
async fn build(
    source: &mut Source<'_>,
    head: Option<Arc<Node>>,
    path: &KeyPath,
    del: u64,
) -> Result<BucketsBuilder, ReadError> {
    let mut trie = BucketsBuilder::new();
    let len = path.len();
    let mut colliding: Vec<(usize, u64)> = Vec::new();
    let mut head = head;
    let mut i = 0;
    'walk: while let Some(h) = head.take() {
        while i < len {
            let check = is_terminator(i);
            let val = path.digit(i);
            let head_val = h.path().digit(i);
            let bucket = h.trie.bucket(i);
            colliding.clear();
            // 1. copy the head's other branches at this position
            for (j, &seq) in bucket.iter().enumerate() {
                if seq == 0 || seq == del || (j == val && !check) {
                    continue;
                }
                if !check {
                    trie.push(i, j, seq);
                } else if let Some(n) = source.node(seq).await?
                    && n.path().collides(path, i)
                {
                    colliding.push((j, seq));
                }
            }
            // 2. the head still follows our path: go on with the same head
            if head_val == val && (!check || !path.collides(h.path(), i)) {
                for &(j, seq) in &colliding {
                    trie.push(i, j, seq);
                }
                i += 1;
                continue;
            }
            // 3. the paths part here: point at the head, then at the colliding nodes
            if h.seq() != del {
                trie.push(i, head_val, h.seq());
            }
            for &(j, seq) in &colliding {
                trie.push(i, j, seq);
            }
            // 4. move to the newest node along our own path
            if check {
                let mut next = None;
                for &seq in bucket.iter().skip(val).step_by(5) {
                    if seq == 0 {
                        break;
                    }
                    if let Some(n) = source.node(seq).await?
                        && !n.path().collides(path, i)
                    {
                        next = Some(n);
                    }
                }
                head = next;
            } else {
                match bucket.get(val) {
                    Some(&seq) if seq != 0 => head = source.node(seq).await?,
                    _ => break 'walk,
                }
            }
            i += 1;
            continue 'walk;
        }
        // reached the end of the path: `h` is the old version of this key
        break;
    }
    Ok(trie)
}
