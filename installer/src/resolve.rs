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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::Semaphore;

use indexer::model::{Manifest, Packument};
pub use indexer::source::{Candidate, ManifestSource, MemorySource, SourceError, Summary, candidates};
use indexer::tarballs::Integrity;

use super::error::ResolveError;
use super::request::{Request, VersionSpec};
use super::semver::{self, Version};

/// Preferences of the pick (npm-pick-manifest's options that matter here).
#[derive(Debug, Clone)]
pub struct PickOptions {
    /// The tag a bare range prefers (`latest`, npm's `--tag`).
    pub default_tag: String,
    /// The Node.js version to prefer engine-compatible versions for; `None` ignores engines.
    pub node_version: Option<Version>,
    /// The npm version for `engines.npm`; `None` ignores it.
    pub npm_version: Option<Version>,
    /// Versions to keep when a range allows them (registry name → versions): what a lockfile
    /// holds, for `ims update NAME`, which moves only NAME, as arborist keeps locked nodes that
    /// still satisfy their edges. The highest kept version in range wins over the rules below.
    pub prefer: Arc<BTreeMap<String, Vec<String>>>,
}

impl Default for PickOptions {
    fn default() -> Self {
        PickOptions {
            default_tag: "latest".to_owned(),
            node_version: None,
            npm_version: None,
            prefer: Arc::default(),
        }
    }
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
        other => {
            return Err(ResolveError::Local {
                spec: other.to_string(),
                reason: format!("{} is not in the registry: it names a place, not a version", summary.name),
            });
        }
    };

    // A version to keep (a locked one), when the range allows it.
    if let Some(kept) = opts.prefer.get(&summary.name) {
        let best = kept
            .iter()
            .filter_map(|k| Some((semver::parse_version(k)?, summary.get(k)?)))
            .filter(|(v, _)| range.satisfies(v))
            .max_by(|a, b| a.0.cmp(&b.0));
        if let Some((_, c)) = best {
            return Ok(&c.version);
        }
    }
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

/// Where a resolved package comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The registry: the packument's `dist` says where and what hash.
    Registry,
    /// A folder linked into `node_modules` (a workspace, a `file:` or `link:` directory):
    /// `path` is relative to the project root (npm's `resolved` for the link).
    Link {
        /// The folder, relative to the project root, `/`-separated.
        path: String,
    },
    /// A tarball that is not the registry's: a `file:` tarball, a URL, or a packed git
    /// checkout. `resolved` is what the lockfile records.
    Tarball {
        /// npm's `resolved` (`file:x.tgz`, the URL, `git+…#<commit>`).
        resolved: String,
        /// From git (npm records no integrity for it).
        git: bool,
    },
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
    /// What the tarball must hash to (`dist.integrity`, else `dist.shasum`); `None` for a
    /// linked folder.
    pub integrity: Option<Integrity>,
    /// Where it comes from.
    pub origin: Origin,
    picked: Picked,
}

impl Resolved {
    /// A package that is not picked from the registry (a linked folder, a tarball, a git
    /// checkout): `manifest` is its `package.json`, as the only version of its summary.
    pub fn local(
        name: &str,
        manifest: Manifest,
        origin: Origin,
        integrity: Option<Integrity>,
    ) -> Result<Self, ResolveError> {
        let semver = semver::parse_version(&manifest.version).ok_or_else(|| {
            ResolveError::BadLocalVersion { name: manifest.name.clone(), version: manifest.version.clone() }
        })?;
        let summary = Summary {
            name: manifest.name.clone(),
            dist_tags: BTreeMap::new(),
            versions: vec![Candidate {
                version: manifest.version.clone(),
                deprecated: false,
                engine_node: manifest.engine("node").map(str::to_owned),
                engine_npm: manifest.engine("npm").map(str::to_owned),
            }],
            unpublished: false,
            knows_npm_engines: true,
            packument: None,
        };
        Ok(Resolved {
            name: name.to_owned(),
            summary: Arc::new(summary),
            version: manifest.version.clone(),
            semver,
            integrity,
            origin,
            picked: Picked::Alone(Arc::new(manifest)),
        })
    }

    /// A linked folder (`node_modules/x` is a symbolic link to it).
    pub fn is_link(&self) -> bool {
        matches!(self.origin, Origin::Link { .. })
    }

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

/// A summary being fetched ahead: `None` when that fetch failed (the caller that needs the
/// summary then asks again itself, and gets the error as its own).
type PendingSummary = Shared<BoxFuture<'static, Option<Option<Arc<Summary>>>>>;

/// What the resolver knows of a package name.
#[derive(Clone)]
enum Slot {
    /// Fetched: the summary, or `None` when the source has no such package.
    Ready(Option<Arc<Summary>>),
    /// Being fetched ahead.
    Pending(PendingSummary),
}

/// Called with every version the resolver picks (see [`Resolver::on_pick`]).
pub type PickHook = Arc<dyn Fn(&Resolved) + Send + Sync>;

/// How far ahead the resolver fetches.
struct Ahead {
    /// Bounds the fetches in flight at once.
    slots: Arc<Semaphore>,
    /// The `(package, spec)` requests already expanded ahead, so each is expanded once.
    expanded: Mutex<HashSet<(String, String)>>,
    /// The `(package, version)` picks whose dependencies were already asked for: a version
    /// picked again (by every edge it satisfies) is not read again.
    followed: Mutex<HashSet<(String, String)>>,
}

struct Inner<S> {
    source: S,
    opts: PickOptions,
    cache: Mutex<HashMap<String, Slot>>,
    manifests: Mutex<HashMap<(String, String), Arc<Manifest>>>,
    ahead: Option<Ahead>,
    on_pick: Option<PickHook>,
}

/// Resolves requests against a [`ManifestSource`], reading each summary once and each picked
/// manifest once.
///
/// With [`fetch_ahead`](Self::fetch_ahead), the moment a version is picked the resolver asks
/// the source for the summaries of all its dependencies and peers in the background, picks
/// their versions as they arrive and goes on down the tree the same way, with one shared
/// in-flight entry per package name (nothing is fetched twice). The tree is still built in
/// npm's order ([`ideal_tree::build`](super::ideal_tree::build)) from what has arrived, so the
/// result is the same; only the waiting changes: a tree `d` levels deep takes about `d`
/// sequential request rounds instead of one per node.
pub struct Resolver<S> {
    inner: Arc<Inner<S>>,
}

impl<S> std::fmt::Debug for Resolver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("opts", &self.inner.opts)
            .field("fetch_ahead", &self.inner.ahead.is_some())
            .finish_non_exhaustive()
    }
}

/// Fetch the summary of `name` from `source` (the whole packument's when engines.npm must be
/// known and the summary does not know it).
async fn load_summary<S: ManifestSource>(
    source: &S,
    opts: &PickOptions,
    name: &str,
) -> Result<Option<Summary>, SourceError> {
    let mut found = source.summary(name).await?;
    if opts.npm_version.is_some() && found.as_ref().is_some_and(|s| !s.knows_npm_engines) {
        found = source.packument(name).await?.map(Summary::from_packument);
    }
    Ok(found)
}

/// The registry packages a manifest's dependencies, optional dependencies and peers name
/// (not what it bundles, nor optional peers, which are only used when something else brings
/// them), with their specs.
fn dependency_requests(m: &Manifest) -> Vec<Request> {
    let bundled: HashSet<&str> = m.bundled_names().into_iter().collect();
    let peers = m.peer_dependencies.iter().filter(|(n, _)| !m.is_optional_peer(n));
    m.dependencies
        .iter()
        .chain(m.optional_dependencies.iter())
        .filter(|(n, _)| !bundled.contains(n.as_str()))
        .chain(peers)
        .filter_map(|(n, spec)| Request::from_dependency(n, spec).ok())
        .collect()
}

impl<S: ManifestSource + 'static> Resolver<S> {
    /// A resolver over `source` with these pick preferences (fetching only what is asked).
    pub fn new(source: S, opts: PickOptions) -> Self {
        Resolver {
            inner: Arc::new(Inner {
                source,
                opts,
                cache: Mutex::default(),
                manifests: Mutex::default(),
                ahead: None,
                on_pick: None,
            }),
        }
    }

    /// Fetch ahead (see the type's docs), at most `in_flight` requests at once. Needs a
    /// tokio runtime when resolving; without one nothing is fetched ahead.
    pub fn fetch_ahead(mut self, in_flight: usize) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.ahead = Some(Ahead {
                slots: Arc::new(Semaphore::new(in_flight.max(1))),
                expanded: Mutex::default(),
                followed: Mutex::default(),
            });
        }
        self
    }

    /// Call `hook` with every version picked, ahead or not, as soon as it is picked (an
    /// installer starts its tarball download there). A version picked ahead may end up not in
    /// the tree, when another version already placed satisfies the edge.
    pub fn on_pick(mut self, hook: PickHook) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.on_pick = Some(hook);
        }
        self
    }

    /// The pick preferences.
    pub fn options(&self) -> &PickOptions {
        &self.inner.opts
    }

    /// The whole packument of `name`, from the source (not cached: resolution itself reads
    /// summaries).
    pub async fn packument(&self, name: &str) -> Result<Arc<Packument>, ResolveError> {
        self.inner
            .source
            .packument(name)
            .await
            .map_err(|source| ResolveError::Source { name: name.to_owned(), source })?
            .ok_or_else(|| ResolveError::UnknownPackage { name: name.to_owned() })
    }

    /// Start fetching (and picking, and so on down) what `requests` need, in the background.
    /// Does nothing unless [`fetch_ahead`](Self::fetch_ahead) is on.
    pub fn prefetch(&self, requests: &[Request]) {
        Inner::prefetch(&self.inner, requests);
    }

    /// The summary of `name`, from the cache, a fetch ahead in flight, or the source. With an
    /// npm version to prefer engines for, a summary that does not know `engines.npm` is
    /// replaced by the whole packument's.
    pub async fn summary(&self, name: &str) -> Result<Arc<Summary>, ResolveError> {
        self.inner.summary(name).await
    }

    /// Resolve one request to a version and its integrity.
    pub async fn resolve(&self, request: &Request) -> Result<Resolved, ResolveError> {
        let resolved = self.inner.resolve(request).await?;
        Inner::picked(&self.inner, &resolved);
        Ok(resolved)
    }
}

impl<S: ManifestSource + 'static> Inner<S> {
    fn slot(&self, name: &str) -> Option<Slot> {
        self.cache.lock().ok().and_then(|c| c.get(name).cloned())
    }

    fn set_ready(&self, name: &str, found: Option<Arc<Summary>>) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(name.to_owned(), Slot::Ready(found));
        }
    }

    async fn summary(self: &Arc<Self>, name: &str) -> Result<Arc<Summary>, ResolveError> {
        let ahead = match self.slot(name) {
            Some(Slot::Ready(found)) => Some(found),
            Some(Slot::Pending(fetch)) => fetch.await,
            None => self.register(name).await,
        };
        let found = match ahead {
            Some(found) => found,
            // Not asked yet, or the fetch ahead failed: ask now, and keep the error.
            None => {
                let found = load_summary(&self.source, &self.opts, name)
                    .await
                    .map_err(|source| ResolveError::Source { name: name.to_owned(), source })?
                    .map(Arc::new);
                self.set_ready(name, found.clone());
                found
            }
        };
        found.ok_or_else(|| ResolveError::UnknownPackage { name: name.to_owned() })
    }

    /// Fetch `name`'s summary as an entry of the cache, registered before it is sent, so
    /// that a fetch ahead of the same name waits for it rather than asking again. `None`
    /// when the fetch failed (the caller asks again for the error).
    fn register(self: &Arc<Self>, name: &str) -> PendingSummary {
        let Ok(mut cache) = self.cache.lock() else {
            return futures_util::future::ready(None).boxed().shared();
        };
        match cache.get(name) {
            Some(Slot::Ready(found)) => futures_util::future::ready(Some(found.clone())).boxed().shared(),
            Some(Slot::Pending(fetch)) => fetch.clone(),
            None => {
                let (me, n) = (self.clone(), name.to_owned());
                let fetch = async move {
                    match load_summary(&me.source, &me.opts, &n).await {
                        Ok(found) => {
                            let found = found.map(Arc::new);
                            me.set_ready(&n, found.clone());
                            Some(found)
                        }
                        Err(_) => None,
                    }
                }
                .boxed()
                .shared();
                cache.insert(name.to_owned(), Slot::Pending(fetch.clone()));
                fetch
            }
        }
    }

    /// After a version is picked: tell the hook, and fetch ahead what it depends on.
    fn picked(this: &Arc<Self>, resolved: &Resolved) {
        if let Some(hook) = &this.on_pick {
            hook(resolved);
        }
        if let Some(ahead) = &this.ahead {
            let id = (resolved.package().to_owned(), resolved.version.clone());
            if ahead.followed.lock().is_ok_and(|mut f| f.insert(id)) {
                Inner::prefetch(this, &dependency_requests(resolved.manifest()));
            }
        }
    }

    fn prefetch(this: &Arc<Self>, requests: &[Request]) {
        let Some(ahead) = &this.ahead else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        for request in requests {
            let id = (request.package.clone(), request.spec.to_string());
            let fresh = ahead.expanded.lock().is_ok_and(|mut e| e.insert(id));
            if !fresh {
                continue;
            }
            // One in-flight entry per name, shared by every request of it.
            let name = request.package.clone();
            if let Ok(mut cache) = this.cache.lock()
                && !cache.contains_key(&name)
            {
                let (me, slots, n) = (this.clone(), ahead.slots.clone(), name.clone());
                let fetch = async move {
                    let _slot = slots.acquire_owned().await.ok()?;
                    match load_summary(&me.source, &me.opts, &n).await {
                        Ok(found) => {
                            let found = found.map(Arc::new);
                            me.set_ready(&n, found.clone());
                            Some(found)
                        }
                        Err(e) => {
                            tracing::debug!(package = %n, error = %e, "fetch ahead failed; asked again when needed");
                            None
                        }
                    }
                }
                .boxed()
                .shared();
                cache.insert(name, Slot::Pending(fetch));
            }
            // Pick it when it arrives, and go on down from there.
            let (me, request) = (this.clone(), request.clone());
            runtime.spawn(async move {
                if let Ok(resolved) = me.resolve_ahead(&request).await {
                    Inner::picked(&me, &resolved);
                }
            });
        }
    }

    /// [`resolve`](Self::resolve) for a fetch ahead: no refresh past the cache (the request
    /// itself does that when it comes).
    async fn resolve_ahead(&self, request: &Request) -> Result<Resolved, ResolveError> {
        let summary = match self.slot(&request.package) {
            Some(Slot::Ready(Some(s))) => s,
            Some(Slot::Pending(fetch)) => match fetch.await {
                Some(Some(s)) => s,
                _ => return Err(ResolveError::UnknownPackage { name: request.package.clone() }),
            },
            _ => return Err(ResolveError::UnknownPackage { name: request.package.clone() }),
        };
        self.resolve_in(request, summary).await
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

    async fn resolve(self: &Arc<Self>, request: &Request) -> Result<Resolved, ResolveError> {
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
            self.set_ready(name, Some(newer.clone()));
            summary = newer;
        }
        self.resolve_in(request, summary).await
    }

    /// Pick from `summary` and read the picked manifest.
    async fn resolve_in(&self, request: &Request, summary: Arc<Summary>) -> Result<Resolved, ResolveError> {
        let key = pick_version(&summary, &request.spec, &self.opts)?.to_owned();
        let picked = self.manifest(&summary, &key).await?;
        let (integrity, semver) = {
            let manifest = match &picked {
                Picked::InPackument(p, k) => &p.versions[k],
                Picked::Alone(m) => m,
            };
            let version = &manifest.version;
            let no_integrity =
                || ResolveError::NoIntegrity { name: summary.name.clone(), version: version.clone() };
            // `dist.integrity` (normally sha512), else — only when there is none — the legacy
            // `dist.shasum` (sha1). One that is there but does not parse is an error, never a
            // downgrade to sha1.
            let integrity = match manifest.dist.integrity.as_deref().filter(|s| !s.trim().is_empty()) {
                Some(sri) => sri.parse::<Integrity>().map_err(|source| ResolveError::BadIntegrity {
                    name: summary.name.clone(),
                    version: version.clone(),
                    source,
                })?,
                None => manifest
                    .dist
                    .shasum
                    .as_deref()
                    .and_then(|h| Integrity::from_shasum(h).ok())
                    .ok_or_else(no_integrity)?,
            };
            let semver = semver::parse_version(version).ok_or_else(no_integrity)?;
            (integrity, semver)
        };
        Ok(Resolved {
            name: request.name.clone(),
            summary,
            version: key,
            semver,
            integrity: Some(integrity),
            origin: Origin::Registry,
            picked,
        })
    }
}
