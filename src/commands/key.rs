//! `ims key`: print the local index's public key.

use anyhow::{Context as _, bail};
use hypercore::{FeedBuilder, Storage};

use crate::context::Context;

/// Print the public key of the index under `--home`, in hex: the key of the hypercore feed
/// the index is stored in (`index/`, written by `ims index`).
#[allow(clippy::print_stdout)]
pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let dir = ctx.home.index_dir();
    if !dir.join("log").exists() {
        bail!(
            "there is no local index under {}\nhint: build one with `ims index --from-registry URL NAME...`",
            ctx.home.root().display()
        );
    }
    let feed = FeedBuilder::new(Storage::disk(&dir))
        .open()
        .await
        .with_context(|| format!("opening the index feed in {}", dir.display()))?;
    println!("{}", feed.public_key().to_hex());
    Ok(())
}
