//! The manifest source `ims install` resolves through: indexes first, the upstream registry
//! last, and what upstream sends recorded into the local index (issue 5).
//!
//! ```text
//!  summary(name)   ──▶ front layers (e.g. a sparse replica of a peer's index): used as is
//!                 ──▶ the local index ($IMS_HOME/index):
//!                        fetched < max-age ago          → used, no request
//!                        older                          → GET If-None-Match: ETag
//!                                                            304 → used;  200 → recorded, used
//!                                                            error → used, with a warning
//!                 ──▶ not in any index                  → GET; 200 → recorded, used
//! ```
//!
//! From an index only the package's summary is read for the pick, and then the picked
//! version's manifest ([`ManifestSource::manifest`], from the same layer); a document
//! fetched from the registry is used whole.
//!
//! This is npm's own cache policy for the registry's `Cache-Control: max-age=300`
//! (`--prefer-offline`: no revalidation; `--offline`: the index only), with the local index as
//! the cache, so whatever an install fetched is then served by `ims seed` and shown by
//! `ims view`.
//!
//! Recording is off the critical path: documents are kept in memory while resolution runs,
//! [`LayeredSource::flush`] starts writing them as one [`Index::write`] batch (one trie batch,
//! one sync) in the background — the command calls it once resolution is done, so the write
//! overlaps tarball fetching — and [`LayeredSource::finish`] waits until everything is
//! durable, then saves the fetch times. A crash before that loses only the recording: the
//! feed cuts a torn tail, and the fetch times are written after the index.
//!
//! Tarball URLs read from an index are re-pointed at the registry of this install when they
//! are the canonical URL under a registry the index was recorded from (its `meta/upstream`, or
//! any registry in the fetch times): that is what this registry's own packument would say, and
//! what npm writes into `resolved`. Other URLs are kept. The tarball store is keyed by
//! integrity, so nothing already fetched is fetched again either way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use std::collections::HashMap;

use indexer::model::{Manifest, Packument};
use indexer::{Document, Index, IndexError, PackageSummary, Update, WriteReport};
use tokio::task::JoinHandle;

use super::error::FetchError;
use super::fetch::{RegistrySource, Revalidated};
use super::local::{LocalIndex, LocalIndexError};
use super::resolve::{ManifestSource, SourceError, Summary};

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

/// Where the packuments of one install came from, and what was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceReport {
    /// From a front layer (a peer's index).
    pub front: usize,
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
            "packuments: {} from the local index, {} revalidated (304), {} fetched, {} stale, {} from a peer index; recorded {} packages ({} new versions)",
            self.fresh,
            self.not_modified,
            self.fetched,
            self.stale,
            self.front,
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
    registry: RegistrySource,
    policy: Policy,
    pending: Mutex<Pending>,
    report: Mutex<SourceReport>,
    /// Set once the registry could not be reached: stale copies are then used without asking.
    down: AtomicBool,
    warned: AtomicBool,
    /// Packages already re-asked by [`LayeredSource::refresh_local`] in this install.
    refreshed: Mutex<std::collections::HashSet<String>>,
    /// Which index layer each summary handed out came from: its manifests are read there.
    origins: Mutex<HashMap<String, Origin>>,
}

/// The index layer a package's summary came from.
#[derive(Debug, Clone)]
enum Origin {
    /// The front layer at this position.
    Front(usize, Arc<PackageSummary>),
    /// The local index.
    Local(Arc<PackageSummary>),
}

/// What a lookup found.
#[derive(Debug)]
enum Found {
    /// A package record of an index layer (read versions from the same layer).
    Index(Origin),
    /// A document fetched from the registry, whole.
    Whole(Arc<Packument>),
}

/// Indexes, then the registry; a cheap cloneable handle (the installer owns one clone, the
/// command keeps another to [`flush`](Self::flush) and [`finish`](Self::finish)).
#[derive(Debug, Clone)]
pub struct LayeredSource {
    front: Vec<Index>,
    /// Where tarball URLs from an index are re-pointed (`None`: kept as recorded).
    retarget: Option<String>,
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No section under these locks can panic; recover the data if one ever did.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LayeredSource {
    /// Resolve from `local`, then `registry` (whose base is also the registry tarball URLs
    /// are re-pointed at), under `policy`. Put [`front`](Self::front) layers before the local
    /// index; call [`flush`](Self::flush) after resolution and [`finish`](Self::finish) before
    /// the install reports success.
    pub fn new(local: LocalIndex, registry: RegistrySource, policy: Policy) -> Self {
        let retarget = Some(registry.base().to_owned());
        LayeredSource {
            front: Vec::new(),
            retarget,
            inner: Arc::new(Inner {
                local,
                registry,
                policy,
                pending: Mutex::default(),
                report: Mutex::default(),
                down: AtomicBool::new(false),
                warned: AtomicBool::new(false),
                refreshed: Mutex::default(),
                origins: Mutex::default(),
            }),
        }
    }

    /// Consult `index` before the local one (layers are consulted in the order added): a
    /// package it has is used as it is — no freshness check, nothing recorded — and one it
    /// lacks (or fails to read, logged) falls through. This is where a sparse replica of a
    /// peer's index goes.
    pub fn front(mut self, index: Index) -> Self {
        self.front.push(index);
        self
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
        let task = tokio::spawn(async move {
            // The resolver still holds these: the copy is made here, off the critical path.
            let documents: Vec<Document> = documents
                .into_iter()
                .map(|(p, etag)| Document { packument: Arc::unwrap_or_clone(p), etag })
                .collect();
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
        for (at, front) in self.front.iter().enumerate() {
            match front.versions(name).await {
                Ok(Some(s)) => {
                    lock(&inner.report).front += 1;
                    return Ok(Some(Found::Index(Origin::Front(at, Arc::new(s)))));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(package = name, %error, "a front index failed; trying the local index");
                }
            }
        }
        let local = inner.local.get().await?;
        let registry = inner.registry.base();
        if let Some(have) = local.index.versions(name).await? {
            let have = Found::Index(Origin::Local(Arc::new(have)));
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
            return match inner.registry.fetch_packument(name, etag.as_deref()).await {
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
        match inner.registry.fetch_packument(name, None).await? {
            Revalidated::Modified { packument, etag } => {
                self.record(name, *packument, etag).map(|p| Some(Found::Whole(p)))
            }
            Revalidated::NotFound | Revalidated::NotModified => Ok(None),
        }
    }

    /// The summary of `name` from the first layer that has it, remembering an index layer
    /// for [`Self::read_manifest`].
    async fn summary_of(&self, name: &str) -> Result<Option<Summary>, LayerError> {
        Ok(match self.lookup(name).await? {
            None => None,
            Some(Found::Whole(p)) => Some(Summary::from_packument(p)),
            Some(Found::Index(origin)) => {
                let summary = match &origin {
                    Origin::Front(_, s) | Origin::Local(s) => Summary::from_index(s),
                };
                lock(&self.inner.origins).insert(name.to_owned(), origin);
                Some(summary)
            }
        })
    }

    /// The index layer of `origin` and the registries its canonical tarball URLs are under.
    async fn layer(&self, origin: &Origin) -> Result<(Index, Vec<String>), LayerError> {
        Ok(match origin {
            Origin::Front(at, _) => {
                let front = self.front[*at].clone();
                let bases = front.upstream().into_iter().map(str::to_owned).collect();
                (front, bases)
            }
            Origin::Local(_) => {
                let local = self.inner.local.get().await?;
                (local.index.clone(), local.bases.clone())
            }
        })
    }

    /// The whole packument of `name` (for callers that want every version).
    async fn whole(&self, name: &str) -> Result<Option<Arc<Packument>>, LayerError> {
        let origin = match self.lookup(name).await? {
            None => return Ok(None),
            Some(Found::Whole(p)) => return Ok(Some(p)),
            Some(Found::Index(origin)) => origin,
        };
        let (index, bases) = self.layer(&origin).await?;
        let Some(mut p) = index.packument(name).await? else { return Ok(None) };
        self.retarget(&mut p, &bases);
        Ok(Some(Arc::new(p)))
    }

    /// The manifest of `name@version` from the layer its summary came from.
    async fn read_manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, LayerError> {
        let known = lock(&self.inner.origins).get(name).cloned();
        let origin = match known {
            Some(origin) => origin,
            None => match self.lookup(name).await? {
                None => return Ok(None),
                Some(Found::Whole(p)) => return Ok(p.versions.get(version).cloned()),
                Some(Found::Index(origin)) => origin,
            },
        };
        let (index, bases) = self.layer(&origin).await?;
        let summary = match &origin {
            Origin::Front(_, s) | Origin::Local(s) => s,
        };
        let Some(mut m) = index.version_in(summary, version).await? else { return Ok(None) };
        if let Some(to) = &self.retarget {
            retarget_manifest(name, version, &mut m, &bases, to);
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
        match inner.registry.fetch_packument(name, etag.as_deref()).await {
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
        for s in indexer::retain_indexable(&mut p) {
            tracing::debug!(package = %s.name, version = ?s.version, reason = %s.reason, "version left out");
        }
        let shared = Arc::new(p);
        lock(&self.inner.pending).docs.push((shared.clone(), etag, SystemTime::now()));
        lock(&self.inner.report).fetched += 1;
        Ok(shared)
    }

    fn retarget(&self, p: &mut Packument, bases: &[String]) {
        if let Some(to) = &self.retarget {
            retarget(p, bases, to);
        }
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

/// Re-point canonical tarball URLs (`{base}{name}/-/{file}`) under any of `bases` at `to`.
fn retarget(p: &mut Packument, bases: &[String], to: &str) {
    if bases.iter().all(|b| b == to) {
        return;
    }
    let name = p.name.clone();
    for (version, m) in &mut p.versions {
        retarget_manifest(&name, version, m, bases, to);
    }
}

/// [`retarget`] for the one manifest of `name@version`.
fn retarget_manifest(name: &str, version: &str, m: &mut Manifest, bases: &[String], to: &str) {
    let Some(url) = m.dist.tarball.as_mut() else { return };
    let suffix = format!("{name}/-/{}", indexer::names::tarball_file_name(name, version));
    if let Some(prefix) = url.strip_suffix(suffix.as_str())
        && prefix != to
        && bases.iter().any(|b| b == prefix)
    {
        *url = format!("{to}{suffix}");
    }
}

/// The local index first (then any front layers before it), the registry last.
impl ManifestSource for LayeredSource {
    async fn refresh(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        Ok(self.refresh_local(name).await?)
    }

    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        Ok(self.whole(name).await?)
    }

    async fn summary(&self, name: &str) -> Result<Option<Summary>, SourceError> {
        Ok(self.summary_of(name).await?)
    }

    async fn manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, SourceError> {
        Ok(self.read_manifest(name, version).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_tarball(url: &str) -> Packument {
        let mut p = Packument { name: "@s/a".into(), ..Packument::default() };
        let mut m =
            indexer::model::Manifest { name: "@s/a".into(), version: "1.0.0".into(), ..Default::default() };
        m.dist.tarball = Some(url.to_owned());
        p.versions.insert("1.0.0".into(), m);
        p
    }

    fn url(p: &Packument) -> &str {
        p.versions["1.0.0"].dist.tarball.as_deref().unwrap()
    }

    #[test]
    fn canonical_urls_of_known_registries_are_repointed() {
        let bases = vec!["http://a/".to_owned(), "http://b/x/".to_owned()];
        let mut p = with_tarball("http://b/x/@s/a/-/a-1.0.0.tgz");
        retarget(&mut p, &bases, "http://c/");
        assert_eq!(url(&p), "http://c/@s/a/-/a-1.0.0.tgz");
        // An unknown host, or a non-canonical path, is kept.
        for odd in ["http://elsewhere/@s/a/-/a-1.0.0.tgz", "http://a/files/a.tgz"] {
            let mut p = with_tarball(odd);
            retarget(&mut p, &bases, "http://c/");
            assert_eq!(url(&p), odd);
        }
        let mut p = with_tarball("http://a/@s/a/-/a-1.0.0.tgz");
        retarget(&mut p, &["http://a/".to_owned()], "http://a/");
        assert_eq!(url(&p), "http://a/@s/a/-/a-1.0.0.tgz");
    }
}
