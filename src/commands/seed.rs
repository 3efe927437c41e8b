//! `ims seed --listen HOST:PORT --no-dht`: serve the local index to whoever connects, over
//! TCP with the v8 Noise handshake and hypercore replication (issue 6; wire spec §7–9),
//! including the `ims/prefetch` extension: by default whole resolutions (`ims install --key
//! --peer` asks for its tree in one round trip; crate::install::peer) as well as trie keys;
//! and tarballs with `ims/tarball` (crate::tarball_peers): from the store under `--home`, and
//! with `--upstream URL` fetched on demand (verified against the index, then kept).
//! DHT announcing and upstream following come with the full seeding node.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use hypercore::protocol::SessionKeys;
use hypercore::replicate::{BlockPlanner, ExtensionHandler, ReplicateOptions, replicate};
use hypertrie::Trie;
use hypertrie::extension::TriePlanner;
use indexer::Index;
use indexer::tarballs::TarballStore;
use swarm::{HandshakeConfig, Identity};
use tokio::net::TcpListener;

use crate::context::Context;
use crate::install::RegistrySource;
use crate::install::peer::{PlanLimits, ResolvePlanner};
use crate::tarball_peers::TarballServer;

/// `ims seed`: serve the local index to peers.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed)
    #[arg(long, default_value = "0.0.0.0:0")]
    pub listen: String,
    /// Which `ims/prefetch` answers to compute for readers
    #[arg(long, value_enum, default_value_t = Prefetch::Resolve)]
    pub prefetch: Prefetch,
    /// Fetch tarballs peers ask for that the store lacks from this registry (only versions
    /// the index records, verified against its integrity), and keep them [default: serve
    /// only what the store holds]
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
}

/// What the seeder plans for a reader's prefetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Prefetch {
    /// Whole resolutions (`ims install` asks for its tree in one round trip) and trie keys
    Resolve,
    /// Trie keys only (readers resolving a tree fetch most blocks one by one)
    Keys,
    /// Nothing: readers fetch every block one by one
    Off,
}

/// Run `ims seed` until interrupted. Prints `listening on ADDR` and `key HEX` on stdout.
pub async fn run(args: SeedArgs, ctx: &Context) -> anyhow::Result<()> {
    if !ctx.args.no_dht {
        bail!(
            "announcing on the DHT is not available yet\nhint: pass --no-dht and give readers --peer HOST:PORT"
        );
    }
    let dir = ctx.home.index_dir();
    let feed = ctx.open_local_feed().await?;
    if feed.is_empty() {
        bail!("the local index in {} is empty", dir.display());
    }
    let trie = Trie::open(feed.clone()).await.context("opening the index trie")?;
    let trie_for_index = trie.clone();
    let planner: Option<Arc<dyn BlockPlanner>> = match args.prefetch {
        Prefetch::Resolve => Some(Arc::new(ResolvePlanner::new(trie, PlanLimits::default()))),
        Prefetch::Keys => Some(Arc::new(TriePlanner::new(trie))),
        Prefetch::Off => None,
    };
    let store = TarballStore::open(ctx.home.store_dir())
        .with_context(|| format!("opening the tarball store {}", ctx.home.store_dir().display()))?;
    let tarballs = match &args.upstream {
        Some(url) => {
            let client = reqwest::Client::builder()
                .user_agent(concat!("ims/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(10))
                .build()
                .context("cannot create the HTTP client")?;
            let index = Index::open(trie_for_index).await.context("reading the index")?;
            TarballServer::with_upstream(store, RegistrySource::new(client, url), index)
        }
        None => TarballServer::new(store),
    };
    let tarballs: Arc<dyn ExtensionHandler> = Arc::new(tarballs);
    let identity = Identity::load_or_create(&ctx.home.identity_file())
        .await
        .with_context(|| format!("loading the node identity {}", ctx.home.identity_file().display()))?;
    let listener =
        TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        writeln!(out, "key {}", feed.public_key().to_hex())?;
        out.flush()?;
    }
    tracing::info!(%addr, key = %feed.public_key(), len = feed.len(), "seeding the index");

    let config = HandshakeConfig::default();
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (feed, planner, identity, config, tarballs) =
            (feed.clone(), planner.clone(), identity.clone(), config.clone(), tarballs.clone());
        tokio::spawn(async move {
            let stream = match swarm::handshake(socket, swarm::Role::Responder, &identity, &config).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "handshake failed");
                    return;
                }
            };
            let keys = SessionKeys::new(stream.split().tx, stream.split().rx);
            let mut options = ReplicateOptions::upload().with_extension(tarballs);
            options.planner = planner;
            match replicate(stream, keys, vec![feed], options).await {
                Ok(stats) => tracing::info!(%peer, ?stats, "peer done"),
                Err(e) => tracing::info!(%peer, error = %e, "peer dropped"),
            }
        });
    }
}
