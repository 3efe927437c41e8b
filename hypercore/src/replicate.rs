//! Replication of feeds over one hypercore-protocol v8 connection, in both roles (wire spec
//! §7–9; JS `hypercore/lib/replicate.js`).
//!
//! ```text
//! replicate(io, keys, feeds, options)            one connection, several feeds
//!   ├── upload:   Want → Have{len-1} + Have{bitfield}; Request → Data (minimal proof for
//!   │             the requester's digest, + signature when it reaches the roots); appends
//!   │             are announced with Have to peers that sent a Want (live)
//!   ├── download: Want window 0; Request what the feeds' PeerRouter wants (sparse) or
//!   │             everything (`download_all`); learn new lengths from Haves (live);
//!   │             every Data is verified by Feed::put_blocks before anything is stored
//!   ├── prefetch: the `ims/prefetch` extension (see [`prefetch`])
//!   └── extensions: other named extensions, served by [`ExtensionHandler`]s
//! ```
//!
//! A peer is never trusted. A Data for a block we did not request (outside our outstanding
//! prefetch) is verified and dropped, as JS does; one that fails verification, or more than
//! [`MAX_UNSOLICITED`] of them in a row (or [`MAX_UNSOLICITED_BYTES`]), a malformed or oversized message, a request not answered within
//! [`ReplicateOptions::request_timeout`], or silence past the stream timeout ends the
//! connection with a [`ReplicateError`] naming the feed and block; nothing unverified is
//! stored, so the local feed is unchanged by the bad message.
//!
//! The connection is any `AsyncRead + AsyncWrite` that already ran the Noise handshake
//! (normally a `swarm::SecureStream`); [`SessionKeys`] carries its split for capabilities:
//! `SessionKeys::new(stream.split().tx, stream.split().rx)`.
//!
//! ```no_run
//! # async fn demo(io: tokio::io::DuplexStream, keys: hypercore::protocol::SessionKeys) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use hypercore::replicate::{PeerRouter, ReplicateOptions, replicate};
//! use hypercore::{FeedBuilder, PublicKey, Storage};
//! # let key: PublicKey = todo!();
//! let router = PeerRouter::new();
//! let replica = FeedBuilder::new(Storage::memory()).public_key(key).block_source(Arc::new(router.clone())).open().await?;
//! let conn = tokio::spawn(replicate(io, keys, vec![replica.clone()], ReplicateOptions::sparse(router)));
//! let block = replica.get(0).await?; // requested from the peer, verified, stored
//! conn.abort();
//! # Ok(()) }
//! ```

mod conn;
mod extension;
pub mod prefetch;
mod router;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::crypto::DiscoveryKey;
use crate::error::VerifyError;
use crate::feed::Feed;
use crate::protocol::{ChannelError, SessionKeys, StreamError, StreamOptions};

pub use extension::{ExtensionHandler, ExtensionPeer, PeerGone};
pub use prefetch::{BlockPlanner, MAX_PREFETCH_BLOCKS, PREFETCH_EXTENSION, PlanFuture, PrefetchMessage};
pub use router::{MAX_WANTED, PeerRouter};

/// Most valid Data for blocks we did not request that may arrive in a row (a requested
/// block resets the count) before the peer is dropped as a flood.
pub const MAX_UNSOLICITED: u64 = 64;
/// Most value bytes of unrequested Data in a row before the peer is dropped.
pub const MAX_UNSOLICITED_BYTES: u64 = 4 << 20;
/// The largest block index a peer may name (in a Have, Want, Request or Data): JS's largest
/// safe integer, 2^53, which no JS peer can go past; a larger one is a protocol error, so no
/// flat-tree arithmetic ever sees an index near `u64::MAX`.
pub const MAX_BLOCK_INDEX: u64 = 1 << 53;
/// Most blocks a peer's Haves and Wants may make us look at on one channel, summed over the
/// connection (each message's range counts, clipped as it is processed): an honest peer
/// announces each block about once; a peer repeating huge ranges is dropped once past this.
pub const MAX_ANNOUNCED_BLOCKS: u64 = 1 << 28;

/// How one connection replicates.
#[derive(Clone)]
pub struct ReplicateOptions {
    /// Keepalive and receive timeout (v8: 10 s and 20 s).
    pub stream: StreamOptions,
    /// Drop the peer if a request is not answered within this (v8: 20 s).
    pub request_timeout: Duration,
    /// Most requests in flight per feed.
    pub max_inflight: usize,
    /// Where sparse replicas' missing blocks are wanted (their [`crate::BlockSource`]).
    pub router: Option<PeerRouter>,
    /// Download every block the peer has, not only the wanted ones.
    pub download_all: bool,
    /// Serves the `ims/prefetch` extension (which blocks a list of lookups touches).
    pub planner: Option<Arc<dyn BlockPlanner>>,
    /// Further extensions served and used on every channel (names other than
    /// [`PREFETCH_EXTENSION`]).
    pub extensions: Vec<Arc<dyn ExtensionHandler>>,
}

impl std::fmt::Debug for ReplicateOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicateOptions")
            .field("stream", &self.stream)
            .field("request_timeout", &self.request_timeout)
            .field("max_inflight", &self.max_inflight)
            .field("router", &self.router.is_some())
            .field("download_all", &self.download_all)
            .field("planner", &self.planner.is_some())
            .field("extensions", &self.extensions.iter().map(|e| e.name().to_owned()).collect::<Vec<_>>())
            .finish()
    }
}

impl Default for ReplicateOptions {
    fn default() -> Self {
        Self {
            stream: StreamOptions::default(),
            request_timeout: Duration::from_secs(20),
            max_inflight: 64,
            router: None,
            download_all: false,
            planner: None,
            extensions: Vec::new(),
        }
    }
}

impl ReplicateOptions {
    /// Sparse download through `router` (and upload of whatever the feeds hold).
    pub fn sparse(router: PeerRouter) -> Self {
        Self { router: Some(router), ..Self::default() }
    }

    /// Upload only (a seeder): answer Wants and Requests, announce appends.
    pub fn upload() -> Self {
        Self::default()
    }

    /// Serve the prefetch extension with `planner`.
    pub fn with_planner(mut self, planner: Arc<dyn BlockPlanner>) -> Self {
        self.planner = Some(planner);
        self
    }

    /// Serve and use the extension `handler` too.
    pub fn with_extension(mut self, handler: Arc<dyn ExtensionHandler>) -> Self {
        self.extensions.push(handler);
        self
    }
}

/// What one connection did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicateStats {
    /// Blocks received, verified and stored.
    pub downloaded: u64,
    /// Data messages sent.
    pub uploaded: u64,
    /// Requests sent.
    pub requests: u64,
}

/// Why a connection ended badly. The peer is to be dropped; the local feeds hold only what
/// verified before.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicateError {
    /// The connection failed: I/O, silence past the timeout, a bad frame or message.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A channel misuse, e.g. a wrong capability.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A Data failed verification.
    #[error("feed {feed}: peer sent a block that does not verify: {source}")]
    Verify {
        /// The feed.
        feed: DiscoveryKey,
        /// Why.
        source: VerifyError,
    },
    /// Too many valid Data for blocks we did not request, in a row (more than
    /// [`MAX_UNSOLICITED`] messages or [`MAX_UNSOLICITED_BYTES`] of values): a flood.
    #[error("feed {feed}: peer sent {count} blocks in a row that were not requested (the last: {seq})")]
    Unrequested {
        /// The feed.
        feed: DiscoveryKey,
        /// The last block.
        seq: u64,
        /// How many unrequested Data came in a row.
        count: u64,
    },
    /// A Data whose fields are malformed.
    #[error("feed {feed}: peer sent a malformed Data for block {seq}: {reason}")]
    BadData {
        /// The feed.
        feed: DiscoveryKey,
        /// The block.
        seq: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A request was not answered in time.
    #[error("feed {feed}: block {seq} was not delivered within {after:?}")]
    RequestTimeout {
        /// The feed.
        feed: DiscoveryKey,
        /// The block.
        seq: u64,
        /// The limit.
        after: Duration,
    },
    /// A Have or Want out of bounds (an index past [`MAX_BLOCK_INDEX`]), or more of them than
    /// [`MAX_ANNOUNCED_BLOCKS`] allows: a flood.
    #[error("feed {feed}: peer's announcements are out of bounds: {reason}")]
    Announce {
        /// The feed.
        feed: DiscoveryKey,
        /// What is wrong.
        reason: &'static str,
    },
    /// A bad `ims/prefetch` message.
    #[error("feed {feed}: bad prefetch message: {reason}")]
    Prefetch {
        /// The feed.
        feed: DiscoveryKey,
        /// What is wrong.
        reason: String,
    },
    /// No connection carries the feed (or it ended before answering).
    #[error("no connected peer replicates feed {feed}")]
    NoPeer {
        /// The feed.
        feed: DiscoveryKey,
    },
    /// A prefetch is already outstanding for the feed on that connection.
    #[error("feed {feed}: a prefetch is already in progress")]
    Busy {
        /// The feed.
        feed: DiscoveryKey,
    },
}

/// Replicates `feeds` with the peer on `io` until the peer closes the connection (or every
/// channel is closed), or it fails. Opens every feed; feeds the peer opens that are not in
/// `feeds` are ignored. Must run inside a tokio runtime; dropping the future closes the
/// connection.
pub async fn replicate<S>(
    io: S,
    keys: SessionKeys,
    feeds: Vec<Feed>,
    options: ReplicateOptions,
) -> Result<ReplicateStats, ReplicateError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    conn::run(io, keys, feeds, options).await
}
