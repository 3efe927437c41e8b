//! Packages from places other than the registry, as npm 11 installs them: a tarball on disk
//! (`file:x.tgz`), a tarball URL, a git repository. Each is made a tarball in the store —
//! read, downloaded, or a checkout packed as `npm pack` packs it ([`crate::pack`]) — and
//! resolved from the `package.json` inside. The lockfile records npm's `resolved` and, except
//! for git (npm records none), the tarball's integrity.
//!
//! A git checkout's tarball is remembered in the store by its `resolved` (`<repo>#<commit>`):
//! installing that commit again touches neither git nor the network.

use std::collections::HashMap;
use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use indexer::model::Manifest;
use indexer::tarballs::{Algorithm, Integrity, TarballStore};
use indexer::upstream::Registry;

use crate::error::ResolveError;
use crate::git::{Git, GitError, GitSpec, Picked};
use crate::request::VersionSpec;
use crate::resolve::{Origin, Resolved};
use crate::scripts::ScriptPolicy;

/// Builds a git dependency whose scripts the user allowed, before it is packed: its
/// dependencies (development ones included) installed in the checkout, then its build
/// scripts run ([`GIT_BUILD_EVENTS`](crate::scripts::GIT_BUILD_EVENTS)), as npm does. The
/// install engine supplies it.
pub trait Prepare: Send + Sync {
    /// Build the package `package` checked out at `checkout`.
    fn prepare<'a>(&'a self, checkout: &'a Path, package: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// Resolves and fetches `file:` tarballs, tarball URLs and git dependencies. Cheap to clone.
#[derive(Clone)]
pub struct Places {
    inner: Arc<Inner>,
}

struct Inner {
    store: TarballStore,
    registry: Registry,
    root: PathBuf,
    git: Git,
    scripts: ScriptPolicy,
    preparer: Option<Arc<dyn Prepare>>,
    /// Each spec resolved once per install.
    memo: Mutex<HashMap<String, Resolved>>,
}

impl std::fmt::Debug for Places {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Places").field("root", &self.inner.root).finish_non_exhaustive()
    }
}

fn origin_error(spec: &str, reason: impl Into<String>, hint: impl Into<String>) -> ResolveError {
    ResolveError::Origin { spec: spec.to_owned(), reason: reason.into(), hint: hint.into() }
}

fn git_error(spec: &str, e: GitError) -> ResolveError {
    let hint = match &e {
        GitError::BadSpec(_) => {
            "write it as npm does: git+https://host/repo.git#ref, github:user/repo, or a git+file:// URL"
        }
        GitError::NoSuchRef(_) => {
            "check the branch, tag or commit after `#` (`git ls-remote URL` lists them)"
        }
        GitError::Command(_) => {
            "check that git is installed and the repository is reachable (`git ls-remote URL`)"
        }
    };
    origin_error(spec, e.to_string(), hint)
}

impl Places {
    /// Places resolved relative to the project `root`, kept in `store`, downloaded through
    /// `registry`'s client (its trust, proxy and deadline settings), git run as `git`;
    /// `scripts` says whose `prepare` scripts may run, and `preparer` builds those (without
    /// one, such a dependency is an error rather than a package other than npm's).
    pub fn new(
        store: TarballStore,
        registry: Registry,
        root: PathBuf,
        git: Git,
        scripts: ScriptPolicy,
        preparer: Option<Arc<dyn Prepare>>,
    ) -> Self {
        Places {
            inner: Arc::new(Inner {
                store,
                registry,
                root,
                git,
                scripts,
                preparer,
                memo: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Resolve `spec` (a [`VersionSpec::File`], [`VersionSpec::Remote`] or
    /// [`VersionSpec::Git`]) for the folder `name` (empty: the package's own name).
    pub async fn resolve(&self, name: &str, spec: &VersionSpec) -> Result<Resolved, ResolveError> {
        let key = format!("{name}@{spec}");
        if let Some(r) = self.inner.memo.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(r.clone());
        }
        let r = match spec {
            VersionSpec::File { path, raw } => self.file(name, path, raw).await?,
            VersionSpec::Remote(url) => self.remote(name, url).await?,
            VersionSpec::Git(raw) => self.git(name, raw).await?,
            other => return Err(origin_error(&other.to_string(), "not a tarball or git spec", "")),
        };
        self.inner.memo.lock().unwrap_or_else(|e| e.into_inner()).insert(key, r.clone());
        Ok(r)
    }

    async fn file(&self, name: &str, path: &str, raw: &str) -> Result<Resolved, ResolveError> {
        let file = self.inner.root.join(path);
        let max = self.inner.store.limits().max_tarball_bytes;
        let bytes = read_bounded(&file, max).map_err(|reason| {
            origin_error(raw, reason, "check the path: it is relative to the package.json that names it")
        })?;
        let integrity = Integrity::of_bytes(Algorithm::Sha512, &bytes);
        let dir = self.store_bytes(raw, &integrity, bytes).await?;
        let origin = Origin::Tarball { resolved: format!("file:{path}"), git: false };
        local(name, raw, &dir, origin, integrity)
    }

    async fn remote(&self, name: &str, url: &str) -> Result<Resolved, ResolveError> {
        let (integrity, unpacked) =
            self.inner.registry.fetch_new_tarball(&self.inner.store, url).await.map_err(|e| {
                origin_error(
                    url,
                    format!("cannot download it: {e}"),
                    "check the URL (and --offline, proxy and TLS settings)",
                )
            })?;
        let origin = Origin::Tarball { resolved: url.to_owned(), git: false };
        local(name, url, &unpacked.path, origin, integrity)
    }

    async fn git(&self, name: &str, raw: &str) -> Result<Resolved, ResolveError> {
        let spec = GitSpec::parse(raw).map_err(|e| git_error(raw, e))?;
        // A commit named by its full hash and packed before: nothing to ask git.
        if let Some(c) = spec.committish.as_deref().filter(|c| crate::git::is_commit(c))
            && let Some(r) = self.cached_git(name, raw, &spec.resolved(&c.to_ascii_lowercase()))?
        {
            return Ok(r);
        }
        if self.inner.registry.is_offline() {
            return Err(origin_error(raw, "resolving a git ref needs the network", "run without --offline"));
        }
        let (picked, url) = self.inner.git.resolve(&spec).await.map_err(|e| git_error(raw, e))?;
        let resolved = spec.resolved(&picked.commit);
        if let Some(r) = self.cached_git(name, raw, &resolved)? {
            return Ok(r);
        }
        let (integrity, dir) = self.pack_commit(raw, &[url], &picked, &resolved).await?;
        local(name, raw, &dir, Origin::Tarball { resolved, git: true }, integrity)
    }

    /// The git checkout `resolved` packed before, from the store.
    fn cached_git(&self, name: &str, raw: &str, resolved: &str) -> Result<Option<Resolved>, ResolveError> {
        let Some((integrity, dir)) = self.git_cache_get(resolved) else { return Ok(None) };
        let origin = Origin::Tarball { resolved: resolved.to_owned(), git: true };
        local(name, raw, &dir, origin, integrity).map(Some)
    }

    /// Check out `picked` (from the first of `urls` that works), pack it as npm packs it,
    /// store the tarball and remember it under `resolved`.
    async fn pack_commit(
        &self,
        raw: &str,
        urls: &[String],
        picked: &Picked,
        resolved: &str,
    ) -> Result<(Integrity, PathBuf), ResolveError> {
        let store = &self.inner.store;
        let tmp = store.root().join("tmp");
        let work = tempfile::Builder::new()
            .prefix("git-")
            .tempdir_in(&tmp)
            .map_err(|e| origin_error(raw, format!("cannot make a folder in {}: {e}", tmp.display()), ""))?;
        let checkout = work.path().join("repo");
        let mut last = None;
        for url in urls {
            match self.inner.git.checkout(url, picked, &checkout).await {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) => {
                    let _ = fs::remove_dir_all(&checkout);
                    last = Some(e);
                }
            }
        }
        if let Some(e) = last {
            return Err(git_error(raw, e));
        }
        let built = self.build_if_allowed(raw, &checkout).await?;
        let max = store.limits().max_tarball_bytes;
        let dir = checkout.clone();
        let bytes = tokio::task::spawn_blocking(move || crate::pack::pack(&dir, max))
            .await
            .map_err(|e| origin_error(raw, format!("packing failed: {e}"), ""))?
            .map_err(|e| {
                origin_error(
                    raw,
                    format!("cannot pack the checkout: {e}"),
                    "the repository must hold a package (a package.json at its top)",
                )
            })?;
        let integrity = Integrity::of_bytes(Algorithm::Sha512, &bytes);
        let dir = self.store_bytes(raw, &integrity, bytes).await?;
        self.git_cache_put(&cache_key(resolved, built), &integrity);
        Ok((integrity, dir))
    }

    /// npm builds a git dependency that has build scripts (`prepare` and the install
    /// scripts) before packing it, once the user approved its scripts; unapproved, npm 11
    /// packs the repository as committed, and so does ims.
    /// Whether it was built.
    async fn build_if_allowed(&self, raw: &str, checkout: &Path) -> Result<bool, ResolveError> {
        let Some(name) = self.to_build(checkout) else { return Ok(false) };
        let Some(preparer) = &self.inner.preparer else {
            return Err(origin_error(
                raw,
                format!(
                    "{name}'s scripts are allowed, and a git dependency cannot be built here (nested too deep?)"
                ),
                format!(
                    "leave {name} out of allowScripts/--allow-scripts to install the repository as committed"
                ),
            ));
        };
        tracing::info!(package = %name, "building the git dependency before packing it");
        preparer.prepare(checkout, &name).await.map(|()| true).map_err(|e| {
            origin_error(
                raw,
                format!("building {name} failed: {e}"),
                format!("fix its build, or leave {name} out of allowScripts to install it unbuilt"),
            )
        })
    }

    /// Make the package the lockfile entry `resolved` names available unpacked in the store:
    /// a `file:` tarball (read from disk, checked against `integrity`) or a git commit (packed
    /// before, else checked out and packed). `None` for other URLs (the registry client's).
    pub async fn fetch_locked(
        &self,
        resolved: &str,
        integrity: Option<&Integrity>,
    ) -> Option<Result<PathBuf, ResolveError>> {
        if let Some(path) = resolved.strip_prefix("file:") {
            return Some(self.fetch_file(resolved, path, integrity).await);
        }
        if is_git_resolved(resolved) {
            return Some(self.fetch_git(resolved).await);
        }
        None
    }

    async fn fetch_file(
        &self,
        resolved: &str,
        path: &str,
        integrity: Option<&Integrity>,
    ) -> Result<PathBuf, ResolveError> {
        let Some(integrity) = integrity else {
            return Err(origin_error(
                resolved,
                "the lockfile records no integrity for it",
                "run `ims install` to record it",
            ));
        };
        if let Some(dir) = self.inner.store.unpacked(integrity) {
            return Ok(dir);
        }
        let max = self.inner.store.limits().max_tarball_bytes;
        let bytes = read_bounded(&self.inner.root.join(path), max)
            .map_err(|reason| origin_error(resolved, reason, ""))?;
        self.store_bytes(resolved, integrity, bytes).await
    }

    async fn fetch_git(&self, resolved: &str) -> Result<PathBuf, ResolveError> {
        if let Some((_, dir)) = self.git_cache_get(resolved) {
            return Ok(dir);
        }
        let spec = GitSpec::parse(resolved).map_err(|e| git_error(resolved, e))?;
        let Some(commit) = spec.committish.clone().filter(|c| crate::git::is_commit(c)) else {
            return Err(origin_error(
                resolved,
                "the lockfile's git URL names no commit",
                "run `ims install` to resolve it again",
            ));
        };
        if self.inner.registry.is_offline() {
            return Err(origin_error(
                resolved,
                "this commit is not in the store, and fetching it needs the network",
                "run without --offline",
            ));
        }
        let picked = Picked { commit: commit.to_ascii_lowercase(), branch: None };
        let canonical = spec.resolved(&picked.commit);
        self.pack_commit(resolved, &spec.fetch, &picked, &canonical).await.map(|(_, dir)| dir)
    }

    /// Verify `bytes` against `integrity`, store and unpack them; the unpacked folder.
    async fn store_bytes(
        &self,
        what: &str,
        integrity: &Integrity,
        bytes: Vec<u8>,
    ) -> Result<PathBuf, ResolveError> {
        let store = self.inner.store.clone();
        let expected = integrity.clone();
        tokio::task::spawn_blocking(move || store.put_and_unpack(&expected, &bytes))
            .await
            .map_err(|e| origin_error(what, format!("unpacking failed: {e}"), ""))?
            .map(|u| u.path)
            .map_err(|e| {
                origin_error(
                    what,
                    format!("not a usable package tarball: {e}"),
                    "check that it is a .tgz made by `npm pack`",
                )
            })
    }

    fn git_cache_file(&self, resolved: &str) -> PathBuf {
        let key = Integrity::of_bytes(Algorithm::Sha512, resolved.as_bytes()).primary().hex();
        self.inner.store.root().join("git").join(&key[..64])
    }

    /// The package at `dir` when it has build scripts the policy allows (npm builds it).
    fn to_build(&self, dir: &Path) -> Option<String> {
        let text = fs::read_to_string(dir.join("package.json")).ok()?;
        let v = serde_json::from_str::<serde_json::Value>(&text).ok()?;
        let name = v.get("name").and_then(|n| n.as_str()).unwrap_or("").to_owned();
        let scripts = v.get("scripts").and_then(|s| s.as_object())?;
        let builds = crate::scripts::GIT_BUILD_EVENTS.iter().any(|s| scripts.contains_key(*s));
        (builds && self.inner.scripts.allows(&name)).then_some(name)
    }

    /// The packed commit `resolved` as this install would pack it: built when its scripts are
    /// allowed and it has build scripts, as committed otherwise.
    fn git_cache_get(&self, resolved: &str) -> Option<(Integrity, PathBuf)> {
        if let Some((i, dir)) = self.git_cache_entry(&cache_key(resolved, true))
            && self.to_build(&dir).is_some()
        {
            return Some((i, dir));
        }
        let (i, dir) = self.git_cache_entry(&cache_key(resolved, false))?;
        self.to_build(&dir).is_none().then_some((i, dir))
    }

    fn git_cache_entry(&self, resolved: &str) -> Option<(Integrity, PathBuf)> {
        let text = fs::read_to_string(self.git_cache_file(resolved)).ok()?;
        let (line_resolved, integrity) = text.trim().split_once('\n')?;
        if line_resolved != resolved {
            return None;
        }
        let integrity: Integrity = integrity.trim().parse().ok()?;
        let dir = self.inner.store.unpacked(&integrity)?;
        Some((integrity, dir))
    }

    fn git_cache_put(&self, resolved: &str, integrity: &Integrity) {
        let file = self.git_cache_file(resolved);
        let write = || -> std::io::Result<()> {
            let dir = file.parent().unwrap_or(Path::new("."));
            fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(self.inner.store.root().join("tmp"))?;
            std::io::Write::write_all(&mut tmp, format!("{resolved}\n{integrity}\n").as_bytes())?;
            tmp.persist(&file).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::warn!(resolved, error = %e, "cannot remember the packed git commit");
        }
    }
}

/// The git cache's key of the commit `resolved`, packed built or as committed.
fn cache_key(resolved: &str, built: bool) -> String {
    if built { format!("{resolved} built") } else { resolved.to_owned() }
}

/// Whether a lockfile's `resolved` is a git URL (`git+…`, `git://…`).
pub fn is_git_resolved(resolved: &str) -> bool {
    let lower = resolved.to_ascii_lowercase();
    lower.starts_with("git+") || lower.starts_with("git://")
}

/// The package unpacked at `dir`, resolved for the folder `name` (its own name when empty).
fn local(
    name: &str,
    raw: &str,
    dir: &Path,
    origin: Origin,
    integrity: Integrity,
) -> Result<Resolved, ResolveError> {
    let file = dir.join("package.json");
    let text = fs::read_to_string(&file)
        .map_err(|e| origin_error(raw, format!("the package has no readable package.json: {e}"), ""))?;
    let manifest: Manifest = serde_json::from_str(text.strip_prefix('\u{feff}').unwrap_or(&text))
        .map_err(|e| origin_error(raw, format!("its package.json is not valid: {e}"), ""))?;
    if let Err(e) = indexer::names::validate(&manifest.name) {
        return Err(origin_error(
            raw,
            format!("its package.json names it {:?}, not a package name ({e})", manifest.name),
            "",
        ));
    }
    let folder = if name.is_empty() { manifest.name.clone() } else { name.to_owned() };
    Resolved::local(&folder, manifest, origin, Some(integrity))
}

/// Read at most `max` bytes of `path`, refusing a bigger file.
fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let file = fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("cannot read {}: {e}", path.display()),
    })?;
    let meta = file.metadata().map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > max {
        return Err(format!("{} is larger than the {max}-byte tarball limit", path.display()));
    }
    Ok(bytes)
}
