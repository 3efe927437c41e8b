//! The reader's side of `ims/tarball`: ask a connected seeder for a tarball and stream its
//! answer into the store, verified on the way in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::Index;
use crate::model::Dist;
use crate::tarballs::{Integrity, TarballError, TarballStore};
use hypercore::replicate::{ExtensionHandler, ExtensionPeer};
use tokio::sync::mpsc;

use super::TARBALL_EXTENSION;
use super::wire::{CHUNK_BYTES, Message, TarballRequest};

/// How long a request may go without a message before it is given up (and cancelled).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// The base of a request's overall deadline; [`MIN_RATE`] adds time for its size, so a peer
/// that trickles (a byte before each idle timeout) is given up all the same.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(30);
/// The slowest transfer a request's deadline allows for (bytes per second).
pub const MIN_RATE: u64 = 64 * 1024;
/// Most chunk bytes waiting to be written for one request: past it the peer is sending
/// faster than the store takes them and the request fails (a bounded queue, never an
/// unbounded one fed by a peer).
pub const MAX_QUEUED_BYTES: u64 = 8 << 20;
/// Most messages waiting for one request (small chunks are bounded by count too).
pub const MAX_QUEUED_MESSAGES: usize = 256;
/// How long looking up a tarball's recorded size in the peer's index may take.
const SIZE_LOOKUP: Duration = Duration::from_secs(5);

/// The most bytes the gzipped tarball of a version whose index record says `dist` can have:
/// its `unpackedSize` plus room for tar headers and padding per file (`fileCount`, or a
/// generous guess) and gzip's worst case on incompressible data. `None` when the index
/// records no size.
pub fn recorded_cap(dist: &Dist) -> Option<u64> {
    let unpacked = dist.unpacked_size?;
    let files = dist.file_count.unwrap_or(4096).saturating_add(64);
    Some(
        unpacked
            .saturating_add(unpacked / 64)
            .saturating_add(files.saturating_mul(2048))
            .saturating_add(256 << 10),
    )
}

/// Why a tarball did not come from a peer (the install then asks upstream).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerFetchError {
    /// No connected peer speaks `ims/tarball` (a JS peer, or an older ims).
    #[error("no connected peer serves tarballs")]
    NoPeer,
    /// The peer does not have it (or will not fetch it).
    #[error("the peer does not have it: {0}")]
    Missing(String),
    /// The peer went silent.
    #[error("the peer sent nothing for {0:?}")]
    Stalled(Duration),
    /// The peer did not finish within the request's deadline (it trickled).
    #[error("the peer did not deliver it within {0:?}")]
    Deadline(Duration),
    /// The peer sent more than the tarball can have.
    #[error("the peer sent more than the {limit} bytes {why}")]
    TooLarge {
        /// The cap.
        limit: u64,
        /// Where the cap comes from.
        why: &'static str,
    },
    /// The peer sent faster than the store took the bytes.
    #[error("the peer overran the reader's queue")]
    Overrun,
    /// The connection ended mid-answer.
    #[error("the peer's connection ended")]
    Gone,
    /// The peer's answer broke the protocol (a malformed message, a wrong length).
    #[error("the peer's answer is malformed: {0}")]
    Protocol(String),
    /// The store refused the bytes: an integrity mismatch, too large, or an IO error.
    #[error(transparent)]
    Store(#[from] TarballError),
}

/// What arrives for one request.
#[derive(Debug)]
enum Answer {
    Chunk(Vec<u8>),
    TooLarge { limit: u64, why: &'static str },
    Overrun,
    End(u64),
    Missing(String),
    Malformed(String),
}

#[derive(Debug)]
struct Waiting {
    peer: u64,
    tx: mpsc::Sender<Answer>,
    /// Chunk bytes received so far: past `cap` the request fails at once, so a peer cannot
    /// make us buffer or store without bound.
    bytes: u64,
    /// The most bytes this tarball may have (its recorded size, else the store's limit).
    cap: u64,
    /// Whether `cap` comes from the index's record.
    recorded: bool,
    /// Chunk bytes sent to the fetch but not yet written by it.
    queued: Arc<AtomicU64>,
}

/// Fetches tarballs from connected seeders. Give it to the index connection as an extension
/// ([`hypercore::replicate::ReplicateOptions::with_extension`]); cheap to clone.
#[derive(Debug, Clone)]
pub struct TarballClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    peers: Mutex<Vec<ExtensionPeer>>,
    waiting: Mutex<HashMap<u32, Waiting>>,
    next_id: AtomicU32,
    max_bytes: u64,
    idle: Duration,
    deadline: Duration,
    /// The peer's index, to look up the size it records for a tarball (opened on first use
    /// from `feed`, so that connecting costs no block reads).
    index: tokio::sync::OnceCell<Option<Index>>,
    /// The peer's index feed (a sparse replica).
    feed: OnceLock<hypercore::Feed>,
    from_peer: AtomicUsize,
    failed: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update leaves the maps consistent, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for TarballClient {
    fn default() -> Self {
        Self::new(crate::tarballs::Limits::default().max_tarball_bytes, IDLE_TIMEOUT)
    }
}

impl TarballClient {
    /// A client accepting answers of at most `max_bytes`, giving up after `idle` of silence
    /// or after [`REQUEST_DEADLINE`] plus the request's size at [`MIN_RATE`].
    pub fn new(max_bytes: u64, idle: Duration) -> Self {
        Self::with_deadline(max_bytes, idle, REQUEST_DEADLINE)
    }

    /// [`new`](Self::new) with another base for each request's overall deadline.
    pub fn with_deadline(max_bytes: u64, idle: Duration, deadline: Duration) -> Self {
        let inner = Inner {
            peers: Mutex::default(),
            waiting: Mutex::default(),
            next_id: AtomicU32::new(1),
            max_bytes,
            idle,
            deadline,
            index: tokio::sync::OnceCell::new(),
            feed: OnceLock::new(),
            from_peer: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        };
        TarballClient { inner: Arc::new(inner) }
    }

    /// The peer's index: a request's bytes are then capped by the size it records for the
    /// tarball ([`recorded_cap`]). Set once; later calls are ignored.
    pub fn set_index(&self, index: Index) {
        let _ = self.inner.index.set(Some(index));
    }

    /// The peer's index feed: opened as an index on the first fetch, then as
    /// [`set_index`](Self::set_index).
    pub fn set_index_feed(&self, feed: hypercore::Feed) {
        let _ = self.inner.feed.set(feed);
    }

    async fn index(&self) -> Option<&Index> {
        let open = || async {
            let feed = self.inner.feed.get()?.clone();
            let trie = hypertrie::Trie::open(feed).await.ok()?;
            Index::open(trie).await.ok()
        };
        self.inner.index.get_or_init(open).await.as_ref()
    }

    /// The cap for `name@version`: from the index's record when there is one, else the
    /// store's limit.
    async fn cap(&self, name: &str, version: &str) -> (u64, bool) {
        let lookup = async {
            let index = self.index().await?;
            let manifest = index.version(name, version).await.ok()??;
            recorded_cap(&manifest.dist)
        };
        let recorded = tokio::time::timeout(SIZE_LOOKUP, lookup).await.ok().flatten();
        match recorded {
            Some(cap) => (cap.min(self.inner.max_bytes), true),
            None => (self.inner.max_bytes, false),
        }
    }

    /// Tarballs fetched from a peer, and requests that failed (and went upstream).
    pub fn counts(&self) -> (usize, usize) {
        (self.inner.from_peer.load(Ordering::Relaxed), self.inner.failed.load(Ordering::Relaxed))
    }

    fn peer(&self) -> Option<ExtensionPeer> {
        let mut peers = lock(&self.inner.peers);
        peers.retain(|p| !p.is_closed());
        peers.first().cloned()
    }

    /// Fetches `name@version` from a connected peer into `store`, verified against
    /// `integrity`. The peers are those whose Options named the extension so far: a
    /// connection announces its extensions before the index's length, so once the index is
    /// open every peer that serves tarballs is known.
    pub async fn fetch(
        &self,
        store: &TarballStore,
        name: &str,
        version: &str,
        integrity: &Integrity,
    ) -> Result<(), PeerFetchError> {
        let result = self.fetch_inner(store, name, version, integrity).await;
        let counter = if result.is_ok() { &self.inner.from_peer } else { &self.inner.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        result
    }

    async fn fetch_inner(
        &self,
        store: &TarballStore,
        name: &str,
        version: &str,
        integrity: &Integrity,
    ) -> Result<(), PeerFetchError> {
        let peer = self.peer().ok_or(PeerFetchError::NoPeer)?;
        let (cap, recorded) = self.cap(name, version).await;
        let deadline = self.inner.deadline + Duration::from_secs(cap / MIN_RATE);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel(MAX_QUEUED_MESSAGES);
        let queued = Arc::new(AtomicU64::new(0));
        let waiting = Waiting { peer: peer.id(), tx, bytes: 0, cap, recorded, queued: queued.clone() };
        lock(&self.inner.waiting).insert(id, waiting);
        // Whatever happens below, the id is forgotten (and the seeder told when we give up).
        let guard = Forget { client: self, peer: &peer, id, done: false };
        let request = TarballRequest {
            name: name.to_owned(),
            version: version.to_owned(),
            integrity: integrity.to_string(),
        };
        peer.send(Message::Request { id, request }.encode()).await.map_err(|_| PeerFetchError::Gone)?;
        let mut pending = store.begin(integrity)?;
        let give_up = tokio::time::Instant::now() + deadline;
        loop {
            let idle = tokio::time::sleep(self.inner.idle);
            let answer = tokio::select! {
                a = rx.recv() => match a {
                    None => return Err(PeerFetchError::Gone),
                    Some(a) => a,
                },
                () = idle => return Err(PeerFetchError::Stalled(self.inner.idle)),
                () = tokio::time::sleep_until(give_up) => {
                    tracing::warn!(tarball = %format!("{name}@{version}"), ?deadline, "a peer is too slow sending a tarball; giving up on it");
                    return Err(PeerFetchError::Deadline(deadline));
                }
            };
            match answer {
                Answer::Chunk(bytes) => {
                    queued.fetch_sub(bytes.len() as u64, Ordering::Relaxed);
                    pending.write_chunk(&bytes)?;
                }
                Answer::TooLarge { limit, why } => {
                    tracing::warn!(tarball = %format!("{name}@{version}"), limit, "a peer sent more bytes than the tarball can have");
                    return Err(PeerFetchError::TooLarge { limit, why });
                }
                Answer::Overrun => return Err(PeerFetchError::Overrun),
                Answer::End(total) if total == pending.written() => break,
                Answer::End(total) => {
                    return Err(PeerFetchError::Protocol(format!(
                        "it announced {total} bytes and sent {}",
                        pending.written()
                    )));
                }
                Answer::Missing(reason) => return Err(PeerFetchError::Missing(reason)),
                Answer::Malformed(why) => return Err(PeerFetchError::Protocol(why)),
            }
        }
        let mut guard = guard;
        guard.done = true;
        pending.commit()?;
        Ok(())
    }
}

/// Drops a request's entry; cancels it at the seeder unless it completed.
struct Forget<'a> {
    client: &'a TarballClient,
    peer: &'a ExtensionPeer,
    id: u32,
    done: bool,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.client.inner.waiting).remove(&self.id);
        if !self.done {
            let (peer, id) = (self.peer.clone(), self.id);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { peer.send(Message::Cancel { id }.encode()).await });
            }
        }
    }
}

impl ExtensionHandler for TarballClient {
    fn name(&self) -> &str {
        TARBALL_EXTENSION
    }

    fn on_peer(&self, peer: ExtensionPeer) {
        lock(&self.inner.peers).push(peer);
    }

    fn on_message(&self, peer: &ExtensionPeer, payload: Vec<u8>) {
        let msg = match Message::decode(&payload) {
            Ok(m) => m,
            Err(e) => {
                // Without a trustworthy id the request it meant cannot be told: it will stall
                // out. A decodable header still names it.
                tracing::debug!(peer = peer.id(), error = %e, "bad tarball message from a peer");
                if let Some(id) = payload.get(1..5).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes) {
                    self.answer(peer, id, Answer::Malformed(e.to_string()));
                }
                return;
            }
        };
        let id = msg.id();
        let answer = match msg {
            Message::Chunk { bytes, .. } => Answer::Chunk(bytes),
            Message::End { total, .. } => Answer::End(total),
            Message::Missing { reason, .. } => Answer::Missing(reason),
            Message::Request { .. } | Message::Cancel { .. } => {
                tracing::debug!(
                    peer = peer.id(),
                    "ignoring a tarball request: this node does not serve tarballs"
                );
                return;
            }
        };
        self.answer(peer, id, answer);
    }

    fn on_close(&self, peer: &ExtensionPeer) {
        lock(&self.inner.peers).retain(|p| p.id() != peer.id());
        // Their senders drop: each waiting fetch sees the connection end.
        lock(&self.inner.waiting).retain(|_, w| w.peer != peer.id());
    }
}

impl TarballClient {
    /// Routes an answer to its request; answers for unknown ids (late, or never asked) and
    /// from another peer than the one asked are dropped.
    fn answer(&self, peer: &ExtensionPeer, id: u32, answer: Answer) {
        let mut waiting = lock(&self.inner.waiting);
        let Some(w) = waiting.get_mut(&id).filter(|w| w.peer == peer.id()) else { return };
        let failure = match &answer {
            // The seeder sends full chunks; an empty or oversized one only costs us.
            Answer::Chunk(bytes) if bytes.is_empty() || bytes.len() > CHUNK_BYTES => {
                Some(Answer::Malformed(format!("a chunk of {} bytes", bytes.len())))
            }
            Answer::Chunk(bytes) => {
                let len = bytes.len() as u64;
                w.bytes = w.bytes.saturating_add(len);
                if w.bytes > w.cap {
                    let why = if w.recorded { "the index records for it" } else { "a tarball may have" };
                    Some(Answer::TooLarge { limit: w.cap, why })
                } else if w.queued.fetch_add(len, Ordering::Relaxed) + len > MAX_QUEUED_BYTES {
                    Some(Answer::Overrun)
                } else {
                    None
                }
            }
            _ => None,
        };
        let answer = match failure {
            Some(failure) => {
                // The last message: the request is forgotten, later chunks are dropped.
                // A full queue still takes the failure eventually: the fetch drains it.
                if let Some(w) = waiting.remove(&id) {
                    tokio::spawn(async move {
                        let _ = w.tx.send(failure).await;
                    });
                }
                return;
            }
            None => answer,
        };
        if w.tx.try_send(answer).is_err() {
            // Too many small messages waiting: the peer is flooding this request.
            if let Some(w) = waiting.remove(&id) {
                tokio::spawn(async move {
                    let _ = w.tx.send(Answer::Overrun).await;
                });
            }
        }
    }
}
