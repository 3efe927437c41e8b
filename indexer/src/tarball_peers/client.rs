//! The reader's side of `ims/tarball`: ask a connected seeder for a tarball and stream its
//! answer into the store, verified on the way in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::tarballs::{Integrity, TarballError, TarballStore};
use hypercore::replicate::{ExtensionHandler, ExtensionPeer};
use tokio::sync::mpsc;

use super::TARBALL_EXTENSION;
use super::wire::{Message, TarballRequest};

/// How long a request may go without a message before it is given up (and cancelled).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);

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
    End(u64),
    Missing(String),
    Malformed(String),
}

#[derive(Debug)]
struct Waiting {
    peer: u64,
    tx: mpsc::UnboundedSender<Answer>,
    /// Chunk bytes received so far: past the store's limit the request fails at once, so a
    /// peer cannot make us buffer without bound.
    bytes: u64,
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
    /// A client accepting answers of at most `max_bytes`, giving up after `idle` of silence.
    pub fn new(max_bytes: u64, idle: Duration) -> Self {
        let inner = Inner {
            peers: Mutex::default(),
            waiting: Mutex::default(),
            next_id: AtomicU32::new(1),
            max_bytes,
            idle,
            from_peer: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
        };
        TarballClient { inner: Arc::new(inner) }
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
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.inner.waiting).insert(id, Waiting { peer: peer.id(), tx, bytes: 0 });
        // Whatever happens below, the id is forgotten (and the seeder told when we give up).
        let guard = Forget { client: self, peer: &peer, id, done: false };
        let request = TarballRequest {
            name: name.to_owned(),
            version: version.to_owned(),
            integrity: integrity.to_string(),
        };
        peer.send(Message::Request { id, request }.encode()).await.map_err(|_| PeerFetchError::Gone)?;
        let mut pending = store.begin(integrity)?;
        loop {
            let answer = match tokio::time::timeout(self.inner.idle, rx.recv()).await {
                Err(_) => return Err(PeerFetchError::Stalled(self.inner.idle)),
                Ok(None) => return Err(PeerFetchError::Gone),
                Ok(Some(a)) => a,
            };
            match answer {
                Answer::Chunk(bytes) => pending.write_chunk(&bytes)?,
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
        if let Answer::Chunk(bytes) = &answer {
            w.bytes += bytes.len() as u64;
            if w.bytes > self.inner.max_bytes {
                let limit = self.inner.max_bytes;
                let _ = w.tx.send(Answer::Malformed(format!("more than {limit} bytes")));
                waiting.remove(&id);
                return;
            }
        }
        let _ = w.tx.send(answer);
    }
}
