//! [`Stack`]: the [`Source`] `ims serve` runs on — the same source stack `ims install` reads
//! (`indexer::source`), so the proxy and the installer share every rule of freshness,
//! recording and tarball URLs:
//!
//! ```text
//!  packuments: a peer's index (--key with --peer; a sparse replica, every block verified)
//!              ─▶ local index (fresh for the max-age, else revalidated with its ETag)
//!              ─▶ upstream; what upstream sends is recorded into the local index
//!  tarballs:   the store ─▶ the peer (ims/tarball) ─▶ upstream; each verified against the
//!              integrity the index holds before it is stored, and so before it is served
//! ```
//!
//! With a peer, the first request for a package that nothing served so far depends on (a
//! root of the client's tree) first asks the peer, in one `ims/prefetch` round trip, for
//! every block resolving that package's tree reads; the client's following requests for its
//! dependencies are then answered from the replica without a round trip each.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexer::model::{Manifest, Packument};
use indexer::remote::RemoteIndex;
use indexer::source::{LayeredSource, ManifestSource as _, ReplicaSource};
use indexer::tarballs::{Integrity, TarballError, TarballStore};
use indexer::upstream::{FetchError, Registry};
use indexer::upstream::FetchTarballError;
use tokio::sync::OnceCell;

use crate::error::SourceError;
use crate::source::Source;

/// The prefetch keys that resolve the tree of one root package (the installer's
/// `ResolveQuery` for `name@latest`): given by the caller, so this crate does not depend on
/// the install engine.
pub type PrefetchKeys = Box<dyn Fn(&str) -> Vec<String> + Send + Sync>;

/// How long the registry's signing keys are kept in memory.
const KEYS_FOR: Duration = Duration::from_secs(3600);
/// The most names remembered as "some served package depends on it".
const MAX_COVERED: usize = 1_000_000;

/// A peer's index in front of the local one.
struct Peer {
    remote: Arc<RemoteIndex>,
    replica: OnceCell<ReplicaSource<LayeredSource>>,
    prefetch_keys: PrefetchKeys,
    /// Names some package served from the peer depends on: asking for one of them is not
    /// asking for a new root.
    covered: Mutex<HashSet<String>>,
    warned: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").field("key", &self.remote.key().to_hex()).finish_non_exhaustive()
    }
}

/// The source stack of `ims serve`.
#[derive(Debug)]
pub struct Stack {
    layered: LayeredSource,
    registry: Registry,
    store: TarballStore,
    peer: Option<Peer>,
    keys: tokio::sync::Mutex<Option<(Instant, serde_json::Value)>>,
}

impl Stack {
    /// Packuments from `layered` (local index, then `registry`), tarballs from `store`, then
    /// `registry` (unless it is offline).
    pub fn new(layered: LayeredSource, registry: Registry, store: TarballStore) -> Stack {
        Stack { layered, registry, store, peer: None, keys: tokio::sync::Mutex::new(None) }
    }

    /// Put a peer's index (and its tarballs) in front; `prefetch_keys` names what to
    /// prefetch for a root package.
    pub fn with_peer(mut self, remote: Arc<RemoteIndex>, prefetch_keys: PrefetchKeys) -> Stack {
        self.peer = Some(Peer {
            remote,
            replica: OnceCell::new(),
            prefetch_keys,
            covered: Mutex::default(),
            warned: Mutex::default(),
        });
        self
    }

    /// The layered source, to [`LayeredSource::finish`] its recordings now and then.
    pub fn layered(&self) -> &LayeredSource {
        &self.layered
    }

    /// The replica, connecting on first use (a failed connect is retried by the next call).
    async fn replica<'a>(&'a self, peer: &'a Peer) -> Option<&'a ReplicaSource<LayeredSource>> {
        let opened = peer
            .replica
            .get_or_try_init(|| async {
                let remote = peer.remote.connect().await.map_err(|e| e.to_string())?;
                let trie = hypertrie::Trie::open(remote.feed.clone()).await.map_err(|e| e.to_string())?;
                let index = indexer::Index::open(trie).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(ReplicaSource::new(index, self.layered.clone(), self.registry.url().clone()))
            })
            .await;
        match opened {
            Ok(replica) => Some(replica),
            Err(error) => {
                let mut warned = peer.warned.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if warned.is_none_or(|at| at.elapsed() > Duration::from_secs(30)) {
                    tracing::warn!(key = %peer.remote.key().to_hex(), %error, "the peer's index cannot be reached; answering from the local index and upstream");
                    *warned = Some(Instant::now());
                }
                None
            }
        }
    }
}

impl Peer {
    /// Whether `name` is a root: nothing served from the peer so far depends on it. Marks it.
    fn is_new_root(&self, name: &str) -> bool {
        let mut covered = self.covered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if covered.len() > MAX_COVERED {
            covered.clear();
        }
        covered.insert(name.to_owned())
    }

    /// Remember every package `p`'s versions depend on.
    fn cover(&self, p: &Packument) {
        let mut covered = self.covered.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for m in p.versions.values() {
            for deps in [&m.dependencies, &m.optional_dependencies, &m.peer_dependencies] {
                for (dep, spec) in deps.iter() {
                    // An alias (`npm:real@range`) depends on the real package.
                    let real = spec.strip_prefix("npm:").and_then(|s| s.rsplit_once('@')).map(|(n, _)| n);
                    covered.insert(real.filter(|n| !n.is_empty()).unwrap_or(dep).to_owned());
                }
            }
        }
    }
}

impl Source for Stack {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        if let Some(peer) = &self.peer
            && let Some(replica) = self.replica(peer).await
        {
            if peer.is_new_root(name)
                && let Some(remote) = peer.remote.connection()
            {
                let blocks = remote.prefetch(&(peer.prefetch_keys)(name)).await;
                tracing::debug!(package = name, blocks, "prefetched the tree of a root from the peer");
            }
            let found = replica.packument(name).await.map_err(classify)?;
            if let Some(p) = &found {
                peer.cover(p);
            }
            return Ok(found);
        }
        self.layered.packument(name).await.map_err(classify)
    }

    async fn tarball(&self, name: &str, version: &str, manifest: &Manifest) -> Result<PathBuf, SourceError> {
        let sri = manifest.dist.best_integrity().ok_or_else(|| {
            SourceError::Invalid(format!("{name}@{version} names no integrity to verify its tarball by"))
        })?;
        let integrity: Integrity =
            sri.parse().map_err(|e| SourceError::Invalid(format!("{name}@{version}: integrity {sri:?}: {e}")))?;
        if self.store.has_tarball(&integrity) {
            return Ok(self.store.tarball_path(&integrity));
        }
        if let Some(peer) = &self.peer
            && self.replica(peer).await.is_some()
        {
            match peer.remote.tarballs().fetch(&self.store, name, version, &integrity).await {
                Ok(()) => return Ok(self.store.tarball_path(&integrity)),
                Err(error) => tracing::debug!(package = name, version, %error, "not from the peer; asking upstream"),
            }
        }
        if self.registry.is_offline() {
            return Err(SourceError::Unreachable(format!("{name}@{version}: the tarball is not in the store (--offline)")));
        }
        let url = manifest.dist.tarball.clone().unwrap_or_else(|| self.registry.url().tarball(name, version));
        match self.registry.download_tarball(&self.store, &integrity, &url).await {
            Ok(()) => Ok(self.store.tarball_path(&integrity)),
            Err(FetchTarballError::Store(TarballError::IntegrityMismatch { .. })) => Err(SourceError::Invalid(
                format!("{url}: the bytes upstream sent do not match the integrity {sri} (nothing was kept)"),
            )),
            Err(FetchTarballError::Fetch(e)) => Err(fetch_error(&e, &url)),
            Err(e) => Err(SourceError::Unreachable(format!("{url}: {e}"))),
        }
    }

    async fn keys(&self) -> Result<Option<serde_json::Value>, SourceError> {
        let mut held = self.keys.lock().await;
        if let Some((at, keys)) = held.as_ref()
            && (at.elapsed() < KEYS_FOR || self.registry.is_offline())
        {
            return Ok(Some(keys.clone()));
        }
        if self.registry.is_offline() {
            return Ok(None);
        }
        let url = format!("{}-/npm/v1/keys", self.registry.url().as_str());
        match self.registry.json(&url).await {
            Ok(Ok(keys)) => {
                *held = Some((Instant::now(), keys.clone()));
                Ok(Some(keys))
            }
            Ok(Err(why)) => Err(SourceError::Invalid(format!("{url}: {why}"))),
            Err(FetchError::Status { status: 404, .. }) => Ok(None),
            Err(e) => match held.as_ref() {
                // Stale keys are still the keys: their expiry is inside them.
                Some((_, keys)) => Ok(Some(keys.clone())),
                None => Err(fetch_error(&e, &url)),
            },
        }
    }

    async fn names(&self, limit: usize) -> Result<Vec<String>, SourceError> {
        // What the local index holds (a peer's replica is sparse: listing it would fetch it).
        let Some(index) = self.layered.local_index() else { return Ok(Vec::new()) };
        let mut iter = index
            .trie()
            .iter("p", hypertrie::ListOptions::default())
            .await
            .map_err(|e| SourceError::Unreachable(format!("listing the local index: {e}")))?;
        let mut names = Vec::new();
        while names.len() < limit
            && let Some(node) = iter.next().await.map_err(|e| SourceError::Unreachable(format!("listing the local index: {e}")))?
        {
            if let Some(name) = node.key().strip_prefix("p/") {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }
}

/// A source failure as the proxy answers it: upstream data that failed its checks is a 502,
/// everything else (unreachable, offline, an index that cannot be read) a 503.
fn classify(error: indexer::source::SourceError) -> SourceError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(e) = cause {
        if let Some(fetch) = e.downcast_ref::<FetchError>() {
            return fetch_error(fetch, "");
        }
        if let Some(indexer::source::LayerError::Misnamed { .. }) = e.downcast_ref::<indexer::source::LayerError>() {
            return SourceError::Invalid(error.to_string());
        }
        cause = e.source();
    }
    SourceError::Unreachable(error.to_string())
}

fn fetch_error(e: &FetchError, url: &str) -> SourceError {
    let text = if url.is_empty() { e.to_string() } else { format!("{url}: {e}") };
    match e {
        FetchError::BadPackument { .. } | FetchError::TooLarge { .. } => SourceError::Invalid(text),
        _ => SourceError::Unreachable(text),
    }
}
