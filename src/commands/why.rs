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
}

/// Run `ims why`.
pub fn run(args: WhyArgs) -> anyhow::Result<()> {
    let dir = args.prefix.clone().unwrap_or_else(|| PathBuf::from("."));
    let tree =
        ActualTree::load(&dir).with_context(|| format!("could not read the tree in {}", dir.display()))?;
    let expls = listing::explain(&tree, &args.packages)
        .map_err(|e| Failure::other(e.to_string(), "`ims ls --all` lists what is installed"))?;
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
