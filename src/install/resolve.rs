//! Which version a request gets: npm-pick-manifest's rules (spec
//! `npm-registry-and-installers.md` §1.9) over packuments from a [`ManifestSource`] — the local
//! index, a sparse replica, or an upstream registry, all behind one small trait.
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

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use indexer::model::{Manifest, Packument};
use indexer::tarballs::Integrity;

use super::error::ResolveError;
use super::request::{Request, VersionSpec};
use super::semver::{self, Version};

/// Boxed error from a manifest source.
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Where packuments come from. `Ok(None)` means "no such package" (a 404), which is final.
pub trait ManifestSource: Send + Sync {
    /// Fetch the packument of `name` (a registry name, scoped names with their `/`).
    fn packument(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Arc<Packument>>, SourceError>> + Send;

    /// A newer packument of `name` than [`packument`](Self::packument) gave, when that one
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
/// lookups, no round trip per package.
impl ManifestSource for indexer::Index {
    async fn packument(&self, name: &str) -> Result<Option<Arc<Packument>>, SourceError> {
        Ok(indexer::Index::packument(self, name).await?.map(Arc::new))
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

fn deprecated(m: &Manifest) -> bool {
    m.deprecated.as_deref().is_some_and(|d| !d.is_empty())
}

fn engine_ok(m: &Manifest, opts: &PickOptions) -> bool {
    let fits = |engine: &str, have: &Option<Version>| match (m.engine(engine), have) {
        (Some(range), Some(have)) => semver::parse_range(range)
            // npm checks engines with includePrerelease; an unreadable range never excludes.
            .is_none_or(|r| r.satisfies_with_prerelease(have, true)),
        _ => true,
    };
    fits("node", &opts.node_version) && fits("npm", &opts.npm_version)
}

/// Pick the manifest npm would install for `spec` from `packument`.
pub fn pick<'p>(
    packument: &'p Packument,
    spec: &VersionSpec,
    opts: &PickOptions,
) -> Result<&'p Manifest, ResolveError> {
    let no_match = || ResolveError::NoMatchingVersion {
        name: packument.name.clone(),
        spec: spec.to_string(),
        latest: packument.dist_tags.get("latest").cloned().unwrap_or_else(|| "none".to_owned()),
    };
    if packument.versions.is_empty() && packument.unpublished.is_some() {
        return Err(ResolveError::Unpublished { name: packument.name.clone() });
    }
    let range = match spec {
        VersionSpec::Tag(tag) => {
            let version = packument.dist_tags.get(tag).ok_or_else(no_match)?;
            return packument.versions.get(version).ok_or_else(no_match);
        }
        VersionSpec::Version(v) => {
            // Keys are usually canonical; fall back to comparing parsed versions.
            if let Some(m) = packument.versions.get(&v.to_string()) {
                return Ok(m);
            }
            return packument
                .versions
                .iter()
                .find(|(k, _)| semver::parse_version(k).as_ref() == Some(v))
                .map(|(_, m)| m)
                .ok_or_else(no_match);
        }
        VersionSpec::Range { range, .. } => range,
    };

    // Rule 3: the default tag, when it fits.
    if let Some(tagged) = packument.dist_tags.get(&opts.default_tag)
        && let (Some(v), Some(m)) = (semver::parse_version(tagged), packument.versions.get(tagged))
        && range.satisfies(&v)
        && !deprecated(m)
        && engine_ok(m, opts)
    {
        return Ok(m);
    }
    // Otherwise rank every satisfying version.
    let mut best: Option<((bool, bool, bool), Version, &Manifest)> = None;
    for (key, m) in &packument.versions {
        let Some(v) = semver::parse_version(key) else { continue };
        if !range.satisfies(&v) {
            continue;
        }
        let (dep_ok, eng_ok) = (!deprecated(m), engine_ok(m, opts));
        let rank = (dep_ok && eng_ok, eng_ok, dep_ok);
        let better = match &best {
            None => true,
            Some((r, bv, _)) => (rank, &v) > (*r, bv),
        };
        if better {
            best = Some((rank, v, m));
        }
    }
    best.map(|(_, _, m)| m).ok_or_else(no_match)
}

/// The outcome of resolving one request: which package version and how to fetch it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The folder name under `node_modules` (the alias for aliases).
    pub name: String,
    /// The packument it came from (shared; the manifest is `packument.versions[version]`).
    pub packument: Arc<Packument>,
    /// The picked version (the packument's key).
    pub version: String,
    /// The parsed version.
    pub semver: Version,
    /// What the tarball must hash to (`dist.integrity`, else `dist.shasum`).
    pub integrity: Integrity,
}

impl Resolved {
    /// The registry package name.
    pub fn package(&self) -> &str {
        &self.packument.name
    }

    /// The picked version's manifest.
    pub fn manifest(&self) -> &Manifest {
        // `version` is a key of `packument.versions` by construction.
        &self.packument.versions[&self.version]
    }
}

/// Resolves requests against a [`ManifestSource`], fetching each packument once.
#[derive(Debug)]
pub struct Resolver<S> {
    source: S,
    opts: PickOptions,
    cache: Mutex<HashMap<String, Option<Arc<Packument>>>>,
}

impl<S: ManifestSource> Resolver<S> {
    /// A resolver over `source` with these pick preferences.
    pub fn new(source: S, opts: PickOptions) -> Self {
        Resolver { source, opts, cache: Mutex::new(HashMap::new()) }
    }

    /// The pick preferences.
    pub fn options(&self) -> &PickOptions {
        &self.opts
    }

    /// The packument of `name`, from the cache or the source.
    pub async fn packument(&self, name: &str) -> Result<Arc<Packument>, ResolveError> {
        let cached = self.cache.lock().ok().and_then(|c| c.get(name).cloned());
        let found = match cached {
            Some(found) => found,
            None => {
                let found = self
                    .source
                    .packument(name)
                    .await
                    .map_err(|source| ResolveError::Source { name: name.to_owned(), source })?;
                if let Ok(mut c) = self.cache.lock() {
                    c.insert(name.to_owned(), found.clone());
                }
                found
            }
        };
        found.ok_or_else(|| ResolveError::UnknownPackage { name: name.to_owned() })
    }

    /// Resolve one request to a version and its integrity.
    pub async fn resolve(&self, request: &Request) -> Result<Resolved, ResolveError> {
        let mut packument = self.packument(&request.package).await?;
        if let Err(e) = pick(&packument, &request.spec, &self.opts) {
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
            if let Ok(mut c) = self.cache.lock() {
                c.insert(name.clone(), Some(newer.clone()));
            }
            packument = newer;
        }
        let manifest = pick(&packument, &request.spec, &self.opts)?;
        let version = manifest.version.clone();
        let no_integrity =
            || ResolveError::NoIntegrity { name: packument.name.clone(), version: version.clone() };
        // `dist.integrity` (normally sha512), else the legacy `dist.shasum` (sha1).
        let integrity = manifest
            .dist
            .integrity
            .as_deref()
            .and_then(|sri| sri.parse::<Integrity>().ok())
            .or_else(|| manifest.dist.shasum.as_deref().and_then(|h| Integrity::from_shasum(h).ok()))
            .ok_or_else(no_integrity)?;
        let semver = semver::parse_version(&version).ok_or_else(no_integrity)?;
        // The manifest's `version` field is normally its key; use the key npm would use.
        let key = packument
            .versions
            .iter()
            .find(|(_, m)| std::ptr::eq(*m, manifest))
            .map(|(k, _)| k.clone())
            .unwrap_or(version);
        Ok(Resolved {
            name: request.name.clone(),
            packument: packument.clone(),
            version: key,
            semver,
            integrity,
        })
    }
}
