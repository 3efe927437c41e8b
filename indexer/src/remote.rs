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
use swarm::{DialError, HandshakeConfig, HandshakeError, Identity, NodeId};
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
    /// Peers to try, in order (`HOST:PORT`, or `NODEKEY@HOST:PORT` to pin the peer's node
    /// key: the Noise handshake must then prove the peer holds it); the first that answers is
    /// used.
    pub peers: Vec<String>,
    /// The handshake's options (whether JS peers' XSalsa20 is allowed, its timeout).
    pub handshake: HandshakeConfig,
}

/// A `--peer` entry: `HOST:PORT`, or `NODEKEY@HOST:PORT` (64 hex characters, the key `ims
/// seed` prints as `node`) to dial that node only.
pub fn parse_peer(peer: &str) -> Result<(Option<NodeId>, &str), RemoteError> {
    match peer.split_once('@') {
        Some((key, addr)) => {
            let key = key.parse::<NodeId>().map_err(|_| RemoteError::BadPeer(peer.to_owned()))?;
            Ok((Some(key), addr))
        }
        None => Ok((None, peer)),
    }
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
    /// A `--peer` entry is not `HOST:PORT` or `NODEKEY@HOST:PORT`.
    #[error("--peer {0} is not HOST:PORT or NODEKEY@HOST:PORT")]
    BadPeer(String),
    /// The peer at the address is not the node the user named.
    #[error("the peer at {addr} is not the node {expected}: it proved it holds {actual}")]
    WrongPeer {
        /// The address dialled.
        addr: String,
        /// The node key the user named.
        expected: NodeId,
        /// The key the peer proved it holds.
        actual: NodeId,
    },
    /// The peer offers only the unauthenticated XSalsa20 transport.
    #[error("the peer at {0} offers only the unauthenticated transport of JS peers")]
    JsPeerRefused(String),
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
            RemoteError::BadPeer(_) => {
                Some("pass --peer HOST:PORT or NODEKEY@HOST:PORT (the `node` line `ims seed` prints)")
            }
            RemoteError::WrongPeer { .. } => Some(
                "someone else answers at that address: check the node key and the address with the seeder",
            ),
            RemoteError::JsPeerRefused(_) => Some(
                "if it is a JS hypercore peer you trust, pass --allow-js-peers to accept its unauthenticated transport",
            ),
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
    let mut refused = None;
    for peer in &config.peers {
        let (expected, addr) = parse_peer(peer)?;
        match swarm::dial(addr, &config.identity, expected, &config.handshake).await {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(DialError::Handshake {
                source: HandshakeError::UnexpectedPeer { expected, actual }, ..
            }) => {
                tracing::warn!(peer = %addr, %expected, %actual, "the peer is not the node named; not using it");
                errors.push(format!("{peer}: the peer proved it holds another key, {actual}"));
                refused.get_or_insert(RemoteError::WrongPeer { addr: addr.to_owned(), expected, actual });
            }
            Err(DialError::Handshake { source: HandshakeError::Unauthenticated, .. }) => {
                tracing::warn!(peer = %addr, "the peer offers only the unauthenticated XSalsa20 transport; not using it");
                errors.push(format!("{peer}: only the unauthenticated transport of JS peers"));
                refused.get_or_insert(RemoteError::JsPeerRefused(addr.to_owned()));
            }
            Err(e) => errors.push(format!("{peer}: {e}")),
        }
    }
    let Some(stream) = stream else {
        // A peer that answered but was refused says more than the ones that did not answer.
        return Err(refused.unwrap_or_else(|| RemoteError::Unreachable(errors.join("; "))));
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
                let remote = open(&self.config, self.key, vec![extension]).await?;
                // The sizes the signed index records cap what a peer may send for a tarball
                // (read on the first tarball fetch, when resolution has read those blocks).
                self.tarballs.set_index_feed(remote.feed.clone());
                Ok(remote)
            })
            .await
    }

    /// The connection, if it was opened.
    pub fn connection(&self) -> Option<&RemoteFeed> {
        self.conn.get()
    }
}
