//! Lookup: follow a key's path from the head through the buckets (spec §6.8; JS `lib/get.js`).

use std::sync::Arc;

use crate::error::ReadError;
use crate::node::Node;
use crate::path::{KeyPath, is_terminator};
use crate::reader::Source;

/// Find the node for `key` starting at `head`. With `prefix`, stop one position early, before the
/// "key ends here" digit: the result is some node (normally the newest) whose key starts with all of
/// `key`'s components.
///
/// Each step moves to a strictly earlier block and one position further along the key's path, so a
/// walk reads at most `key.len()` nodes, whatever the blocks say.
pub(crate) async fn lookup(
    source: &mut Source<'_>,
    key: &KeyPath,
    prefix: bool,
    head: Option<Arc<Node>>,
) -> Result<Option<Arc<Node>>, ReadError> {
    let Some(mut head) = head else { return Ok(None) };
    let end = key.len() - usize::from(prefix);
    let mut i = 0;
    while i < end {
        let val = key.digit(i);
        let check = is_terminator(i);
        if head.path().digit(i) == val && (!check || !key.collides(head.path(), i)) {
            i += 1;
            continue;
        }
        let bucket = head.trie.bucket(i);
        let next = if check {
            // Every pointer in slots val, val+5, … shares the 64-bit component hash; the last one
            // whose component really matches wins.
            let mut found = None;
            for &seq in bucket.iter().skip(val).step_by(5) {
                if seq == 0 {
                    break;
                }
                if let Some(n) = source.node(seq).await?
                    && !n.path().collides(key, i)
                {
                    found = Some(n);
                }
            }
            found
        } else {
            match bucket.get(val) {
                Some(&seq) if seq != 0 => source.node(seq).await?,
                _ => None,
            }
        };
        let Some(next) = next else { return Ok(None) };
        head = next;
        i += 1;
    }
    Ok(Some(head))
}
