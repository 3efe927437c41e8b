//! `ims install [SPEC...]`: install into `./node_modules`, from `package.json` when no SPEC is
//! given; resolves straight from the `--registry` upstream (DESIGN.md §Install, §The command
//! line).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;
use indexer::tarballs::TarballStore;

use crate::context::Context;
use crate::install::{InstallOptions, Installer, RegistrySource, Request, Save, ScriptPolicy};

/// npm's default registry, used when neither `--registry` nor npm's configuration names one.
const DEFAULT_REGISTRY: &str = "https://registry.npmjs.org/";

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
}

/// The registry from `--registry`, else npm's configuration (`NPM_CONFIG_REGISTRY`, then
/// `registry=` in the project's and the user's `.npmrc`), else npm's default.
#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn registry(ctx: &Context, project: &Path) -> String {
    if let Some(r) = &ctx.args.registry {
        return r.clone();
    }
    if let Ok(r) = std::env::var("NPM_CONFIG_REGISTRY").or_else(|_| std::env::var("npm_config_registry")) {
        return r;
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let rcs = [Some(project.join(".npmrc")), home.map(|h| h.join(".npmrc"))];
    for rc in rcs.into_iter().flatten() {
        let Ok(text) = std::fs::read_to_string(&rc) else { continue };
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=')
                && k.trim() == "registry"
            {
                return v.trim().to_owned();
            }
        }
    }
    DEFAULT_REGISTRY.to_owned()
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
    let registry_url = registry(ctx, &project);
    if ctx.args.offline {
        anyhow::bail!("--offline installs need a local index, which `ims install` does not read yet; run without --offline");
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("ims/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot create the HTTP client")?;
    let source = RegistrySource::new(client, &registry_url);
    let installer = Installer::new(source.clone(), source, opts);

    let plan = installer
        .resolve(&specs)
        .await
        .with_context(|| format!("resolving against {registry_url} (hint: check the name and range with `npm view`)"))?;
    let resolved_at = started.elapsed();
    let fetched = installer.fetch(&plan).await.context("fetching tarballs")?;
    let layout = installer.link(&plan, &fetched).context("writing node_modules")?;
    let ran = installer.run_scripts(&plan, &fetched, &layout).context("running allowed install scripts")?;
    installer.save(&plan).context("saving package.json / package-lock.json")?;

    let quiet = !std::io::stderr().is_terminal();
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
