//! `ims ls [NAME...]`: npm's `ls` — the installed tree, read from `node_modules` (no network,
//! no index), with npm's marks (`deduped`, `UNMET DEPENDENCY`, `invalid`, `extraneous`) and
//! npm's exit code 1 when the tree is broken.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use installer::actual::{ActualTree, EdgeType};
use installer::listing::{self, LsOptions};

use crate::report::Failure;

/// `ims ls` options (npm's spellings).
#[derive(Debug, Clone, Args)]
pub struct LsArgs {
    /// Only these packages (`name` or `name@range`), with the packages that lead to them
    pub packages: Vec<String>,
    /// Every level, not only the project's own dependencies
    #[arg(short = 'a', long)]
    pub all: bool,
    /// How many levels deep to list (0: the project's own dependencies)
    #[arg(long, value_name = "N")]
    pub depth: Option<usize>,
    /// Print npm's JSON object
    #[arg(long)]
    pub json: bool,
    /// Print the folder of each package, one a line
    #[arg(short = 'p', long)]
    pub parseable: bool,
    /// Leave out the project's dependencies of this type: dev, optional, peer (repeatable)
    #[arg(long, value_name = "TYPE")]
    pub omit: Vec<String>,
    /// Keep this dependency type even when omitted elsewhere (dev, optional, peer)
    #[arg(long, value_name = "TYPE")]
    pub include: Vec<String>,
    /// The project folder [default: the current directory]; with -g, the global prefix
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// List the global packages (PREFIX/lib/node_modules, PREFIX from --prefix, else npm's)
    #[arg(short = 'g', long)]
    pub global: bool,
}

/// `--omit` / `--include` values as edge types (npm: `include` wins over `omit`).
pub fn omit_types(omit: &[String], include: &[String]) -> anyhow::Result<Vec<EdgeType>> {
    let parse = |s: &str| match s {
        "dev" => Ok(EdgeType::Dev),
        "optional" => Ok(EdgeType::Optional),
        "peer" => Ok(EdgeType::Peer),
        other => Err(Failure::usage(
            format!("--omit/--include takes dev, optional or peer, not {other:?}"),
            "e.g. `--omit=dev --omit=optional`",
        )),
    };
    let include = include.iter().map(|s| parse(s)).collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for s in omit {
        let t = parse(s)?;
        if !include.contains(&t) && !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Whether npm would draw the tree with unicode (its `unicode` default: a UTF-8 locale).
#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
pub fn unicode_locale() -> bool {
    let locale = ["LC_ALL", "LC_CTYPE", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .find(|v| !v.is_empty())
        .unwrap_or_default()
        .to_ascii_uppercase();
    locale.ends_with("UTF-8") || locale.ends_with("UTF8")
}

/// Run `ims ls`.
pub fn run(args: LsArgs) -> anyhow::Result<()> {
    let dir = if args.global {
        crate::npmrc::NpmConfig::from_env(None).global_prefix(args.prefix.as_deref())?.join("lib")
    } else {
        args.prefix.clone().unwrap_or_else(|| PathBuf::from("."))
    };
    let tree = if args.global { ActualTree::load_global(&dir) } else { ActualTree::load(&dir) };
    let tree = tree.with_context(|| format!("could not read the tree in {}", dir.display()))?;
    let opts = LsOptions {
        all: args.all,
        depth: args.depth,
        omit: omit_types(&args.omit, &args.include)?,
        filter: args.packages.clone(),
        global: args.global,
    };
    let listing = listing::ls(&tree, &opts);
    let text = if args.json {
        listing.json(&tree, args.global)
    } else if args.parseable {
        listing.parseable(&tree)
    } else {
        listing.human(unicode_locale())
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    if listing.is_broken() {
        return Err(Failure::other(
            format!(
                "the installed tree has problems (npm's ELSPROBLEMS):\n  {}",
                listing.problems().join("\n  ")
            ),
            "run `ims install` to install what package.json asks for",
        )
        .into());
    }
    if listing.nothing_matched() {
        return Err(crate::report::Silent.into());
    }
    Ok(())
}
