//! `ims why NAME...` (npm's `explain`): every installed copy of a package, and the chain of
//! dependents that keeps each one there, up to the project.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use installer::actual::ActualTree;
use installer::listing;

use crate::report::Failure;

/// `ims why` options.
#[derive(Debug, Clone, Args)]
pub struct WhyArgs {
    /// Packages: `name`, `name@range`, or a folder (`node_modules/a/node_modules/b`)
    #[arg(required = true)]
    pub packages: Vec<String>,
    /// Print npm's JSON array
    #[arg(long)]
    pub json: bool,
    /// The project folder [default: the current directory]
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// `-w`, `--workspaces` and their kin.
    #[command(flatten)]
    pub ws: super::ls::WorkspaceArgs,
}

/// Run `ims why`.
pub fn run(args: WhyArgs) -> anyhow::Result<()> {
    let dir = args.prefix.clone().unwrap_or_else(|| PathBuf::from("."));
    let tree =
        ActualTree::load(&dir).with_context(|| format!("could not read the tree in {}", dir.display()))?;
    let names = args.ws.selected(&tree, args.json)?;
    let only = if !names.is_empty() {
        Some(listing::workspace_dependency_set(&tree, &names))
    } else if args.ws.no_workspaces {
        Some(listing::root_dependency_set(&tree))
    } else {
        None
    };
    let expls = match listing::explain_in(&tree, &args.packages, only.as_ref()) {
        Ok(e) => e,
        Err(e) => {
            if args.json {
                super::ls::print_json_error(&e.to_string())?;
            }
            return Err(Failure::other(e.to_string(), "`ims ls --all` lists what is installed").into());
        }
    };
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&expls)?;
        t.push('\n');
        t
    } else {
        listing::explain_text(&expls)
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}
