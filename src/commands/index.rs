//! `ims index`: ingest npm metadata from a registry into the local index
//! (`indexer::ingest`; DESIGN.md §"The command line").

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use indexer::ingest::{Event, Ingest, IngestOptions, IngestReport};
use indicatif::{ProgressBar, ProgressStyle};

use crate::context::{Context, Open};
use crate::report::Failure;

/// `ims index --from-registry URL (NAME... | --names FILE | --changes URL)`.
#[derive(Debug, Args)]
pub struct IndexArgs {
    /// The registry to fetch packuments from [default: --registry]
    #[arg(long, value_name = "URL")]
    pub from_registry: Option<String>,
    /// Package names to ingest
    #[arg(conflicts_with_all = ["names", "changes"])]
    pub packages: Vec<String>,
    /// A file with one package name a line
    #[arg(long, value_name = "FILE", conflicts_with = "changes")]
    pub names: Option<PathBuf>,
    /// Follow this `_changes` feed from the stored checkpoint until caught up
    #[arg(long, value_name = "URL")]
    pub changes: Option<String>,
    /// Packuments fetched at once
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Documents per trie batch
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Rows per `_changes` page
    #[arg(long, default_value_t = 1000)]
    pub page_size: usize,
    /// Stop a follow after this many pages
    #[arg(long)]
    pub max_pages: Option<usize>,
    /// Skip documents larger than this many MiB
    #[arg(long, default_value_t = 64)]
    pub max_doc_mib: usize,
}

/// Run `ims index`.
#[allow(clippy::print_stdout)]
pub async fn run(args: IndexArgs, ctx: &Context) -> anyhow::Result<()> {
    let Some(registry) = args.from_registry.clone().or_else(|| ctx.registry.as_ref().map(|r| r.to_string()))
    else {
        return Err(Failure::usage(
            "no registry to index from",
            "pass --from-registry URL (or --registry URL)",
        )
        .into());
    };
    let names: Vec<String> = match &args.names {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("reading {}", file.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect(),
        None => args.packages.clone(),
    };
    if names.is_empty() && args.changes.is_none() {
        return Err(Failure::usage(
            "nothing to index",
            "name packages, or pass --names FILE or --changes URL",
        )
        .into());
    }
    let net = ctx.registry_options(Some(&std::env::current_dir().unwrap_or_else(|_| ".".into())))?;
    let options = IngestOptions {
        concurrency: args.concurrency.max(1),
        batch_documents: args.batch.max(1),
        page_size: args.page_size.max(1),
        max_pages: args.max_pages,
        max_document_bytes: args.max_doc_mib.max(1) << 20,
        tls: net.tls,
        proxy: net.proxy,
        ..IngestOptions::default()
    };
    let index = ctx.local_index(Open::OrCreate).await?;
    let key = index.trie().feed().public_key().to_hex();
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} packages {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = bar.clone();
    let ingest = Ingest::new(index, &registry, options).await?.on_progress(move |event| match event {
        Event::Planned(n) => progress.inc_length(n as u64),
        Event::Done(_) => progress.inc(1),
        Event::Page { since, .. } => progress.set_message(format!("(checkpoint {since})")),
        _ => {}
    });
    let report = match &args.changes {
        Some(feed) => ingest.follow(feed).await.with_context(|| format!("following {feed}"))?,
        None => ingest.names(&names).await?,
    };
    bar.finish_and_clear();
    println!("{}", summary(&report));
    for s in report.skipped.iter().take(20) {
        match &s.version {
            Some(v) => println!("  skipped {}@{v}: {}", s.name, s.reason),
            None => println!("  skipped {}: {}", s.name, s.reason),
        }
    }
    if report.skipped.len() > 20 {
        println!("  ... and {} more skipped (see -v logs)", report.skipped.len() - 20);
    }
    println!("index {key} at version {}", ingest.index().trie().version());
    Ok(())
}

fn summary(r: &IngestReport) -> String {
    let mut s = format!(
        "indexed {} packages ({} new versions); {} unchanged, {} not modified, {} not found, {} tombstoned, {} skipped",
        r.packages,
        r.versions,
        r.unchanged,
        r.not_modified,
        r.not_found,
        r.tombstoned,
        r.skipped.len()
    );
    if let Some(since) = &r.since {
        s.push_str(&format!("; {} pages, checkpoint {since}", r.pages));
    }
    s
}
