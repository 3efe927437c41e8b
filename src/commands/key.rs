//! `ims key`: print the local index's public key.

use crate::context::{Context, Open};

/// Print the public key of the index under `--home`, in hex: the key of the hypercore feed
/// the index is stored in (`index/`, written by `ims index`).
#[allow(clippy::print_stdout)]
pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let index = ctx.local_index(Open::Existing).await?;
    println!("{}", index.trie().feed().public_key().to_hex());
    Ok(())
}
