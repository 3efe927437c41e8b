//! Writes: puts and deletes computed one after another against a running head, then appended in
//! one hypercore call, so one signature covers them all (spec §6.10; JS `lib/batch.js`).

use std::sync::Arc;

use crate::del::del;
use crate::error::WriteError;
use crate::node::Node;
use crate::path::KeyPath;
use crate::put::{NewNode, Pending, put};
use crate::reader::Shared;

/// Options of a put.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Store the key in the hidden sub-tree (only seen by hidden gets and lists).
    pub hidden: bool,
    /// User flags kept with the node (at most 23 bits).
    pub flags: u32,
}

/// One operation of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Set `key` to `value`.
    Put {
        /// The key (one leading `/` is dropped).
        key: String,
        /// The value.
        value: Vec<u8>,
        /// Hidden and user flags.
        options: PutOptions,
    },
    /// Remove `key`, if it is there.
    Del {
        /// The key.
        key: String,
        /// Whether the key is in the hidden sub-tree.
        hidden: bool,
    },
}

impl BatchOp {
    /// A plain put.
    pub fn put(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self::Put { key: key.into(), value: value.into(), options: PutOptions::default() }
    }

    /// A plain delete.
    pub fn del(key: impl Into<String>) -> Self {
        Self::Del { key: key.into(), hidden: false }
    }
}

/// Borrowed form of a [`BatchOp`], so single puts need not copy their value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OpRef<'a> {
    Put { key: &'a str, value: &'a [u8], options: PutOptions },
    Del { key: &'a str, hidden: bool },
}

impl<'a> From<&'a BatchOp> for OpRef<'a> {
    fn from(op: &'a BatchOp) -> Self {
        match op {
            BatchOp::Put { key, value, options } => Self::Put { key, value, options: *options },
            BatchOp::Del { key, hidden } => Self::Del { key, hidden: *hidden },
        }
    }
}

/// Apply `ops` in order under the trie's write lock and append what they produce in one call.
/// Returns the appended nodes.
pub(crate) async fn run<'a>(
    shared: &Shared,
    ops: impl IntoIterator<Item = OpRef<'a>>,
) -> Result<Vec<Arc<Node>>, WriteError> {
    if !shared.feed.writable() {
        return Err(WriteError::ReadOnly);
    }
    let _guard = shared.write_lock.lock().await;
    let offset = shared.feed.len();
    let mut pending = Pending::new(offset);
    // JS: the batch's running head starts at the trie head and becomes every node an operation
    // writes, a reset node included.
    let mut head = shared.head(offset).await?;
    for op in ops {
        let written = match op {
            OpRef::Put { key, value, options } => {
                let flags = NewNode::flags(key, options.flags, options.hidden)?;
                let new = NewNode {
                    path: KeyPath::new(key, options.hidden, &shared.hasher),
                    value: Some(value),
                    flags,
                };
                Some(put(shared, &mut pending, head.clone(), new, 0).await?)
            }
            OpRef::Del { key, hidden } => {
                let path = KeyPath::new(key, hidden, &shared.hasher);
                del(shared, &mut pending, head.clone(), &path).await?
            }
        };
        if written.is_some() {
            head = written;
        }
    }
    if !pending.nodes.is_empty() {
        let blocks: Vec<&[u8]> = pending.nodes.iter().map(|n| n.block()).collect();
        let count = blocks.len();
        let first =
            shared.feed.append_batch(&blocks).await.map_err(|source| WriteError::Append { count, source })?;
        if first != offset {
            // Only possible if something else appended to the feed behind the trie's back.
            tracing::error!(expected = offset, got = first, "trie nodes were appended at the wrong seq");
        }
        shared.remember(&pending.nodes);
    }
    Ok(pending.nodes)
}
