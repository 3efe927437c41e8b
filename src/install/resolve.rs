//! Which version a request gets: npm-pick-manifest's rules (spec
//! `npm-registry-and-installers.md` §1.9) over packuments from a [`ManifestSource`] — the local
//! index, a sparse replica, or an upstream registry, all behind one small trait.
//!
//! The rules read only a [`Summary`] of each package (versions, dist-tags, deprecations,
//! engines); only the picked version's manifest is then read ([`ManifestSource::manifest`]).
//! An index answers both from its package record and one page, so resolving a package costs
//! O(1) records however many versions it has.
//!
//! The rules, in order:
//! 1. A dist-tag resolves to exactly the version it names.
//! 2. An exact version must be exactly that version.
//! 3. For a range, `dist-tags.latest` wins when it satisfies the range, is not deprecated and
//!    its engines fit. Otherwise the satisfying versions are sorted: (not deprecated and engine
//!    OK) > engine OK > not deprecated > highest.
//! 4. Prereleases satisfy a range only when it names a prerelease on the same
//!    `[major, minor, patch]` (the semver crate's rule, as npm's).
//!
//! Engines are checked only when [`PickOptions::node_version`] is set: npm passes the running
//! Node's version; by default ims, like most installers, does not prefer on engines.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

use indexer::model::{Manifest, Packument};
use indexer::tarballs::Integrity;
use indexer::{Index, PackageSummary};

use super::error::ResolveError;
use super::request::{Request, VersionSpec};
use super::semver::{self, Version};

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

    fn get(&self, version: &str) -> Option<&Candidate> {
        self.versions.binary_search_by(|c| c.version.as_str().cmp(version)).ok().map(|i| &self.versions[i])
    }
}

/// The candidates of a packument, in its key order.
fn candidates(p: &Packument) -> Vec<Candidate> {
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

/// Preferences of the pick (npm-pick-manifest's options that matter here).
#[derive(Debug, Clone)]
pub struct PickOptions {
    /// The tag a bare range prefers (`latest`, npm's `--tag`).
    pub default_tag: String,
    /// The Node.js version to prefer engine-compatible versions for; `None` ignores engines.
    pub node_version: Option<Version>,
    /// The npm version for `engines.npm`; `None` ignores it.
    pub npm_version: Option<Version>,
}

impl Default for PickOptions {
    fn default() -> Self {
        PickOptions { default_tag: "latest".to_owned(), node_version: None, npm_version: None }
    }
}

fn deprecated(message: Option<&str>) -> bool {
    message.is_some_and(|d| !d.is_empty())
}

fn engine_ok(c: &Candidate, opts: &PickOptions) -> bool {
    let fits = |engine: &Option<String>, have: &Option<Version>| match (engine, have) {
        (Some(range), Some(have)) => semver::parse_range(range)
            // npm checks engines with includePrerelease; an unreadable range never excludes.
            .is_none_or(|r| r.satisfies_with_prerelease(have, true)),
        _ => true,
    };
    fits(&c.engine_node, &opts.node_version) && fits(&c.engine_npm, &opts.npm_version)
}

/// Pick the manifest npm would install for `spec` from `packument`.
pub fn pick<'p>(
    packument: &'p Packument,
    spec: &VersionSpec,
    opts: &PickOptions,
) -> Result<&'p Manifest, ResolveError> {
    let summary = Summary {
        name: packument.name.clone(),
        dist_tags: packument.dist_tags.clone(),
        versions: candidates(packument),
        unpublished: packument.unpublished.is_some(),
        knows_npm_engines: true,
        packument: None,
    };
    let key = pick_version(&summary, spec, opts)?;
    packument.versions.get(key).ok_or_else(|| no_match(&summary, spec))
}

fn no_match(summary: &Summary, spec: &VersionSpec) -> ResolveError {
    ResolveError::NoMatchingVersion {
        name: summary.name.clone(),
        spec: spec.to_string(),
        latest: summary.dist_tags.get("latest").cloned().unwrap_or_else(|| "none".to_owned()),
    }
}

/// The version key npm would install for `spec`, by the rules in the module docs, from what a
/// summary says of each version.
pub fn pick_version<'s>(
    summary: &'s Summary,
    spec: &VersionSpec,
    opts: &PickOptions,
) -> Result<&'s str, ResolveError> {
    let no_match = || no_match(summary, spec);
    if summary.versions.is_empty() && summary.unpublished {
        return Err(ResolveError::Unpublished { name: summary.name.clone() });
    }
    let range = match spec {
        VersionSpec::Tag(tag) => {
            let version = summary.dist_tags.get(tag).ok_or_else(no_match)?;
            return summary.get(version).map(|c| c.version.as_str()).ok_or_else(no_match);
        }
        VersionSpec::Version(v) => {
            // Keys are usually canonical; fall back to comparing parsed versions.
            if let Some(c) = summary.get(&v.to_string()) {
                return Ok(&c.version);
            }
            return summary
                .versions
                .iter()
                .find(|c| semver::parse_version(&c.version).as_ref() == Some(v))
                .map(|c| c.version.as_str())
                .ok_or_else(no_match);
        }
        VersionSpec::Range { range, .. } => range,
    };

    // Rule 3: the default tag, when it fits.
    if let Some(tagged) = summary.dist_tags.get(&opts.default_tag)
        && let (Some(v), Some(c)) = (semver::parse_version(tagged), summary.get(tagged))
        && range.satisfies(&v)
        && !c.deprecated
        && engine_ok(c, opts)
    {
        return Ok(&c.version);
    }
    // Otherwise rank every satisfying version.
    let mut best: Option<((bool, bool, bool), Version, &Candidate)> = None;
    for c in &summary.versions {
        let Some(v) = semver::parse_version(&c.version) else { continue };
        if !range.satisfies(&v) {
            continue;
        }
        let (dep_ok, eng_ok) = (!c.deprecated, engine_ok(c, opts));
        let rank = (dep_ok && eng_ok, eng_ok, dep_ok);
        let better = match &best {
            None => true,
            Some((r, bv, _)) => (rank, &v) > (*r, bv),
        };
        if better {
            best = Some((rank, v, c));
        }
    }
    best.map(|(_, _, c)| c.version.as_str()).ok_or_else(no_match)
}

/// A picked manifest: inside a whole packument, or read on its own.
#[derive(Debug, Clone)]
enum Picked {
    /// `versions[key]` of the packument (present by construction).
    InPackument(Arc<Packument>, String),
    /// Read from a source that keeps manifests apart.
    Alone(Arc<Manifest>),
}

/// The outcome of resolving one request: which package version and how to fetch it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The folder name under `node_modules` (the alias for aliases).
    pub name: String,
    /// What the version was picked from (shared by every resolution of the package).
    pub summary: Arc<Summary>,
    /// The picked version (the packument's key).
    pub version: String,
    /// The parsed version.
    pub semver: Version,
    /// What the tarball must hash to (`dist.integrity`, else `dist.shasum`).
    pub integrity: Integrity,
    picked: Picked,
}

impl Resolved {
    /// The registry package name.
    pub fn package(&self) -> &str {
        &self.summary.name
    }

    /// The picked version's manifest.
    pub fn manifest(&self) -> &Manifest {
        match &self.picked {
            // `key` is a key of `p.versions` by construction (checked in `Resolver::resolve`).
            Picked::InPackument(p, key) => &p.versions[key],
            Picked::Alone(m) => m,
        }
    }

    /// Whether the package's dist-tag `tag` names the picked version.
    pub fn is_tagged(&self, tag: &str) -> bool {
        self.summary.dist_tags.get(tag) == Some(&self.version)
    }
}

/// A manifest the source listed in its summary but could not give.
#[derive(Debug, thiserror::Error)]
#[error("{name}@{version} is listed but its manifest is missing")]
struct MissingManifest {
    name: String,
    version: String,
}

/// Resolves requests against a [`ManifestSource`], reading each summary once and each picked
/// manifest once.
#[derive(Debug)]
pub struct Resolver<S> {
    source: S,
    opts: PickOptions,
    cache: Mutex<HashMap<String, Option<Arc<Summary>>>>,
    manifests: Mutex<HashMap<(String, String), Arc<Manifest>>>,
}

impl<S: ManifestSource> Resolver<S> {
    /// A resolver over `source` with these pick preferences.
    pub fn new(source: S, opts: PickOptions) -> Self {
        Resolver { source, opts, cache: Mutex::default(), manifests: Mutex::default() }
    }

    /// The pick preferences.
    pub fn options(&self) -> &PickOptions {
        &self.opts
    }

    /// The whole packument of `name`, from the source (not cached: resolution itself reads
    /// summaries).
    pub async fn packument(&self, name: &str) -> Result<Arc<Packument>, ResolveError> {
        self.source
            .packument(name)
            .await
            .map_err(|source| ResolveError::Source { name: name.to_owned(), source })?
            .ok_or_else(|| ResolveError::UnknownPackage { name: name.to_owned() })
    }

    /// The summary of `name`, from the cache or the source. With an npm version to prefer
    /// engines for, a summary that does not know `engines.npm` is replaced by the whole
    /// packument's.
    pub async fn summary(&self, name: &str) -> Result<Arc<Summary>, ResolveError> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(name).cloned());
        let found = match cached {
            Some(found) => found,
            None => {
                let err = |source| ResolveError::Source { name: name.to_owned(), source };
                let mut found = self.source.summary(name).await.map_err(err)?;
                if self.opts.npm_version.is_some() && found.as_ref().is_some_and(|s| !s.knows_npm_engines) {
                    found = self.source.packument(name).await.map_err(err)?.map(Summary::from_packument);
                }
                let found = found.map(Arc::new);
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(name.to_owned(), found.clone());
                }
                found
            }
        };
        found.ok_or_else(|| ResolveError::UnknownPackage { name: name.to_owned() })
    }

    async fn manifest(&self, summary: &Summary, key: &str) -> Result<Picked, ResolveError> {
        let name = &summary.name;
        if let Some(p) = &summary.packument {
            if p.versions.contains_key(key) {
                return Ok(Picked::InPackument(p.clone(), key.to_owned()));
            }
            let missing = MissingManifest { name: name.clone(), version: key.to_owned() };
            return Err(ResolveError::Source { name: name.clone(), source: Box::new(missing) });
        }
        let id = (name.clone(), key.to_owned());
        if let Some(m) = self.manifests.lock().ok().and_then(|c| c.get(&id).cloned()) {
            return Ok(Picked::Alone(m));
        }
        let m = self
            .source
            .manifest(name, key)
            .await
            .map_err(|source| ResolveError::Source { name: name.clone(), source })?
            .ok_or_else(|| ResolveError::Source {
                name: name.clone(),
                source: Box::new(MissingManifest { name: name.clone(), version: key.to_owned() }),
            })?;
        let m = Arc::new(m);
        if let Ok(mut c) = self.manifests.lock() {
            c.insert(id, m.clone());
        }
        Ok(Picked::Alone(m))
    }

    /// Resolve one request to a version and its integrity.
    pub async fn resolve(&self, request: &Request) -> Result<Resolved, ResolveError> {
        let mut summary = self.summary(&request.package).await?;
        if let Err(e) = pick_version(&summary, &request.spec, &self.opts) {
            if !matches!(e, ResolveError::NoMatchingVersion { .. }) {
                return Err(e);
            }
            // A cached packument may predate the version asked for: ask past the cache once.
            let name = &request.package;
            let newer = self
                .source
                .refresh(name)
                .await
                .map_err(|source| ResolveError::Source { name: name.clone(), source })?;
            let Some(newer) = newer else { return Err(e) };
            let newer = Arc::new(Summary::from_packument(newer));
            if let Ok(mut c) = self.cache.lock() {
                c.insert(name.clone(), Some(newer.clone()));
            }
            summary = newer;
        }
        let key = pick_version(&summary, &request.spec, &self.opts)?.to_owned();
        let picked = self.manifest(&summary, &key).await?;
        let resolved = |semver, integrity, picked| Resolved {
            name: request.name.clone(),
            summary: summary.clone(),
            version: key.clone(),
            semver,
            integrity,
            picked,
        };
        let (integrity, semver) = {
            let manifest = match &picked {
                Picked::InPackument(p, k) => &p.versions[k],
                Picked::Alone(m) => m,
            };
            let version = &manifest.version;
            let no_integrity =
                || ResolveError::NoIntegrity { name: summary.name.clone(), version: version.clone() };
            // `dist.integrity` (normally sha512), else the legacy `dist.shasum` (sha1).
            let integrity = manifest
                .dist
                .integrity
                .as_deref()
                .and_then(|sri| sri.parse::<Integrity>().ok())
                .or_else(|| manifest.dist.shasum.as_deref().and_then(|h| Integrity::from_shasum(h).ok()))
                .ok_or_else(no_integrity)?;
            let semver = semver::parse_version(version).ok_or_else(no_integrity)?;
            (integrity, semver)
        };
        Ok(resolved(semver, integrity, picked))
    }
}
