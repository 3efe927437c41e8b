//! `ims install [SPEC...]`: install into `./node_modules`, from `package.json` when no SPEC is
//! given; resolves straight from the `--registry` upstream (DESIGN.md §Install, §The command
//! line).

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use indexer::tarballs::TarballStore;

use crate::context::Context;
use crate::install::fetch::FetchTarballError;
use crate::install::{
    InstallError, InstallOptions, Installer, Progress, RegistrySource, Request, ResolveError, Save,
    ScriptPolicy,
};
use crate::npmrc::NpmConfig;

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
    /// The project folder [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// Parallel downloads
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Run install scripts: of these packages, or of all when no name is given (they never
    /// run by default; `allowScripts` in package.json lists packages too)
    #[arg(long, value_name = "NAME", num_args = 0.., value_delimiter = ',')]
    pub allow_scripts: Option<Vec<String>>,
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
    let registry_url = match npm_config.registry(&project) {
        Ok(url) => url,
        // Offline, the registry only names tarballs a lockfile leaves `resolved` out of; the
        // store is keyed by integrity, so any base does.
        Err(_) if ctx.args.offline => "http://offline.invalid/".to_owned(),
        Err(e) => return Err(e.into()),
    };
    let client = reqwest::Client::builder()
        .user_agent(concat!("ims/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot create the HTTP client")?;
    let source = RegistrySource::new(client, &registry_url)
        .with_cache(ctx.home.packument_cache_dir())
        .offline(ctx.args.offline);
    let quiet = !std::io::stderr().is_terminal();
    let bar = (!quiet).then(|| spinner(opts.progress.clone()));
    let installer = Installer::new(source.clone(), source, opts);

    let plan = installer.resolve(&specs).await.map_err(|e| explain(e, &registry_url))?;
    let resolved_at = started.elapsed();
    let fetched = installer.fetch(&plan).await.map_err(|e| explain(e, &registry_url))?;
    let layout = installer.link(&plan, &fetched).context("writing node_modules")?;
    let ran = installer.run_scripts(&plan, &fetched, &layout).context("running allowed install scripts")?;
    installer.save(&plan).context("saving package.json / package-lock.json")?;
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
