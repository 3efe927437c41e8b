//! The clap root: global options (each also an environment variable) and the subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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

/// Options every command understands; each may also come from the environment.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where ims keeps its keys, index, replicas and tarball store [default: ~/.ims]
    #[arg(long, env = "IMS_HOME", global = true)]
    pub home: Option<PathBuf>,
    /// The index to follow: its public key (64 hex characters)
    #[arg(long, env = "IMS_KEY", global = true)]
    pub key: Option<String>,
    /// Peers to connect to directly, skipping discovery (HOST:PORT, comma-separated in the env)
    #[arg(long = "peer", env = "IMS_PEERS", value_delimiter = ',', global = true)]
    pub peers: Vec<String>,
    /// DHT bootstrap nodes (HOST:PORT) [default: the public Mainline bootstrap nodes]
    #[arg(long = "bootstrap", env = "IMS_BOOTSTRAP", value_delimiter = ',', global = true)]
    pub bootstrap: Vec<String>,
    /// Do not use the DHT at all
    #[arg(long, env = "IMS_NO_DHT", global = true)]
    pub no_dht: bool,
    /// The upstream npm registry [default: what npm's own configuration says]
    #[arg(long, env = "IMS_REGISTRY", global = true)]
    pub registry: Option<String>,
    /// Use only what is local; never touch the network
    #[arg(long, env = "IMS_OFFLINE", global = true)]
    pub offline: bool,
    /// Use what the local index has without revalidating it; ask the registry only for what
    /// is missing
    #[arg(long, env = "IMS_PREFER_OFFLINE", global = true)]
    pub prefer_offline: bool,
    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Install into ./node_modules (from package.json when no SPEC)
    Install(crate::commands::install::InstallArgs),
    /// Print the local index's public key (hex)
    Key,
    /// Serve the local index and tarballs to peers (--listen HOST:PORT, --upstream URL; --no-dht for now)
    Seed(crate::commands::seed::SeedArgs),
    /// Inspect a hypertrie: info, get KEY..., list [PREFIX]
    Trie(crate::commands::trie::TrieArgs),
    /// Ingest npm metadata into the local index
    Index(crate::commands::index::IndexArgs),
    /// What the index knows about a package: NAME[@RANGE]
    View(crate::commands::view::ViewArgs),
}
