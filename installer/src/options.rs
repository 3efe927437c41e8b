//! What an install is asked to do ([`InstallOptions`], [`Save`]) and what it tells while it
//! runs ([`Progress`] counters to poll, [`Event`]s to a callback).

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use indexer::tarballs::TarballStore;

use crate::platform::{NodeRuntime, Platform};
use crate::resolve::PickOptions;
use crate::scripts::ScriptPolicy;

/// Where `ims install` saves what it was asked to install (npm's `--save-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Save {
    /// `--no-save`: neither `package.json` nor `package-lock.json` is written.
    No,
    /// `dependencies` (the default).
    Prod,
    /// `-D` / `--save-dev`.
    Dev,
    /// `-O` / `--save-optional`.
    Optional,
}

/// Settings of one install.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// The project folder (holds `package.json`).
    pub project_dir: PathBuf,
    /// The content-addressed tarball store.
    pub store: TarballStore,
    /// Where new specs are saved.
    pub save: Save,
    /// `-E`: save exact versions instead of `^x.y.z`.
    pub save_exact: bool,
    /// `--omit=dev` / `--production`: do not lay out dev-only packages.
    pub omit_dev: bool,
    /// `--omit=optional`: do not lay out packages only optional dependencies need (with
    /// `omit_dev`, not `devOptional` ones either).
    pub omit_optional: bool,
    /// `--omit=peer`: do not lay out packages only peer dependencies need.
    pub omit_peer: bool,
    /// Resolve the root's `devDependencies` (npm does, for the lockfile, even with
    /// `--omit=dev`); off for a global install, whose root is itself an installed package.
    pub resolve_dev: bool,
    /// Use `package-lock.json` when it matches `package.json` (the default).
    pub use_lockfile: bool,
    /// The platform optional packages are filtered for.
    pub platform: Platform,
    /// The Node.js optional packages' `engines.node` is checked against.
    pub node: NodeRuntime,
    /// npm's pick preferences.
    pub pick: PickOptions,
    /// Requests in flight at once: packuments fetched ahead, and tarballs, each.
    pub concurrency: usize,
    /// Which packages may run install scripts (merged with `package.json`'s `allowScripts`).
    pub scripts: ScriptPolicy,
    /// The `PATH` scripts run with (after the `node_modules/.bin` folders); the binary passes
    /// its own, since libraries do not read the environment.
    pub path_env: Option<OsString>,
    /// Counts a progress display reads while the install runs.
    pub progress: Arc<Progress>,
    /// npm's `--legacy-peer-deps`: peer dependencies are neither installed nor checked.
    pub legacy_peer_deps: bool,
    /// npm's `--strict-peer-deps`: any peer conflict is ERESOLVE, even one npm would only warn
    /// about ("overriding peer dependency") because the project's own dependencies are not in it.
    pub strict_peer_deps: bool,
    /// Whether the project's `package.json` `allowScripts` grants install scripts (with
    /// [`scripts`](Self::scripts)); off for `-g`, whose "project" is the package installed.
    pub project_allow_scripts: bool,
    /// npm's `--force`, for `-g`: replace a `PREFIX/bin/<cmd>` another package (or the user)
    /// owns instead of failing with EEXIST.
    pub force: bool,
    /// Hosts (`host` or `host:port`) besides the registry's that a lockfile's `resolved` URLs
    /// may be fetched from (`--allow-tarball-host`); none by default.
    pub tarball_hosts: Vec<String>,
    /// `ims ci` / `--frozen-lockfile`: install exactly `package-lock.json`; fail when it is
    /// missing or does not satisfy `package.json` ([`InstallError::OutOfSync`]), and never
    /// write either file.
    ///
    /// [`InstallError::OutOfSync`]: crate::InstallError::OutOfSync
    pub frozen_lockfile: bool,
    /// `ims ci`: remove `node_modules` before laying out (once everything is in the store),
    /// as `npm ci` does.
    pub clean: bool,
    /// npm's `-w/--workspace`: the workspaces (by name or folder) an install or uninstall is
    /// about. SPECs are saved into their `package.json`, names removed from theirs, and only
    /// what they need is laid out (the lockfile still holds the whole tree).
    pub workspaces: Vec<String>,
    /// npm's `--workspaces`: every workspace, as if each were named.
    pub all_workspaces: bool,
    /// npm's `omit-lockfile-registry-resolved`: the lockfile records no `resolved` URL for
    /// registry packages.
    pub omit_lockfile_registry_resolved: bool,
}

impl InstallOptions {
    /// Defaults for `project_dir` with `store`.
    pub fn new(project_dir: impl Into<PathBuf>, store: TarballStore) -> Self {
        InstallOptions {
            project_dir: project_dir.into(),
            store,
            save: Save::Prod,
            save_exact: false,
            omit_dev: false,
            omit_optional: false,
            omit_peer: false,
            resolve_dev: true,
            use_lockfile: true,
            platform: Platform::current(),
            node: NodeRuntime::probe("node"),
            pick: PickOptions::default(),
            concurrency: 64,
            scripts: ScriptPolicy::Deny,
            path_env: None,
            progress: Arc::default(),
            legacy_peer_deps: false,
            strict_peer_deps: false,
            project_allow_scripts: true,
            force: false,
            tarball_hosts: Vec::new(),
            frozen_lockfile: false,
            clean: false,
            workspaces: Vec::new(),
            all_workspaces: false,
            omit_lockfile_registry_resolved: false,
        }
    }
}

/// Live counts of an install in progress, for a progress display polling them (the engine
/// never prints).
#[derive(Debug, Default)]
pub struct Progress {
    /// Packages in the decided tree (set once resolution ends).
    pub resolved: AtomicUsize,
    /// Packages to make available in the store (set when fetching starts).
    pub to_fetch: AtomicUsize,
    /// Packages available in the store so far (downloaded or already there).
    pub fetched: AtomicUsize,
    /// Packages (re)linked into `node_modules` (set once linking ends).
    pub linked: AtomicUsize,
}

/// A step of an install, reported to [`Installer::on_event`](crate::Installer::on_event) as it happens.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event {
    /// The tree is decided; tarballs are fetched next. What resolution fetched can be
    /// recorded now, overlapping the downloads.
    Resolved {
        /// Packages in the tree.
        packages: usize,
        /// Whether it came from `package-lock.json`.
        from_lockfile: bool,
    },
    /// Every tarball of the tree is in the store.
    Fetched,
    /// `node_modules` is laid out.
    Linked,
}
