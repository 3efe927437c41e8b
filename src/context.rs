//! Global options resolved once into what commands use (ripgrep's low args -> high args).

use anyhow::Context as _;

use crate::cli::GlobalArgs;
use crate::home::Home;

/// What every command needs, resolved once from the global options.
#[derive(Debug, Clone)]
pub struct Context {
    /// The `IMS_HOME` layout.
    pub home: Home,
    /// The raw global options, for what is resolved lazily.
    pub args: GlobalArgs,
}

impl Context {
    /// Resolve the global options.
    pub fn from_args(args: &GlobalArgs) -> anyhow::Result<Self> {
        let root = match &args.home {
            Some(dir) => dir.clone(),
            None => {
                default_home().context("cannot find a home directory; pass --home DIR or set IMS_HOME")?
            }
        };
        Ok(Self { home: Home::new(root), args: args.clone() })
    }
}

#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn default_home() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".ims"))
}
