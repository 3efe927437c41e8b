//! Remote tries over `--peer HOST:PORT`: a sparse replica under `IMS_HOME/replicas/<KEY>`,
//! filled block by block from a peer over the v8 protocol (issue 6; wire spec §7–9).
//!
//! Every block is verified against the trie's public key before it is stored, so the peer is
//! not trusted; the replica keeps what was read for the next run.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use hypercore::protocol::SessionKeys;
use hypercore::replicate::{ExtensionHandler, PeerRouter, ReplicateOptions, replicate};
use hypercore::{BlockSource, DiscoveryKey, Feed, FeedBuilder, PublicKey, Storage};
use swarm::{HandshakeConfig, Identity};
use tokio::task::JoinHandle;

use crate::context::Context;

/// How long to wait for the peer to tell us the trie's length.
const LENGTH_WAIT: Duration = Duration::from_secs(20);

/// A sparse replica connected to one peer; the connection ends when this is dropped.
#[derive(Debug)]
pub struct RemoteFeed {
    /// The replica (reads of missing blocks go to the peer).
    pub feed: Feed,
    /// Its block router (for prefetches).
    pub router: PeerRouter,
    counts: Arc<Counts>,
    conn: JoinHandle<()>,
}

/// What a [`RemoteFeed`] asked of its peer so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Prefetch round trips made (answered or not).
    pub prefetches: u64,
    /// Blocks those prefetches delivered (each verified).
    pub prefetched: u64,
    /// Block reads that found their block missing and asked the peer for it alone
    /// (concurrent reads of one block count once each).
    pub fetched_singly: u64,
}

#[derive(Debug, Default)]
struct Counts {
    prefetches: AtomicU64,
    prefetched: AtomicU64,
    singly: AtomicU64,
}

/// The replica's block source: the router, counting the blocks reads found missing.
#[derive(Debug)]
struct Counting {
    router: PeerRouter,
    counts: Arc<Counts>,
}

impl BlockSource for Counting {
    fn request(&self, feed: &DiscoveryKey, seqs: &[u64]) {
        tracing::debug!(?seqs, "fetching blocks one by one");
        self.counts.singly.fetch_add(seqs.len() as u64, Ordering::Relaxed);
        self.router.request(feed, seqs);
    }
}

impl Drop for RemoteFeed {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl RemoteFeed {
    /// Asks the peer for every block the lookups of `keys` read, in one round trip (the
    /// `ims/prefetch` extension); returns how many blocks arrived. Peers without the
    /// extension make this a no-op.
    pub async fn prefetch(&self, keys: &[String]) -> u64 {
        self.counts.prefetches.fetch_add(1, Ordering::Relaxed);
        match self.router.prefetch(&self.feed.discovery_key(), keys.to_vec()).await {
            // Resolved once every block of the answer is stored (readable).
            Ok(n) => {
                tracing::debug!(blocks = n, "prefetched");
                self.counts.prefetched.fetch_add(n, Ordering::Relaxed);
                n
            }
            Err(e) => {
                tracing::debug!(error = %e, "prefetch failed; reading block by block");
                0
            }
        }
    }

    /// What was asked of the peer so far (the block that tells the signed length on open is
    /// not counted).
    pub fn stats(&self) -> RemoteStats {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RemoteStats {
            prefetches: n(&self.counts.prefetches),
            prefetched: n(&self.counts.prefetched),
            fetched_singly: n(&self.counts.singly),
        }
    }
}

/// Opens the sparse replica of the feed `key_hex` and connects it to the first reachable
/// `--peer`, with `extensions` on the connection too; returns once the peer has told us the
/// signed length (by then its Options have named the extensions it speaks).
pub async fn open(
    ctx: &Context,
    key_hex: &str,
    extensions: Vec<Arc<dyn ExtensionHandler>>,
) -> anyhow::Result<RemoteFeed> {
    let key_hex = key_hex.to_ascii_lowercase();
    let bytes = hex::decode(&key_hex).with_context(|| format!("--key {key_hex} is not hex"))?;
    let key =
        PublicKey::from_bytes(&bytes).with_context(|| format!("--key {key_hex} is not a public key"))?;
    let dir = ctx.home.replica_dir(&key_hex);
    let router = PeerRouter::new();
    let counts = Arc::new(Counts::default());
    let feed = FeedBuilder::new(Storage::disk(&dir))
        .public_key(key)
        .block_source(Arc::new(Counting { router: router.clone(), counts: counts.clone() }))
        .open()
        .await
        .with_context(|| format!("opening the replica in {}", dir.display()))?;
    let identity = Identity::load_or_create(&ctx.home.identity_file())
        .await
        .with_context(|| format!("loading the node identity {}", ctx.home.identity_file().display()))?;

    let mut errors = Vec::new();
    let mut stream = None;
    for peer in &ctx.args.peers {
        match swarm::dial(peer.as_str(), &identity, None, &HandshakeConfig::default()).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => errors.push(format!("{peer}: {e}")),
        }
    }
    let Some(stream) = stream else {
        bail!("could not reach any peer ({})\nhint: check --peer HOST:PORT", errors.join("; "));
    };
    let keys = SessionKeys::new(stream.split().tx, stream.split().rx);
    let mut events = feed.subscribe();
    let known = feed.len();
    let conn = tokio::spawn({
        let (feed, router) = (feed.clone(), router.clone());
        async move {
            let mut options = ReplicateOptions::sparse(router);
            options.extensions = extensions;
            match replicate(stream, keys, vec![feed], options).await {
                Ok(stats) => tracing::debug!(?stats, "peer connection closed"),
                Err(e) => tracing::warn!(error = %e, "peer connection dropped"),
            }
        }
    });
    let remote = RemoteFeed { feed: feed.clone(), router, counts, conn };
    // The peer's length arrives with its last block (wire spec §8.2). A replica that already
    // has a length waits briefly for a newer one.
    let wait = if known > 0 { Duration::from_secs(1) } else { LENGTH_WAIT };
    let _ = tokio::time::timeout(wait, async {
        while feed.len() <= known && !remote.conn.is_finished() {
            if events.recv().await.is_err() {
                break;
            }
        }
    })
    .await;
    if feed.is_empty() {
        bail!("the peer did not send the trie {key_hex} (it may not have it)\nhint: check --key and --peer");
    }
    Ok(remote)
}
