//! [`ReplicaSource`]: a peer's index (a sparse replica) in front of another source, for
//! `ims install --key K --peer ADDR` (DESIGN.md §The index, last point): resolution reads the
//! replica's verified blocks — after one prefetch, mostly local — and asks the source behind
//! it only for what the peer's index lacks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::{Manifest, Packument};
use crate::upstream::RegistryUrl;
use crate::{Index, PackageSummary};

use super::{ManifestSource, SourceError, Summary};

/// Where the packuments of a resolution came from (read after it ends).
#[derive(Debug, Default)]
pub struct ReplicaStats {
    /// Packuments read from the peer's index.
    pub from_peer: AtomicUsize,
    /// Packuments the peer's index lacked (or could not give), fetched upstream.
    pub from_upstream: AtomicUsize,
}

/// A layered [`ManifestSource`]: a peer's index (a sparse replica: every block verified
/// against the index key, missing ones fetched from the peer), then `upstream` for packages the
/// index lacks. When the replica fails (the peer went away), the rest comes from upstream.
///
/// Canonical tarball URLs under the index's own upstream base are re-pointed at `registry`
/// ([`RegistryUrl::retarget`]), so tarballs come from the registry the reader is configured
/// with, checked against the integrity in the signed index.
#[derive(Debug)]
pub struct ReplicaSource<U> {
    index: Option<Index>,
    upstream: U,
    registry: Option<RegistryUrl>,
    failed: AtomicBool,
    stats: Arc<ReplicaStats>,
    /// Summaries the peer's index gave: those packages' manifests are read from it too.
    from_peer: Mutex<HashMap<String, Arc<PackageSummary>>>,
}

impl<U: ManifestSource> ReplicaSource<U> {
    /// The peer's `index` in front of `upstream`; tarballs from `registry` (its base URL).
    pub fn new(index: Index, upstream: U, registry: RegistryUrl) -> Self {
        let registry = Some(registry);
        ReplicaSource {
            index: Some(index),
            upstream,
            registry,
            failed: AtomicBool::new(false),
            stats: Arc::default(),
            from_peer: Mutex::default(),
        }
    }

    /// `upstream` alone (no peer was asked for).
    pub fn without_peer(upstream: U) -> Self {
        ReplicaSource {
            index: None,
            upstream,
            registry: None,
            failed: AtomicBool::new(false),
            stats: Arc::default(),
            from_peer: Mutex::default(),
        }
    }

    /// Counts of where packuments came from.
    pub fn stats(&self) -> Arc<ReplicaStats> {
        self.stats.clone()
    }

    fn rebase(&self, mut p: Packument) -> Packument {
        let name = p.name.clone();
        for (version, m) in &mut p.versions {
            self.rebase_manifest(&name, version, m);
        }
        p
    }

    fn rebase_manifest(&self, name: &str, version: &str, m: &mut Manifest) {
        let (Some(to), Some(from)) = (&self.registry, self.index.as_ref().and_then(Index::upstream)) else {
            return;
        };
        if let Some(url) = m.dist.tarball.as_deref().and_then(|t| to.retarget(t, name, version, [from])) {
            m.dist.tarball = Some(url);
        }
    }

    /// The peer's index, unless it failed.
    fn peer(&self) -> Option<&Index> {
        self.index.as_ref().filter(|_| !self.failed.load(Ordering::Relaxed))
    }

    fn peer_failed(&self, name: &str, error: &crate::IndexError) {
        tracing::warn!(package = name, %error, "the peer's index failed; resolving the rest upstream");
        self.failed.store(true, Ordering::Relaxed);
    }

    fn asking_upstream(&self) {
        if self.index.is_some() {
            self.stats.from_upstream.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<U: ManifestSource> ManifestSource for ReplicaSource<U> {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        if let Some(index) = self.peer() {
            match index.packument(name).await {
                Ok(Some(p)) => {
                    self.stats.from_peer.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(Arc::new(self.rebase(p))));
                }
                Ok(None) => tracing::info!(package = name, "not in the peer's index; asking upstream"),
                Err(error) => self.peer_failed(name, &error),
            }
        }
        self.asking_upstream();
        self.upstream.packument(name).await
    }

    async fn summary(&self, name: &str) -> Result<Option<Summary>, SourceError> {
        if let Some(index) = self.peer() {
            match index.versions(name).await {
                Ok(Some(s)) => {
                    self.stats.from_peer.fetch_add(1, Ordering::Relaxed);
                    let summary = Summary::from_index(&s);
                    if let Ok(mut known) = self.from_peer.lock() {
                        known.insert(name.to_owned(), Arc::new(s));
                    }
                    return Ok(Some(summary));
                }
                Ok(None) => tracing::info!(package = name, "not in the peer's index; asking upstream"),
                Err(error) => self.peer_failed(name, &error),
            }
        }
        self.asking_upstream();
        self.upstream.summary(name).await
    }

    async fn manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, SourceError> {
        let known = self.from_peer.lock().ok().and_then(|k| k.get(name).cloned());
        if let (Some(index), Some(s)) = (self.peer(), known) {
            match index.version_in(&s, version).await {
                Ok(Some(mut m)) => {
                    self.rebase_manifest(name, version, &mut m);
                    return Ok(Some(m));
                }
                Ok(None) => return Ok(None),
                Err(error) => self.peer_failed(name, &error),
            }
        }
        self.upstream.manifest(name, version).await
    }

    async fn refresh(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        // The peer's index is as fresh as its seeder keeps it; only upstream can say more.
        self.upstream.refresh(name).await
    }
}
