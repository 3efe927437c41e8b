//! The install engine: [`Installer::install`] resolves (from `package-lock.json` when it
//! matches, else through the source, a remote index in front), fetches every tarball into
//! the store (from the remote index's peer first, then the registry), lays out
//! `node_modules`, runs allowed scripts and saves, returning an [`InstallReport`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use indexer::remote::{RemoteIndex, RemoteStats};
use indexer::source::{ManifestSource, ReplicaSource};
use indexer::tarballs::Integrity;
use indexer::upstream::Registry;

use crate::ahead::TarballsAhead;
use crate::error::{InstallError, ResolveError};
use crate::link::{self, LayoutReport, Placement};
use crate::lockfile::{self, LockedPackage, Lockfile};
use crate::options::{Event, InstallOptions, Save};
use crate::places::{self, Places};
use crate::planner::ResolveQuery;
use crate::project::{DepKind, Project};
use crate::request::{Request, VersionSpec};
use crate::resolve::Resolver;
use crate::scripts::{self, ScriptPolicy};
use crate::{ideal_tree, tree};

type EventFn = Arc<dyn Fn(Event) + Send + Sync>;

/// What [`Installer::resolve`] decided: the project as it will be saved and the full
/// lockfile to lay out.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `package.json`, with the new specs added.
    pub project: Project,
    /// The resolved tree as a lockfile.
    pub lockfile: Lockfile,
    /// Whether the plan came from an existing `package-lock.json` (no resolution).
    pub from_lockfile: bool,
    /// The workspaces' `package.json` files this install changed (`-w`), saved with it.
    pub workspace_projects: Vec<Project>,
}

/// What [`Installer::fetch`] did.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// Every laid-out package with its unpacked store folder.
    pub placements: Vec<Placement>,
    /// Optional packages left out (wrong platform or failed fetch), by location.
    pub skipped_optional: Vec<String>,
    /// The locations whose install scripts may run: allowed under the package's registry
    /// identity ([`Installer::fetch`] checks a lockfile's claims against the registry).
    pub scripts_allowed: BTreeSet<String>,
}

/// What resolving from a peer's index cost, and where the packuments came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteIndexReport {
    /// What the replica asked of the peer.
    pub remote: RemoteStats,
    /// Packuments read from the peer's index.
    pub from_peer: usize,
    /// Packuments the peer's index lacked, asked of the source behind it.
    pub from_upstream: usize,
}

/// What a whole install did.
#[derive(Debug, Clone, Default)]
pub struct InstallReport {
    /// Packages in the tree (the project itself not counted).
    pub packages: usize,
    /// Whether the lockfile was used as is.
    pub from_lockfile: bool,
    /// How long deciding the tree took.
    pub resolve_time: Duration,
    /// The layout step's counts.
    pub layout: LayoutReport,
    /// Optional packages left out.
    pub skipped_optional: Vec<String>,
    /// Packages whose install scripts were not run (not allowed), `name@version`.
    pub scripts: Vec<String>,
    /// Packages whose install scripts ran (allowed).
    pub scripts_run: Vec<String>,
    /// Resolution from a peer's index, when one was linked and resolution was needed.
    pub remote_index: Option<RemoteIndexReport>,
    /// Tarballs from the linked peer: delivered by it, and not delivered (fetched upstream
    /// instead); `None` without a peer.
    pub remote_tarballs: Option<(usize, usize)>,
    /// Tarballs whose fetch started while the tree was being resolved.
    pub early_tarballs: usize,
}

/// The install engine: [`install`](Self::install) resolves, fetches, links, runs allowed
/// scripts and saves. The phases are public too, for callers that stop after one (a
/// resolution-only planner, a benchmark).
pub struct Installer<S> {
    opts: InstallOptions,
    source: S,
    resolver: Resolver<ReplicaSource<S>>,
    registry: Registry,
    remote: Option<Arc<RemoteIndex>>,
    on_event: Option<EventFn>,
    /// Tarballs started while resolving (`None` when they must not start early).
    ahead: Option<Arc<TarballsAhead>>,
    /// How many git dependencies' builds this install is inside (each builds in an install
    /// of its own; bounded).
    depth: usize,
}

/// The deepest chain of git dependencies built inside each other's builds.
const MAX_BUILD_DEPTH: usize = 3;

/// Builds an allowed git dependency in its checkout with an install of its own
/// ([`crate::places::Prepare`]).
struct NestedBuild<S> {
    source: S,
    registry: Registry,
    opts: InstallOptions,
    depth: usize,
}

impl<S: ManifestSource + Clone + 'static> crate::places::Prepare for NestedBuild<S> {
    fn prepare<'a>(
        &'a self,
        checkout: &'a Path,
        package: &'a str,
    ) -> futures_util::future::BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut opts = self.opts.clone();
            // npm's `npm install` in the checkout: every dependency, development ones too,
            // its own lockfile if it has one, nothing saved back.
            opts.project_dir = checkout.to_path_buf();
            opts.save = Save::No;
            (opts.omit_dev, opts.omit_optional, opts.omit_peer, opts.resolve_dev) =
                (false, false, false, true);
            (opts.frozen_lockfile, opts.clean, opts.use_lockfile) = (false, false, true);
            opts.workspaces = Vec::new();
            opts.all_workspaces = false;
            opts.progress = Arc::default();
            let mut nested = Installer::new(self.source.clone(), self.registry.clone(), opts);
            nested.depth = self.depth;
            nested.install(&[]).await.map_err(|e| e.to_string())?;
            let path = self.opts.path_env.clone();
            let events = crate::scripts::GIT_BUILD_EVENTS;
            let (dir, name) = (checkout.to_path_buf(), package.to_owned());
            tokio::task::spawn_blocking(move || {
                scripts::run_scripts(&dir, &dir, &name, path.as_ref(), events)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

impl<S> std::fmt::Debug for Installer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installer")
            .field("opts", &self.opts)
            .field("registry", &self.registry.base())
            .field("remote", &self.remote.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: ManifestSource + Clone + 'static> Installer<S> {
    /// An installer resolving through `source` and fetching tarballs from `registry`.
    pub fn new(source: S, registry: Registry, opts: InstallOptions) -> Self {
        // Dev, optional and peer packages are known only once the tree is built: under --omit
        // nothing starts early.
        let ahead = (!opts.omit_dev && !opts.omit_optional && !opts.omit_peer).then(|| {
            Arc::new(TarballsAhead::new(
                registry.clone(),
                opts.store.clone(),
                opts.platform.clone(),
                opts.concurrency,
            ))
        });
        let resolver = Self::resolver(ReplicaSource::without_peer(source.clone()), &opts, ahead.as_ref());
        Installer { opts, source, resolver, registry, remote: None, on_event: None, ahead, depth: 0 }
    }

    /// A resolver fetching ahead, starting each picked version's tarball when `ahead` is set.
    fn resolver<T: ManifestSource + 'static>(
        source: T,
        opts: &InstallOptions,
        ahead: Option<&Arc<TarballsAhead>>,
    ) -> Resolver<T> {
        let resolver = Resolver::new(source, opts.pick.clone()).fetch_ahead(opts.concurrency);
        match ahead {
            Some(ahead) => {
                let ahead = ahead.clone();
                resolver.on_pick(Arc::new(move |picked| ahead.start(picked)))
            }
            None => resolver,
        }
    }

    /// Use the peer `link` names: when the tree must be resolved, the peer's index goes in
    /// front of the source (asked for every block of the resolution in one round trip);
    /// tarballs come from the peer first (each verified against the plan's integrity), and
    /// from the registry when the peer does not deliver one. The connection is opened only
    /// when one of these is needed.
    pub fn with_remote(mut self, link: Arc<RemoteIndex>) -> Self {
        self.remote = Some(link);
        // The peer's tarballs go first: none start early from the registry.
        self.ahead = None;
        self.resolver = Self::resolver(ReplicaSource::without_peer(self.source.clone()), &self.opts, None);
        self
    }

    /// Call `f` at each [`Event`] (on the install's task: keep it short).
    pub fn on_event(mut self, f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(f));
        self
    }

    fn emit(&self, event: Event) {
        if let Some(f) = &self.on_event {
            f(event);
        }
    }

    /// How many tarballs of `plan` the store does not have yet.
    pub fn missing_tarballs(&self, plan: &Plan) -> usize {
        plan.lockfile
            .entries()
            .into_iter()
            .filter(|e| self.wanted(e))
            .filter(|e| {
                e.integrity
                    .as_deref()
                    .and_then(|i| i.parse::<Integrity>().ok())
                    .is_none_or(|i| !self.opts.store.has_tarball(&i))
            })
            .count()
    }

    /// The options.
    pub fn options(&self) -> &InstallOptions {
        &self.opts
    }

    /// Decide the tree: from `package-lock.json` when it matches `package.json` and no SPEC
    /// was given, else by resolving (adding each SPEC to the project as npm saves it).
    pub async fn resolve(&self, specs: &[Request]) -> Result<Plan, InstallError> {
        Ok(self.resolve_reporting(specs).await?.0)
    }

    async fn resolve_reporting(
        &self,
        specs: &[Request],
    ) -> Result<(Plan, Option<RemoteIndexReport>), InstallError> {
        let (plan, peer) = self.resolve_plan(specs).await?;
        self.opts.progress.resolved.store(plan.lockfile.packages.len().saturating_sub(1), Ordering::Relaxed);
        Ok((plan, peer))
    }

    async fn resolve_plan(
        &self,
        specs: &[Request],
    ) -> Result<(Plan, Option<RemoteIndexReport>), InstallError> {
        let mut project = Project::load(&self.opts.project_dir)?;
        if self.opts.frozen_lockfile {
            let dir = &self.opts.project_dir;
            let Some(lock) = Lockfile::load(dir)? else {
                return Err(InstallError::NoLockfile { dir: dir.clone() });
            };
            let problems = sync_problems(&lock, &project);
            if !problems.is_empty() {
                return Err(InstallError::OutOfSync { problems });
            }
            return Ok((
                Plan { project, lockfile: lock, from_lockfile: true, workspace_projects: Vec::new() },
                None,
            ));
        }
        if specs.is_empty()
            && self.opts.use_lockfile
            && let Some(lock) = Lockfile::load(&self.opts.project_dir)?
            && lock_matches(&lock, &project)
        {
            return Ok((
                Plan { project, lockfile: lock, from_lockfile: true, workspace_projects: Vec::new() },
                None,
            ));
        }
        let (replica, remote_stats) = match &self.remote {
            Some(link) => {
                let source = self.remote_source(link, &project, specs).await?;
                let stats = source.stats();
                let resolver =
                    Resolver::new(source, self.opts.pick.clone()).fetch_ahead(self.opts.concurrency);
                (Some(resolver), Some((link, stats)))
            }
            None => (None, None),
        };
        let resolver = replica.as_ref().unwrap_or(&self.resolver);
        let kind = match self.opts.save {
            Save::Dev => DepKind::Dev,
            Save::Optional => DepKind::Optional,
            Save::No | Save::Prod => DepKind::Prod,
        };
        let root_name = project.name().unwrap_or_else(|| "(root)".to_owned());
        let root_dir = &self.opts.project_dir;
        let workspaces = crate::local::workspaces(&project, root_dir)?;
        let selected = self.selected(&workspaces)?;
        // `-w NAME`: the SPECs go into each named workspace's package.json instead of the root's.
        let mut targets: Vec<(String, Project)> = if selected.is_empty() {
            vec![(String::new(), project.clone())]
        } else {
            selected
                .iter()
                .map(|ws| Ok((ws.path.clone(), Project::load(&root_dir.join(&ws.path))?)))
                .collect::<Result<_, InstallError>>()?
        };
        let places = self.places(&project);
        for (base, target) in &mut targets {
            for spec in specs {
                add_spec(
                    resolver,
                    &places,
                    target,
                    base,
                    root_dir,
                    &root_name,
                    spec,
                    kind,
                    self.opts.save_exact,
                )
                .await?;
            }
        }
        let mut edited = BTreeMap::new();
        let mut workspace_projects = Vec::new();
        for (base, target) in targets {
            if base.is_empty() {
                project = target;
            } else {
                edited.insert(base, target.clone());
                workspace_projects.push(target);
            }
        }
        let requests = crate::local::rebased(project.requests(!self.opts.resolve_dev)?, "", root_dir);
        let build = tree::BuildOptions {
            root_name,
            legacy_peer_deps: self.opts.legacy_peer_deps,
            strict_peer_deps: self.opts.strict_peer_deps,
            root_dir: root_dir.clone(),
            workspaces,
            edited,
            places: Some(places.clone()),
            overrides: crate::overrides::Overrides::from_project(&project)
                .map_err(crate::error::ResolveError::from)?
                .map(Arc::new),
        };
        let tree = ideal_tree::build(resolver, tree::root_edges(&requests), build).await?;
        let lockfile = Lockfile::from_tree(&tree, &project);
        let peer = remote_stats.map(|(link, stats)| RemoteIndexReport {
            remote: link.connection().map(|c| c.stats()).unwrap_or_default(),
            from_peer: stats.from_peer.load(Ordering::Relaxed),
            from_upstream: stats.from_upstream.load(Ordering::Relaxed),
        });
        Ok((Plan { project, lockfile, from_lockfile: false, workspace_projects }, peer))
    }

    /// The peer's index in front of the source: connect, ask in one prefetch for every block
    /// resolving the project's tree reads, and open the index over the verified replica.
    async fn remote_source(
        &self,
        link: &RemoteIndex,
        project: &Project,
        specs: &[Request],
    ) -> Result<ReplicaSource<S>, InstallError> {
        let remote = link.connect().await?;
        // The roots as the resolution will ask (a bad package.json is reported by it).
        let mut roots = project.requests(false).unwrap_or_default();
        for spec in specs {
            roots.retain(|(_, r)| r.name != spec.name);
            roots.push((DepKind::Prod, spec.clone()));
        }
        remote.prefetch(&ResolveQuery { roots, pick: self.opts.pick.clone() }.to_keys()).await;
        let key = link.key().to_hex();
        let trie = hypertrie::Trie::open(remote.feed.clone())
            .await
            .map_err(|e| InstallError::PeerIndex { key: key.clone(), source: Box::new(e) })?;
        let index = indexer::Index::open(trie)
            .await
            .map_err(|e| InstallError::PeerIndex { key, source: Box::new(e) })?;
        Ok(ReplicaSource::new(index, self.source.clone(), self.registry.url().clone()))
    }

    fn wanted(&self, e: &LockedPackage) -> bool {
        // arborist's `shouldOmit`.
        let o = &self.opts;
        !(e.in_bundle
            || (o.omit_dev && e.dev)
            || (o.omit_optional && e.optional)
            || (o.omit_peer && e.peer)
            || (o.omit_dev && o.omit_optional && e.dev_optional))
    }

    /// Make every package of the plan available unpacked in the store: verified downloads,
    /// many at once. Optional packages that do not fit the platform or fail to fetch are left
    /// out, with npm's optional set: whatever only they need goes too (arborist's
    /// `optional-set.js`).
    pub async fn fetch(&self, plan: &Plan) -> Result<Fetched, InstallError> {
        self.check_folders(plan)?;
        let mut fetched = Fetched::default();
        let scope = self.scope(plan)?;
        let entries: Vec<LockedPackage> = plan
            .lockfile
            .entries()
            .into_iter()
            .filter(|e| self.wanted(e))
            .filter(|e| scope.as_ref().is_none_or(|s| s.contains(&e.location)))
            .collect();
        let graph = lockfile::Graph::new(&plan.lockfile, !self.opts.legacy_peer_deps);
        let mut failed: Vec<String> = Vec::new();
        for e in &entries {
            let platform_ok = self.opts.platform.allows(&e.os, &e.cpu, &e.libc);
            if e.optional || e.dev_optional {
                // npm's reify skips an optional package whose platform or engines do not fit
                // (whatever --force or engine-strict say).
                if !platform_ok || !self.opts.node.satisfies(e.engine_node.as_deref()) {
                    tracing::debug!(package = %e.location, "optional package does not fit this platform or Node.js");
                    failed.push(e.location.clone());
                }
            } else if !platform_ok {
                tracing::warn!(package = %e.location, "installing a package built for another platform");
            }
        }
        let mut left_out = graph.optional_set(failed.iter().map(String::as_str));
        let mut todo = Vec::new();
        // `file:` tarballs and git commits: only those the project's package.json files name.
        let mut from_places = Vec::new();
        let declared = crate::local::declared_places(&plan.project, &self.opts.project_dir)?;
        for e in entries.into_iter().filter(|e| !left_out.contains(&e.location)) {
            let place =
                e.resolved.as_deref().filter(|r| r.starts_with("file:") || places::is_git_resolved(r));
            if let Some(resolved) = place {
                let base = resolved.split('#').next().unwrap_or(resolved);
                let allowed = declared.contains(base)
                    || places::is_git_resolved(resolved)
                        && crate::git::GitSpec::parse(resolved).is_ok_and(|g| declared.contains(&g.base));
                if !allowed {
                    return Err(InstallError::Lockfile(crate::error::LockfileError::BadLocation {
                        path: self.opts.project_dir.join("package-lock.json"),
                        location: e.location.clone(),
                        reason: format!(
                            "it comes from {resolved:?}, which no package.json of the project names"
                        ),
                    }));
                }
                from_places.push(e);
                continue;
            }
            let Some(integrity) = e.integrity.as_deref().and_then(|i| i.parse::<Integrity>().ok()) else {
                return Err(InstallError::Unfetchable { location: e.location.clone() });
            };
            // npm leaves `resolved` out for some registries; the URL is then the registry's
            // canonical one.
            let resolved =
                e.resolved.clone().unwrap_or_else(|| self.registry.url().tarball(&e.package, &e.version));
            // A lockfile's URL is the project's word, not the registry's: fetched only from the
            // registry (npm's lockfile host is re-pointed at it) or a host the user allowed.
            if plan.from_lockfile && !self.opts.store.has_tarball(&integrity) && !declared.contains(&resolved)
            {
                let url = self.registry.url().fetch_url(&resolved);
                if let Some(host) = foreign_host(&url, self.registry.url().as_str(), &self.opts.tarball_hosts)
                {
                    return Err(InstallError::ForeignTarball {
                        location: e.location.clone(),
                        url,
                        registry: self.registry.url().to_string(),
                        host,
                    });
                }
            }
            todo.push((e, integrity, resolved));
        }
        // Tarballs from the peer: its connection is opened here when resolution did not need
        // it (a lockfile) and the store lacks some.
        let peers = match &self.remote {
            Some(link) if link.connection().is_none() && self.missing_tarballs(plan) > 0 => {
                match link.connect().await {
                    Ok(_) => Some(link.tarballs()),
                    Err(e) => {
                        tracing::warn!("cannot reach the peer for tarballs, using upstream: {e}");
                        None
                    }
                }
            }
            Some(link) => link.connection().map(|_| link.tarballs()),
            None => None,
        };
        let registry = &self.registry;
        let store = &self.opts.store;
        let progress = &self.opts.progress;
        let ahead = self.ahead.as_deref();
        progress.to_fetch.store(todo.len(), Ordering::Relaxed);
        let mut results = futures_util::stream::iter(todo)
            .map(|(e, integrity, resolved)| async move {
                if let Some(ahead) = ahead
                    && let Some(path) = ahead.take(&integrity).await
                {
                    progress.fetched.fetch_add(1, Ordering::Relaxed);
                    return (e, Ok(indexer::tarballs::Unpacked { path, report: None }));
                }
                if let Some(peers) = peers.filter(|_| !store.has_tarball(&integrity)) {
                    // Peers first; a tarball a peer does not deliver intact comes from upstream.
                    if let Err(err) = peers.fetch(store, &e.package, &e.version, &integrity).await {
                        tracing::debug!(package = %e.location, error = %err, "tarball not from a peer");
                    }
                }
                let r = registry.fetch_tarball(store, &integrity, &resolved).await;
                progress.fetched.fetch_add(1, Ordering::Relaxed);
                (e, r)
            })
            .buffer_unordered(self.opts.concurrency.max(1));
        let place_fetcher = self.places(&plan.project);
        for e in from_places {
            let integrity = e.integrity.as_deref().and_then(|i| i.parse::<Integrity>().ok());
            let resolved = e.resolved.clone().unwrap_or_default();
            match place_fetcher.fetch_locked(&resolved, integrity.as_ref()).await {
                Some(Ok(dir)) => fetched.placements.push(Placement { package: e, source: dir }),
                Some(Err(err)) if e.optional || e.dev_optional => {
                    tracing::warn!(package = %e.location, error = %err, "optional package skipped");
                    failed.push(e.location.clone());
                }
                Some(Err(err)) => {
                    return Err(InstallError::Resolve(ResolveError::Dependency {
                        path: graph.path_to(&e.location).unwrap_or_else(|| e.location.clone()),
                        source: Box::new(err),
                    }));
                }
                None => return Err(InstallError::Unfetchable { location: e.location.clone() }),
            }
        }
        while let Some((e, r)) = results.next().await {
            match r {
                Ok(u) => fetched.placements.push(Placement { package: e, source: u.path }),
                Err(err) if e.optional || e.dev_optional => {
                    tracing::warn!(package = %e.location, error = %err, "optional package skipped");
                    failed.push(e.location.clone());
                }
                Err(source) => {
                    return Err(InstallError::Fetch {
                        path: graph.path_to(&e.location).unwrap_or_else(|| e.location.clone()),
                        location: e.location.clone(),
                        package: e.package.clone(),
                        version: e.version.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
        if !failed.is_empty() {
            left_out = graph.optional_set(failed.iter().map(String::as_str));
            fetched.placements.retain(|p| !left_out.contains(&p.package.location));
        }
        fetched.skipped_optional = left_out.into_iter().collect();
        fetched.scripts_allowed = self.scripts_allowed(plan, &fetched.placements).await;
        Ok(fetched)
    }

    /// The placements whose install scripts may run: the policy allows the package, and the
    /// package is what it says. From a lockfile, the name an entry claims (its `name` field,
    /// or its folder) is believed only when the registry's metadata for that name@version has
    /// the entry's integrity: a planted entry can name any package, but not carry its bytes.
    async fn scripts_allowed(&self, plan: &Plan, placements: &[Placement]) -> BTreeSet<String> {
        let policy = self.script_policy(plan);
        let mut allowed = BTreeSet::new();
        for p in placements {
            let e = &p.package;
            if !e.has_install_script || !policy.allows(&e.package) {
                continue;
            }
            if plan.from_lockfile && !self.registry_vouches(e).await {
                tracing::warn!(
                    package = %e.location,
                    claims = %format!("{}@{}", e.package, e.version),
                    "the registry does not list this integrity for the package the lockfile names; its install scripts are not run"
                );
                continue;
            }
            allowed.insert(e.location.clone());
        }
        allowed
    }

    /// Whether the source's metadata for `e.package@e.version` has exactly the integrity the
    /// lockfile gives (every hash it accepts is one the registry publishes).
    async fn registry_vouches(&self, e: &LockedPackage) -> bool {
        let Some(locked) = e.integrity.as_deref().and_then(|i| i.parse::<Integrity>().ok()) else {
            return false;
        };
        let Ok(Some(packument)) = self.source.packument(&e.package).await else { return false };
        let Some(published) = packument
            .versions
            .get(&e.version)
            .and_then(|m| m.dist.best_integrity())
            .and_then(|i| i.parse::<Integrity>().ok())
        else {
            return false;
        };
        published.algorithm() == locked.algorithm() && locked.hashes().iter().all(|h| published.matches(h))
    }

    /// Lay out `node_modules` from the store, touching only what changed.
    pub fn link(&self, plan: &Plan, fetched: &Fetched) -> Result<LayoutReport, InstallError> {
        // A package whose install scripts will run gets its own copy (a script writing into its
        // folder must not write through hardlinks into the store); the rest are hardlinked.
        let copy = |e: &LockedPackage| fetched.scripts_allowed.contains(&e.location);
        let links = self.links(plan)?;
        if self.opts.clean {
            link::remove_node_modules(&self.opts.project_dir)?;
        }
        let report =
            link::layout(&self.opts.project_dir, &fetched.placements, &links, &plan.lockfile, &copy)?;
        self.opts.progress.linked.store(report.linked, Ordering::Relaxed);
        Ok(report)
    }

    /// The workspaces `-w`/`--workspaces` name (none without them).
    fn selected(
        &self,
        all: &[crate::local::Workspace],
    ) -> Result<Vec<crate::local::Workspace>, InstallError> {
        if self.opts.workspaces.is_empty() && !self.opts.all_workspaces {
            return Ok(Vec::new());
        }
        Ok(crate::local::select(all, &self.opts.workspaces, self.opts.all_workspaces)?)
    }

    /// With `-w`, the lockfile locations this install lays out: what the named workspaces
    /// reach (their links, folders and everything below); `None` lays out everything.
    fn scope(&self, plan: &Plan) -> Result<Option<BTreeSet<String>>, InstallError> {
        let all = crate::local::workspaces(&plan.project, &self.opts.project_dir)?;
        let selected = self.selected(&all)?;
        if selected.is_empty() {
            return Ok(None);
        }
        let graph = lockfile::Graph::new(&plan.lockfile, !self.opts.legacy_peer_deps);
        let starts: Vec<String> = selected.iter().map(|ws| format!("node_modules/{}", ws.name)).collect();
        let mut scope = graph.reachable_from(starts.iter().map(String::as_str));
        // What an earlier install laid out stays (npm's filtered reify changes only the
        // named workspaces' part), unless the plan dropped it.
        if !self.opts.clean {
            scope.extend(
                link::installed_locations(&self.opts.project_dir)
                    .into_iter()
                    .filter(|l| plan.lockfile.packages.contains_key(l)),
            );
        }
        Ok(Some(scope))
    }

    /// Refuse a lockfile entry in the `node_modules` of a folder the project does not declare
    /// (`packages/x/node_modules/y` where no workspace or `file:` folder is `packages/x`):
    /// only the project's own folders get packages.
    fn check_folders(&self, plan: &Plan) -> Result<(), InstallError> {
        let folders: BTreeSet<&str> = plan
            .lockfile
            .packages
            .keys()
            .filter_map(|loc| loc.find("/node_modules/").map(|i| &loc[..i]))
            .filter(|f| !f.starts_with("node_modules"))
            .collect();
        if folders.is_empty() {
            return Ok(());
        }
        let declared = crate::local::declared_folders(&plan.project, &self.opts.project_dir)?;
        for loc in plan.lockfile.packages.keys() {
            let Some(folder) = loc.find("/node_modules/").map(|i| &loc[..i]) else { continue };
            if !folder.starts_with("node_modules") && !declared.contains(folder) {
                return Err(InstallError::Lockfile(crate::error::LockfileError::BadLocation {
                    path: self.opts.project_dir.join("package-lock.json"),
                    location: loc.clone(),
                    reason: format!(
                        "{folder:?} is neither a workspace nor a file: folder package.json names"
                    ),
                }));
            }
        }
        Ok(())
    }

    /// The plan's links that this install lays out (not omitted), each pointing at a folder
    /// the project itself declares: a workspace, or a `file:` folder named in the root's or a
    /// workspace's `package.json` (a lockfile's word alone links nothing).
    fn links(&self, plan: &Plan) -> Result<Vec<lockfile::LockedLink>, InstallError> {
        let o = &self.opts;
        let links: Vec<_> = plan
            .lockfile
            .links()
            .into_iter()
            .filter(|l| !((o.omit_dev && l.dev) || (o.omit_optional && l.optional)))
            .collect();
        let scope = self.scope(plan)?;
        let links: Vec<_> =
            links.into_iter().filter(|l| scope.as_ref().is_none_or(|s| s.contains(&l.location))).collect();
        if links.is_empty() {
            return Ok(links);
        }
        let declared = crate::local::declared_folders(&plan.project, &o.project_dir)?;
        for l in &links {
            if !declared.contains(&l.target) {
                return Err(InstallError::Lockfile(crate::error::LockfileError::BadLocation {
                    path: o.project_dir.join("package-lock.json"),
                    location: l.location.clone(),
                    reason: format!(
                        "it links to {:?}, which is neither a workspace nor a file: folder package.json names",
                        l.target
                    ),
                }));
            }
        }
        Ok(links)
    }

    /// Which install scripts may run: the options' policy with the project's `allowScripts`
    /// (unless [`InstallOptions::project_allow_scripts`] is off).
    fn script_policy(&self, plan: &Plan) -> ScriptPolicy {
        self.script_policy_of(&plan.project)
    }

    fn script_policy_of(&self, project: &Project) -> ScriptPolicy {
        if !self.opts.project_allow_scripts {
            return self.opts.scripts.clone();
        }
        match &self.opts.scripts {
            ScriptPolicy::All => ScriptPolicy::All,
            ScriptPolicy::Names(n) => {
                ScriptPolicy::from_project(project, &n.iter().cloned().collect::<Vec<_>>())
            }
            ScriptPolicy::Deny => ScriptPolicy::from_project(project, &[]),
        }
    }

    /// Where this install resolves and fetches `file:` tarballs, tarball URLs and git
    /// dependencies.
    fn places(&self, project: &Project) -> Places {
        // The build runs the scripts this project allows, never more: the dependency's own
        // `allowScripts` grants nothing.
        let preparer = (self.depth < MAX_BUILD_DEPTH).then(|| {
            let mut opts = self.opts.clone();
            opts.scripts = self.script_policy_of(project);
            opts.project_allow_scripts = false;
            Arc::new(NestedBuild {
                source: self.source.clone(),
                registry: self.registry.clone(),
                opts,
                depth: self.depth + 1,
            }) as Arc<dyn crate::places::Prepare>
        });
        Places::new(
            self.opts.store.clone(),
            self.registry.clone(),
            self.opts.project_dir.clone(),
            crate::git::Git::default(),
            self.script_policy_of(project),
            preparer,
        )
    }

    /// Save `package.json` and `package-lock.json` (unless `--no-save`).
    pub fn save(&self, plan: &Plan) -> Result<(), InstallError> {
        if self.opts.save == Save::No {
            return Ok(());
        }
        if self.opts.frozen_lockfile {
            return Ok(());
        }
        plan.project.save()?;
        for p in &plan.workspace_projects {
            p.save()?;
        }
        if !plan.from_lockfile {
            if self.opts.omit_lockfile_registry_resolved {
                // npm's `omit-lockfile-registry-resolved`: registry packages are written
                // without `resolved` (this install fetched from it; a later one uses the
                // registry's canonical URL). Tarball URLs the project names, files and git
                // keep theirs.
                let declared = crate::local::declared_places(&plan.project, &self.opts.project_dir)?;
                let mut lock = plan.lockfile.clone();
                for (_, e) in lock.packages.iter_mut().filter(|(loc, _)| !loc.is_empty()) {
                    let from_registry = e.contains_key("integrity")
                        && e.get("resolved").and_then(serde_json::Value::as_str).is_some_and(|r| {
                            (r.starts_with("http://") || r.starts_with("https://")) && !declared.contains(r)
                        });
                    if from_registry {
                        e.retain(|k, _| k != "resolved");
                    }
                }
                lock.save(&self.opts.project_dir)?;
            } else {
                plan.lockfile.save(&self.opts.project_dir)?;
            }
        }
        Ok(())
    }

    /// Run the install scripts of the packages just (re)linked that the policy allows;
    /// returns `name@version` of those that ran. A failing optional package is only logged.
    pub fn run_scripts(&self, fetched: &Fetched, layout: &LayoutReport) -> Result<Vec<String>, InstallError> {
        let relinked: BTreeSet<&str> = layout.relinked.iter().map(String::as_str).collect();
        let mut ran = Vec::new();
        for p in &fetched.placements {
            let e = &p.package;
            if !relinked.contains(e.location.as_str()) || !fetched.scripts_allowed.contains(&e.location) {
                continue;
            }
            let id = format!("{}@{}", e.package, e.version);
            let dir = self.opts.project_dir.join(&e.location);
            match scripts::run_install_scripts(&self.opts.project_dir, &dir, &id, self.opts.path_env.as_ref())
            {
                Ok(_) => ran.push(id),
                Err(err) if e.optional => tracing::warn!(error = %err, "optional package's script failed"),
                Err(err) => return Err(InstallError::Script(err)),
            }
        }
        Ok(ran)
    }

    /// The whole install: resolve, fetch, link, run allowed scripts, save. `node_modules` is
    /// untouched when resolution or fetching fails.
    pub async fn install(&self, specs: &[Request]) -> Result<InstallReport, InstallError> {
        let started = Instant::now();
        let (plan, remote_index) = self.resolve_reporting(specs).await?;
        self.finish(plan, remote_index, started).await
    }

    /// npm's `uninstall NAME...`: each name dropped from every section of `package.json`, and
    /// from the lockfile's tree everything only it needed (the rest of the tree stays as
    /// locked, as npm leaves it); then `node_modules`, bins and both files follow. Without a
    /// lockfile the tree is resolved from what `package.json` still lists. Returns the report
    /// and the names that were listed (an unlisted name changes nothing, as in npm).
    pub async fn uninstall(&self, names: &[String]) -> Result<(InstallReport, Vec<String>), InstallError> {
        let started = Instant::now();
        let root_dir = &self.opts.project_dir;
        let mut project = Project::load(root_dir)?;
        let selected = self.selected(&crate::local::workspaces(&project, root_dir)?)?;
        // The package.json files the names go out of (and their lockfile entries): the root's,
        // or with `-w` each named workspace's.
        let mut removed: Vec<String> = Vec::new();
        let mut workspace_projects = Vec::new();
        let sections: Vec<String> = if selected.is_empty() {
            removed.extend(names.iter().filter(|n| project.remove(n)).cloned());
            vec![String::new()]
        } else {
            for ws in &selected {
                let mut p = Project::load(&root_dir.join(&ws.path))?;
                for n in names {
                    if p.remove(n) && !removed.contains(n) {
                        removed.push(n.clone());
                    }
                }
                workspace_projects.push(p);
            }
            selected.iter().map(|ws| ws.path.clone()).collect()
        };
        let plan = match Lockfile::load(root_dir)? {
            Some(mut lock) => {
                for loc in &sections {
                    let Some(entry) = lock.packages.get_mut(loc) else { continue };
                    for kind in [DepKind::Prod, DepKind::Dev, DepKind::Optional, DepKind::Peer] {
                        if let Some(deps) = entry.get_mut(kind.key()).and_then(|v| v.as_object_mut()) {
                            for name in names {
                                deps.remove(name);
                            }
                        }
                    }
                }
                let keep = lockfile::Graph::new(&lock, !self.opts.legacy_peer_deps).reachable();
                lock.packages.retain(|loc, _| keep.contains(loc));
                Plan { project, lockfile: lock, from_lockfile: false, workspace_projects }
            }
            None => {
                project.save()?;
                for p in &workspace_projects {
                    p.save()?;
                }
                self.resolve_reporting(&[]).await?.0
            }
        };
        self.opts.progress.resolved.store(plan.lockfile.packages.len().saturating_sub(1), Ordering::Relaxed);
        Ok((self.finish(plan, None, started).await?, removed))
    }

    /// Fetch, link, run allowed scripts and save a decided plan.
    async fn finish(
        &self,
        plan: Plan,
        remote_index: Option<RemoteIndexReport>,
        started: Instant,
    ) -> Result<InstallReport, InstallError> {
        let resolve_time = started.elapsed();
        self.emit(Event::Resolved {
            packages: plan.lockfile.packages.len(),
            from_lockfile: plan.from_lockfile,
        });
        let fetched = self.fetch(&plan).await?;
        self.emit(Event::Fetched);
        let layout = self.link(&plan, &fetched)?;
        self.emit(Event::Linked);
        let scripts_run = self.run_scripts(&fetched, &layout)?;
        self.save(&plan)?;
        let entries = plan.lockfile.entries();
        let scripts: BTreeSet<String> = entries
            .iter()
            .filter(|e| {
                e.has_install_script && self.wanted(e) && !fetched.skipped_optional.contains(&e.location)
            })
            .map(|e| format!("{}@{}", e.package, e.version))
            .filter(|id| !scripts_run.contains(id))
            .collect();
        Ok(InstallReport {
            packages: entries.len(),
            from_lockfile: plan.from_lockfile,
            resolve_time,
            layout,
            skipped_optional: fetched.skipped_optional,
            scripts: scripts.into_iter().collect(),
            scripts_run,
            remote_index,
            remote_tarballs: self.remote.as_ref().map(|link| link.tarballs().counts()),
            early_tarballs: self.ahead.as_ref().map_or(0, |a| a.started()),
        })
    }
}

/// Add `spec` to `target` (the `package.json` in the project folder `base`) as npm saves it:
/// a registry spec as `^picked` (or its range), a folder as `file:<path from base>`, git and
/// URLs as written.
#[allow(clippy::too_many_arguments)]
async fn add_spec<S: ManifestSource + 'static>(
    resolver: &Resolver<S>,
    places: &Places,
    target: &mut Project,
    base: &str,
    root_dir: &Path,
    root_name: &str,
    spec: &Request,
    kind: DepKind,
    save_exact: bool,
) -> Result<(), InstallError> {
    let in_path = |e| ResolveError::Dependency {
        path: format!(
            "{root_name} > {}",
            if spec.is_unnamed() { spec.spec.to_string() } else { spec.name.clone() }
        ),
        source: Box::new(e),
    };
    let mut spec = spec.clone();
    // A path on the command line is from the project root (where ims runs).
    spec.rebase("", root_dir);
    match &spec.spec {
        VersionSpec::Directory { path, raw } => {
            let picked = crate::local::resolve_dir(root_dir, &spec.name, path, raw).map_err(in_path)?;
            // npm saves the folder's path from the package.json that names it.
            let from_base = crate::local::relative_from(base, path);
            target.add(kind, &picked.name, &format!("file:{from_base}"));
        }
        s if s.is_registry() => {
            let picked = resolver.resolve(&spec).await.map_err(in_path)?;
            target.add(kind, &spec.name, &spec.save_spec(&picked.semver, save_exact));
        }
        VersionSpec::File { path, .. } => {
            // The name is the tarball's own unless given; the path is saved from the
            // package.json that names it, as npm saves it.
            let name = if spec.is_unnamed() {
                places.resolve("", &spec.spec).await.map_err(in_path)?.name
            } else {
                spec.name.clone()
            };
            target.add(kind, &name, &format!("file:{}", crate::local::relative_from(base, path)));
        }
        other @ (VersionSpec::Remote(_) | VersionSpec::Git(_)) => {
            // Saved as written (a git repository as npm saves it); resolved with the rest of
            // the tree. Unnamed, it is fetched first to learn its name.
            let name = if spec.is_unnamed() {
                places.resolve("", other).await.map_err(in_path)?.name
            } else {
                spec.name.clone()
            };
            target.add(kind, &name, &save_place(other));
        }
        other => {
            if spec.is_unnamed() {
                return Err(ResolveError::Origin {
                    spec: other.to_string(),
                    reason: "the package's name is not known before it is fetched".into(),
                    hint: format!("name it: `ims install NAME@{other}`"),
                }
                .into());
            }
            target.add(kind, &spec.name, &other.to_string());
        }
    }
    Ok(())
}

/// What npm saves into `package.json` for a tarball URL or git spec: the URL as given; a
/// git spec in npm-package-arg's `saveSpec` form (`github:u/r`, `git+ssh://…` for scp-like).
fn save_place(spec: &VersionSpec) -> String {
    match spec {
        VersionSpec::Git(raw) => {
            let (repo, fragment) = raw.split_once('#').map_or((raw.as_str(), None), |(r, f)| (r, Some(f)));
            let with = |s: String| fragment.map_or_else(|| s.clone(), |f| format!("{s}#{f}"));
            if !repo.contains(':') {
                with(format!("github:{repo}"))
            } else if !repo.contains("://") && repo.contains('@') {
                with(format!("git+ssh://{repo}"))
            } else {
                raw.clone()
            }
        }
        other => other.to_string(),
    }
}

/// `scheme://host[:port]` of `url`, lowercased, without user info or the scheme's default port.
fn origin(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h).to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let authority = authority.strip_suffix(default).filter(|_| !default.is_empty()).unwrap_or(&authority);
    (!authority.is_empty()).then(|| (scheme, authority.to_owned()))
}

/// `Some(host[:port])` when `url` is neither on `registry`'s origin nor on one of the
/// `allowed` hosts (`host` or `host:port`); `None` when it may be fetched.
fn foreign_host(url: &str, registry: &str, allowed: &[String]) -> Option<String> {
    let Some((scheme, authority)) = origin(url) else { return Some(url.chars().take(100).collect()) };
    if origin(registry).is_some_and(|r| r == (scheme.clone(), authority.clone())) {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((h, _)) if !authority.ends_with(']') => h,
        _ => authority.as_str(),
    };
    let allowed_here =
        allowed.iter().map(|a| a.trim().to_ascii_lowercase()).any(|a| a == authority || a == host);
    (!allowed_here || !matches!(scheme.as_str(), "http" | "https")).then_some(authority)
}

/// What keeps `lock` from being installed as is for `project` (npm ci's check): each
/// dependency of `package.json` must have a top-level lockfile entry whose version satisfies
/// its spec (`Missing: …`, `Invalid: …`, npm's words), and the lockfile must not carry a
/// top-level dependency `package.json` dropped (`Removed: …`; npm would prune it, a frozen
/// install refuses to guess).
fn sync_problems(lock: &Lockfile, project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    let mut wanted: BTreeMap<&str, &str> = BTreeMap::new();
    for kind in [DepKind::Prod, DepKind::Dev, DepKind::Optional, DepKind::Peer] {
        for (name, spec) in project.dependencies(kind) {
            wanted.insert(name, spec);
            let entry = lock.packages.get(&format!("node_modules/{name}"));
            let Some(entry) = entry else {
                // An optional dependency or a peer may be absent (another platform, or peers not
                // installed); npm's lockfile keeps optional ones, but does not need to.
                if !matches!(kind, DepKind::Optional | DepKind::Peer) {
                    out.push(format!("Missing: {name}@{spec} from lock file"));
                }
                continue;
            };
            // A link counts by its folder's entry.
            let entry = match entry.get("resolved").and_then(|v| v.as_str()) {
                Some(target) if entry.get("link").and_then(|v| v.as_bool()) == Some(true) => {
                    lock.packages.get(target).unwrap_or(entry)
                }
                _ => entry,
            };
            let field = |k: &str| entry.get(k).and_then(|v| v.as_str());
            let version = field("version");
            if !crate::actual::spec_satisfied(name, field("name").or(Some(name)), version, name, spec) {
                out.push(format!(
                    "Invalid: lock file's {name}@{} does not satisfy {name}@{spec}",
                    version.unwrap_or("")
                ));
            }
        }
    }
    out.extend(folders_problems(lock, project));
    out.extend(tree_problems(lock, project));
    if let Some(root) = lock.packages.get("") {
        for kind in [DepKind::Prod, DepKind::Dev, DepKind::Optional] {
            let Some(deps) = root.get(kind.key()).and_then(|v| v.as_object()) else { continue };
            for (name, spec) in deps {
                if !wanted.contains_key(name.as_str()) {
                    out.push(format!(
                        "Removed: {name}@{} is in the lock file but not in package.json",
                        spec.as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    out
}

/// Whether the lockfile's root entry asks for exactly what `package.json` asks for (npm's
/// check before it trusts a lockfile).
fn lock_matches(lock: &Lockfile, project: &Project) -> bool {
    let Some(root) = lock.packages.get("") else { return false };
    same_dependencies(root, project)
        && folders_problems(lock, project).is_empty()
        && tree_problems(lock, project).is_empty()
}

/// The locked packages' own dependencies that the locked tree no longer satisfies under the
/// project's `overrides` (changed, added or removed since the lockfile was written: npm
/// builds its ideal tree over the lockfile and compares; the lockfile does not record them).
fn tree_problems(lock: &Lockfile, project: &Project) -> Vec<String> {
    match crate::overrides::Overrides::from_project(project) {
        Ok(ov) => crate::overrides::lock_problems(&lock.packages, ov.as_ref()),
        Err(e) => vec![format!("Invalid: {e}")],
    }
}

/// Whether a lockfile entry lists exactly the dependency sections of `project`.
fn same_dependencies(entry: &serde_json::Map<String, serde_json::Value>, project: &Project) -> bool {
    [DepKind::Prod, DepKind::Dev, DepKind::Optional, DepKind::Peer].into_iter().all(|kind| {
        let want: BTreeMap<&str, &str> = project.dependencies(kind).collect();
        let have: BTreeMap<&str, &str> = entry
            .get(kind.key())
            .and_then(|v| v.as_object())
            .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v))).collect())
            .unwrap_or_default();
        want == have
    })
}

/// What keeps the lockfile's workspaces and folders from matching the project: each
/// workspace linked at `node_modules/<name>`, and each folder entry inside the project
/// asking for what its `package.json` asks for (npm's words where it has them).
fn folders_problems(lock: &Lockfile, project: &Project) -> Vec<String> {
    let dir = project.path().parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    let workspaces = match crate::local::workspaces(project, dir) {
        Ok(w) => w,
        Err(e) => return vec![format!("Invalid: {e}")],
    };
    for ws in &workspaces {
        let link = lock.packages.get(&format!("node_modules/{}", ws.name));
        let linked = link.is_some_and(|l| {
            l.get("link").and_then(|v| v.as_bool()) == Some(true)
                && l.get("resolved").and_then(|v| v.as_str()) == Some(ws.path.as_str())
        });
        if !linked {
            out.push(format!("Missing: {}@{} from lock file", ws.name, ws.path));
        }
    }
    for (loc, entry) in &lock.packages {
        if loc.is_empty() || loc.contains("node_modules/") || loc.starts_with("..") {
            continue;
        }
        match Project::load(&dir.join(loc)) {
            Ok(p) if p.path().is_file() => {
                if !same_dependencies(entry, &p) {
                    out.push(format!(
                        "Invalid: lock file's {loc} does not list what {loc}/package.json asks for"
                    ));
                }
            }
            _ => out.push(format!("Missing: {loc}/package.json, which the lock file names")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockfile_urls_only_from_the_registry_or_allowed_hosts() {
        let reg = "http://127.0.0.1:4873/";
        assert_eq!(foreign_host("http://127.0.0.1:4873/a/-/a-1.0.0.tgz", reg, &[]), None);
        assert_eq!(foreign_host("HTTP://user:pw@127.0.0.1:4873/x", reg, &[]), None);
        assert_eq!(foreign_host("https://r.test:443/x", "https://r.test/npm/", &[]), None);
        assert_eq!(foreign_host("http://127.0.0.1:9/x", reg, &[]).as_deref(), Some("127.0.0.1:9"));
        assert_eq!(foreign_host("https://evil.test/x", reg, &[]).as_deref(), Some("evil.test"));
        assert_eq!(foreign_host("https://evil.test/x", reg, &["evil.test".into()]), None);
        assert_eq!(foreign_host("http://127.0.0.1:9/x", reg, &["127.0.0.1:9".into()]), None);
        assert!(foreign_host("http://127.0.0.1:9/x", reg, &["127.0.0.1:8".into()]).is_some());
        assert!(foreign_host("file:///etc/passwd", reg, &["".into()]).is_some());
        assert!(foreign_host("not a url", reg, &[]).is_some());
        assert_eq!(foreign_host("http://[::1]:9/x", "http://[::1]:9/", &[]), None);
    }
}
