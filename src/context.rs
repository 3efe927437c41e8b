//! Global options resolved once into what commands use (ripgrep's low args -> high args).

use anyhow::{Context as _, bail};
use hypercore::{Feed, FeedBuilder, Storage};

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

    /// The local index's storage directory, or a clear error (with the command that builds one)
    /// when `ims index` has never written it.
    pub fn require_local_index(&self) -> anyhow::Result<std::path::PathBuf> {
        let dir = self.home.index_dir();
        if !dir.join("log").exists() {
            bail!(
                "there is no local index under {}\nhint: build one with `ims index --from-registry URL NAME...`",
                self.home.root().display()
            );
        }
        Ok(dir)
    }

    /// Open the feed the local index is stored in (see [`require_local_index`](Self::require_local_index)).
    pub async fn open_local_feed(&self) -> anyhow::Result<Feed> {
        let dir = self.require_local_index()?;
        FeedBuilder::new(Storage::disk(&dir))
            .open()
            .await
            .with_context(|| format!("opening the index feed in {}", dir.display()))
    }
}

#[allow(clippy::disallowed_methods)] // the binary is where the environment is read
fn default_home() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".ims"))
}
