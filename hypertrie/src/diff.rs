//! Diff: walk two versions' tries side by side and yield the keys whose nodes differ (spec §6.14;
//! JS `lib/diff.js`, without the mount-only options `skipLeftNull`, `skipRightNull`, `reconnect`).

use std::sync::Arc;

use crate::error::ReadError;
use crate::get::lookup;
use crate::node::Node;
use crate::path::{KeyPath, is_terminator};
use crate::reader::{Shared, Source};

/// Options of [`Trie::diff`](crate::Trie::diff).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiffOptions {
    /// Compare the hidden sub-trees instead of the visible ones.
    pub hidden: bool,
}

/// One difference: the node for `key` on the left (this version) and on the right (the other).
/// A side is `None` when the key is missing there. A key whose node was re-appended (after a
/// delete elsewhere, spec §6.9) shows up with equal values but different seqs.
#[derive(Debug, Clone)]
pub struct DiffEntry {
    /// The key (normalised).
    pub key: String,
    /// The node in this version.
    pub left: Option<Arc<Node>>,
    /// The node in the other version.
    pub right: Option<Arc<Node>>,
}

#[derive(Debug, Clone)]
struct Frame {
    i: usize,
    left: Option<Arc<Node>>,
    right: Option<Arc<Node>>,
}

/// The differences between two versions, computed as they are read.
#[derive(Debug)]
pub struct Diff {
    shared: Arc<Shared>,
    stack: Vec<Frame>,
    budget: u64,
    /// Each node of either version is on the stack at most once in well-formed tries.
    max_stack: usize,
}

fn seq(n: &Option<Arc<Node>>) -> u64 {
    n.as_ref().map_or(0, |n| n.seq())
}

fn done(n: &Option<Arc<Node>>, i: usize) -> bool {
    n.as_ref().is_some_and(|n| i >= n.path().len())
}

fn bucket(n: &Option<Arc<Node>>, i: usize) -> &[u64] {
    n.as_ref().map_or(&[], |n| n.trie.bucket(i))
}

/// JS `notInBucket`: `seq` is in none of the slots `val`, `val + 5`, ….
fn not_in_bucket(val: usize, seq: u64, bucket: &[u64]) -> bool {
    !bucket.iter().skip(val).step_by(5).any(|&s| s == seq)
}

/// JS `_pushStack`: the frame at `at`, pushed empty if the stack ends there.
fn frame_at(stack: &mut Vec<Frame>, at: usize, i: usize) -> &mut Frame {
    if stack.len() == at {
        stack.push(Frame { i, left: None, right: None });
    }
    &mut stack[at]
}

impl Diff {
    pub(crate) async fn open(
        shared: Arc<Shared>,
        left_version: u64,
        right_version: u64,
        prefix: &str,
        options: DiffOptions,
    ) -> Result<Self, ReadError> {
        let path = KeyPath::new(prefix, options.hidden, &shared.hasher);
        let mut source = Source::new(&shared);
        let head = source.head(left_version).await?;
        let left = lookup(&mut source, &path, true, head).await?;
        let head = source.head(right_version).await?;
        let right = lookup(&mut source, &path, true, head).await?;
        let budget = left_version.max(right_version).saturating_add(1).saturating_mul(8192);
        let max_stack = usize::try_from(left_version.saturating_add(right_version)).unwrap_or(usize::MAX);
        Ok(Self {
            stack: vec![Frame { i: path.len() - 1, left, right }],
            budget,
            max_stack: max_stack.saturating_add(1024),
            shared,
        })
    }

    /// The next difference, or `None` when the versions have been compared.
    pub async fn next(&mut self) -> Result<Option<DiffEntry>, ReadError> {
        let mut source = Source::new(&self.shared);
        while let Some(Frame { i, left, right }) = self.stack.pop() {
            if seq(&left) == seq(&right) {
                continue;
            }
            let done_left = done(&left, i);
            let done_right = done(&right, i);
            if done_left && done_right {
                return Ok(Some(entry(left, right)));
            }
            self.budget =
                self.budget.checked_sub(1).ok_or(ReadError::Runaway { seq: seq(&left).max(seq(&right)) })?;
            let left_val = left.as_ref().map_or(5, |n| n.path().digit(i));
            let right_val = right.as_ref().map_or(6, |n| n.path().digit(i));
            let (lb, rb) = (bucket(&left, i), bucket(&right, i));
            // JS checks collision groups at once unless a node read is in flight; then after all
            // reads of this step, last group first.
            let mut fetched = false;
            let mut deferred: Vec<(usize, usize)> = Vec::new();
            for j in 0..5 {
                let left_seq = if left_val == j { seq(&left) } else { 0 };
                let right_seq = if right_val == j { seq(&right) } else { 0 };
                let len = self.stack.len();
                let (mut left_len, mut right_len) = (len, len);
                if left_seq != right_seq {
                    if !done_left && left_seq != 0 && not_in_bucket(j, left_seq, rb) {
                        frame_at(&mut self.stack, left_len, i + 1).left = left.clone();
                        left_len += 1;
                    }
                    if !done_right && right_seq != 0 && not_in_bucket(j, right_seq, lb) {
                        frame_at(&mut self.stack, right_len, i + 1).right = right.clone();
                        right_len += 1;
                    }
                }
                if !done_left {
                    for &s in lb.iter().skip(j).step_by(5) {
                        if s == 0 {
                            break;
                        }
                        if s != right_seq && not_in_bucket(j, s, rb) {
                            let node = source.node(s).await?;
                            fetched = true;
                            frame_at(&mut self.stack, left_len, i + 1).left = node;
                            left_len += 1;
                        }
                    }
                }
                if !done_right {
                    for &s in rb.iter().skip(j).step_by(5) {
                        if s == 0 {
                            break;
                        }
                        if s != left_seq && not_in_bucket(j, s, lb) {
                            let node = source.node(s).await?;
                            fetched = true;
                            frame_at(&mut self.stack, right_len, i + 1).right = node;
                            right_len += 1;
                        }
                    }
                }
                if is_terminator(i) && self.stack.len() > len {
                    if fetched {
                        deferred.push((len, self.stack.len()));
                    } else {
                        let extra = pair_collisions(&mut self.stack, len);
                        self.stack.extend(extra);
                    }
                }
            }
            if self.stack.len() > self.max_stack {
                return Err(ReadError::Runaway { seq: seq(&left).max(seq(&right)) });
            }
            for (from, to) in deferred.into_iter().rev() {
                let extra = pair_collisions(&mut self.stack[..to], from);
                self.stack.extend(extra);
            }
            if done_left {
                return Ok(Some(entry(left, None)));
            }
            if done_right {
                return Ok(Some(entry(None, right)));
            }
        }
        Ok(None)
    }

    /// Collect the remaining differences.
    pub async fn collect(mut self) -> Result<Vec<DiffEntry>, ReadError> {
        let mut out = Vec::new();
        while let Some(d) = self.next().await? {
            out.push(d);
        }
        Ok(out)
    }
}

/// JS `_maybeCollides`: frames `from..` were pushed for one digit at a terminator position and
/// so share a component hash; make sure each pairs a left and a right of the same key.
///
/// A lone frame never needs it (JS checks it one position too far, where no collision is
/// possible). For several frames — only with full 64-bit collisions — JS can loop forever; here
/// lefts and rights are re-paired by component, and unmatched rights get frames of their own.
fn pair_collisions(stack: &mut [Frame], from: usize) -> Vec<Frame> {
    if stack.len() - from < 2 {
        return Vec::new();
    }
    let i = stack[from].i;
    let at = i - 1;
    let mut rights: Vec<Arc<Node>> = stack[from..].iter_mut().filter_map(|f| f.right.take()).collect();
    for f in &mut stack[from..] {
        let Some(l) = &f.left else { continue };
        if let Some(k) = rights.iter().position(|r| !r.path().collides(l.path(), at)) {
            f.right = Some(rights.remove(k));
        }
    }
    // Frames left with neither side are skipped when popped (both seqs 0).
    rights.into_iter().map(|r| Frame { i, left: None, right: Some(r) }).collect()
}

fn entry(left: Option<Arc<Node>>, right: Option<Arc<Node>>) -> DiffEntry {
    let key = left.as_ref().or(right.as_ref()).map_or_else(String::new, |n| n.key().to_owned());
    DiffEntry { key, left, right }
}
