//! The [`Trie`] facade: a cheap handle over one feed with every read and write (spec §6).

use std::collections::BTreeSet;
use std::sync::Arc;

use hypercore::Feed;

use crate::batch::{self, BatchOp, OpRef, PutOptions};
use crate::diff::{Diff, DiffOptions};
use crate::error::{OpenError, ReadError, WriteError};
use crate::get::lookup;
use crate::header::Header;
use crate::history::{History, HistoryOptions};
use crate::iterator::{Iter, ListOptions};
use crate::node::Node;
use crate::path::{KeyHash, KeyPath};
use crate::reader::{Shared, Source};

/// How many bytes of decoded nodes a trie keeps in memory by default: about 150 000 nodes with
/// 300-byte values, so the upper levels of even a very large trie stay in memory. (JS keeps 32768
/// raw blocks and decodes them again on every visit.)
pub const DEFAULT_CACHE_BYTES: usize = 128 << 20;

/// Options for [`Trie::open_with`].
#[derive(Debug, Clone)]
pub struct TrieOptions {
    /// Metadata for the header block (only used when the feed is new).
    pub metadata: Option<Vec<u8>>,
    /// Subtype for the header block (only used when the feed is new).
    pub subtype: Option<String>,
    /// The key hash; anything but the default is for tests only.
    pub hash: KeyHash,
    /// How many bytes of decoded nodes to keep in memory (0: none).
    pub cache_bytes: usize,
}

impl Default for TrieOptions {
    fn default() -> Self {
        Self { metadata: None, subtype: None, hash: KeyHash::SipHash, cache_bytes: DEFAULT_CACHE_BYTES }
    }
}

/// Options of [`Trie::get_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GetOptions {
    /// Look in the hidden sub-tree.
    pub hidden: bool,
    /// Return some node whose key starts with all of the key's components (normally the newest).
    pub prefix: bool,
}

/// A hypertrie over one hypercore feed: a cheap, cloneable handle.
///
/// Block 0 of the feed is the [`Header`]; every later block is a [`Node`]. A handle reads the
/// latest version, or — made by [`checkout`](Self::checkout) — the trie as it was at an earlier
/// feed length. Reads go through [`Feed::get`], so on a sparse replica they wait for missing
/// blocks from the feed's block source. The trie must be the only writer of its feed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use hypercore::{FeedBuilder, KeyPair, Storage};
/// use hypertrie::{ListOptions, Trie};
/// let feed = FeedBuilder::new(Storage::memory()).key_pair(KeyPair::generate()).open().await?;
/// let trie = Trie::open(feed).await?;
/// trie.put("express/4.18.2", b"{...}").await?;
/// let node = trie.get("express/4.18.2").await?.expect("just put");
/// assert_eq!(node.value(), Some(&b"{...}"[..]));
/// assert_eq!(trie.list("express", ListOptions::default()).await?.len(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Trie {
    shared: Arc<Shared>,
    /// The version this handle is fixed at, if it is a checkout.
    checkout: Option<u64>,
}

impl Trie {
    /// Open a trie over `feed`, writing the default header if the feed is new and writable.
    pub async fn open(feed: Feed) -> Result<Self, OpenError> {
        Self::open_with(feed, TrieOptions::default()).await
    }

    /// Open a trie over `feed` with options.
    pub async fn open_with(feed: Feed, options: TrieOptions) -> Result<Self, OpenError> {
        if feed.is_empty() && feed.writable() {
            let header = Header::new(options.metadata, options.subtype);
            feed.append(&header.encode()).await.map_err(OpenError::WriteHeader)?;
        }
        Ok(Self { shared: Arc::new(Shared::new(feed, options.hash, options.cache_bytes)), checkout: None })
    }

    // --- reading

    /// The node for `key`, if it is in the trie.
    pub async fn get(&self, key: &str) -> Result<Option<Arc<Node>>, ReadError> {
        self.get_with(key, GetOptions::default()).await
    }

    /// The node for `key`, with options.
    pub async fn get_with(&self, key: &str, options: GetOptions) -> Result<Option<Arc<Node>>, ReadError> {
        let path = KeyPath::new(key, options.hidden, &self.shared.hasher);
        let mut source = Source::new(&self.shared);
        let head = source.head(self.version()).await?;
        lookup(&mut source, &path, options.prefix, head).await
    }

    /// The nodes under `prefix` (whole components: `"a"` covers `a` and `a/…`, not `ab`), in the
    /// trie's hash order (spec §6.11).
    pub async fn list(&self, prefix: &str, options: ListOptions) -> Result<Vec<Arc<Node>>, ReadError> {
        self.iter(prefix, options).await?.collect().await
    }

    /// An iterator over the nodes under `prefix`, reading blocks as it goes.
    pub async fn iter(&self, prefix: &str, options: ListOptions) -> Result<Iter, ReadError> {
        Iter::open(self.shared.clone(), self.version(), prefix, options).await
    }

    /// The nodes in feed order up to the head, stopping at the first reset node.
    pub async fn history(&self, options: HistoryOptions) -> Result<History, ReadError> {
        History::open(self.shared.clone(), self.version(), options).await
    }

    /// What differs under `prefix` between this version (left) and `other` (right).
    pub async fn diff(&self, other: u64, prefix: &str, options: DiffOptions) -> Result<Diff, ReadError> {
        Diff::open(self.shared.clone(), self.version(), other.max(1), prefix, options).await
    }

    /// The head node: the newest node, or `None` for an empty (or emptied) trie.
    pub async fn head(&self) -> Result<Option<Arc<Node>>, ReadError> {
        self.shared.head(self.version()).await
    }

    /// The node at block `seq`, or `None` for the header and for reset nodes.
    pub async fn get_by_seq(&self, seq: u64) -> Result<Option<Arc<Node>>, ReadError> {
        self.shared.node(seq).await
    }

    /// The header block.
    pub async fn header(&self) -> Result<Header, ReadError> {
        let block = self.shared.feed.get(0).await.map_err(|source| ReadError::Block { seq: 0, source })?;
        Header::decode(&block).map_err(|source| ReadError::Decode { seq: 0, source })
    }

    /// The seqs of the blocks a [`get`](Self::get) of `key` reads: the head and every node on the
    /// key's path. A peer that sends these blocks lets a sparse replica answer the get locally.
    pub async fn touched(&self, key: &str) -> Result<BTreeSet<u64>, ReadError> {
        self.touched_many([key]).await
    }

    /// The union of [`touched`](Self::touched) over many keys.
    pub async fn touched_many<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
    ) -> Result<BTreeSet<u64>, ReadError> {
        let mut touched = BTreeSet::new();
        for key in keys {
            let path = KeyPath::new(key, false, &self.shared.hasher);
            let mut source = Source::recording(&self.shared, &mut touched);
            let head = source.head(self.version()).await?;
            lookup(&mut source, &path, false, head).await?;
        }
        Ok(touched)
    }

    // --- writing

    /// Set `key` to `value`; returns the node written.
    ///
    /// As in JS hypertrie, the empty key (`""` or `"/"`) is written but reads as a reset marker:
    /// while such a node is the head the trie reads as empty, and pointers to it lead nowhere.
    pub async fn put(&self, key: &str, value: &[u8]) -> Result<Arc<Node>, WriteError> {
        self.put_with(key, value, PutOptions::default()).await
    }

    /// Set `key` to `value`, hidden and/or with user flags.
    pub async fn put_with(
        &self,
        key: &str,
        value: &[u8],
        options: PutOptions,
    ) -> Result<Arc<Node>, WriteError> {
        let nodes = self.write([OpRef::Put { key, value, options }]).await?;
        // A put always writes exactly one node; an empty result would mean nothing was written.
        nodes.into_iter().next().ok_or(WriteError::ReadOnly)
    }

    /// Delete `key`. Returns the node written (a copy of the closest other node, or a reset node),
    /// or `None` if the key was not there.
    pub async fn del(&self, key: &str) -> Result<Option<Arc<Node>>, WriteError> {
        self.del_with(key, false).await
    }

    /// Delete `key` from the hidden or the visible sub-tree.
    pub async fn del_with(&self, key: &str, hidden: bool) -> Result<Option<Arc<Node>>, WriteError> {
        Ok(self.write([OpRef::Del { key, hidden }]).await?.into_iter().next())
    }

    /// Apply `ops` in order and append every node they write in one call (one signature).
    /// Returns the nodes written.
    pub async fn batch(&self, ops: &[BatchOp]) -> Result<Vec<Arc<Node>>, WriteError> {
        // Collected first: a lazy `map(OpRef::from)` held across the write's awaits makes the
        // future `Send` for one lifetime only, so callers could not `tokio::spawn` a batch.
        let ops: Vec<OpRef<'_>> = ops.iter().map(OpRef::from).collect();
        self.write(ops).await
    }

    async fn write<'a>(
        &self,
        ops: impl IntoIterator<Item = OpRef<'a>>,
    ) -> Result<Vec<Arc<Node>>, WriteError> {
        if self.checkout.is_some() {
            return Err(WriteError::ReadOnly);
        }
        batch::run(&self.shared, ops).await
    }

    // --- versions

    /// The version: the feed length, or the checkout's.
    pub fn version(&self) -> u64 {
        self.checkout.unwrap_or_else(|| self.shared.feed.len())
    }

    /// A read-only handle on the trie as it was at `version` (a feed length; 0 is treated as 1,
    /// the empty trie). It shares this trie's feed and cache.
    pub fn checkout(&self, version: u64) -> Self {
        Self { shared: self.shared.clone(), checkout: Some(version.max(1)) }
    }

    /// A checkout of the current version.
    pub fn snapshot(&self) -> Self {
        self.checkout(self.version())
    }

    /// The feed underneath.
    pub fn feed(&self) -> &Feed {
        &self.shared.feed
    }
}
