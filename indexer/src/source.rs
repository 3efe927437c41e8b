//! The manifest sources resolution reads from, behind one small trait ([`ManifestSource`]):
//! an index (the local one, or a sparse replica of a peer's), an upstream registry, or the
//! stack installs and the registry proxy use — [`LayeredSource`] (local index with npm's
//! cache policy, the registry last, what the registry sends recorded back) and
//! [`ReplicaSource`] (a peer's index in front of it).
//!
//! ```text
//!  ReplicaSource ──▶ sparse replica of a peer's index (every block verified), else
//!       └──────────▶ LayeredSource ──▶ local index ($IMS_HOME/index), fresh or revalidated
//!                                └──▶ the registry (Registry); 200s recorded into the local index
//! ```
//!
//! The pick rules read only a [`Summary`] of each package (versions, dist-tags, deprecations,
//! engines); only the picked version's manifest is then read ([`ManifestSource::manifest`]).
//! An index answers both from its package record and one page, so resolving a package costs
//! O(1) records however many versions it has.

mod layered;
mod local;
mod replica;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;

use crate::model::{Manifest, Packument};
use crate::upstream::{Registry, Revalidated};
use crate::{Index, PackageSummary};

pub use layered::{DEFAULT_MAX_AGE, LayerError, LayeredSource, Network, Policy, SourceReport};
pub use local::{FetchTimes, LocalIndex, LocalIndexError, Open, open_index, registry_dir_name};
pub use replica::{ReplicaSource, ReplicaStats};

/// Boxed error from a manifest source.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// One version as npm's pick rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The version key.
    pub version: String,
    /// Deprecated (a non-empty deprecation message).
    pub deprecated: bool,
    /// `engines.node`.
    pub engine_node: Option<String>,
    /// `engines.npm` (`None` also when the source does not know, see
    /// [`Summary::knows_npm_engines`]).
    pub engine_npm: Option<String>,
}

/// What the pick rules read of a package: its dist-tags and versions, without manifests.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The registry package name.
    pub name: String,
    /// `dist-tags`.
    pub dist_tags: BTreeMap<String, String>,
    /// Every version, in version-key order (a packument's `versions` order).
    pub versions: Vec<Candidate>,
    /// Unpublished as a whole (a tombstone without versions).
    pub unpublished: bool,
    /// Whether [`Candidate::engine_npm`] is known (an index keeps `engines.node` only).
    pub knows_npm_engines: bool,
    /// The whole packument, when the source had one: manifests are then taken from it.
    pub packument: Option<Arc<Packument>>,
}

impl Summary {
    /// The summary of a whole packument (kept in it, so manifests come from it).
    pub fn from_packument(p: Arc<Packument>) -> Self {
        Summary {
            name: p.name.clone(),
            dist_tags: p.dist_tags.clone(),
            versions: candidates(&p),
            unpublished: p.unpublished.is_some(),
            knows_npm_engines: true,
            packument: Some(p),
        }
    }

    /// The summary of an index's package record; manifests are read with
    /// [`Index::version_in`].
    pub fn from_index(s: &PackageSummary) -> Self {
        let mut versions: Vec<Candidate> = s
            .versions
            .iter()
            .map(|v| Candidate {
                version: v.version.clone(),
                deprecated: deprecated(v.deprecated.as_deref()),
                engine_node: v.engine_node.clone(),
                engine_npm: None,
            })
            .collect();
        // The pick breaks ties by order: keep a packument's (its keys sorted).
        versions.sort_by(|a, b| a.version.cmp(&b.version));
        versions.dedup_by(|a, b| a.version == b.version);
        Summary {
            name: s.name.clone(),
            dist_tags: s.dist_tags.clone(),
            versions,
            unpublished: s.tombstone,
            knows_npm_engines: false,
            packument: None,
        }
    }

    /// The candidate for exactly `version`.
    pub fn get(&self, version: &str) -> Option<&Candidate> {
        self.versions.binary_search_by(|c| c.version.as_str().cmp(version)).ok().map(|i| &self.versions[i])
    }
}

/// The candidates of a packument, in its key order.
pub fn candidates(p: &Packument) -> Vec<Candidate> {
    p.versions
        .iter()
        .map(|(key, m)| Candidate {
            version: key.clone(),
            deprecated: deprecated(m.deprecated.as_deref()),
            engine_node: m.engine("node").map(str::to_owned),
            engine_npm: m.engine("npm").map(str::to_owned),
        })
        .collect()
}

/// Where packuments come from. `Ok(None)` means "no such package" (a 404), which is final.
///
/// The resolver asks for a [`summary`](Self::summary) of each package and then for the
/// [`manifest`](Self::manifest) of the version it picked. Sources that only have whole
/// packuments implement [`packument`](Self::packument) alone; an index answers the summary
/// from one record and the manifest from one page.
pub trait ManifestSource: Send + Sync {
    /// Fetch the packument of `name` (a registry name, scoped names with their `/`).
    fn packument(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<Packument>>, SourceError>> + Send;

    /// What the pick rules need of `name`. The default summarises the whole packument (and
    /// keeps it, so [`manifest`](Self::manifest) is not asked).
    fn summary(&self, name: &str) -> impl Future<Output = Result<Option<Summary>, SourceError>> + Send {
        async move { Ok(self.packument(name).await?.map(Summary::from_packument)) }
    }

    /// The manifest of `name@version`, after [`summary`](Self::summary) gave a summary
    /// without a packument. `Ok(None)`: the source lists the version but has no manifest.
    /// The default takes it from the whole packument.
    fn manifest(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<Option<Manifest>, SourceError>> + Send {
        async move { Ok(self.packument(name).await?.and_then(|p| p.versions.get(version).cloned())) }
    }

    /// A newer packument of `name` than [`summary`](Self::summary) gave, when that one
    /// came from a cache and cannot satisfy a request (npm re-fetches past its cache before
    /// reporting ETARGET). `Ok(None)`: nothing newer (the default, for sources without a
    /// cache); the resolver then reports the original error.
    fn refresh(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<Packument>>, SourceError>> + Send {
        let _ = name;
        async { Ok(None) }
    }
}

/// An in-memory source (tests, fixtures, and packuments already fetched).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    packuments: HashMap<String, Arc<Packument>>,
}

impl MemorySource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a packument.
    pub fn insert(&mut self, packument: Packument) {
        self.packuments.insert(packument.name.clone(), Arc::new(packument));
    }
}

impl ManifestSource for MemorySource {
    fn packument(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<Packument>>, SourceError>> + Send {
        let found = self.packuments.get(name).cloned();
        async move { Ok(found) }
    }
}

/// The local index (or a sparse replica of a peer's) as a source: resolution costs trie
/// lookups, no round trip per package — the package record for the pick, then the page of
/// the picked version.
impl ManifestSource for Index {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        Ok(Index::packument(self, name).await?.map(Arc::new))
    }

    async fn summary(&self, name: &str) -> Result<Option<Summary>, SourceError> {
        Ok(self.versions(name).await?.as_ref().map(Summary::from_index))
    }

    async fn manifest(&self, name: &str, version: &str) -> Result<Option<Manifest>, SourceError> {
        Ok(self.version(name, version).await?)
    }
}

fn deprecated(message: Option<&str>) -> bool {
    message.is_some_and(|d| !d.is_empty())
}

/// The registry alone, nothing recorded: every packument is a request.
impl ManifestSource for Registry {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        match Registry::packument(self, name, None).await? {
            Revalidated::Modified { packument, .. } => Ok(Some(Arc::new(*packument))),
            Revalidated::NotModified | Revalidated::NotFound => Ok(None),
        }
    }
}
