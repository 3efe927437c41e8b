//! Ingest from any npm registry: a list of names, or npm's `_changes` replication feed
//! (spec §6.1: ids only, paged; every changed packument fetched; deletions; resumable from the
//! checkpoint stored in the trie). Fetches run concurrently over keep-alive connections,
//! revalidate with `If-None-Match`, back off on 429/5xx; documents are written in batches.
//! Bad input — bad JSON, hostile names, non-semver versions, documents over the size cap — is
//! skipped with a logged reason and counted; it never stops the run and never removes
//! anything already indexed.

mod changes;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::model::Packument;
pub use crate::upstream::FetchError;
use crate::upstream::{Document as Fetched, Registry, RegistryOptions, RegistryUrl, UrlError};
use crate::{Document, Index, IndexError, Skipped, Update, WriteReport, names};

/// How an ingest runs.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Packuments fetched at once.
    pub concurrency: usize,
    /// Documents per trie batch.
    pub batch_documents: usize,
    /// Larger documents are skipped (vite's full packument is about 39 MB).
    pub max_document_bytes: usize,
    /// Retries per request on 429, 5xx and connection errors.
    pub retries: u32,
    /// The first backoff; it doubles per retry (a `Retry-After` wins when longer).
    pub backoff: Duration,
    /// `limit` of each `_changes` page.
    pub page_size: usize,
    /// Stop a follow after this many pages (`None`: until caught up).
    pub max_pages: Option<usize>,
    /// What the client trusts (see [`RegistryOptions::tls`]).
    pub tls: crate::upstream::TlsConfig,
    /// The proxies it goes through (see [`RegistryOptions::proxy`]).
    pub proxy: crate::upstream::ProxyConfig,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            batch_documents: 64,
            max_document_bytes: 64 << 20,
            retries: 6,
            backoff: Duration::from_millis(250),
            page_size: 1000,
            max_pages: None,
            tls: Default::default(),
            proxy: Default::default(),
        }
    }
}

/// Progress, reported through [`Ingest::on_progress`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// How many names this run will look at (known up front for a name list; per page for a
    /// follow).
    Planned(usize),
    /// One name was handled (fetched, not modified, missing or skipped).
    Done(&'a str),
    /// Something was skipped.
    Skipped(&'a Skipped),
    /// A batch was written.
    Written(&'a WriteReport),
    /// A `_changes` page was finished and checkpointed at `since`.
    Page {
        /// The new checkpoint.
        since: &'a str,
        /// Rows in the page.
        rows: usize,
    },
}

type Callback = Arc<dyn Fn(Event<'_>) + Send + Sync>;

/// Totals of one ingest run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Documents fetched and parsed.
    pub fetched: usize,
    /// `304 Not Modified` answers.
    pub not_modified: usize,
    /// `404` answers.
    pub not_found: usize,
    /// Package records written.
    pub packages: usize,
    /// Documents that changed nothing.
    pub unchanged: usize,
    /// New versions.
    pub versions: usize,
    /// Packages tombstoned.
    pub tombstoned: usize,
    /// What was skipped, and why.
    pub skipped: Vec<Skipped>,
    /// `_changes` pages finished.
    pub pages: usize,
    /// The checkpoint after a follow.
    pub since: Option<String>,
}

impl IngestReport {
    fn add(&mut self, w: &WriteReport) {
        self.packages += w.packages;
        self.unchanged += w.unchanged;
        self.versions += w.versions;
        self.tombstoned += w.tombstoned;
        self.skipped.extend(w.skipped.iter().cloned());
    }
}

/// An ingest failed as a whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The registry could not be reached or kept failing.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// Reading or writing the index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The registry URL is not usable.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The index records another registry (its `meta/upstream`): one index holds what one
    /// registry sent, so that it never serves one registry's records as another's.
    #[error(
        "this index records {index_upstream}, not {registry}: one index per registry (use another --home)"
    )]
    OtherUpstream {
        /// The index's upstream.
        index_upstream: String,
        /// The registry asked to ingest from.
        registry: String,
    },
    /// The `_changes` feed answered something that is not a changes page.
    #[error("{url} is not an npm _changes feed: {reason}")]
    Feed {
        /// The page URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// Ingests into an [`Index`] from one registry.
pub struct Ingest {
    index: Index,
    upstream: Registry,
    options: IngestOptions,
    progress: Option<Callback>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("registry", &self.upstream.base())
            .field("options", &self.options)
            .finish()
    }
}

/// One name's outcome, before writing.
enum Outcome {
    Doc(Document),
    NotModified,
    NotFound,
    Skip(Skipped),
}

impl Ingest {
    /// An ingest from the registry at `registry` (its base URL) into `index`. The index's
    /// upstream (for canonical tarball URLs) is set to this registry if it has none; an index
    /// that records another registry is refused ([`IngestError::OtherUpstream`]).
    pub async fn new(mut index: Index, registry: &str, options: IngestOptions) -> Result<Self, IngestError> {
        let url = RegistryUrl::parse(registry)?;
        let upstream = Registry::new(
            url,
            RegistryOptions {
                user_agent: concat!("ims-indexer/", env!("CARGO_PKG_VERSION")).to_owned(),
                max_document_bytes: options.max_document_bytes,
                retries: options.retries,
                backoff: options.backoff,
                tls: options.tls.clone(),
                proxy: options.proxy.clone(),
                ..RegistryOptions::default()
            },
        )?;
        let owner = index.set_upstream(upstream.url()).await?;
        if owner != upstream.base() {
            return Err(IngestError::OtherUpstream {
                index_upstream: owner.to_owned(),
                registry: upstream.base().to_owned(),
            });
        }
        Ok(Self { index, upstream, options, progress: None })
    }

    /// Report progress to `f` (the binary draws a progress bar with it).
    pub fn on_progress(mut self, f: impl Fn(Event<'_>) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    /// The index being written.
    pub fn index(&self) -> &Index {
        &self.index
    }

    fn emit(&self, e: Event<'_>) {
        if let Some(f) = &self.progress {
            f(e);
        }
    }

    fn skipped(&self, report: &mut IngestReport, s: Skipped) {
        tracing::warn!(name = %s.name, version = ?s.version, reason = %s.reason, "skipped");
        self.emit(Event::Skipped(&s));
        report.skipped.push(s);
    }

    /// Ingest the packuments of `names`. A name that cannot be fetched after retries is
    /// skipped (and counted), not fatal.
    pub async fn names(&self, names: &[String]) -> Result<IngestReport, IngestError> {
        let mut report = IngestReport::default();
        self.emit(Event::Planned(names.len()));
        for chunk in names.chunks(self.options.batch_documents.max(1)) {
            let (update, _) = self.fetch_chunk(chunk, false, &mut report).await?;
            let w = self.index.write(update).await?;
            self.emit(Event::Written(&w));
            report.add(&w);
        }
        Ok(report)
    }

    /// Fetch a chunk of names concurrently. With `strict`, a fetch failure is an error (the
    /// follower must not checkpoint past it); otherwise it is skipped. Returns the update and
    /// the names that answered 404.
    async fn fetch_chunk(
        &self,
        chunk: &[String],
        strict: bool,
        report: &mut IngestReport,
    ) -> Result<(Update, Vec<String>), IngestError> {
        let mut update = Update::default();
        let mut missing = Vec::new();
        let results: Vec<(String, Result<Outcome, FetchError>)> =
            futures_util::stream::iter(chunk.iter().cloned())
                .map(|name| async move {
                    let outcome = self.fetch_one(&name).await;
                    (name, outcome)
                })
                .buffer_unordered(self.options.concurrency.max(1))
                .collect()
                .await;
        for (name, outcome) in results {
            match outcome {
                Ok(Outcome::Doc(doc)) => {
                    report.fetched += 1;
                    update.documents.push(doc);
                }
                Ok(Outcome::NotModified) => report.not_modified += 1,
                Ok(Outcome::NotFound) => {
                    report.not_found += 1;
                    missing.push(name.clone());
                }
                Ok(Outcome::Skip(s)) => self.skipped(report, s),
                Err(e) if strict => return Err(e.into()),
                Err(e) => {
                    let s = Skipped { name: name.clone(), version: None, reason: e.to_string() };
                    self.skipped(report, s);
                }
            }
            self.emit(Event::Done(&name));
        }
        Ok((update, missing))
    }

    async fn fetch_one(&self, name: &str) -> Result<Outcome, FetchError> {
        let skip = |reason: String| {
            Outcome::Skip(Skipped { name: name.chars().take(100).collect(), version: None, reason })
        };
        if let Err(e) = names::validate(name) {
            return Ok(skip(format!("invalid name: {e}")));
        }
        let etag = match self.index.etag(name).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(name, error = %e, "cannot read the stored ETag; fetching unconditionally");
                None
            }
        };
        let (body, etag) = match self.upstream.document(name, etag.as_deref()).await? {
            Fetched::Body { body, etag } => (body, etag),
            Fetched::NotModified => return Ok(Outcome::NotModified),
            Fetched::NotFound => return Ok(Outcome::NotFound),
            Fetched::TooLarge { bytes } => {
                return Ok(skip(format!(
                    "the document is {bytes} bytes, over the {} byte cap",
                    self.options.max_document_bytes
                )));
            }
        };
        // Parsing a large document is CPU work: keep it off the async worker.
        let parsed = tokio::task::spawn_blocking(move || Packument::from_slice(&body)).await;
        Ok(match parsed {
            Ok(Ok(p)) if p.name == name => Outcome::Doc(Document { packument: p.into(), etag }),
            Ok(Ok(p)) => {
                skip(format!("the document is named {:?}", p.name.chars().take(100).collect::<String>()))
            }
            Ok(Err(e)) => skip(format!("bad document: {e}")),
            Err(e) => skip(format!("parser failed: {e}")),
        })
    }
}
