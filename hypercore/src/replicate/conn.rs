//! One connection's replication state machine (wire spec §8–9; JS `lib/replicate.js`
//! `Peer`): per feed channel what the remote has and wants, our requests in flight, and
//! the prefetch in progress.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::extension::{ExtensionPeer, Handlers, OUTGOING_QUEUE, Outgoing};
use super::prefetch::{
    MAX_HAVE_BYTES, MAX_PREFETCH_BLOCKS, PREFETCH_EXTENSION, PrefetchMessage, data_message,
};
use super::router::Command;
use super::{MAX_UNSOLICITED, MAX_UNSOLICITED_BYTES, ReplicateError, ReplicateOptions, ReplicateStats};
use crate::bitfield::Bitfield;
use crate::crypto::{DiscoveryKey, Signature, leaf_hash, leaf_hashes};
use crate::error::VerifyError;
use crate::feed::{Feed, PendingPut, Prehashed, PutOptions};
use crate::proof::{Proof, ProofOptions};
use crate::protocol::{
    ChannelMessage, Data, Event, Have, Message, MessageReceiver, MessageSender, Request, Session,
    SessionKeys, Status, StreamError, Want, message_stream, rle,
};
use crate::state::FeedEvent;
use crate::tree::Node;

/// Want/Have window (wire spec §8.2).
const WINDOW: u64 = 1 << 20;
/// Largest range one Have may mark (longer is clipped): bounds the work per message.
const MAX_HAVE_RANGE: u64 = 1 << 23;
/// How far past our own length the peer's announced blocks are remembered (2 MiB of bits).
const MAX_REMOTE_AHEAD: u64 = 1 << 24;
/// Verified blocks whose write may still be in progress before we wait for the oldest.
const MAX_STORING: usize = 32;

/// Source of [`ExtensionPeer::id`]s, unique in the process.
static NEXT_EXTENSION_PEER: AtomicU64 = AtomicU64::new(1);

/// A prefetch we sent and wait to be answered.
struct Pending {
    done: oneshot::Sender<Result<u64, ReplicateError>>,
    received: u64,
    since: Instant,
}

/// One feed on this connection.
struct Chan {
    feed: Feed,
    dk: DiscoveryKey,
    joined: bool,
    /// The peer sent a Want: it gets Have announcements.
    remote_wants: bool,
    /// Length already announced to the peer.
    announced: u64,
    remote: Bitfield,
    remote_len: u64,
    remote_uploading: bool,
    remote_prefetch: bool,
    inflight: HashMap<u64, Instant>,
    windows: BTreeSet<u64>,
    cursor: u64,
    prefetch: Option<Pending>,
    /// Verified blocks being written (shared syncs); not yet readable, so not re-requested.
    storing: VecDeque<(u64, PendingPut)>,
    /// Valid Data we did not request since the last one we did: messages and value bytes.
    unsolicited: (u64, u64),
    /// Handles given to extension handlers, by handler position.
    ext_peers: HashMap<usize, ExtensionPeer>,
}

impl Chan {
    fn new(feed: Feed) -> Self {
        Self {
            dk: feed.discovery_key(),
            feed,
            joined: false,
            remote_wants: false,
            announced: 0,
            remote: Bitfield::new(),
            remote_len: 0,
            remote_uploading: true,
            remote_prefetch: false,
            inflight: HashMap::new(),
            windows: BTreeSet::new(),
            cursor: 0,
            prefetch: None,
            storing: VecDeque::new(),
            unsolicited: (0, 0),
            ext_peers: HashMap::new(),
        }
    }
}

impl Chan {
    /// Whether block `seq` was verified here and is still being written.
    fn is_storing(&self, seq: u64) -> bool {
        self.storing.iter().any(|(s, _)| *s == seq)
    }
}

/// Aborts the helper tasks when the connection ends (or its future is dropped).
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

struct Conn {
    session: Session,
    out: MessageSender,
    handlers: Handlers,
    ext_tx: mpsc::Sender<Outgoing>,
    chans: HashMap<u64, Chan>,
    opts: ReplicateOptions,
    stats: ReplicateStats,
}

pub(super) async fn run<S>(
    io: S,
    keys: SessionKeys,
    feeds: Vec<Feed>,
    opts: ReplicateOptions,
) -> Result<ReplicateStats, ReplicateError>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (out, receiver) = message_stream(io, opts.stream);
    // Bursts of up to a read (1 MiB) each: a few are enough to keep both tasks busy.
    let (in_tx, mut in_rx) = mpsc::channel(4);
    let mut tasks = Tasks(Vec::new());
    tasks.0.push(tokio::spawn(read_loop(receiver, in_tx)));
    let (ev_tx, mut ev_rx) = mpsc::channel(256);
    for feed in &feeds {
        let mut events = feed.subscribe();
        let (dk, tx, f) = (feed.discovery_key(), ev_tx.clone(), feed.clone());
        tasks.0.push(tokio::spawn(async move {
            loop {
                let ev = match events.recv().await {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(_)) => FeedEvent::Append { len: f.len() },
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send((dk, ev)).await.is_err() {
                    return;
                }
            }
        }));
    }
    drop(ev_tx);

    let wake = Arc::new(Notify::new());
    let (cmd_tx, mut cmd_rx) = mpsc::channel(16);
    let conn_id = opts.router.as_ref().map(|r| r.connection_id());
    let handlers: Handlers =
        opts.extensions.iter().filter(|h| h.name() != PREFETCH_EXTENSION).cloned().collect();
    let mut names = vec![PREFETCH_EXTENSION];
    names.extend(handlers.iter().map(|h| h.name()));
    let (ext_tx, mut ext_rx) = mpsc::channel(OUTGOING_QUEUE);
    let mut conn = Conn {
        session: Session::new(keys, &names, &[]),
        out,
        handlers,
        ext_tx,
        chans: HashMap::new(),
        opts: opts.clone(),
        stats: ReplicateStats::default(),
    };
    let result = async {
        for feed in feeds {
            let (local_id, msgs) = conn.session.open(&feed.public_key())?;
            for m in &msgs {
                conn.out.send(m).await?;
            }
            if feed.writable() {
                conn.out
                    .send(&ChannelMessage::new(local_id, Message::Status(Status::new(true, false))))
                    .await?;
            }
            if let (Some(router), Some(id)) = (&opts.router, conn_id) {
                router.attach(feed.discovery_key(), id, wake.clone(), cmd_tx.clone());
            }
            conn.chans.insert(local_id, Chan::new(feed));
        }
        let period = (opts.request_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                next = in_rx.recv() => match next {
                    None | Some(Ok(None)) => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                    Some(Ok(Some(mut burst))) => {
                        // Bursts already queued behind this one join it: more blocks are
                        // hashed four at a time.
                        let mut end = None;
                        while burst.len() < MAX_HASHED_TOGETHER {
                            match in_rx.try_recv() {
                                Ok(Ok(Some(more))) => burst.extend(more),
                                Ok(last) => {
                                    end = Some(last);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        if conn.on_burst(burst).await? {
                            return Ok(());
                        }
                        match end {
                            Some(Ok(None)) => return Ok(()),
                            Some(Err(e)) => return Err(e.into()),
                            _ => {}
                        }
                    }
                },
                Some((dk, ev)) = ev_rx.recv() => conn.on_feed_event(dk, ev).await?,
                () = wake.notified() => {
                    let ids: Vec<u64> = conn.chans.keys().copied().collect();
                    for id in ids {
                        conn.request_more(id).await?;
                    }
                }
                Some((dk, cmd)) = cmd_rx.recv() => conn.on_command(dk, cmd).await?,
                Some(o) = ext_rx.recv() => conn.send_extension(o).await?,
                _ = tick.tick() => conn.check_timeouts()?,
            }
        }
    }
    .await;
    if let (Some(router), Some(id)) = (&opts.router, conn_id) {
        router.detach(id);
    }
    drop(tasks);
    match result {
        Ok(()) => Ok(conn.stats),
        Err(e) => {
            tracing::debug!(error = %e, "replication connection dropped");
            Err(e)
        }
    }
}

/// Messages taken from the stream together at most.
const READ_BURST: usize = 16;
/// Messages whose blocks the connection task hashes together at most (queued bursts join).
const MAX_HASHED_TOGETHER: usize = 4 * READ_BURST;

/// Messages that arrived together (one read). The connection task hashes the values of their
/// Data messages together ([`leaf_hashes`]: four at a time with AVX2).
type Incoming = Vec<ChannelMessage>;

fn data_value(msg: &ChannelMessage) -> Option<&[u8]> {
    match &msg.message {
        Message::Data(data) => data.value.as_deref(),
        _ => None,
    }
}

/// Decodes the peer's messages for the connection task, in bursts: the messages that arrived
/// in one read. Reading, opening records and decoding take about as much CPU as hashing the
/// blocks, so the connection task hashes (and verifies and stores) while this task reads the
/// next burst.
async fn read_loop<S: AsyncRead>(
    mut receiver: MessageReceiver<S>,
    tx: mpsc::Sender<Result<Option<Incoming>, StreamError>>,
) {
    loop {
        let first = match receiver.recv().await {
            Ok(Some(msg)) => msg,
            Ok(None) => {
                let _ = tx.send(Ok(None)).await;
                return;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let mut burst = vec![first];
        let mut failed = None;
        while burst.len() < READ_BURST {
            match receiver.try_recv_buffered() {
                Ok(Some(msg)) => burst.push(msg),
                Ok(None) => break,
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if tx.send(Ok(Some(burst))).await.is_err() {
            return;
        }
        if let Some(e) = failed {
            let _ = tx.send(Err(e)).await;
            return;
        }
    }
}

fn to_proof(dk: DiscoveryKey, data: &Data) -> Result<Proof, ReplicateError> {
    let bad = |reason| ReplicateError::BadData { feed: dk, seq: data.index, reason };
    let nodes = data
        .nodes
        .iter()
        .map(|n| {
            Ok(Node {
                index: n.index,
                hash: n.hash.as_slice().try_into().map_err(|_| bad("node hash is not 32 bytes"))?,
                size: n.size,
            })
        })
        .collect::<Result<Vec<_>, ReplicateError>>()?;
    let signature = match &data.signature {
        Some(s) => Some(Signature::from_bytes(s).map_err(|_| bad("signature is not 64 bytes"))?),
        None => None,
    };
    Ok(Proof { index: data.index, nodes, signature })
}

impl Drop for Conn {
    /// However the connection ends (an error, or its future dropped), the extension handlers
    /// learn that their peers are gone.
    fn drop(&mut self) {
        for chan in self.chans.values() {
            for (&i, peer) in &chan.ext_peers {
                self.handlers[i].on_close(peer);
            }
        }
    }
}

impl Conn {
    async fn send(&self, local_id: u64, message: Message) -> Result<(), StreamError> {
        self.out.send_owned(ChannelMessage::new(local_id, message)).await
    }

    /// The handle of handler `i` for the peer on channel `local_id`, made (and announced with
    /// [`ExtensionHandler::on_peer`](super::ExtensionHandler::on_peer)) on first use.
    fn extension_peer(&mut self, local_id: u64, i: usize) -> Option<ExtensionPeer> {
        let chan = self.chans.get_mut(&local_id)?;
        if let Some(peer) = chan.ext_peers.get(&i) {
            return Some(peer.clone());
        }
        let id = NEXT_EXTENSION_PEER.fetch_add(1, Ordering::Relaxed);
        let peer = ExtensionPeer::new(id, chan.dk, local_id, i, self.ext_tx.clone());
        chan.ext_peers.insert(i, peer.clone());
        self.handlers[i].on_peer(peer.clone());
        Some(peer)
    }

    /// Sends a handler's message, if its channel is still open.
    async fn send_extension(&mut self, o: Outgoing) -> Result<(), StreamError> {
        let Some(handler) = self.handlers.get(o.extension) else { return Ok(()) };
        match self.session.extension(Some(o.channel), handler.name(), o.payload) {
            Some(msg) => self.out.send(&msg).await,
            None => Ok(()),
        }
    }

    /// Handles messages that arrived together, their blocks hashed together ([`leaf_hashes`]:
    /// four at a time with AVX2); `Ok(true)` when the connection is done.
    async fn on_burst(&mut self, burst: Incoming) -> Result<bool, ReplicateError> {
        let values: Vec<&[u8]> = burst.iter().filter_map(data_value).collect();
        let mut hashes = leaf_hashes(&values).into_iter();
        for msg in burst {
            let leaf = if data_value(&msg).is_some() { hashes.next() } else { None };
            if self.on_message(msg, leaf).await? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Handles one message; `Ok(true)` when the connection is done (every channel closed).
    async fn on_message(
        &mut self,
        msg: ChannelMessage,
        leaf: Option<[u8; 32]>,
    ) -> Result<bool, ReplicateError> {
        let Some(event) = self.session.on_message(msg)? else { return Ok(false) };
        match event {
            Event::DiscoveryKey(dk) => tracing::debug!(%dk, "peer opened a feed we do not replicate here"),
            Event::Joined { local_id, .. } => {
                let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(false) };
                chan.joined = true;
                if !chan.feed.writable() {
                    chan.windows.insert(0);
                    self.send(local_id, Message::Want(Want { start: 0, length: Some(WINDOW) })).await?;
                }
            }
            Event::Closed { reply, discovery_key } => {
                if let Some(reply) = reply {
                    self.out.send(&reply).await?;
                }
                for chan in self.chans.values().filter(|c| c.dk == discovery_key) {
                    for (&i, peer) in &chan.ext_peers {
                        self.handlers[i].on_close(peer);
                    }
                }
                self.chans.retain(|_, c| c.dk != discovery_key);
                return Ok(self.chans.is_empty());
            }
            Event::Extension { local_id: Some(local_id), name, payload } if name == PREFETCH_EXTENSION => {
                self.on_prefetch(local_id, &payload).await?;
            }
            Event::Extension { local_id: Some(local_id), name, payload } => {
                let Some(i) = self.handlers.iter().position(|h| h.name() == name) else { return Ok(false) };
                if let Some(peer) = self.extension_peer(local_id, i) {
                    self.handlers[i].on_message(&peer, payload);
                }
            }
            Event::Extension { .. } => {}
            Event::Message { local_id, message } => self.on_channel_message(local_id, message, leaf).await?,
        }
        Ok(false)
    }

    async fn on_channel_message(
        &mut self,
        local_id: u64,
        message: Message,
        leaf: Option<[u8; 32]>,
    ) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        match message {
            Message::Options(options) => {
                chan.remote_prefetch = options.extensions.iter().any(|e| e == PREFETCH_EXTENSION);
                let spoken: Vec<usize> = (0..self.handlers.len())
                    .filter(|&i| options.extensions.iter().any(|e| e == self.handlers[i].name()))
                    .collect();
                for i in spoken {
                    self.extension_peer(local_id, i);
                }
            }
            Message::Status(status) => {
                chan.remote_uploading = status.uploading.unwrap_or(false);
                if !chan.remote_uploading {
                    chan.inflight.clear();
                }
            }
            Message::Have(have) => {
                on_have(chan, &have);
                self.request_more(local_id).await?;
            }
            Message::Want(want) => self.on_want(local_id, want).await?,
            Message::Request(request) => self.on_request(local_id, request).await?,
            Message::Data(data) => self.on_data(local_id, data, leaf).await?,
            // Unhave, Unwant, Cancel: JS does not act on them either.
            _ => {}
        }
        Ok(())
    }

    async fn on_want(&mut self, local_id: u64, want: Want) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let length = want.length.unwrap_or(0);
        // JS ignores unaligned Wants (wire spec §8.2).
        if !want.start.is_multiple_of(8192) || !length.is_multiple_of(8192) {
            return Ok(());
        }
        chan.remote_wants = true;
        let feed = chan.feed.clone();
        let len = feed.len();
        chan.announced = chan.announced.max(len);
        if len > 0 && feed.has(len - 1) {
            self.send(local_id, Message::Have(Have { start: len - 1, ..Default::default() })).await?;
        }
        let bits = feed.bitfield();
        let end = want.start.saturating_add(length.min(MAX_HAVE_RANGE)).min(bits.bit_len().max(want.start));
        let bytes = bits.bytes(want.start / 8, end.div_ceil(8));
        let have =
            Have { start: want.start, length: Some(length), bitfield: Some(rle::encode(&bytes)), ack: None };
        self.send(local_id, Message::Have(have)).await?;
        Ok(())
    }

    async fn on_request(&mut self, local_id: u64, req: Request) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get(&local_id) else { return Ok(()) };
        let feed = chan.feed.clone();
        let seq = match req.bytes {
            Some(bytes) if bytes > 0 => match feed.seek(bytes) {
                Ok((seq, _)) => seq,
                Err(_) => return Ok(()),
            },
            _ => req.index,
        };
        if !feed.has(seq) {
            return Ok(());
        }
        let hash = req.hash.unwrap_or(false);
        let opts = ProofOptions { digest: req.nodes.unwrap_or(0), hash };
        let value = if hash { None } else { feed.get_local_shared(seq).ok().flatten() };
        let proof = match feed.proof_with(seq, opts) {
            Ok((proof, _)) => proof,
            Err(e) => {
                tracing::debug!(feed = %chan.dk, seq, error = %e, "cannot prove a requested block");
                return Ok(());
            }
        };
        if !hash && value.is_none() {
            return Ok(());
        }
        self.send(local_id, Message::Data(data_message(value, &proof))).await?;
        self.stats.uploaded += 1;
        Ok(())
    }

    /// `leaf`: the value's leaf hash, if it was computed with its burst's.
    async fn on_data(
        &mut self,
        local_id: u64,
        data: Data,
        leaf: Option<[u8; 32]>,
    ) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let (dk, seq) = (chan.dk, data.index);
        let requested = chan.inflight.remove(&seq).is_some();
        let prefetched = !requested
            && match &mut chan.prefetch {
                Some(p) if p.received < MAX_PREFETCH_BLOCKS => {
                    p.received += 1;
                    true
                }
                _ => false,
            };
        let proof = to_proof(dk, &data)?;
        let value: Vec<u8> =
            data.value.ok_or(ReplicateError::BadData { feed: dk, seq, reason: "no value" })?.into();
        let verify = |source| ReplicateError::Verify { feed: dk, source };
        if !requested && !prefetched {
            // JS drops Data it did not ask for. A forged one still ends the connection, and a
            // run of them is a flood: bounded by count and bytes.
            chan.feed.verify(seq, &value, &proof).map_err(verify)?;
            chan.unsolicited.0 += 1;
            chan.unsolicited.1 += value.len() as u64;
            let (count, bytes) = chan.unsolicited;
            if count > MAX_UNSOLICITED || bytes > MAX_UNSOLICITED_BYTES {
                return Err(ReplicateError::Unrequested { feed: dk, seq, count });
            }
            tracing::trace!(feed = %dk, seq, count, "dropped a valid block we did not request");
            return Ok(());
        }
        chan.unsolicited = (0, 0);
        let leaf = leaf.unwrap_or_else(|| leaf_hash(&value));
        // Verify now; the write and its sync overlap with the next blocks (shared syncs).
        let pending = if prefetched {
            // A shared proof may rely on nodes of an earlier block still being written (on
            // disk they are applied once synced): on failure, wait for those and check again.
            let every_node = PutOptions { every_node: true };
            let block = || Prehashed { seq, data: &value[..], leaf, proof: &proof };
            match chan.feed.put_blocks(block(), every_node).await {
                Ok(p) => p,
                Err(_) if !chan.storing.is_empty() => {
                    for (_, earlier) in chan.storing.drain(..) {
                        earlier.durable().await.map_err(|e| verify(VerifyError::Storage(e)))?;
                    }
                    chan.feed.put_blocks(block(), every_node).await.map_err(verify)?
                }
                Err(e) => return Err(verify(e)),
            }
        } else {
            // Handed over: stored without another copy.
            let block = Prehashed { seq, data: value, leaf, proof: &proof };
            chan.feed.put_blocks(block, PutOptions::default()).await.map_err(verify)?
        };
        chan.storing.push_back((seq, pending));
        while chan.storing.len() > MAX_STORING {
            if let Some((_, oldest)) = chan.storing.pop_front() {
                oldest.durable().await.map_err(|e| verify(VerifyError::Storage(e)))?;
            }
        }
        self.stats.downloaded += 1;
        // Refill the window once a quarter of it is free, not after every block: the
        // Requests then leave in one write and reach the peer in one read.
        let max = self.opts.max_inflight.max(1);
        if self.chans.get(&local_id).is_some_and(|c| c.inflight.len() + max / 4 <= max) {
            self.request_more(local_id).await?;
        }
        Ok(())
    }

    /// Requests the blocks this feed wants that the peer has, up to the in-flight limit.
    async fn request_more(&mut self, local_id: u64) -> Result<(), ReplicateError> {
        let max = self.opts.max_inflight.max(1);
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        if !chan.joined || !chan.remote_uploading || chan.feed.writable() || chan.inflight.len() >= max {
            return Ok(());
        }
        let feed = chan.feed.clone();
        let mut candidates = Vec::new();
        // Live: learn a longer signed length by fetching the peer's last block.
        if chan.remote_len > feed.len() {
            candidates.push(chan.remote_len - 1);
        }
        if let Some(router) = &self.opts.router {
            candidates.extend(router.wanted(&chan.dk, |s| !feed.has(s)));
        }
        let mut out = Vec::new();
        let mut ask = |chan: &mut Chan, seq: u64| {
            if chan.inflight.contains_key(&seq) || feed.has(seq) || chan.is_storing(seq) {
                return;
            }
            let window = seq / WINDOW;
            if chan.windows.insert(window) {
                out.push(Message::Want(Want { start: window * WINDOW, length: Some(WINDOW) }));
            }
            if chan.remote.get(seq) {
                chan.inflight.insert(seq, Instant::now());
                out.push(Message::Request(Request::new(seq, false, feed.digest(seq))));
            }
        };
        for seq in candidates {
            if chan.inflight.len() >= max {
                break;
            }
            ask(chan, seq);
        }
        if self.opts.download_all {
            // In order; a block the peer has not announced yet stops the walk until it does.
            while chan.cursor < chan.remote_len && chan.inflight.len() < max {
                let seq = chan.cursor;
                if !feed.has(seq)
                    && !chan.inflight.contains_key(&seq)
                    && !chan.is_storing(seq)
                    && !chan.remote.get(seq)
                {
                    break;
                }
                chan.cursor += 1;
                ask(chan, seq);
            }
        }
        for m in out {
            if matches!(m, Message::Request(_)) {
                self.stats.requests += 1;
            }
            self.send(local_id, m).await?;
        }
        Ok(())
    }

    async fn on_feed_event(&mut self, dk: DiscoveryKey, ev: FeedEvent) -> Result<(), ReplicateError> {
        let ids: Vec<u64> =
            self.chans.iter().filter(|(_, c)| c.dk == dk && c.joined).map(|(id, _)| *id).collect();
        for id in ids {
            let Some(chan) = self.chans.get_mut(&id) else { continue };
            if !chan.remote_wants {
                continue;
            }
            let have = match ev {
                FeedEvent::Append { len } if len > chan.announced => {
                    let start = chan.announced;
                    chan.announced = len;
                    let length = (len - start > 1).then_some(len - start);
                    Have { start, length, ..Default::default() }
                }
                FeedEvent::Download { seq } if chan.remote.get(seq) => continue,
                FeedEvent::Download { seq } => Have { start: seq, ..Default::default() },
                _ => continue,
            };
            self.send(id, Message::Have(have)).await?;
        }
        Ok(())
    }

    async fn on_command(&mut self, dk: DiscoveryKey, cmd: Command) -> Result<(), ReplicateError> {
        let Command::Prefetch { keys, done } = cmd;
        let Some((&id, chan)) = self.chans.iter_mut().find(|(_, c)| c.dk == dk && c.joined) else {
            let _ = done.send(Err(ReplicateError::NoPeer { feed: dk }));
            return Ok(());
        };
        if !chan.remote_prefetch {
            // The peer does not speak it (e.g. JS): the reader falls back to requests.
            let _ = done.send(Ok(0));
            return Ok(());
        }
        if chan.prefetch.is_some() {
            let _ = done.send(Err(ReplicateError::Busy { feed: dk }));
            return Ok(());
        }
        let bits = chan.feed.bitfield();
        let have = rle::encode(&bits.bytes(0, chan.feed.len().div_ceil(8)));
        let length = Some(chan.feed.len());
        let payload = PrefetchMessage { keys, have: Some(have), sent: None, length }.to_bytes();
        chan.prefetch = Some(Pending { done, received: 0, since: Instant::now() });
        if let Some(msg) = self.session.extension(Some(id), PREFETCH_EXTENSION, payload) {
            self.out.send(&msg).await?;
        }
        Ok(())
    }

    async fn on_prefetch(&mut self, local_id: u64, payload: &[u8]) -> Result<(), ReplicateError> {
        let Some(chan) = self.chans.get_mut(&local_id) else { return Ok(()) };
        let dk = chan.dk;
        let msg = PrefetchMessage::from_bytes(payload)
            .map_err(|reason| ReplicateError::Prefetch { feed: dk, reason })?;
        if let Some(sent) = msg.sent {
            // The end of our prefetch's answer. Its last blocks may still be being written:
            // the prefetch is done once every one is readable, so the reads it was made for
            // find them instead of asking the peer again.
            if let Some(p) = chan.prefetch.take() {
                for (_, pending) in chan.storing.drain(..) {
                    pending
                        .durable()
                        .await
                        .map_err(|e| ReplicateError::Verify { feed: dk, source: VerifyError::Storage(e) })?;
                }
                tracing::debug!(feed = %dk, sent, received = p.received, "prefetch answered");
                let _ = p.done.send(Ok(p.received));
            }
            self.request_more(local_id).await?;
            return Ok(());
        }
        let have = match &msg.have {
            Some(rle_bits) => rle::decode(rle_bits, MAX_HAVE_BYTES)
                .map_err(|e| ReplicateError::Prefetch { feed: dk, reason: e.to_string() })?,
            None => Vec::new(),
        };
        let feed = chan.feed.clone();
        let blocks = match &self.opts.planner {
            Some(planner) => planner.blocks(&feed, &msg.keys).await.unwrap_or_else(|e| {
                tracing::debug!(feed = %dk, error = %e, "prefetch planning failed");
                BTreeSet::new()
            }),
            None => BTreeSet::new(),
        };
        let has_bit = |seq: u64| {
            usize::try_from(seq / 8)
                .ok()
                .and_then(|i| have.get(i))
                .is_some_and(|b| b & (0x80 >> (seq % 8)) != 0)
        };
        let seqs: Vec<u64> = blocks
            .into_iter()
            .filter(|&seq| !has_bit(seq) && feed.has(seq))
            .take(MAX_PREFETCH_BLOCKS as usize)
            .collect();
        let mut sent = 0u64;
        for data in super::prefetch::answer(&feed, &seqs, &have, msg.length) {
            self.send(local_id, Message::Data(data)).await?;
            sent += 1;
        }
        self.stats.uploaded += sent;
        let reply = PrefetchMessage { sent: Some(sent), ..PrefetchMessage::default() }.to_bytes();
        if let Some(msg) = self.session.extension(Some(local_id), PREFETCH_EXTENSION, reply) {
            self.out.send(&msg).await?;
        }
        Ok(())
    }

    fn check_timeouts(&mut self) -> Result<(), ReplicateError> {
        let after = self.opts.request_timeout;
        for chan in self.chans.values() {
            if let Some((&seq, _)) = chan.inflight.iter().find(|(_, t)| t.elapsed() > after) {
                return Err(ReplicateError::RequestTimeout { feed: chan.dk, seq, after });
            }
            if chan.prefetch.as_ref().is_some_and(|p| p.since.elapsed() > after) {
                return Err(ReplicateError::Prefetch {
                    feed: chan.dk,
                    reason: format!("no answer within {after:?}"),
                });
            }
        }
        Ok(())
    }
}

/// Records what a Have says the peer holds. Bits are kept only below our length plus
/// [`MAX_REMOTE_AHEAD`], so Haves at scattered far offsets cannot grow memory without bound;
/// a claimed length beyond that is still learned (and must then be proven by a signature).
fn on_have(chan: &mut Chan, have: &Have) {
    let length = have.length.unwrap_or(1);
    let limit = chan.feed.len().saturating_add(MAX_REMOTE_AHEAD);
    match &have.bitfield {
        Some(bits) if have.start.is_multiple_of(8) => {
            // The decoder pads to a multiple of 4 bytes.
            let max = usize::try_from(length.min(MAX_HAVE_RANGE).div_ceil(32) * 4).unwrap_or(0);
            let Ok(bytes) = rle::decode(bits, max.max(4)) else { return };
            let mut top = None;
            for (i, b) in bytes.iter().enumerate().filter(|(_, b)| **b != 0) {
                for k in 0..8u64 {
                    if b & (0x80 >> k) != 0 {
                        let seq = have.start + 8 * i as u64 + k;
                        if seq < limit {
                            chan.remote.set(seq, true);
                        }
                        top = Some(seq);
                    }
                }
            }
            if let Some(top) = top {
                chan.remote_len = chan.remote_len.max(top + 1);
            }
        }
        Some(_) => {}
        None => {
            let end = have.start.saturating_add(length.min(MAX_HAVE_RANGE));
            for seq in have.start..end.min(limit) {
                chan.remote.set(seq, true);
            }
            chan.remote_len = chan.remote_len.max(end);
        }
    }
}
