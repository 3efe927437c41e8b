//! The seeder's side of `ims/tarball`: answer requests from the tarball store, filling it from
//! upstream on demand when `ims seed --upstream URL` allows it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::Index;
use crate::tarballs::{Integrity, TarballStore};
use hypercore::replicate::{ExtensionHandler, ExtensionPeer};
use tokio::io::AsyncReadExt as _;
use tokio::task::AbortHandle;

use super::TARBALL_EXTENSION;
use super::wire::{CHUNK_BYTES, Message, TarballRequest, chunk};
use crate::upstream::Registry;

/// Most requests served at once to one peer; more are answered `Missing` ("busy").
pub const MAX_ACTIVE_PER_PEER: usize = 16;
/// The default cap on the bytes of tarballs a seeder keeps in its store (what it fetched
/// from upstream for peers, and what it held before): 20 GiB.
pub const DEFAULT_STORE_QUOTA: u64 = 20 << 30;

/// Where a seeder fetches tarballs it does not have.
#[derive(Debug, Clone)]
struct Upstream {
    registry: Registry,
    /// The seeder's index: a request is fetched only for the version and integrity it records.
    index: Index,
}

/// Serves `ims/tarball` from a tarball store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct TarballServer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: TarballStore,
    upstream: Option<Upstream>,
    /// Requests being served: by peer handle id, by request id.
    active: Mutex<HashMap<u64, HashMap<u32, AbortHandle>>>,
    /// One download per tarball at a time (later askers wait and find it stored).
    downloads: Mutex<HashMap<Integrity, Arc<tokio::sync::Mutex<()>>>>,
    /// Most bytes of tarballs the store may hold before nothing more is fetched upstream.
    quota: u64,
    /// Bytes of tarballs in the store (measured at start, then counted as downloads land).
    stored: AtomicU64,
    /// Whether the quota was logged as reached (once per run, not once per request).
    quota_logged: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the maps consistent, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TarballServer {
    /// Serve what `store` holds (nothing is fetched).
    pub fn new(store: TarballStore) -> Self {
        Self::build(store, None)
    }

    /// Serve what `store` holds, and fetch from `registry` what it lacks — only tarballs that
    /// `index` records, with the integrity it records.
    pub fn with_upstream(store: TarballStore, registry: Registry, index: Index) -> Self {
        Self::build(store, Some(Upstream { registry, index }))
    }

    fn build(store: TarballStore, upstream: Option<Upstream>) -> Self {
        Self::build_with_quota(store, upstream, DEFAULT_STORE_QUOTA)
    }

    fn build_with_quota(store: TarballStore, upstream: Option<Upstream>, quota: u64) -> Self {
        // Only fetching from upstream adds to the store; a serve-only seeder need not walk it.
        let stored = if upstream.is_some() { dir_bytes(&store.root().join("tarballs")) } else { 0 };
        let inner = Inner {
            store,
            upstream,
            active: Mutex::default(),
            downloads: Mutex::default(),
            quota,
            stored: AtomicU64::new(stored),
            quota_logged: AtomicBool::new(false),
        };
        TarballServer { inner: Arc::new(inner) }
    }

    /// The same server with another store quota (default [`DEFAULT_STORE_QUOTA`]): once the
    /// store's tarballs take `bytes`, tarballs it lacks are answered `Missing` instead of
    /// fetched upstream. Call before the server is shared.
    pub fn with_quota(self, bytes: u64) -> Self {
        let inner = &self.inner;
        let upstream = inner.upstream.clone();
        Self::build_with_quota(inner.store.clone(), upstream, bytes)
    }

    /// Bytes of tarballs the store holds, as far as this server knows.
    pub fn stored_bytes(&self) -> u64 {
        self.inner.stored.load(Ordering::Relaxed)
    }

    /// Requests being served right now (all peers).
    pub fn active(&self) -> usize {
        lock(&self.inner.active).values().map(HashMap::len).sum()
    }
}

impl ExtensionHandler for TarballServer {
    fn name(&self) -> &str {
        TARBALL_EXTENSION
    }

    fn on_message(&self, peer: &ExtensionPeer, payload: Vec<u8>) {
        let msg = match Message::decode(&payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::debug!(peer = peer.id(), error = %e, "ignoring a bad tarball message");
                return;
            }
        };
        match msg {
            Message::Request { id, request } => self.start(peer.clone(), id, request),
            Message::Cancel { id } => {
                if let Some(task) = lock(&self.inner.active).get_mut(&peer.id()).and_then(|m| m.remove(&id)) {
                    task.abort();
                }
            }
            // Answers are the reader's to receive, not ours.
            other => tracing::debug!(
                peer = peer.id(),
                id = other.id(),
                "ignoring a tarball answer sent to the seeder"
            ),
        }
    }

    fn on_close(&self, peer: &ExtensionPeer) {
        for (_, task) in lock(&self.inner.active).remove(&peer.id()).unwrap_or_default() {
            task.abort();
        }
    }
}

impl TarballServer {
    fn start(&self, peer: ExtensionPeer, id: u32, request: TarballRequest) {
        let mut active = lock(&self.inner.active);
        let mine = active.entry(peer.id()).or_default();
        if mine.len() >= MAX_ACTIVE_PER_PEER || mine.contains_key(&id) {
            let reason = if mine.contains_key(&id) { "request id in use" } else { "busy" };
            let msg = Message::Missing { id, reason: reason.to_owned() }.encode();
            tokio::spawn(async move { peer.send(msg).await });
            return;
        }
        let this = self.clone();
        let peer_id = peer.id();
        let task = tokio::spawn(async move {
            let what = format!("{}@{}", request.name, request.version);
            match this.serve(&peer, id, &request).await {
                Ok(total) => tracing::debug!(tarball = %what, bytes = total, "served a tarball"),
                Err(reason) => {
                    tracing::debug!(tarball = %what, %reason, "cannot serve a tarball");
                    let _ = peer.send(Message::Missing { id, reason }.encode()).await;
                }
            }
            if let Some(m) = lock(&this.inner.active).get_mut(&peer_id) {
                m.remove(&id);
            }
        });
        mine.insert(id, task.abort_handle());
    }

    /// Streams the tarball; `Err` is the reason sent back as `Missing`.
    async fn serve(&self, peer: &ExtensionPeer, id: u32, request: &TarballRequest) -> Result<u64, String> {
        let integrity: Integrity =
            request.integrity.parse().map_err(|e| format!("bad integrity {:?}: {e}", request.integrity))?;
        let store = &self.inner.store;
        if !store.has_tarball(&integrity) {
            self.download(request, &integrity).await?;
        }
        let path = store.tarball_path(&integrity);
        let mut file = tokio::fs::File::open(&path).await.map_err(|e| format!("reading the store: {e}"))?;
        let mut buf = vec![0u8; CHUNK_BYTES];
        let mut total = 0u64;
        loop {
            let n = file.read(&mut buf).await.map_err(|e| format!("reading the store: {e}"))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            peer.send(chunk(id, &buf[..n])).await.map_err(|e| e.to_string())?;
        }
        peer.send(Message::End { id, total }.encode()).await.map_err(|e| e.to_string())?;
        Ok(total)
    }

    /// Fetches a tarball the store lacks from upstream, if allowed and the index agrees.
    async fn download(&self, request: &TarballRequest, integrity: &Integrity) -> Result<(), String> {
        let what = format!("{}@{}", request.name, request.version);
        let Some(up) = &self.inner.upstream else {
            return Err(format!("{what} is not in this seeder's store (it fetches nothing upstream)"));
        };
        let manifest = up
            .index
            .version(&request.name, &request.version)
            .await
            .map_err(|e| format!("reading the index: {e}"))?
            .ok_or_else(|| format!("{what} is not in this seeder's index"))?;
        let recorded: Option<Integrity> = manifest.dist.integrity.as_deref().and_then(|i| i.parse().ok());
        if recorded.as_ref().map(Integrity::primary) != Some(integrity.primary()) {
            return Err(format!("the index records another integrity for {what}"));
        }
        let url = manifest
            .dist
            .tarball
            .as_deref()
            .ok_or_else(|| format!("the index has no tarball URL for {what}"))?;
        // Recorded from one registry, fetched from the one this seeder was told.
        let url = up
            .registry
            .url()
            .retarget(url, &request.name, &request.version, up.index.upstream())
            .unwrap_or_else(|| url.to_owned());
        let gate = lock(&self.inner.downloads).entry(integrity.clone()).or_default().clone();
        let _turn = gate.lock().await;
        let store = &self.inner.store;
        let result = if store.has_tarball(integrity) {
            Ok(())
        } else if let Err(full) = self.within_quota(manifest.dist.unpacked_size.unwrap_or(0)) {
            Err(full)
        } else {
            let got = up
                .registry
                .download_tarball(store, integrity, &url)
                .await
                .map_err(|e| format!("upstream: {e}"));
            if got.is_ok() {
                let len = std::fs::metadata(store.tarball_path(integrity)).map(|m| m.len()).unwrap_or(0);
                self.inner.stored.fetch_add(len, Ordering::Relaxed);
            }
            got
        };
        lock(&self.inner.downloads).remove(integrity);
        result
    }
}

impl TarballServer {
    /// `Err` (the reason for the peer) when a tarball of about `expected` bytes would take
    /// the store past its quota; logged once per run.
    fn within_quota(&self, expected: u64) -> Result<(), String> {
        let (stored, quota) = (self.inner.stored.load(Ordering::Relaxed), self.inner.quota);
        if stored.saturating_add(expected) <= quota {
            return Ok(());
        }
        if !self.inner.quota_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                stored,
                quota,
                "the tarball store reached its quota: tarballs it lacks are no longer fetched upstream (raise --store-quota)"
            );
        }
        Err(format!("this seeder's store is full ({stored} of {quota} bytes)"))
    }
}

/// The bytes of the files under `dir` (0 where it cannot be read).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}
