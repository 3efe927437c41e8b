//! `ims install [SPEC...]`: arguments → [`InstallOptions`], the source stack and an
//! [`Installer`] (the `installer` crate does the install); then the report is printed.
//! Resolution reads the local index, asking the upstream registry for what is missing or
//! older than the max-age and recording what it sends (`indexer::source`); with `--key` and
//! `--peer`, the peer's index goes in front (DESIGN.md §Install, §The command line).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use indexer::remote::RemoteIndex;
use indexer::source::{LayeredSource, LocalIndex, Policy};
use indexer::tarballs::TarballStore;
use indexer::upstream::{Registry, RegistryUrl};
use installer::{
    Event, InstallError, InstallOptions, InstallReport, Installer, Progress, Request, Save, ScriptPolicy,
    global,
};

use crate::context::Context;
use crate::npmrc::NpmConfig;
use crate::report::{Exit, Failure};

/// `ims install` options (npm's spellings).
#[derive(Debug, Clone, Args)]
pub struct InstallArgs {
    /// What to install: name, name@range, name@tag, @scope/name@..., alias@npm:name@range
    pub specs: Vec<String>,
    /// Save to devDependencies
    #[arg(short = 'D', long = "save-dev")]
    pub save_dev: bool,
    /// Save to optionalDependencies
    #[arg(short = 'O', long = "save-optional")]
    pub save_optional: bool,
    /// Save exact versions instead of ^x.y.z
    #[arg(short = 'E', long = "save-exact")]
    pub save_exact: bool,
    /// Do not write package.json or package-lock.json
    #[arg(long)]
    pub no_save: bool,
    /// Leave out of node_modules what only this kind of dependency needs: dev, optional,
    /// peer (repeatable; npm's `--omit`, `dev` by default when NODE_ENV=production)
    #[arg(long, value_name = "TYPE", value_parser = ["dev", "optional", "peer"])]
    pub omit: Vec<String>,
    /// Keep this kind even if omitted (npm's `--include`: dev, optional, peer)
    #[arg(long, value_name = "TYPE", value_parser = ["dev", "optional", "peer"])]
    pub include: Vec<String>,
    /// Run no install script, not even allowed ones
    #[arg(long)]
    pub ignore_scripts: bool,
    /// Same as --omit=dev
    #[arg(long)]
    pub production: bool,
    /// The project folder [default: the current directory]; with -g, the global prefix
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Install globally: PREFIX/lib/node_modules/<name>, commands linked into PREFIX/bin
    /// (PREFIX from --prefix, else npm's configured prefix)
    #[arg(short = 'g', long)]
    pub global: bool,
    /// Requests in flight at once, for packuments and for tarballs each (bun's default; 64
    /// resolved a 360-package tree from the real registry 10-20% faster than 32)
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Run install scripts: of these packages, or of all when no name is given (they never
    /// run by default; `allowScripts` in package.json lists packages too)
    #[arg(long, value_name = "NAME", num_args = 0.., value_delimiter = ',')]
    pub allow_scripts: Option<Vec<String>>,
    /// Seconds a packument fetched into the local index is used without revalidation (the
    /// registry's `Cache-Control: max-age`; tests lower it)
    #[arg(long, hide = true, env = "IMS_PACKUMENT_MAX_AGE", value_name = "SECS", default_value_t = 300)]
    pub packument_max_age: u64,
    /// Do not install peer dependencies, nor fail on their conflicts (npm 3-6 behaviour)
    #[arg(long)]
    pub legacy_peer_deps: bool,
    /// Fail on every peer dependency conflict, even one npm only warns about (npm's flag)
    #[arg(long)]
    pub strict_peer_deps: bool,
    /// Install exactly package-lock.json; fail if it is missing or out of sync with
    /// package.json, and write neither (bun's and pnpm's flag; `ims ci` also cleans first)
    #[arg(long, alias = "immutable")]
    pub frozen_lockfile: bool,
    /// The workspace (name or folder) to act on: SPECs are saved to its package.json, names
    /// removed from it, and only what it needs is laid out (npm's `-w`; repeatable)
    #[arg(short = 'w', long = "workspace", value_name = "NAME")]
    pub workspace: Vec<String>,
    /// Act on every workspace (npm's `--workspaces`)
    #[arg(long = "workspaces")]
    pub workspaces: bool,
    /// Set by `ims ci`: remove node_modules before laying out
    #[arg(skip)]
    pub clean: bool,
    /// Set by `ims uninstall`: the specs are names to remove
    #[arg(skip)]
    pub uninstall: bool,
    /// Set by `ims update`: the specs are names to move to their newest allowed version
    #[arg(skip)]
    pub update: bool,
    /// `ims update`: write the new versions' ranges into package.json (npm's `update --save`)
    #[arg(long)]
    pub save: bool,
    /// With -g: replace a command in PREFIX/bin that another package (or you) owns, instead of
    /// failing with EEXIST (npm's flag)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// A host (HOST or HOST:PORT) besides the registry that package-lock.json's `resolved`
    /// URLs may be fetched from; by default only the registry and peers are used
    #[arg(
        long = "allow-tarball-host",
        env = "IMS_ALLOW_TARBALL_HOST",
        value_name = "HOST",
        value_delimiter = ','
    )]
    pub allow_tarball_hosts: Vec<String>,
}

/// npm's default `omit`: `dev` when `NODE_ENV=production`.
#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn node_env_production() -> bool {
    std::env::var("NODE_ENV").is_ok_and(|v| v == "production")
}

#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn path_env() -> Option<std::ffi::OsString> {
    std::env::var_os("PATH")
}

/// Run `ims install`.
pub async fn run(args: InstallArgs, ctx: &Context) -> anyhow::Result<()> {
    let started = Instant::now();
    let project = match &args.prefix {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    if args.uninstall || args.update {
        if args.update && args.global {
            return Err(Failure::usage(
                "ims update -g is not supported",
                "reinstall the package: ims install -g NAME@latest",
            )
            .into());
        }
        for name in &args.specs {
            indexer::names::validate(name).map_err(|e| {
                Failure::usage(
                    format!("{name:?} is not a package name"),
                    "ims uninstall and ims update take package names",
                )
                .caused_by(e)
            })?;
        }
    }
    if args.uninstall && args.global {
        return uninstall_global(&args, started);
    }
    let specs = if args.uninstall || args.update { &[][..] } else { &args.specs[..] };
    let specs = specs.iter().map(|s| Request::parse(s)).collect::<Result<Vec<_>, _>>().map_err(|e| {
        Failure::usage(
            "a SPEC cannot be installed",
            "a SPEC is name, name@range, name@tag or alias@npm:name@range",
        )
        .caused_by(e)
    })?;
    if args.frozen_lockfile && (!specs.is_empty() || args.global) {
        return Err(Failure::usage(
            "a frozen install (ims ci, --frozen-lockfile) installs the lockfile only",
            "run `ims install NAME` to add a package, then `ims ci` in CI",
        )
        .into());
    }
    let store_dir = ctx.home.store_dir();
    let store = TarballStore::open(&store_dir)
        .with_context(|| format!("cannot open the tarball store at {}", store_dir.display()))?;
    let mut opts = options(&args, &project, store);
    // `update NAME...` resolves again, `install SPEC...` resolves with the new specs, and an
    // edited package.json makes the lockfile stale: what the lockfile holds is kept unless
    // named, where the ranges still allow it (npm's rule; `update` alone moves everything).
    let named: Vec<String> = if args.update {
        opts.use_lockfile = false;
        args.specs.clone()
    } else if args.uninstall {
        Vec::new()
    } else {
        specs.iter().flat_map(|s| [s.name.clone(), s.package.clone()]).filter(|n| !n.is_empty()).collect()
    };
    if !(args.update && named.is_empty())
        && let Ok(Some(lock)) = installer::Lockfile::load(&project)
    {
        let mut keep: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for e in
            lock.entries().into_iter().filter(|e| !named.contains(&e.package) && !named.contains(&e.name))
        {
            keep.entry(e.package).or_default().push(e.version);
        }
        opts.pick.prefer = Arc::new(keep);
    }
    // npm's global mode reads no project configuration: a `.npmrc` in the folder `-g` runs in
    // (a cloned repository) must not pick the registry, TLS trust or proxy of a global install.
    let config_dir = (!args.global).then_some(project.as_path());
    opts.omit_lockfile_registry_resolved = ctx.npm_flag(config_dir, "omit-lockfile-registry-resolved");
    let (registry_url, registry_known) = match ctx.registry_for(config_dir) {
        Ok(url) => (url, true),
        // Offline, the registry only names tarballs a lockfile leaves `resolved` out of; the
        // store is keyed by integrity, so any base does.
        Err(_) if ctx.offline() => (RegistryUrl::parse("http://offline.invalid/")?, false),
        Err(e) => return Err(e),
    };
    let registry = ctx.registry(registry_url.clone(), config_dir)?.offline(ctx.offline());
    // The shared index records only its own upstream's answers; another registry (a
    // project's .npmrc) gets an index of its own (`indexer::source::local`).
    let local = LocalIndex::at(ctx.home.index_dir(), ctx.home.index_fetch_times_file())
        .others_under(ctx.home.registries_dir());
    let local = if registry_known { local.upstream(registry.url()) } else { local };
    let policy = Policy { network: ctx.network, max_age: Duration::from_secs(args.packument_max_age) };
    let source = LayeredSource::new(local, registry.clone(), policy);
    let source = if registry_known { source } else { source.keep_tarball_urls() };
    if args.global {
        let done = run_global(&args, &specs, source.clone(), registry, opts, started).await;
        record(&source, ctx).await;
        return done;
    }

    let progress = opts.progress.clone();
    let mut installer = Installer::new(source.clone(), registry, opts).on_event({
        // Record what resolution fetched while the tarballs download.
        let source = source.clone();
        move |event| {
            if let Event::Resolved { .. } = event {
                source.flush();
            }
        }
    });
    // `--key` with `--peer`: the peer's index in front of the local one (one round trip for
    // the whole tree's metadata), and tarballs from the same peer.
    if let Some(key) = ctx.key.filter(|_| !ctx.peers.is_empty() && !ctx.offline()) {
        installer = installer.with_remote(Arc::new(RemoteIndex::new(ctx.remote_config(&key).await?, key)));
    }
    let quiet = !std::io::stderr().is_terminal();
    let bar = (!quiet).then(|| spinner(progress));
    let result = if args.uninstall {
        installer.uninstall(&args.specs).await.map(|(report, removed)| {
            for name in args.specs.iter().filter(|n| !removed.contains(n)) {
                tracing::warn!("{name} is not a dependency of this project: nothing to remove");
            }
            report
        })
    } else {
        installer.install(&specs).await
    };
    // Keep what was fetched, even before a failure, as npm's cache would.
    record(&source, ctx).await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }
    let report = result.map_err(|e| explain(e, registry_url.as_str()))?;
    if args.update && args.save {
        save_updated_ranges(&project, &args.specs)?;
    }
    print_report(&report, started.elapsed(), quiet);
    Ok(())
}

/// `ims uninstall -g NAME...`: each package folder under the global prefix and its commands.
#[allow(clippy::print_stderr)] // the summary lines
fn uninstall_global(args: &InstallArgs, started: Instant) -> anyhow::Result<()> {
    if args.specs.is_empty() {
        return Err(
            Failure::usage("ims uninstall -g needs at least one NAME", "ims uninstall -g NAME").into()
        );
    }
    let prefix = NpmConfig::from_env(None).global_prefix(args.prefix.as_deref())?;
    let mut removed = 0;
    for name in &args.specs {
        match global::uninstall_global(&prefix, name).map_err(|e| explain(e, ""))? {
            Some(dir) => {
                removed += 1;
                eprintln!("removed {name} ({})", dir.display());
            }
            None => {
                tracing::warn!("{name} is not installed globally in {}: nothing to remove", prefix.display())
            }
        }
    }
    eprintln!(
        "removed {removed} package{} in {:.2?}",
        if removed == 1 { "" } else { "s" },
        started.elapsed()
    );
    Ok(())
}

/// `ims update --save`: each direct dependency (of those named, or all) whose range is `^x`
/// or `~x` gets the version now installed at the top, keeping its prefix, in `package.json`
/// and in the lockfile's root entry (exact pins are left alone: an update never moves them).
fn save_updated_ranges(project: &std::path::Path, names: &[String]) -> anyhow::Result<()> {
    use installer::{DepKind, Lockfile, Project};
    let mut pkg = Project::load(project)?;
    let Some(mut lock) = Lockfile::load(project)? else { return Ok(()) };
    let mut changes = Vec::new();
    for kind in [DepKind::Prod, DepKind::Dev, DepKind::Optional] {
        for (name, spec) in pkg.dependencies(kind) {
            if !names.is_empty() && !names.iter().any(|n| n == name) {
                continue;
            }
            let Some(prefix) = spec.chars().next().filter(|c| matches!(c, '^' | '~')) else { continue };
            let installed = lock
                .packages
                .get(&format!("node_modules/{name}"))
                .and_then(|e| e.get("version"))
                .and_then(|v| v.as_str());
            if let Some(version) = installed {
                let new = format!("{prefix}{version}");
                if new != spec {
                    changes.push((kind, name.to_owned(), new));
                }
            }
        }
    }
    for (kind, name, spec) in &changes {
        pkg.add(*kind, name, spec);
        if let Some(deps) =
            lock.packages.get_mut("").and_then(|r| r.get_mut(kind.key())).and_then(|d| d.as_object_mut())
        {
            deps.insert(name.clone(), serde_json::Value::String(spec.clone()));
        }
    }
    if !changes.is_empty() {
        pkg.save()?;
        lock.save(project)?;
    }
    Ok(())
}

/// The install options the arguments ask for.
fn options(args: &InstallArgs, project: &std::path::Path, store: TarballStore) -> InstallOptions {
    let mut opts = InstallOptions::new(project, store);
    opts.save = match (args.no_save, args.save_dev, args.save_optional) {
        (true, _, _) => Save::No,
        (_, true, _) => Save::Dev,
        (_, _, true) => Save::Optional,
        _ => Save::Prod,
    };
    opts.save_exact = args.save_exact;
    let omitted = |kind: &str| {
        let asked = args.omit.iter().any(|o| o == kind)
            || (kind == "dev" && (args.production || node_env_production()));
        asked && !args.include.iter().any(|i| i == kind)
    };
    opts.omit_dev = omitted("dev");
    opts.omit_optional = omitted("optional");
    opts.omit_peer = omitted("peer");
    opts.concurrency = args.concurrency;
    opts.scripts = match &args.allow_scripts {
        None => ScriptPolicy::Deny,
        Some(names) if names.is_empty() => ScriptPolicy::All,
        Some(names) => ScriptPolicy::Names(names.iter().cloned().collect()),
    };
    if args.ignore_scripts {
        opts.scripts = ScriptPolicy::Deny;
        opts.project_allow_scripts = false;
    }
    opts.path_env = path_env();
    opts.legacy_peer_deps = args.legacy_peer_deps;
    opts.strict_peer_deps = args.strict_peer_deps;
    opts.force = args.force;
    opts.tarball_hosts = args.allow_tarball_hosts.clone();
    opts.frozen_lockfile = args.frozen_lockfile;
    opts.clean = args.clean;
    // `-w /abs/project/packages/a`: a folder inside the project, as npm resolves it.
    let root = project.canonicalize().unwrap_or_else(|_| project.to_owned());
    opts.workspaces = args
        .workspace
        .iter()
        .map(|w| match std::path::Path::new(w).strip_prefix(&root) {
            Ok(rel) => rel.to_string_lossy().replace('\\', "/"),
            Err(_) => w.clone(),
        })
        .collect();
    opts.all_workspaces = args.workspaces;
    opts
}

/// The summary lines of a finished install.
#[allow(clippy::print_stderr)] // the summary line, the peer counts and the scripts notice
fn print_report(report: &InstallReport, elapsed: Duration, quiet: bool) {
    if let Some(p) = &report.remote_index {
        eprintln!(
            "index from peer: {} prefetch round trips ({} blocks), {} blocks fetched one by one; {} packages from the peer's index, {} from upstream",
            p.remote.prefetches, p.remote.prefetched, p.remote.fetched_singly, p.from_peer, p.from_upstream,
        );
    }
    if let Some((from_peer, failed)) = report.remote_tarballs {
        eprintln!("tarballs from peer: {from_peer}; {failed} not delivered by the peer, fetched upstream");
    }
    let layout = &report.layout;
    if !quiet || layout.linked > 0 {
        eprintln!(
            "{} packages ({}), {} linked, {} unchanged, {} removed in {:.2?} (resolve {:.2?})",
            report.packages,
            if report.from_lockfile { "from package-lock.json" } else { "resolved" },
            layout.linked,
            layout.unchanged,
            layout.removed,
            elapsed,
            report.resolve_time,
        );
    }
    if !report.scripts.is_empty() {
        eprintln!(
            "{} packages have install scripts that were not run (allow with --allow-scripts NAME or \"allowScripts\" in package.json): {}",
            report.scripts.len(),
            report.scripts.join(", ")
        );
    }
}

/// `ims install -g SPEC...`: each package in its own folder under the global prefix.
#[allow(clippy::print_stderr)] // one summary line per package
async fn run_global(
    args: &InstallArgs,
    specs: &[Request],
    source: LayeredSource,
    registry: Registry,
    opts: InstallOptions,
    started: Instant,
) -> anyhow::Result<()> {
    if specs.is_empty() {
        return Err(
            Failure::usage("ims install -g needs at least one SPEC", "ims install -g NAME[@RANGE]").into()
        );
    }
    let prefix = NpmConfig::from_env(None).global_prefix(args.prefix.as_deref())?;
    for spec in specs {
        let report = global::install_global(source.clone(), registry.clone(), &opts, &prefix, spec)
            .await
            .map_err(|e| {
                let exit = Exit::from(e.kind());
                let hint = match &e {
                    // EEXIST and refused links have their own advice.
                    InstallError::Link(_) => e.hint(registry.url().as_str()),
                    _ => "check the name and range with `npm view`".to_owned(),
                };
                Failure::new(
                    format!("installing {} globally into {}", spec.name, prefix.display()),
                    hint,
                    exit,
                )
                .caused_by(e)
            })?;
        let cmds: Vec<String> = report
            .bins
            .iter()
            .filter_map(|b| b.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect();
        eprintln!(
            "{}@{} in {} ({} dependencies{}) in {:.2?}",
            report.name,
            report.version,
            report.dir.display(),
            report.dependencies,
            if cmds.is_empty() {
                String::new()
            } else {
                format!("; commands in {}: {}", prefix.join("bin").display(), cmds.join(", "))
            },
            started.elapsed(),
        );
        if !report.scripts.is_empty() {
            eprintln!(
                "{} packages have install scripts that were not run (allow with --allow-scripts NAME; a global package's own allowScripts is not read): {}",
                report.scripts.len(),
                report.scripts.join(", ")
            );
        }
    }
    Ok(())
}

/// Wait until what this install fetched is durable in the local index. A failure loses only
/// the recording (the index stays intact), so it is a warning, not a failed install.
async fn record(source: &LayeredSource, ctx: &Context) {
    match source.finish().await {
        Ok(report) => tracing::info!("{report}"),
        Err(error) => tracing::warn!(
            "could not record the fetched packuments into the local index in {}: {:#}",
            ctx.home.index_dir().display(),
            anyhow::Error::new(error)
        ),
    }
}

/// A failed install as the user reads it: which dependency path failed (the headline), the
/// causes, what to do (the engine's typed hint), and the exit code of its kind.
fn explain(err: InstallError, registry: &str) -> anyhow::Error {
    Failure::new(err.headline(registry), err.hint(registry), Exit::from(err.kind())).caused_by(err).into()
}

/// A spinner on stderr (terminals only) showing the resolved / fetched / linked counts,
/// refreshed by a task polling [`Progress`]; abort the task and clear the bar when done.
fn spinner(progress: Arc<Progress>) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(Duration::from_millis(100));
    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(50));
        loop {
            every.tick().await;
            let n = |c: &AtomicUsize| c.load(Ordering::Relaxed);
            let (resolved, fetched, to_fetch) =
                (n(&progress.resolved), n(&progress.fetched), n(&progress.to_fetch));
            shown.set_message(if resolved == 0 {
                "resolving…".to_owned()
            } else {
                format!("{resolved} resolved, {fetched}/{to_fetch} fetched, {} linked", n(&progress.linked))
            });
        }
    });
    (bar, ticker)
}
