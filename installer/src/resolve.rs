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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
}

impl Default for PickOptions {
    fn default() -> Self {
        PickOptions { default_tag: "latest".to_owned(), node_version: None, npm_version: None }
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
