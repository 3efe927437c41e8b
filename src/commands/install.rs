//! `ims install [SPEC...]`: install into `./node_modules`, from `package.json` when no SPEC is
//! given; resolves from the local index, asking the `--registry` upstream for what is missing
//! or older than the max-age and recording what it sends (`install::layered`; DESIGN.md
//! §Install, §The command line).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use hypercore::replicate::ExtensionHandler;
use indexer::tarballs::TarballStore;

use crate::context::Context;
use crate::install::fetch::FetchTarballError;
use crate::install::peer::{PeerSource, ResolveQuery};
use crate::install::{
    DepKind, InstallError, InstallOptions, Installer, LayeredSource, LocalIndex, Lockfile, Network,
    PickOptions, Policy, Progress, Project, RegistrySource, Request, ResolveError, Save, ScriptPolicy,
    global,
};
use crate::npmrc::NpmConfig;
use crate::tarball_peers::TarballClient;

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
    /// Omit a dependency type from node_modules (only `dev` is supported)
    #[arg(long, value_name = "TYPE")]
    pub omit: Vec<String>,
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
    /// Parallel downloads
    #[arg(long, default_value_t = 32)]
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
}

#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn path_env() -> Option<std::ffi::OsString> {
    std::env::var_os("PATH")
}

/// Run `ims install`.
#[allow(clippy::print_stderr)] // the summary line and the scripts notice
pub async fn run(args: InstallArgs, ctx: &Context) -> anyhow::Result<()> {
    let started = Instant::now();
    let project = match &args.prefix {
        Some(p) => p.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let specs = args
        .specs
        .iter()
        .map(|s| Request::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .context("hint: a SPEC is name, name@range, name@tag or alias@npm:name@range")?;
    let store_dir = ctx.home.store_dir();
    let store = TarballStore::open(&store_dir)
        .with_context(|| format!("cannot open the tarball store at {}", store_dir.display()))?;
    let mut opts = InstallOptions::new(&project, store);
    opts.save = match (args.no_save, args.save_dev, args.save_optional) {
        (true, _, _) => Save::No,
        (_, true, _) => Save::Dev,
        (_, _, true) => Save::Optional,
        _ => Save::Prod,
    };
    opts.save_exact = args.save_exact;
    opts.omit_dev = args.production || args.omit.iter().any(|o| o == "dev");
    opts.concurrency = args.concurrency;
    opts.scripts = match &args.allow_scripts {
        None => ScriptPolicy::Deny,
        Some(names) if names.is_empty() => ScriptPolicy::All,
        Some(names) => ScriptPolicy::Names(names.iter().cloned().collect()),
    };
    opts.path_env = path_env();
    opts.legacy_peer_deps = args.legacy_peer_deps;
    let npm_config = NpmConfig::from_env(ctx.args.registry.clone());
    let (registry_url, registry_known) = match npm_config.registry(&project) {
        Ok(url) => (url, true),
        // Offline, the registry only names tarballs a lockfile leaves `resolved` out of; the
        // store is keyed by integrity, so any base does.
        Err(_) if ctx.args.offline => ("http://offline.invalid/".to_owned(), false),
        Err(e) => return Err(e.into()),
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("ims/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        .context("cannot create the HTTP client")?;
    let registry = RegistrySource::new(client, &registry_url).offline(ctx.args.offline);
    let local = LocalIndex::at(ctx.home.index_dir(), ctx.home.index_fetch_times_file());
    let local = if registry_known { local.upstream(registry.base()) } else { local };
    let policy = Policy {
        network: match (ctx.args.offline, ctx.args.prefer_offline) {
            (true, _) => Network::Offline,
            (false, true) => Network::PreferOffline,
            (false, false) => Network::Online,
        },
        max_age: std::time::Duration::from_secs(args.packument_max_age),
    };
    let source = LayeredSource::new(local, registry.clone(), policy);
    let source = if registry_known { source } else { source.keep_tarball_urls() };
    if args.global {
        let done = run_global(&args, &specs, source.clone(), registry, opts, started).await;
        record(&source, ctx).await;
        return done;
    }
    // `--key` with `--peer`: the peer's index in front of the local one (one round trip for
    // the whole tree's metadata; crate::install::peer).
    // Tarballs from the same peer: the `ims/tarball` extension on that connection.
    let peer_key = ctx.args.key.as_deref().filter(|_| !ctx.args.peers.is_empty() && !ctx.args.offline);
    let tarballs = TarballClient::default();
    let remote = match peer_key {
        Some(key) => peer_index(ctx, key, &project, &specs, &opts.pick, &tarballs).await?,
        None => None,
    };
    let layered = match &remote {
        Some((_, index)) => PeerSource::new(index.clone(), source.clone(), &registry_url),
        None => PeerSource::without_peer(source.clone()),
    };
    let peer_stats = layered.stats();
    let quiet = !std::io::stderr().is_terminal();
    let bar = (!quiet).then(|| spinner(opts.progress.clone()));
    let installer = Installer::new(layered, registry, opts);
    let installer =
        if peer_key.is_some() { installer.with_peer_tarballs(tarballs.clone()) } else { installer };

    let plan = match installer.resolve(&specs).await {
        Ok(plan) => plan,
        Err(e) => {
            // Keep what was fetched before the failure, as npm's cache would.
            record(&source, ctx).await;
            return Err(explain(e, &registry_url));
        }
    };
    // Record what resolution fetched while the tarballs download.
    source.flush();
    let resolved_at = started.elapsed();
    if let Some((remote, _)) = &remote {
        let s = remote.stats();
        let n = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "index from peer: {} prefetch round trips ({} blocks), {} blocks fetched one by one; {} packages from the peer's index, {} from upstream",
            s.prefetches,
            s.prefetched,
            s.fetched_singly,
            n(&peer_stats.from_peer),
            n(&peer_stats.from_upstream),
        );
    }
    // A lockfile made resolution local; the tarballs the store lacks still come from the peer.
    let _late = match peer_key {
        Some(key) if remote.is_none() && installer.missing_tarballs(&plan) > 0 => {
            open_peer(ctx, key, &tarballs)
                .await
                .inspect_err(|e| tracing::warn!("cannot reach the peer for tarballs, using upstream: {e:#}"))
                .ok()
        }
        _ => None,
    };
    let fetched = installer.fetch(&plan).await.map_err(|e| explain(e, &registry_url))?;
    if peer_key.is_some() {
        let (from_peer, failed) = tarballs.counts();
        eprintln!("tarballs from peer: {from_peer}; {failed} not delivered by the peer, fetched upstream");
    }
    let layout = installer.link(&plan, &fetched).context("writing node_modules")?;
    let ran = installer.run_scripts(&plan, &fetched, &layout).context("running allowed install scripts")?;
    installer.save(&plan).context("saving package.json / package-lock.json")?;
    record(&source, ctx).await;
    if let Some((bar, ticker)) = bar {
        ticker.abort();
        bar.finish_and_clear();
    }

    let entries = plan.lockfile.entries();
    let scripts: Vec<String> = entries
        .iter()
        .filter(|e| e.has_install_script && !fetched.skipped_optional.contains(&e.location))
        .map(|e| format!("{}@{}", e.package, e.version))
        .filter(|id| !ran.contains(id))
        .collect();
    if !quiet || layout.linked > 0 {
        eprintln!(
            "{} packages ({}), {} linked, {} unchanged, {} removed in {:.2?} (resolve {:.2?})",
            entries.len(),
            if plan.from_lockfile { "from package-lock.json" } else { "resolved" },
            layout.linked,
            layout.unchanged,
            layout.removed,
            started.elapsed(),
            resolved_at,
        );
    }
    if !scripts.is_empty() {
        eprintln!(
            "{} packages have install scripts that were not run (allow with --allow-scripts NAME or \"allowScripts\" in package.json): {}",
            scripts.len(),
            scripts.join(", ")
        );
    }
    Ok(())
}

/// `ims install -g SPEC...`: each package in its own folder under the global prefix.
#[allow(clippy::print_stderr)] // one summary line per package
async fn run_global(
    args: &InstallArgs,
    specs: &[Request],
    source: LayeredSource,
    registry: RegistrySource,
    opts: InstallOptions,
    started: Instant,
) -> anyhow::Result<()> {
    if specs.is_empty() {
        anyhow::bail!("ims install -g needs at least one SPEC\nhint: ims install -g NAME[@RANGE]");
    }
    let prefix = NpmConfig::from_env(None).global_prefix(args.prefix.as_deref())?;
    for spec in specs {
        let report = global::install_global(source.clone(), registry.clone(), &opts, &prefix, spec)
            .await
            .with_context(|| {
                format!(
                    "installing {} globally into {} (hint: check the name and range with `npm view`)",
                    spec.name,
                    prefix.display()
                )
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
                "{} packages have install scripts that were not run (allow with --allow-scripts NAME): {}",
                report.scripts.len(),
                report.scripts.join(", ")
            );
        }
    }
    Ok(())
}

/// The connection to the peer's index `key`, carrying `tarballs` (`ims/tarball`) too.
async fn open_peer(
    ctx: &Context,
    key: &str,
    tarballs: &TarballClient,
) -> anyhow::Result<crate::remote::RemoteFeed> {
    let extension: Arc<dyn ExtensionHandler> = Arc::new(tarballs.clone());
    crate::remote::open(ctx, key, vec![extension]).await
}

/// The peer's index for `--key` with `--peer`: a sparse replica asked, in one prefetch, for
/// every block resolving the project's tree reads (`None` when a matching lockfile makes
/// resolution unnecessary).
async fn peer_index(
    ctx: &Context,
    key: &str,
    project: &std::path::Path,
    specs: &[Request],
    pick: &PickOptions,
    tarballs: &TarballClient,
) -> anyhow::Result<Option<(crate::remote::RemoteFeed, indexer::Index)>> {
    let loaded = Project::load(project).ok();
    if specs.is_empty()
        && let Some(p) = &loaded
        && let Ok(Some(lock)) = Lockfile::load(project)
        && crate::install::lock_matches(&lock, p)
    {
        return Ok(None);
    }
    let remote = open_peer(ctx, key, tarballs).await?;
    // The roots as the installer will ask (a bad package.json is reported by the installer).
    let mut roots = loaded.and_then(|p| p.requests(false).ok()).unwrap_or_default();
    for spec in specs {
        roots.retain(|(_, r)| r.name != spec.name);
        roots.push((DepKind::Prod, spec.clone()));
    }
    remote.prefetch(&ResolveQuery { roots, pick: pick.clone() }.to_keys()).await;
    let trie = hypertrie::Trie::open(remote.feed.clone()).await.context("opening the peer's index")?;
    let index = indexer::Index::open(trie).await.with_context(|| {
        format!("reading the peer's index {key}\nhint: check that --key names an ims index")
    })?;
    Ok(Some((remote, index)))
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

/// Whether `err` or one of its causes is a connection that could not be made.
fn unreachable(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        // A request that never got an answer: refused, reset, timed out.
        if e.downcast_ref::<reqwest::Error>()
            .is_some_and(|r| r.is_connect() || r.is_timeout() || r.is_request())
        {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A failed resolve or fetch as the user reads it: which dependency path failed, what to do
/// (on a `hint:` line), then the causes. `node_modules` is untouched when these fail.
fn explain(err: InstallError, registry: &str) -> anyhow::Error {
    let unchanged = "node_modules was not changed";
    let offline = format!(
        "is the registry at {registry} running and reachable? Check --registry and .npmrc, or install what was fetched before with --offline; {unchanged}"
    );
    let (msg, hint) = match &err {
        InstallError::Resolve(e) => {
            let (path, inner) = match e {
                ResolveError::Dependency { path, source } => (path.clone(), source.as_ref()),
                e => (String::new(), e),
            };
            let at = if path.is_empty() { String::new() } else { format!("{path}: ") };
            match inner {
                ResolveError::UnknownPackage { name } => (
                    format!("{at}package {name} does not exist in the registry"),
                    format!(
                        "check the name where it is asked for (`npm view {name}`), or that {registry} is the registry meant; {unchanged}"
                    ),
                ),
                ResolveError::NoMatchingVersion { name, spec, .. } => (
                    format!("{at}no version of {name} matches {spec:?}"),
                    format!(
                        "see what is published with `npm view {name} versions` and change the range; {unchanged}"
                    ),
                ),
                ResolveError::PeerConflict { .. } => (
                    "peer dependency conflict (npm's ERESOLVE)".to_owned(),
                    format!(
                        "fix the upstream dependency conflict, or retry with --legacy-peer-deps (peer dependencies are then not installed); {unchanged}"
                    ),
                ),
                e if unreachable(e) => (format!("{at}cannot reach the registry"), offline),
                _ => (
                    format!("{at}resolving against {registry} failed"),
                    format!("check the name and range with `npm view`; {unchanged}"),
                ),
            }
        }
        InstallError::Fetch { path, package, version, source, .. } => {
            // `Store` is transparent: the store's error is the variant itself, not a cause.
            let integrity = matches!(
                source.as_ref(),
                FetchTarballError::Store(indexer::tarballs::TarballError::IntegrityMismatch { .. })
            );
            if integrity {
                (
                    format!("{path}: the tarball of {package}@{version} fails its integrity check"),
                    format!(
                        "the registry served other bytes than its packument or the lockfile promises (a broken mirror or proxy?); retry later or report it; {unchanged}"
                    ),
                )
            } else if unreachable(source.as_ref()) {
                (format!("{path}: cannot download {package}@{version}"), offline)
            } else {
                (format!("{path}: cannot download {package}@{version}"), format!("retry; {unchanged}"))
            }
        }
        _ => ("the install failed".to_owned(), unchanged.to_owned()),
    };
    anyhow::Error::new(err).context(format!("{msg}\nhint: {hint}"))
}

/// A spinner on stderr (terminals only) showing the resolved / fetched / linked counts,
/// refreshed by a task polling [`Progress`]; abort the task and clear the bar when done.
fn spinner(progress: std::sync::Arc<Progress>) -> (indicatif::ProgressBar, tokio::task::JoinHandle<()>) {
    let bar = indicatif::ProgressBar::new_spinner();
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let shown = bar.clone();
    let ticker = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_millis(50));
        loop {
            every.tick().await;
            let n = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
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
