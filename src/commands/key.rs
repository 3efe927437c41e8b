//! `ims key`: print the local index's public key.

use crate::context::Context;

/// Print the public key of the index under `--home`, in hex: the key of the hypercore feed
/// the index is stored in (`index/`, written by `ims index`).
#[allow(clippy::print_stdout)]
pub async fn run(ctx: &Context) -> anyhow::Result<()> {
    let feed = ctx.open_local_feed().await?;
    println!("{}", feed.public_key().to_hex());
    Ok(())
}
