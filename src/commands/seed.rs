//! `ims seed --listen HOST:PORT --no-dht`: serve the local index to whoever connects, over
//! TCP with the v8 Noise handshake and hypercore replication (wire spec §7–9), including the
//! `ims/prefetch` extension: by default whole resolutions (`ims install --key --peer` asks
//! for its tree in one round trip; `installer::planner`) as well as trie keys; and tarballs
//! with `ims/tarball` (`indexer::tarball_peers`): from the store under `--home`, and
//! with `--upstream URL` fetched on demand (verified against the index, then kept).
//! DHT announcing and upstream following come with the full seeding node.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use hypercore::protocol::SessionKeys;
use hypercore::replicate::{BlockPlanner, ExtensionHandler, ReplicateOptions, replicate};
use hypertrie::extension::TriePlanner;
use indexer::tarball_peers::TarballServer;
use indexer::tarballs::TarballStore;
use indexer::upstream::RegistryUrl;
use installer::planner::{PlanLimits, ResolvePlanner};
use tokio::net::TcpListener;

use crate::context::{Context, Discovery, Open};
use crate::report::Failure;

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
    /// Most peers served at once; further connections are closed at once (and logged)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_PEERS)]
    pub max_peers: usize,
    /// Most bytes of tarballs the store may hold before --upstream fetches stop (e.g. 20G,
    /// 512M)
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "20G")]
    pub store_quota: u64,
}

/// The default for `--max-peers`.
pub const DEFAULT_MAX_PEERS: usize = 256;

/// `123`, `64K`, `512M`, `20G`, `1T` (binary multiples) as bytes.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown size suffix {c:?} (use K, M, G or T)")),
            };
            (&text[..i], shift)
        }
        _ => (text, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{text:?} is not a size like 512M or 20G"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{text:?} is too large"))
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
    if ctx.discovery != Discovery::Off {
        return Err(Failure::usage(
            "announcing on the DHT is not available yet",
            "pass --no-dht and give readers --peer HOST:PORT",
        )
        .into());
    }
    let index = ctx.local_index(Open::Existing).await?;
    // Seed only what the index's writer ingested from the upstream it serves: an index some
    // other registry wrote (the first install in a home was in a project whose `.npmrc` named
    // another registry, say) is not this registry's metadata.
    if let Some(upstream) = &args.upstream
        && let (Ok(url), Some(recorded)) = (RegistryUrl::parse(upstream), index.upstream())
        && url.as_str() != recorded
    {
        return Err(Failure::usage(
            format!("the index records {recorded}, not {}: it holds what that registry sent", url.as_str()),
            "seed it with --upstream set to the registry it records, or build an index from this registry under another --home",
        )
        .into());
    }
    let trie = index.trie().clone();
    let feed = trie.feed().clone();
    let planner: Option<Arc<dyn BlockPlanner>> = match args.prefetch {
        Prefetch::Resolve => Some(Arc::new(ResolvePlanner::new(trie, PlanLimits::default()))),
        Prefetch::Keys => Some(Arc::new(TriePlanner::new(trie))),
        Prefetch::Off => None,
    };
    let store = TarballStore::open(ctx.home.store_dir())
        .with_context(|| format!("opening the tarball store {}", ctx.home.store_dir().display()))?;
    let tarballs = match &args.upstream {
        Some(url) => {
            let url = RegistryUrl::parse(url)
                .map_err(|e| Failure::usage(format!("--upstream: {e}"), "pass an http:// or https:// URL"))?;
            let registry = ctx.registry(url, Some(std::path::Path::new(".")))?;
            TarballServer::with_upstream(store, registry, index)
        }
        None => TarballServer::new(store),
    }
    .with_quota(args.store_quota);
    let tarballs: Arc<dyn ExtensionHandler> = Arc::new(tarballs);
    let identity = ctx.identity().await?;
    let listener =
        TcpListener::bind(&args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        writeln!(out, "key {}", feed.public_key().to_hex())?;
        // Readers pin it with --peer NODE@ADDR.
        writeln!(out, "node {}", identity.public_key().to_hex())?;
        out.flush()?;
    }
    tracing::info!(%addr, key = %feed.public_key(), len = feed.len(), "seeding the index");

    let config = ctx.handshake_config();
    let slots = Arc::new(tokio::sync::Semaphore::new(args.max_peers.max(1)));
    let mut refused = 0u64;
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of descriptors, say: do not spin.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // The connection limit: a peer over it is closed before the handshake costs anything.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refused += 1;
            // Logged for the first and then every 100th, so a flood does not flood the log.
            if refused == 1 || refused.is_multiple_of(100) {
                tracing::warn!(%peer, max_peers = args.max_peers, refused, "connection limit reached; closing a new connection (raise --max-peers)");
            }
            drop(socket);
            continue;
        };
        let _ = socket.set_nodelay(true);
        let (feed, planner, identity, config, tarballs) =
            (feed.clone(), planner.clone(), identity.clone(), config.clone(), tarballs.clone());
        tokio::spawn(async move {
            let _slot = slot;
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
