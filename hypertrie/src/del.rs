//! Delete: find the key, then re-append a copy of the closest other node with the deleted node left
//! out of its buckets, or a reset node when nothing else is reachable (spec §6.9; JS `lib/del.js`).

use std::sync::Arc;

use crate::error::WriteError;
use crate::node::{HIDDEN, Node};
use crate::path::KeyPath;
use crate::put::{NewNode, Pending, put};
use crate::reader::{Shared, Source};

/// Delete `path` from the trie whose head is `head`. Returns the node written, or `None` when the
/// key is not there (nothing is written then).
///
/// Like JS, this does not handle full-hash collisions: a key that only hash-equals the node found
/// is silently not deleted (spec §8.14).
pub(crate) async fn del(
    shared: &Shared,
    pending: &mut Pending,
    head: Option<Arc<Node>>,
    path: &KeyPath,
) -> Result<Option<Arc<Node>>, WriteError> {
    let Some(mut node) = head.clone() else { return Ok(None) };
    let mut source = Source::with_pending(shared, &pending.nodes, pending.offset);
    let mut closest = 0;
    for i in 0..path.len() {
        let val = path.digit(i);
        let bucket = node.trie.bucket(i);
        if node.path().digit(i) == val {
            let first = bucket.iter().enumerate().find(|&(j, &seq)| j != val && seq != 0);
            if let Some((_, &seq)) = first {
                closest = seq;
            }
            continue;
        }
        let seq = match bucket.get(val) {
            Some(&seq) if seq != 0 => seq,
            _ => return Ok(None),
        };
        closest = node.seq();
        match source.node(seq).await? {
            Some(n) => node = n,
            None => return Ok(None),
        }
    }
    if node.key() != path.key() {
        return Ok(None);
    }
    let closest = if closest != 0 { source.node(closest).await? } else { None };
    let new = match &closest {
        // JS re-puts the closest node through `put`, which normalises its key once more.
        Some(c) => NewNode {
            path: KeyPath::new(c.key(), c.hidden(), &shared.hasher),
            value: c.value(),
            flags: u64::from(c.flags()) << 8 | if c.hidden() { HIDDEN } else { 0 },
        },
        None => NewNode {
            path: KeyPath::new("", node.hidden(), &shared.hasher),
            value: None,
            flags: if node.hidden() { HIDDEN } else { 0 },
        },
    };
    put(shared, pending, head, new, node.seq()).await.map(Some)
}
