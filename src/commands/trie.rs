//! `ims trie info|get|list`: inspect a hypertrie: the local index, or a remote trie (`--key`
//! with `--peer HOST:PORT`) read through a sparse replica kept under `--home`
//! (`indexer::remote`).

use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use hypertrie::{GetOptions, ListOptions, Node, Trie};
use serde_json::{Value, json};

use crate::context::{Context, Open};
use crate::report::fail;

/// `ims trie`: inspect a hypertrie.
#[derive(Debug, Args)]
pub struct TrieArgs {
    /// What to show.
    #[command(subcommand)]
    pub command: TrieCommand,
    /// One JSON object a line instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Print values as hex even when they are UTF-8
    #[arg(long, global = true)]
    pub hex: bool,
    /// Read the hidden sub-tree instead of the visible one
    #[arg(long, global = true)]
    pub hidden: bool,
}

/// The `ims trie` subcommands.
#[derive(Debug, Subcommand)]
pub enum TrieCommand {
    /// The trie's key, version, header and head
    Info,
    /// The values of one or more keys
    Get {
        /// Keys to look up
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// The keys under a prefix (whole components), in the trie's hash order
    List {
        /// The prefix [default: everything]
        #[arg(default_value = "")]
        prefix: String,
        /// Only one node per child component instead of the whole sub-trie
        #[arg(long)]
        shallow: bool,
    },
}

/// Run `ims trie`.
pub async fn run(args: TrieArgs, ctx: &Context) -> anyhow::Result<()> {
    // `--key` with `--peer`: a sparse replica read from the peer.
    let remote = match (&ctx.key, ctx.peers.is_empty()) {
        (Some(key), false) => {
            Some(indexer::remote::open(&ctx.remote_config(key).await?, *key, Vec::new()).await?)
        }
        _ => None,
    };
    let trie = match &remote {
        Some(r) => Trie::open(r.feed.clone()).await.context("opening the remote trie")?,
        None => open_local(ctx).await?,
    };
    if let (Some(r), TrieCommand::Get { keys }) = (&remote, &args.command) {
        r.prefetch(keys).await;
    }
    let mut out = std::io::stdout().lock();
    match &args.command {
        TrieCommand::Info => info(&trie, &args, &mut out).await?,
        TrieCommand::Get { keys } => {
            for key in keys {
                let node = trie
                    .get_with(key, GetOptions { hidden: args.hidden, prefix: false })
                    .await
                    .with_context(|| format!("looking up {key:?}"))?;
                match node {
                    Some(node) => print_node(&node, &args, &mut out)?,
                    None if args.json => writeln!(out, "{}", json!({"key": key, "value_hex": null}))?,
                    None => writeln!(out, "{key}\t-\t(not found)")?,
                }
            }
        }
        TrieCommand::List { prefix, shallow } => {
            let options = ListOptions { recursive: !shallow, hidden: args.hidden, ..ListOptions::default() };
            let mut iter = trie.iter(prefix, options).await.with_context(|| format!("listing {prefix:?}"))?;
            while let Some(node) = iter.next().await.with_context(|| format!("listing {prefix:?}"))? {
                print_node(&node, &args, &mut out)?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// Open the local index read-only-in-effect (nothing is written: an empty feed is refused).
async fn open_local(ctx: &Context) -> anyhow::Result<Trie> {
    let dir = ctx.home.index_dir();
    let wanted = ctx.key.map(|k| k.to_hex());
    if !dir.join("log").exists()
        && let Some(key) = wanted
    {
        return Err(fail(
            format!("there is no local copy of the trie {key} under {}", ctx.home.root().display()),
            "add --peer HOST:PORT to read it from a peer",
        ));
    }
    let index = ctx.local_index(Open::Existing).await?;
    let local = index.trie().feed().public_key().to_hex();
    if let Some(key) = wanted
        && key != local
    {
        return Err(fail(
            format!("--key {key} is not the local index ({local})"),
            "add --peer HOST:PORT to read that trie from a peer by replication, or omit --key to inspect the local index",
        ));
    }
    Ok(index.trie().clone())
}

async fn info(trie: &Trie, args: &TrieArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let feed = trie.feed();
    let header = trie.header().await.context("reading the header block")?;
    let head = trie.head().await.context("reading the head node")?;
    if args.json {
        let line = json!({
            "key": feed.public_key().to_hex(),
            "discovery_key": hex::encode(feed.discovery_key().as_bytes()),
            "version": trie.version(),
            "byte_length": feed.byte_len(),
            "writable": feed.writable(),
            "type": header.kind,
            "subtype": header.subtype,
            "metadata_hex": header.metadata.as_ref().map(hex::encode),
            "head": head.as_ref().map(|n| json!({"key": n.key(), "seq": n.seq()})),
        });
        writeln!(out, "{line}")?;
        return Ok(());
    }
    writeln!(out, "key            {}", feed.public_key().to_hex())?;
    writeln!(out, "discovery key  {}", hex::encode(feed.discovery_key().as_bytes()))?;
    writeln!(out, "version        {} blocks, {} bytes", trie.version(), feed.byte_len())?;
    writeln!(
        out,
        "writable       {}",
        if feed.writable() { "yes (this node holds the secret key)" } else { "no" }
    )?;
    writeln!(out, "type           {}", header.kind)?;
    if let Some(subtype) = &header.subtype {
        writeln!(out, "subtype        {subtype}")?;
    }
    if let Some(metadata) = &header.metadata {
        writeln!(out, "metadata       {}", render(metadata, args.hex))?;
    }
    match head {
        Some(n) => writeln!(out, "head           seq {} key {}", n.seq(), n.key())?,
        None => writeln!(out, "head           none (empty trie)")?,
    }
    Ok(())
}

fn print_node(node: &Arc<Node>, args: &TrieArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let value = node.value().unwrap_or_default();
    if args.json {
        let mut line = json!({"key": node.key(), "seq": node.seq(), "value_hex": hex::encode(value)});
        if let (Ok(text), Value::Object(map)) = (std::str::from_utf8(value), &mut line) {
            map.insert("value".into(), text.into());
        }
        writeln!(out, "{line}")?;
    } else {
        writeln!(out, "{}\t{}\t{}", node.key(), node.seq(), render(value, args.hex))?;
    }
    Ok(())
}

/// UTF-8 text when it is, else (or with `--hex`) hex.
fn render(value: &[u8], force_hex: bool) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !force_hex => text.to_owned(),
        _ => hex::encode(value),
    }
}
