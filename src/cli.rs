//! The clap root: global options (each also an environment variable) and the subcommands.

use clap::{Parser, Subcommand};

pub use crate::context::GlobalArgs;

/// ims — a peer-to-peer npm registry mirror and installer.
#[derive(Debug, Parser)]
#[command(name = "ims", version, about, propagate_version = true, after_help = crate::report::EXIT_CODES)]
pub struct Cli {
    /// Options every command understands.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install into ./node_modules (from package.json when no SPEC)
    Install(crate::commands::install::InstallArgs),
    /// Clean install: exactly package-lock.json, node_modules removed first, no file written (npm ci)
    #[command(alias = "clean-install")]
    Ci(crate::commands::install::InstallArgs),
    /// Remove packages: from package.json, the lockfile and node_modules, with what only they needed (npm uninstall)
    #[command(visible_aliases = ["remove", "rm", "un", "r"])]
    Uninstall(crate::commands::install::InstallArgs),
    /// Move dependencies (those named, or all) to the newest versions their ranges allow; --save writes the ranges (npm update)
    #[command(visible_aliases = ["up", "upgrade"])]
    Update(crate::commands::install::InstallArgs),
    /// Print the local index's public key (hex)
    Key,
    /// Serve the local index and tarballs to peers (--listen HOST:PORT, --upstream URL; --no-dht for now)
    Seed(crate::commands::seed::SeedArgs),
    /// Inspect a hypertrie: info, get KEY..., list [PREFIX]
    Trie(crate::commands::trie::TrieArgs),
    /// Ingest npm metadata into the local index
    Index(crate::commands::index::IndexArgs),
    /// List installed packages, as npm ls (--all, --depth, --json, --omit)
    #[command(alias = "list")]
    Ls(crate::commands::ls::LsArgs),
    /// Why a package is installed: the dependents that keep it, up to the project (npm explain)
    #[command(alias = "explain")]
    Why(crate::commands::why::WhyArgs),
    /// Check installed packages' registry signatures and store integrity (npm audit signatures)
    Verify(crate::commands::verify::VerifyArgs),
    /// What the index knows about a package: NAME[@RANGE]
    View(crate::commands::view::ViewArgs),
}
