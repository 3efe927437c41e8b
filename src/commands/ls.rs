//! `ims ls [NAME...]`: npm's `ls` — the installed tree, read from `node_modules` (no network,
//! no index), with npm's marks (`deduped`, `UNMET DEPENDENCY`, `invalid`, `extraneous`) and
//! npm's exit code 1 when the tree is broken.

use std::io::Write as _;
use std::path::{Path, PathBuf};

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
    /// `-w`, `--workspaces` and their kin.
    #[command(flatten)]
    pub ws: WorkspaceArgs,
}

/// npm's workspace filters, shared by `ls` and `why`.
#[derive(Debug, Clone, Default, Args)]
pub struct WorkspaceArgs {
    /// Only this workspace: its name, its folder, or a folder holding workspaces (repeatable)
    #[arg(short = 'w', long = "workspace", value_name = "NAME")]
    pub workspace: Vec<String>,
    /// Only the workspaces (all of them)
    #[arg(long = "workspaces", overrides_with = "no_workspaces")]
    pub workspaces: bool,
    /// Leave the workspaces out
    #[arg(long = "no-workspaces", overrides_with = "workspaces")]
    pub no_workspaces: bool,
    /// With -w/--workspaces, the project's own dependencies too
    #[arg(long)]
    pub include_workspace_root: bool,
}

impl WorkspaceArgs {
    /// The names of the workspaces `-w`/`--workspaces` select in `tree` (none without them),
    /// matched as npm matches them; npm's error when nothing matches.
    pub fn selected(&self, tree: &ActualTree, json: bool) -> anyhow::Result<Vec<String>> {
        if self.workspace.is_empty() && !self.workspaces {
            return Ok(Vec::new());
        }
        if self.no_workspaces && !self.workspace.is_empty() {
            return Err(Failure::usage(
                "Cannot use --no-workspaces and --workspace at the same time",
                "drop one of them",
            )
            .into());
        }
        let root = &tree.node(ActualTree::ROOT).path;
        let cwd =
            std::env::current_dir().ok().and_then(|d| d.canonicalize().ok()).unwrap_or_else(|| root.clone());
        let at = installer::local::folder_in(root, &cwd);
        // An absolute folder inside the project, as a path from here.
        let filters: Vec<String> = self
            .workspace
            .iter()
            .map(|f| match Path::new(f).strip_prefix(root) {
                Ok(rel) if Path::new(f).is_absolute() => {
                    installer::local::relative_from(&at, &rel.to_string_lossy().replace('\\', "/"))
                }
                _ => f.clone(),
            })
            .collect();
        match installer::local::select_in(tree.workspaces(), &filters, self.workspaces, &at) {
            Ok(picked) => Ok(picked.into_iter().map(|w| w.name).collect()),
            Err(e) => {
                // npm's words, which `--json` prints as its error object.
                let summary = if self.workspace.is_empty() {
                    "No workspaces found!".to_owned()
                } else {
                    let flags: String = self.workspace.iter().map(|w| format!(" --workspace={w}")).collect();
                    format!("No workspaces found:\n {flags}")
                };
                if json {
                    print_json_error(&summary)?;
                }
                Err(Failure::other(
                    summary,
                    "a workspace is named by its package name or its folder (`-w packages/a`, `-w packages`)",
                )
                .caused_by(e)
                .into())
            }
        }
    }
}

/// npm's `--json` error object on stdout (`{"error": {"summary", "detail"}}`).
pub fn print_json_error(summary: &str) -> anyhow::Result<()> {
    #[derive(serde::Serialize)]
    struct Error<'a> {
        summary: &'a str,
        detail: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Wrapper<'a> {
        error: Error<'a>,
    }
    let mut text = serde_json::to_string_pretty(&Wrapper { error: Error { summary, detail: "" } })?;
    text.push('\n');
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
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
        workspaces: if args.global { Vec::new() } else { args.ws.selected(&tree, args.json)? },
        include_workspace_root: args.ws.include_workspace_root,
        no_workspaces: args.ws.no_workspaces,
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
