//! `ims key`: print the local index's public key.

use anyhow::{Context as _, bail};

use crate::context::Context;

/// Print the public key of the index under `--home`, in hex.
#[allow(clippy::print_stdout)]
pub fn run(ctx: &Context) -> anyhow::Result<()> {
    let path = ctx.home.index_dir().join("key");
    if !path.exists() {
        bail!(
            "there is no local index under {}\nhint: build one with `ims index --from-registry URL NAME...`",
            ctx.home.root().display()
        );
    }
    let key = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if key.len() != 32 {
        bail!("{} holds {} bytes, not a 32-byte public key: the index is corrupt", path.display(), key.len());
    }
    println!("{}", hex::encode(key));
    Ok(())
}
