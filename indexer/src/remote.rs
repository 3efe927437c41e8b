//! A peer's index over `--peer HOST:PORT`: a sparse replica in its own directory (the binary
//! uses `IMS_HOME/replicas/<KEY>`), filled block by block from a peer over the v8 protocol
//! (wire spec §7–9), with the `ims/prefetch` round trip (wire spec §7.5) for whole lookups.
//!
//! Every block is verified against the trie's public key before it is stored, so the peer is
//! not trusted; the replica keeps what was read for the next run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hypercore::protocol::SessionKeys;
use hypercore::replicate::{ExtensionHandler, PeerRouter, ReplicateOptions, replicate};
use hypercore::{BlockSource, DiscoveryKey, Feed, FeedBuilder, PublicKey, Storage};
use swarm::{HandshakeConfig, Identity};
use tokio::task::JoinHandle;

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

/// Where a replica lives and how its peers are reached.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// The replica's storage directory (created on first use).
    pub replica_dir: PathBuf,
    /// This node's identity (the Noise static key it dials with).
    pub identity: Identity,
    /// Peers to try, in order (`HOST:PORT`); the first that answers is used.
    pub peers: Vec<String>,
}

/// A peer's index could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The replica's storage could not be opened.
    #[error("opening the replica in {dir}")]
    Replica {
        /// The replica directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: hypercore::OpenError,
    },
    /// No peer could be dialled (or none was given).
    #[error("could not reach any peer ({0})")]
    Unreachable(String),
    /// The peer never sent the feed.
    #[error("the peer did not send the trie {0} (it may not have it)")]
    NotServed(String),
}

impl RemoteError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            RemoteError::Replica { .. } => None,
            RemoteError::Unreachable(_) => Some("check --peer HOST:PORT"),
            RemoteError::NotServed(_) => Some("check --key and --peer"),
        }
    }
}

/// Opens the sparse replica of the feed `key` and connects it to the first reachable peer of
/// `config`, with `extensions` on the connection too; returns once the peer has told us the
/// signed length (by then its Options have named the extensions it speaks).
pub async fn open(
    config: &RemoteConfig,
    key: PublicKey,
    extensions: Vec<Arc<dyn ExtensionHandler>>,
) -> Result<RemoteFeed, RemoteError> {
    let dir = &config.replica_dir;
    let router = PeerRouter::new();
    let counts = Arc::new(Counts::default());
    let feed = FeedBuilder::new(Storage::disk(dir))
        .public_key(key)
        .block_source(Arc::new(Counting { router: router.clone(), counts: counts.clone() }))
        .open()
        .await
        .map_err(|source| RemoteError::Replica { dir: dir.clone(), source })?;

    let mut errors = Vec::new();
    let mut stream = None;
    for peer in &config.peers {
        match swarm::dial(peer.as_str(), &config.identity, None, &HandshakeConfig::default()).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => errors.push(format!("{peer}: {e}")),
        }
    }
    let Some(stream) = stream else {
        return Err(RemoteError::Unreachable(errors.join("; ")));
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
        return Err(RemoteError::NotServed(key.to_hex()));
    }
    Ok(remote)
}

/// A peer's index, connected on first use, with the `ims/tarball` extension on the same
/// connection: what an install (or the registry proxy) asks one peer for — the blocks of a
/// resolution and the tarballs it names.
#[derive(Debug)]
pub struct RemoteIndex {
    config: RemoteConfig,
    key: PublicKey,
    tarballs: crate::tarball_peers::TarballClient,
    conn: tokio::sync::OnceCell<RemoteFeed>,
}

impl RemoteIndex {
    /// The index `key` at the peers of `config` (nothing is dialled yet).
    pub fn new(config: RemoteConfig, key: PublicKey) -> Self {
        RemoteIndex { config, key, tarballs: Default::default(), conn: tokio::sync::OnceCell::new() }
    }

    /// The index's public key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }

    /// The tarball client on the connection (it serves nothing until connected).
    pub fn tarballs(&self) -> &crate::tarball_peers::TarballClient {
        &self.tarballs
    }

    /// The connection, opening it on the first call (a failed open is retried by the next).
    pub async fn connect(&self) -> Result<&RemoteFeed, RemoteError> {
        self.conn
            .get_or_try_init(|| async {
                let extension: Arc<dyn ExtensionHandler> = Arc::new(self.tarballs.clone());
                open(&self.config, self.key, vec![extension]).await
            })
            .await
    }

    /// The connection, if it was opened.
    pub fn connection(&self) -> Option<&RemoteFeed> {
        self.conn.get()
    }
}
