//! Listing: a pre-order walk of the hash trie under a prefix, in JS's order — "key ends here"
//! first, then digits 0..3 at every position (spec §6.11; JS `lib/iterator.js`).

use std::cmp::Ordering;
use std::sync::Arc;

use crate::error::ReadError;
use crate::get::lookup;
use crate::node::Node;
use crate::path::KeyPath;
use crate::reader::{Shared, Source};

/// Digits in the order they are pushed (so they pop as 4, 0, 1, 2, 3).
const ORDER: [usize; 5] = [3, 2, 1, 0, 4];
/// The push order of a reverse walk.
const REVERSE_ORDER: [usize; 5] = [4, 0, 1, 2, 3];

/// Options of [`Trie::list`](crate::Trie::list) and [`Trie::iter`](crate::Trie::iter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListOptions {
    /// Walk the whole sub-trie (default). Otherwise stop one component below the prefix and yield
    /// one node per distinct next component (the first reached; its key may be deeper).
    pub recursive: bool,
    /// Walk in the opposite order.
    pub reverse: bool,
    /// Leave out the node whose key equals the prefix.
    pub gt: bool,
    /// List the hidden sub-tree instead of the visible one.
    pub hidden: bool,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self { recursive: true, reverse: false, gt: false, hidden: false }
    }
}

/// An iterator over the nodes under a prefix, reading blocks as it goes.
#[derive(Debug)]
pub struct Iter {
    shared: Arc<Shared>,
    stack: Vec<(usize, Arc<Node>)>,
    start: usize,
    end: usize,
    order: [usize; 5],
    gt: bool,
    /// Steps left before the walk is declared runaway (a malformed trie whose pointers are shared
    /// by many nodes could otherwise make it exponential).
    budget: u64,
    /// The most entries the stack may hold: in a well-formed trie every node is on it at most
    /// once, so more means a malformed one.
    max_stack: usize,
}

impl Iter {
    pub(crate) async fn open(
        shared: Arc<Shared>,
        version: u64,
        prefix: &str,
        options: ListOptions,
    ) -> Result<Self, ReadError> {
        let path = KeyPath::new(prefix, options.hidden, &shared.hasher);
        let mut source = Source::new(&shared);
        let head = source.head(version).await?;
        let first = lookup(&mut source, &path, true, head).await?;
        let start = path.len() - 1;
        let end = if options.recursive { usize::MAX } else { start + 32 };
        Ok(Self {
            stack: first.map(|n| (start, n)).into_iter().collect(),
            start,
            end,
            order: if options.reverse { REVERSE_ORDER } else { ORDER },
            gt: options.gt,
            budget: version.saturating_add(1).saturating_mul(4096),
            max_stack: usize::try_from(version).unwrap_or(usize::MAX).saturating_add(1024),
            shared,
        })
    }

    /// The next node, or `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Arc<Node>>, ReadError> {
        let mut source = Source::new(&self.shared);
        let mut sorts: Vec<(usize, usize)> = Vec::new();
        while let Some((i, node)) = self.stack.pop() {
            if i >= node.path().len().min(self.end) {
                return Ok(Some(node));
            }
            self.budget = self.budget.checked_sub(1).ok_or(ReadError::Runaway { seq: node.seq() })?;
            let bucket = node.trie.bucket(i);
            for val in self.order {
                if val == 4 && self.gt && i == self.start {
                    continue;
                }
                let before = self.stack.len();
                if node.path().digit(i) == val {
                    self.stack.push((i + 1, node.clone()));
                }
                for &seq in bucket.iter().skip(val).step_by(5) {
                    if seq != 0 {
                        // JS would fail on a reset node here; such a pointer leads nowhere.
                        if let Some(n) = source.node(seq).await? {
                            self.stack.push((i + 1, n));
                        }
                    }
                }
                if self.stack.len() - before > 1 {
                    sorts.push((before, self.stack.len()));
                }
            }
            if self.stack.len() > self.max_stack {
                return Err(ReadError::Runaway { seq: node.seq() });
            }
            // A collision group pops in ascending key order (JS compares UTF-16 code units).
            for (from, to) in sorts.drain(..).rev() {
                self.stack[from..to].sort_by(|a, b| utf16_cmp(b.1.key(), a.1.key()));
            }
        }
        Ok(None)
    }

    /// Collect the remaining nodes.
    pub async fn collect(mut self) -> Result<Vec<Arc<Node>>, ReadError> {
        let mut out = Vec::new();
        while let Some(n) = self.next().await? {
            out.push(n);
        }
        Ok(out)
    }
}

/// JS string order: by UTF-16 code unit.
pub(crate) fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}
