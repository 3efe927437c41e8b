//! One module per subcommand; each has its `Args` and a `run(args, &Context)`.

use crate::cli::{Cli, Command};
use crate::context::Context;

pub mod index;
pub mod install;
pub mod key;
pub mod ls;
pub mod seed;
pub mod trie;
pub mod verify;
pub mod view;
pub mod why;

/// Run the command the user asked for.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = Context::from_args(&cli.global)?;
    match cli.command {
        Command::Install(args) => install::run(args, &ctx).await,
        Command::Uninstall(mut args) => {
            args.uninstall = true;
            install::run(args, &ctx).await
        }
        Command::Update(mut args) => {
            args.update = true;
            install::run(args, &ctx).await
        }
        Command::Ci(mut args) => {
            args.frozen_lockfile = true;
            args.clean = true;
            install::run(args, &ctx).await
        }
        Command::Ls(args) => ls::run(args),
        Command::Why(args) => why::run(args),
        Command::Verify(args) => verify::run(args, &ctx).await,
        Command::Key => key::run(&ctx).await,
        Command::Index(args) => index::run(args, &ctx).await,
        Command::View(args) => view::run(args, &ctx).await,
        Command::Trie(args) => trie::run(args, &ctx).await,
        Command::Seed(args) => seed::run(args, &ctx).await,
    }
}
