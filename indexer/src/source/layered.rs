//! The manifest source installs (and the registry proxy) resolve through: the local index
//! first, the upstream registry last, and what upstream sends recorded into the local index
//! (DESIGN.md §Install; spec §1.5 for the cache policy).
//!
//! ```text
//!  summary(name)   ──▶ the local index ($IMS_HOME/index):
//!                        fetched < max-age ago          → used, no request
//!                        older                          → GET If-None-Match: ETag
//!                                                            304 → used;  200 → recorded, used
//!                                                            error → used, with a warning
//!                 ──▶ not in any index                  → GET; 200 → recorded, used
//! ```
//!
//! From the index only the package's summary is read for the pick, and then the picked
//! version's manifest ([`ManifestSource::manifest`]); a document fetched from the registry is
//! used whole. A peer's index goes in front of this source as a
//! [`ReplicaSource`](super::ReplicaSource).
//!
//! This is npm's own cache policy for the registry's `Cache-Control: max-age=300`
//! (`--prefer-offline`: no revalidation; `--offline`: the index only), with the local index as
//! the cache, so whatever an install fetched is then served by `ims seed` and shown by
//! `ims view`.
//!
//! Recording is off the critical path: documents are kept in memory while resolution runs and
//! written in the background, a batch of 48 at a time as they arrive (one [`Index::write`]
//! each: one trie batch, one sync; batches one after another), so the writes overlap the
//! resolution's network waits; [`LayeredSource::flush`] starts writing the rest — the command
//! calls it once resolution is done, so that write overlaps tarball fetching — and [`LayeredSource::finish`] waits until everything is
//! durable, then saves the fetch times. A crash before that loses only the recording: the
//! feed cuts a torn tail, and the fetch times are written after the index.
//!
//! Tarball URLs read from the index are re-pointed at the registry of this install when they
//! are the canonical URL under a registry the index was recorded from (its `meta/upstream`, or
//! any registry in the fetch times; [`RegistryUrl::retarget`]): that is what this registry's
//! own packument would say, and what npm writes into `resolved`. Other URLs are kept. The
//! tarball store is keyed by integrity, so nothing already fetched is fetched again either way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use std::collections::HashMap;

use tokio::task::JoinHandle;

use super::local::{LocalIndex, LocalIndexError};
use super::{ManifestSource, SourceError, Summary};
use crate::model::{Manifest, Packument};
use crate::upstream::{FetchError, Registry, RegistryUrl, Revalidated};
use crate::{Document, Index, IndexError, PackageSummary, Update, WriteReport};

/// Fetched documents are recorded in batches of this many while resolution goes on (each
/// batch one trie batch and one sync); the rest when [`LayeredSource::flush`] is called.
const RECORD_BATCH: usize = 48;

/// npm's registry sends `Cache-Control: max-age=300` with every packument; npm then uses its
/// cached copy for that long without asking.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(300);

/// How much the network may be used (npm's `--prefer-online` default, `--prefer-offline`,
/// `--offline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Revalidate what is older than the max-age; fetch what is missing.
    Online,
    /// Use whatever the indexes have, however old; fetch only what is missing.
    PreferOffline,
    /// Never touch the network: what no index has is an error naming it.
    Offline,
}

/// The cache policy of a [`LayeredSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How much the network may be used.
    pub network: Network,
    /// How long a packument fetched into the local index is used without revalidation.
    pub max_age: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { network: Network::Online, max_age: DEFAULT_MAX_AGE }
    }
}

/// A packument could not be had from any layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// The local index could not be opened.
    #[error(transparent)]
    Local(#[from] LocalIndexError),
    /// Reading or writing the local index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The registry failed, or `--offline` and no index has it.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// The registry answered with another package's document.
    #[error("the registry answered the packument of {asked} with one named {got:?}")]
    Misnamed {
        /// The name asked for.
        asked: String,
        /// The name in the document (cut to 100 characters).
        got: String,
    },
    /// A recording task died.
    #[error("recording into the local index failed: {0}")]
    Join(String),
}

impl LayerError {
    /// As a [`SourceError`], with a registry failure as itself (a [`FetchError`] a caller
    /// can find among the causes), not behind this transparent wrapper.
    pub fn into_source(self) -> SourceError {
        match self {
            LayerError::Fetch(e) => Box::new(e),
            e => Box::new(e),
        }
    }
}

/// Where the packuments of one install came from, and what was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// From the local index without a request (fresh, or `--prefer-offline` / `--offline`).
    pub fresh: usize,
    /// From the local index after a `304 Not Modified`.
    pub not_modified: usize,
    /// Fetched from the registry (`200`): new or changed.
    pub fetched: usize,
    /// From the local index because the registry failed (stale-if-error).
    pub stale: usize,
    /// What the index writes did.
    pub recorded: WriteReport,
}

impl std::fmt::Display for SourceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "packuments: {} from the local index, {} revalidated (304), {} fetched, {} stale; recorded {} packages ({} new versions)",
            self.fresh,
            self.not_modified,
            self.fetched,
            self.stale,
            self.recorded.packages,
            self.recorded.versions
        )
    }
}

type WriteTask = JoinHandle<Result<(WriteReport, Vec<(String, SystemTime)>), IndexError>>;

#[derive(Debug, Default)]
struct Pending {
    /// Fetched documents not yet handed to a write, with their ETag and fetch time.
    docs: Vec<(Arc<Packument>, Option<String>, SystemTime)>,
    writes: Vec<WriteTask>,
}

#[derive(Debug)]
struct Inner {
    local: LocalIndex,
    registry: Registry,
    policy: Policy,
    pending: Mutex<Pending>,
    report: Mutex<SourceReport>,
    /// Set once the registry could not be reached: stale copies are then used without asking.
    down: AtomicBool,
    warned: AtomicBool,
    /// Held by the write in progress: batches are written one after another, in order.
    writing: Arc<tokio::sync::Mutex<()>>,
    /// Packages already re-asked by [`LayeredSource::refresh_local`] in this install.
    refreshed: Mutex<std::collections::HashSet<String>>,
    /// The package record each summary handed out from the local index came from: its
    /// manifests are read from the same record.
    origins: Mutex<HashMap<String, Arc<PackageSummary>>>,
}

/// What a lookup found.
#[derive(Debug)]
enum Found {
    /// A package record of the local index (read versions through it).
    Index(Arc<PackageSummary>),
    /// A document fetched from the registry, whole.
    Whole(Arc<Packument>),
}

/// The local index, then the registry; a cheap cloneable handle (the installer owns one
/// clone, the caller keeps another to [`flush`](Self::flush) and [`finish`](Self::finish)).
#[derive(Debug, Clone)]
pub struct LayeredSource {
    /// Where tarball URLs from the index are re-pointed (`None`: kept as recorded).
    retarget: Option<RegistryUrl>,
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No section under these locks can panic; recover the data if one ever did.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LayeredSource {
    /// Resolve from `local`, then `registry` (whose base is also the registry tarball URLs
    /// are re-pointed at), under `policy`. Call [`flush`](Self::flush) after resolution and
    /// [`finish`](Self::finish) before the install reports success.
    pub fn new(local: LocalIndex, registry: Registry, policy: Policy) -> Self {
        let retarget = Some(registry.url().clone());
        LayeredSource {
            retarget,
            inner: Arc::new(Inner {
                local,
                registry,
                policy,
                pending: Mutex::default(),
                report: Mutex::default(),
                down: AtomicBool::new(false),
                warned: AtomicBool::new(false),
                writing: Arc::default(),
                refreshed: Mutex::default(),
                origins: Mutex::default(),
            }),
        }
    }

    /// Keep tarball URLs exactly as the indexes have them (e.g. `--offline` with no registry
    /// configured, where there is nothing better to point them at).
    pub fn keep_tarball_urls(mut self) -> Self {
        self.retarget = None;
        self
    }

    /// The local index, if this install opened it.
    pub fn local_index(&self) -> Option<&Index> {
        self.inner.local.opened()
    }

    /// The counts so far.
    pub fn report(&self) -> SourceReport {
        lock(&self.inner.report).clone()
    }

    /// Start writing what was fetched so far into the local index, in the background, as one
    /// batch. Cheap when nothing was fetched.
    pub fn flush(&self) {
        let docs = std::mem::take(&mut lock(&self.inner.pending).docs);
        if docs.is_empty() {
            return;
        }
        let Some(index) = self.inner.local.opened().cloned() else { return };
        let mut times = Vec::with_capacity(docs.len());
        let mut documents = Vec::with_capacity(docs.len());
        for (p, etag, at) in docs {
            times.push((p.name.clone(), at));
            documents.push((p, etag));
        }
        let writing = self.inner.writing.clone();
        let task = tokio::spawn(async move {
            let _turn = writing.lock().await;
            let documents: Vec<Document> =
                documents.into_iter().map(|(packument, etag)| Document { packument, etag }).collect();
            let report = write(&index, documents).await?;
            Ok((report, times))
        });
        lock(&self.inner.pending).writes.push(task);
    }

    /// Flush, wait until every write is durable, then save the fetch times. Returns where
    /// this install's packuments came from and what was recorded. On error the index is
    /// still intact (only this recording is lost).
    pub async fn finish(&self) -> Result<SourceReport, LayerError> {
        self.flush();
        let writes = std::mem::take(&mut lock(&self.inner.pending).writes);
        let mut first_error = None;
        let registry = self.inner.registry.base();
        for task in writes {
            let outcome = match task.await {
                Ok(Ok(done)) => Ok(done),
                Ok(Err(e)) => Err(LayerError::Index(e)),
                Err(e) => Err(LayerError::Join(e.to_string())),
            };
            match outcome {
                Ok((w, times)) => {
                    for s in &w.skipped {
                        tracing::debug!(package = %s.name, version = ?s.version, reason = %s.reason, "not recorded");
                    }
                    add(&mut lock(&self.inner.report).recorded, &w);
                    if let Ok(opened) = self.inner.local.get().await {
                        for (name, at) in times {
                            opened.fetched(registry, &name, at);
                        }
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Err(error) = self.inner.local.save_times() {
            tracing::warn!(%error, "could not save the fetch times of the local index (the next install revalidates)");
        }
        let report = self.report();
        if report.stale > 1 {
            tracing::warn!(
                "{} packuments came from the local index without revalidation because {registry} failed",
                report.stale
            );
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    async fn lookup(&self, name: &str) -> Result<Option<Found>, LayerError> {
        let inner = &*self.inner;
        let local = inner.local.get().await?;
        let registry = inner.registry.base();
        if let Some(have) = local.index.versions(name).await? {
            let have = Found::Index(Arc::new(have));
            let fresh = match inner.policy.network {
                Network::Offline | Network::PreferOffline => true,
                Network::Online => local.is_fresh(registry, name, inner.policy.max_age),
            };
            if fresh {
                lock(&inner.report).fresh += 1;
                return Ok(Some(have));
            }
            if inner.down.load(Ordering::Relaxed) {
                tracing::debug!(package = name, "the registry is down: using the local index");
                lock(&inner.report).stale += 1;
                return Ok(Some(have));
            }
            let etag = local.index.etag(name).await?;
            return match inner.registry.packument(name, etag.as_deref()).await {
                Ok(Revalidated::NotModified) => {
                    local.fetched(registry, name, SystemTime::now());
                    lock(&inner.report).not_modified += 1;
                    Ok(Some(have))
                }
                Ok(Revalidated::Modified { packument, etag }) => {
                    self.record(name, *packument, etag).map(|p| Some(Found::Whole(p)))
                }
                Ok(Revalidated::NotFound) => Ok(None),
                Err(error) => {
                    if error.is_unreachable() {
                        inner.down.store(true, Ordering::Relaxed);
                    }
                    if inner.warned.swap(true, Ordering::Relaxed) {
                        tracing::debug!(package = name, error = %error, "using the local index");
                    } else {
                        tracing::warn!(
                            "{name}: {error} ({}); using the local index's copy",
                            error_chain(&error)
                        );
                    }
                    lock(&inner.report).stale += 1;
                    Ok(Some(have))
                }
            };
        }
        if inner.policy.network == Network::Offline {
            return Err(FetchError::Offline { what: name.to_owned() }.into());
        }
        match inner.registry.packument(name, None).await? {
            Revalidated::Modified { packument, etag } => {
                self.record(name, *packument, etag).map(|p| Some(Found::Whole(p)))
            }
            Revalidated::NotFound | Revalidated::NotModified => Ok(None),
        }
    }

    /// The summary of `name`, remembering the local index's package record for
    /// [`Self::read_manifest`].
    async fn summary_of(&self, name: &str) -> Result<Option<Summary>, LayerError> {
        Ok(match self.lookup(name).await? {
            None => None,
            Some(Found::Whole(p)) => Some(Summary::from_packument(p)),
            Some(Found::Index(record)) => {
                let summary = Summary::from_index(&record);
                lock(&self.inner.origins).insert(name.to_owned(), record);
                Some(summary)
            }
        })
    }

    /// The whole packument of `name` (for callers that want every version).
    async fn whole(&self, name: &str) -> Result<Option<Arc<Packument>>, LayerError> {
        match self.lookup(name).await? {
            None => return Ok(None),
            Some(Found::Whole(p)) => return Ok(Some(p)),
            Some(Found::Index(_)) => {}
        }
        let local = self.inner.local.get().await?;
        let Some(mut p) = local.index.packument(name).await? else { return Ok(None) };
        if let Some(to) = &self.retarget {
            let name = p.name.clone();
            for (version, m) in &mut p.versions {
                retarget_manifest(to, &name, version, m, &local.bases);
            }
        }
        Ok(Some(Arc::new(p)))
    }

    /// The manifest of `name@version`, through the package record its summary came from.
    async fn read_manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, LayerError> {
        let known = lock(&self.inner.origins).get(name).cloned();
        let record = match known {
            Some(record) => record,
            None => match self.lookup(name).await? {
                None => return Ok(None),
                Some(Found::Whole(p)) => return Ok(p.versions.get(version).cloned()),
                Some(Found::Index(record)) => record,
            },
        };
        let local = self.inner.local.get().await?;
        let Some(mut m) = local.index.version_in(&record, version).await? else { return Ok(None) };
        if let Some(to) = &self.retarget {
            retarget_manifest(to, name, version, &mut m, &local.bases);
        }
        Ok(Some(m))
    }

    /// Past the max-age: ask the registry (with the stored ETag) whether it has a newer
    /// packument than the local index's, once per package and install.
    async fn refresh_local(&self, name: &str) -> Result<Option<Arc<Packument>>, LayerError> {
        let inner = &*self.inner;
        if inner.policy.network == Network::Offline || inner.down.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let local = inner.local.get().await?;
        if !lock(&inner.refreshed).insert(name.to_owned()) {
            return Ok(None);
        }
        let etag = local.index.etag(name).await?;
        match inner.registry.packument(name, etag.as_deref()).await {
            Ok(Revalidated::Modified { packument, etag }) => self.record(name, *packument, etag).map(Some),
            Ok(Revalidated::NotModified) => {
                local.fetched(inner.registry.base(), name, SystemTime::now());
                Ok(None)
            }
            Ok(Revalidated::NotFound) => Ok(None),
            Err(error) => {
                tracing::debug!(package = name, %error, "could not refresh");
                Ok(None)
            }
        }
    }

    /// Keep a fetched document for the next write and return what resolution uses: the
    /// document minus the versions the index refuses, so this install resolves exactly as
    /// the next one will from the index.
    fn record(
        &self,
        name: &str,
        mut p: Packument,
        etag: Option<String>,
    ) -> Result<Arc<Packument>, LayerError> {
        if p.name != name {
            return Err(LayerError::Misnamed {
                asked: name.to_owned(),
                got: p.name.chars().take(100).collect(),
            });
        }
        for s in crate::retain_indexable(&mut p) {
            tracing::debug!(package = %s.name, version = ?s.version, reason = %s.reason, "version left out");
        }
        let shared = Arc::new(p);
        let batch_full = {
            let mut pending = lock(&self.inner.pending);
            pending.docs.push((shared.clone(), etag, SystemTime::now()));
            pending.docs.len() >= RECORD_BATCH
        };
        lock(&self.inner.report).fetched += 1;
        if batch_full {
            // Record while resolution still waits on the network, not all at the end.
            self.flush();
        }
        Ok(shared)
    }
}

/// One batch; a named async fn keeps the spawned future's type simple (`Send` for any
/// lifetime, which closures in `Index::write`'s callers otherwise trip over).
async fn write(index: &Index, documents: Vec<Document>) -> Result<WriteReport, IndexError> {
    index.write(Update { documents, ..Update::default() }).await
}

fn add(total: &mut WriteReport, w: &WriteReport) {
    total.packages += w.packages;
    total.unchanged += w.unchanged;
    total.versions += w.versions;
    total.pages += w.pages;
    total.tombstoned += w.tombstoned;
    total.ops += w.ops;
    total.record_bytes += w.record_bytes;
    total.skipped.extend(w.skipped.iter().cloned());
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cause = e.source();
    while let Some(c) = cause {
        parts.push(c.to_string());
        cause = c.source();
    }
    if parts.is_empty() { "no further detail".to_owned() } else { parts.join(": ") }
}

/// Re-point the canonical tarball URL of `name@version` under any of `bases` at `to`.
fn retarget_manifest(to: &RegistryUrl, name: &str, version: &str, m: &mut Manifest, bases: &[String]) {
    let Some(url) = m.dist.tarball.as_mut() else { return };
    if let Some(moved) = to.retarget(url, name, version, bases.iter().map(String::as_str)) {
        *url = moved;
    }
}

/// The local index first, the registry last.
impl ManifestSource for LayeredSource {
    async fn refresh(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        self.refresh_local(name).await.map_err(LayerError::into_source)
    }

    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        self.whole(name).await.map_err(LayerError::into_source)
    }

    async fn summary(&self, name: &str) -> Result<Option<Summary>, SourceError> {
        self.summary_of(name).await.map_err(LayerError::into_source)
    }

    async fn manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, SourceError> {
        self.read_manifest(name, version).await.map_err(LayerError::into_source)
    }
}
