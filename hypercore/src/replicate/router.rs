//! [`PeerRouter`]: the [`BlockSource`] of sparse replicas, routing their missing-block
//! requests (and prefetch requests) to the connections that replicate the feed.
//!
//! A `Feed::get` of a missing block lands in the feed's *wanted* set here and wakes every
//! connection that carries the feed; each connection requests the wanted blocks its peer
//! has (wire spec §8.2, §8.5). Blocks stay wanted until some connection stores them, so a
//! peer that disconnects or lacks a block does not lose the request. Stored blocks are
//! pruned lazily when a connection next looks.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc, oneshot};

use super::ReplicateError;
use crate::block_source::BlockSource;
use crate::crypto::DiscoveryKey;

/// At most this many blocks are kept wanted per feed; further requests wait for room (the
/// getter times out and retries), so a runaway reader cannot grow this without bound.
pub const MAX_WANTED: usize = 1 << 16;

/// What a connection is asked to do for one of its feeds.
#[derive(Debug)]
pub(crate) enum Command {
    /// Send a prefetch for these keys; answer with the number of blocks received.
    Prefetch { keys: Vec<String>, done: oneshot::Sender<Result<u64, ReplicateError>> },
}

/// One connection's registration for a feed.
#[derive(Debug)]
struct Link {
    conn: u64,
    wake: Arc<Notify>,
    commands: mpsc::Sender<(DiscoveryKey, Command)>,
}

#[derive(Debug, Default)]
struct Route {
    wanted: BTreeSet<u64>,
    links: Vec<Link>,
}

#[derive(Debug, Default)]
struct Shared {
    routes: HashMap<DiscoveryKey, Route>,
    next_conn: u64,
}

/// Routes sparse replicas' missing blocks to connected peers. Clone it freely; give it to
/// [`crate::FeedBuilder::block_source`] and to [`super::ReplicateOptions::router`].
#[derive(Debug, Clone, Default)]
pub struct PeerRouter {
    shared: Arc<Mutex<Shared>>,
}

impl PeerRouter {
    /// A router with no connections yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // The tables stay consistent between statements, so a poisoned lock is still usable.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection id.
    pub(crate) fn connection_id(&self) -> u64 {
        let mut s = self.lock();
        s.next_conn += 1;
        s.next_conn
    }

    /// Registers connection `conn` as carrying `feed`.
    pub(crate) fn attach(
        &self,
        feed: DiscoveryKey,
        conn: u64,
        wake: Arc<Notify>,
        commands: mpsc::Sender<(DiscoveryKey, Command)>,
    ) {
        let mut s = self.lock();
        let route = s.routes.entry(feed).or_default();
        route.links.retain(|l| l.conn != conn);
        route.links.push(Link { conn, wake: wake.clone(), commands });
        if !route.wanted.is_empty() {
            wake.notify_one();
        }
    }

    /// Removes every registration of connection `conn`.
    pub(crate) fn detach(&self, conn: u64) {
        let mut s = self.lock();
        for route in s.routes.values_mut() {
            route.links.retain(|l| l.conn != conn);
        }
    }

    /// The wanted blocks of `feed` for which `keep` holds (the others, already stored, are
    /// forgotten).
    pub(crate) fn wanted(&self, feed: &DiscoveryKey, mut missing: impl FnMut(u64) -> bool) -> Vec<u64> {
        let mut s = self.lock();
        let Some(route) = s.routes.get_mut(feed) else { return Vec::new() };
        route.wanted.retain(|&seq| missing(seq));
        route.wanted.iter().copied().collect()
    }

    /// Number of connections carrying `feed`.
    pub fn connections(&self, feed: &DiscoveryKey) -> usize {
        self.lock().routes.get(feed).map_or(0, |r| r.links.len())
    }

    /// Asks one connection carrying `feed` to prefetch every block the lookups of `keys`
    /// touch (the `ims/prefetch` extension); resolves to the number of blocks received, once
    /// each of them is stored (readable).
    pub async fn prefetch(&self, feed: &DiscoveryKey, keys: Vec<String>) -> Result<u64, ReplicateError> {
        let commands = {
            let s = self.lock();
            let link = s.routes.get(feed).and_then(|r| r.links.first());
            link.map(|l| l.commands.clone()).ok_or(ReplicateError::NoPeer { feed: *feed })?
        };
        let (done, rx) = oneshot::channel();
        commands
            .send((*feed, Command::Prefetch { keys, done }))
            .await
            .map_err(|_| ReplicateError::NoPeer { feed: *feed })?;
        rx.await.map_err(|_| ReplicateError::NoPeer { feed: *feed })?
    }
}

impl BlockSource for PeerRouter {
    fn request(&self, feed: &DiscoveryKey, seqs: &[u64]) {
        let mut s = self.lock();
        let route = s.routes.entry(*feed).or_default();
        for &seq in seqs {
            if route.wanted.len() >= MAX_WANTED {
                tracing::debug!(%feed, seq, "too many wanted blocks; request dropped");
                break;
            }
            route.wanted.insert(seq);
        }
        for link in &route.links {
            link.wake.notify_one();
        }
    }
}
